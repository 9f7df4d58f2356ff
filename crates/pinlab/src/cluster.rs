//! `check`, `explore` and `report` with `--cluster HOSTFILE --rank I` or
//! `--local-cluster N`: the matrix (or one cell) explored by a cluster of
//! processes on timely-dataflow ([`pinlab_explore::cluster`]).
//!
//! Every rank runs the same command and walks the same cells in the same order;
//! each cell's BFS is partitioned over all ranks' workers, and every rank ends
//! with the same matrix, which rank 0 prints (the others print nothing; all exit
//! with the same status). `--local-cluster N` starts N such ranks of this
//! binary on loopback ports and waits for them: one rank that fails or dies
//! stops the others and names it. A rank whose connection breaks mid-run ends
//! with status 2 and a message naming the lost rank; rank 0 then prints no
//! matrix, so a partial run is never mistaken for an answer.

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use pinlab_explore::cluster::{self, ClusterConfig};
use pinlab_explore::{Config, Search};
use pinlab_model::Policy;
use pinlab_report::Matrix;
use pinlab_scenario::Scenario;

/// Cluster options of `check`, `explore` and `report`.
#[derive(Args, Clone, Debug)]
pub(crate) struct ClusterArgs {
    /// Explore each cell over a cluster of processes: HOSTFILE lists one `host:port` per rank (rank 0 first). Every rank runs the same command with its own --rank; rank 0 prints the results. --threads sets the timely workers per rank (default 1).
    #[arg(long, value_name = "HOSTFILE", requires = "rank")]
    cluster: Option<PathBuf>,
    /// This process's rank in the --cluster hostfile (0 = the rank that prints).
    #[arg(long, value_name = "I", requires = "cluster")]
    rank: Option<usize>,
    /// Start N ranks of this command on loopback ports and run it as a cluster (tests, one big machine).
    #[arg(long, value_name = "N", conflicts_with_all = ["cluster", "rank"], value_parser = clap::value_parser!(u16).range(1..=64))]
    local_cluster: Option<u16>,
    /// Seconds to wait for every rank to connect before giving up (naming the missing ranks).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    cluster_timeout: u64,
}

/// How `check` runs.
pub(crate) enum Mode {
    /// In this process.
    Single,
    /// As one rank of a cluster.
    Rank(ClusterConfig),
    /// Start this many local ranks.
    Local(u16),
}

impl ClusterArgs {
    /// `--cluster-timeout` in seconds.
    pub(crate) fn timeout(&self) -> u64 {
        self.cluster_timeout
    }

    pub(crate) fn mode(&self, cfg: &Config) -> Result<Mode, String> {
        let clustered = self.cluster.is_some() || self.local_cluster.is_some();
        if clustered && cfg.search != Search::Bfs {
            return Err(
                "--cluster and --local-cluster run the exhaustive BFS; --search dfs and walk run in one process \
                 (for walks spread over many machines, run shards with different --seed and combine them with \
                 `pinlab merge`: see docs/distributed.md)"
                    .into(),
            );
        }
        if let Some(n) = self.local_cluster {
            return Ok(Mode::Local(n));
        }
        let Some(file) = &self.cluster else {
            return Ok(Mode::Single);
        };
        let addresses = cluster::read_hostfile(file)?;
        Ok(Mode::Rank(ClusterConfig {
            rank: self.rank.unwrap_or(0),
            workers: cfg.threads.max(1),
            timeout: Duration::from_secs(self.cluster_timeout),
            run_id: run_id(&addresses),
            addresses,
        }))
    }
}

/// The command line without what differs between ranks (`--rank`, the
/// hostfile's path, the timeout), plus the addresses: equal on every rank of
/// one run.
fn run_id(addresses: &[String]) -> u64 {
    let mut words: Vec<String> = strip(
        std::env::args().skip(1),
        &["--rank", "--cluster", "--cluster-timeout"],
    );
    words.extend(addresses.iter().cloned());
    cluster::run_id(&words)
}

/// `args` without the options named in `drop` (as `--opt V` or `--opt=V`).
fn strip(args: impl Iterator<Item = String>, drop: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if std::mem::take(&mut skip) {
            continue;
        }
        if drop.contains(&a.as_str()) {
            skip = true;
        } else if !drop.iter().any(|d| a.starts_with(&format!("{d}="))) {
            out.push(a);
        }
    }
    out
}

/// Runs `matrix` as one rank of the cluster `ccfg`; returns the matrix (the
/// same on every rank) and whether this rank prints it.
pub(crate) fn run_rank(
    ccfg: &ClusterConfig,
    scns: Vec<Scenario>,
    pols: Vec<Policy>,
    cfg: Config,
) -> Result<(Matrix, bool), String> {
    let shared = Arc::new((scns, pols, cfg));
    cluster::execute(ccfg, move |cl| {
        let (scns, pols, cfg) = &*shared;
        let leader = cl.is_leader();
        let m = crate::run_matrix(
            scns,
            pols,
            cfg,
            &mut |model, cfg| cl.explore(model, cfg),
            leader,
        );
        (m, leader)
    })
}

