//! Connecting the ranks of a cluster before timely-dataflow takes the sockets.
//!
//! Timely's own `create_sockets` retries a missing peer forever and prints to
//! stdout while it waits, which would hang a run and mix with its results. So the
//! sockets are made here, with the same topology (rank `i` connects to every lower
//! rank and accepts every higher one) and a deadline: a rank that does not show
//! up in time is named in the error. The handshake carries a magic number, the
//! rank, the cluster size and a *run id* (a hash of the command every rank runs)
//! so a rank started with another command or hostfile is refused with a clear
//! error instead of building different dataflows. After the handshake the
//! sockets belong to timely (`initialize_networking_from_sockets`), which
//! exchanges all data and progress; nothing else is sent on them.
//!
//! A connection lost later (a rank killed) makes timely's network thread panic
//! with "timely communication error"; [`install_lost_rank_hook`] turns that into
//! an error naming the rank and ends the process, so no rank waits forever.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// "pinlab\0\x01": handshake magic, version 1.
const MAGIC: u64 = 0x7069_6e6c_6162_0001;

/// One side's handshake: magic, rank, ranks, run id (big-endian u64s).
fn hello(rank: usize, ranks: usize, run_id: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, v) in [MAGIC, rank as u64, ranks as u64, run_id]
        .iter()
        .enumerate()
    {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_be_bytes());
    }
    b
}

fn read_hello(s: &mut TcpStream) -> std::io::Result<[u64; 4]> {
    let mut b = [0u8; 32];
    s.read_exact(&mut b)?;
    let mut v = [0u64; 4];
    for (i, x) in v.iter_mut().enumerate() {
        *x = u64::from_be_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    }
    Ok(v)
}

/// Checks a peer's handshake; `expect` is its rank when known (the connecting side).
fn check_hello(
    v: [u64; 4],
    ranks: usize,
    run_id: u64,
    me: usize,
    expect: Option<usize>,
) -> Result<usize, String> {
    if v[0] != MAGIC {
        return Err("a peer that is not a pinlab rank of this version answered".into());
    }
    let peer = v[1] as usize;
    if v[2] as usize != ranks {
        return Err(format!(
            "rank {peer} runs a cluster of {} ranks, this rank one of {ranks}: the hostfiles differ",
            v[2]
        ));
    }
    if v[3] != run_id {
        return Err(format!(
            "rank {peer} runs a different command (every rank must run the same `pinlab` command line apart from --rank)"
        ));
    }
    if peer >= ranks || peer == me || expect.is_some_and(|e| e != peer) {
        return Err(format!(
            "a peer announced itself as rank {peer}, which is not the rank expected here"
        ));
    }
    Ok(peer)
}

/// Connects rank `me` of `addresses` to every other rank within `timeout`:
/// one socket per rank (`None` at `me`), as timely expects them.
pub(crate) fn connect(
    addresses: &[String],
    me: usize,
    run_id: u64,
    timeout: Duration,
) -> Result<Vec<Option<TcpStream>>, String> {
    let ranks = addresses.len();
    let deadline = Instant::now() + timeout;
    let listener = TcpListener::bind(addresses[me].as_str()).map_err(|e| {
        format!(
            "rank {me}: cannot listen on {} (its line in the hostfile): {e}",
            addresses[me]
        )
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("rank {me}: {e}"))?;
    let mut socks: Vec<Option<TcpStream>> = (0..ranks).map(|_| None).collect();
    let mut next_lower = 0;
    let missing = |socks: &[Option<TcpStream>]| -> String {
        (0..ranks)
            .filter(|&r| r != me && socks[r].is_none())
            .map(|r| format!("rank {r} ({})", addresses[r]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    loop {
        // Lower ranks: connect (they listen); one attempt per pass.
        if next_lower < me {
            let addr = &addresses[next_lower];
            let target = addr.to_socket_addrs().ok().and_then(|mut a| a.next());
            if let Some(target) = target {
                if let Ok(mut s) = TcpStream::connect_timeout(&target, Duration::from_millis(500)) {
                    s.set_read_timeout(Some(timeout))
                        .and_then(|_| s.write_all(&hello(me, ranks, run_id)))
                        .map_err(|e| format!("rank {me}: handshake with rank {next_lower}: {e}"))?;
                    let v = read_hello(&mut s).map_err(|e| {
                        format!("rank {me}: handshake with rank {next_lower} ({addr}): {e}")
                    })?;
                    check_hello(v, ranks, run_id, me, Some(next_lower))
                        .map_err(|e| format!("rank {me}: {e}"))?;
                    s.set_read_timeout(None).map_err(|e| e.to_string())?;
                    s.set_nodelay(true).map_err(|e| e.to_string())?;
                    socks[next_lower] = Some(s);
                    next_lower += 1;
                    continue;
                }
            } else {
                return Err(format!(
                    "rank {me}: cannot resolve the address of rank {next_lower}: {addr}"
                ));
            }
        }
        // Higher ranks: accept (they connect to us).
        match listener.accept() {
            Ok((mut s, _)) => {
                s.set_nonblocking(false).map_err(|e| e.to_string())?;
                s.set_read_timeout(Some(Duration::from_secs(10)))
                    .map_err(|e| e.to_string())?;
                let v = read_hello(&mut s)
                    .map_err(|e| format!("rank {me}: handshake with a connecting rank: {e}"))?;
                let peer = check_hello(v, ranks, run_id, me, None)
                    .map_err(|e| format!("rank {me}: {e}"))?;
                if peer < me || socks[peer].is_some() {
                    return Err(format!("rank {me}: rank {peer} connected twice"));
                }
                s.write_all(&hello(me, ranks, run_id))
                    .map_err(|e| format!("rank {me}: handshake with rank {peer}: {e}"))?;
                s.set_read_timeout(None).map_err(|e| e.to_string())?;
                s.set_nodelay(true).map_err(|e| e.to_string())?;
                socks[peer] = Some(s);
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("rank {me}: accepting connections: {e}")),
        }
        if next_lower == me && (me + 1..ranks).all(|r| socks[r].is_some()) {
            return Ok(socks);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "rank {me}: timed out after {} s waiting for {}",
                timeout.as_secs(),
                missing(&socks)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Installs a panic hook that turns a panic of one of timely's network threads
/// (`timely:send-N`, `timely:recv-N`: the connection to rank N broke) into an
/// error naming rank N, and exits with status 2: without it the other threads
/// would wait for that rank forever. Other panics go to the previous hook.
pub(crate) fn install_lost_rank_hook(me: usize, addresses: Vec<String>) {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let name = std::thread::current().name().map(str::to_string);
        let peer = name.as_deref().and_then(|n| {
            n.strip_prefix("timely:recv-")
                .or_else(|| n.strip_prefix("timely:send-"))
                .and_then(|r| r.parse::<usize>().ok())
        });
        match peer {
            Some(peer) => {
                let msg = info
                    .payload()
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                let addr = addresses.get(peer).map(String::as_str).unwrap_or("?");
                eprintln!(
                    "pinlab: rank {me}: lost the connection to rank {peer} ({addr}): {msg}; \
                     the run is abandoned (no result is printed)"
                );
                std::process::exit(2);
            }
            None => prev(info),
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_refuses_another_command_or_size() {
        let ok = [MAGIC, 1, 2, 7];
        assert_eq!(check_hello(ok, 2, 7, 0, Some(1)), Ok(1));
        assert!(check_hello([MAGIC, 1, 2, 8], 2, 7, 0, None)
            .unwrap_err()
            .contains("different command"));
        assert!(check_hello([MAGIC, 1, 3, 7], 2, 7, 0, None)
            .unwrap_err()
            .contains("hostfiles differ"));
        assert!(check_hello([1, 1, 2, 7], 2, 7, 0, None).is_err());
        assert!(check_hello([MAGIC, 0, 2, 7], 2, 7, 0, None).is_err());
    }

    #[test]
    fn a_missing_rank_is_named_after_the_timeout() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let free = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addrs = vec![format!("127.0.0.1:{port}"), format!("127.0.0.1:{free}")];
        let err = connect(&addrs, 0, 1, Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        assert!(err.contains("rank 1"), "{err}");
    }
}