/// Explores one cell as one rank of the cluster `ccfg` (`explore --cluster`);
/// returns the run (the same on every rank) and whether this rank prints it.
pub(crate) fn run_cell_rank(
    ccfg: &ClusterConfig,
    scn: Scenario,
    pol: Policy,
    cfg: Config,
) -> Result<(pinlab_scenario::CellRun, bool), String> {
    let shared = Arc::new((scn, pol, cfg));
    cluster::execute(ccfg, move |cl| {
        let (scn, pol, cfg) = &*shared;
        let leader = cl.is_leader();
        let run =
            pinlab_scenario::run_cell_with(scn, pol, cfg, &mut |model, cfg| cl.explore(model, cfg));
        (run, leader)
    })
}

/// A listener on a free loopback port below the ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`, 32768 by default), tried from
/// a point that depends on the process id and `k`; port 0 (an ephemeral
/// port) if none is free.
fn free_listener(k: usize) -> Result<std::net::TcpListener, String> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768)
        .clamp(2048, 65535);
    let span = low - 1024;
    let start = (std::process::id().wrapping_mul(7919) + k as u32 * 104_729) % span;
    for i in 0..span.min(4096) {
        let port = 1024 + (start + i) % span;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port as u16)) {
            return Ok(l);
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())
}

/// `--local-cluster N`: runs this command as N ranks on loopback and returns
/// rank 0's exit status, or an error naming the first rank that failed.
pub(crate) fn spawn_local(n: u16, timeout: u64) -> Result<ExitCode, String> {
    let dir = std::env::temp_dir().join(format!("pinlab-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let _cleanup = RemoveDir(dir.clone());
    let hostfile = dir.join("hostfile");
    let mut lines = String::new();
    let mut held = Vec::new();
    for _ in 0..n {
        // A free port below the kernel's ephemeral range, so that no rank's
        // outgoing connection (which gets an ephemeral port) can take it
        // before its rank listens; all are held until every one is chosen.
        // (Another process could still take one first: the rank then fails
        // to listen and says so.)
        let l = free_listener(held.len())?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        lines.push_str(&format!("127.0.0.1:{port}\n"));
        held.push(l);
    }
    drop(held);
    std::fs::write(&hostfile, lines).map_err(|e| format!("{}: {e}", hostfile.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the pinlab binary: {e}"))?;
    let mut args = strip(
        std::env::args().skip(1),
        &["--local-cluster", "--cluster-timeout"],
    );
    // The ranks share this machine: without --max-memory, each gets its share
    // of the default bound (half the available memory), not the whole of it.
    let given = args
        .iter()
        .any(|a| a == "--max-memory" || a.starts_with("--max-memory="));
    if !given {
        if let Some(b) = pinlab_explore::memory::default_max_memory() {
            args.push("--max-memory".into());
            args.push((b / u64::from(n)).max(1).to_string());
        }
    }
    let mut ranks: Vec<Child> = Vec::new();
    for r in 0..n {
        let child = Command::new(&exe)
            .args(&args)
            .arg("--cluster")
            .arg(&hostfile)
            .arg("--rank")
            .arg(r.to_string())
            .arg("--cluster-timeout")
            .arg(timeout.to_string())
            .stdout(if r == 0 {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn();
        match child {
            Ok(c) => ranks.push(c),
            Err(e) => {
                kill_all(&mut ranks);
                return Err(format!("cannot start rank {r}: {e}"));
            }
        }
    }
    // Wait for all; the first rank to fail (error status 2, or a signal)
    // ends the others.
    let mut status: Vec<Option<std::process::ExitStatus>> = vec![None; ranks.len()];
    loop {
        for (r, c) in ranks.iter_mut().enumerate() {
            if status[r].is_none() {
                status[r] = c.try_wait().map_err(|e| e.to_string())?;
            }
        }
        let failed = status.iter().enumerate().find_map(|(r, s)| {
            s.filter(|s| !matches!(s.code(), Some(0 | 1 | 3)))
                .map(|s| (r, s))
        });
        if let Some((r, s)) = failed {
            kill_all(&mut ranks);
            return Err(format!("rank {r} of the local cluster {}", describe(s)));
        }
        if status.iter().all(Option::is_some) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let code = status[0].and_then(|s| s.code()).unwrap_or(2);
    if let Some((r, s)) = status
        .iter()
        .enumerate()
        .find(|(_, s)| s.and_then(|s| s.code()) != Some(code))
    {
        return Err(format!(
            "rank {r} ended with another status than rank 0 ({}, rank 0: {code}): the ranks disagree",
            s.map(describe).unwrap_or_default()
        ));
    }
    Ok(ExitCode::from(code as u8))
}

fn describe(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "ended".into(),
    }
}

fn kill_all(ranks: &mut [Child]) {
    for c in ranks.iter_mut() {
        let _ = c.kill();
    }
    for c in ranks.iter_mut() {
        let _ = c.wait();
    }
}

/// Removes the local cluster's hostfile directory when dropped.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::strip;

    #[test]
    fn strip_drops_options_in_both_spellings() {
        let args = [
            "check",
            "--rank",
            "1",
            "-s",
            "x",
            "--cluster=h",
            "--threads",
            "2",
        ]
        .map(String::from);
        assert_eq!(
            strip(args.into_iter(), &["--rank", "--cluster"]),
            vec!["check", "-s", "x", "--threads", "2"]
        );
    }
}
