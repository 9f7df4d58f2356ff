//! `check --local-cluster N` / `--cluster HOSTFILE --rank I`: a cluster of
//! processes gives exactly the one-process answer (the same JSON: outcome sets,
//! verdicts, state counts), on the built-in matrix and on a scaled cell of
//! ~4·10^5 states; a missing or killed rank is an error naming it, never a
//! hang and never a partial matrix.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pinlab");

fn scaled() -> String {
    format!(
        "{}/../../scenarios/scale/rdma-pagecache-truncate-p1-n4.scn",
        env!("CARGO_MANIFEST_DIR")
    )
}

use common::{pinlab, TempDir};

/// A hostfile of `n` loopback ranks on free ports, in `dir`.
fn hostfile(dir: &TempDir, n: usize) -> String {
    let hosts = dir.0.join("hosts");
    let lines: String = free_ports(n)
        .iter()
        .map(|p| format!("127.0.0.1:{p}\n"))
        .collect();
    std::fs::write(&hosts, format!("# {n} ranks\n{lines}")).unwrap();
    hosts.to_str().unwrap().to_string()
}

/// Starts rank `rank` of `args` on the cluster `hosts`, output captured.
fn spawn_rank(args: &[&str], hosts: &str, rank: &str) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .args(["--cluster", hosts, "--rank", rank])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

#[test]
fn local_clusters_of_2_and_3_give_the_one_process_matrix() {
    let (code, one, err) = pinlab(&["check", "--json"]);
    assert_eq!(code, 0, "{err}");
    for n in ["2", "3"] {
        let (c, many, err) = pinlab(&["check", "--json", "--local-cluster", n]);
        assert_eq!(c, 0, "--local-cluster {n}: {err}");
        assert_eq!(many, one, "--local-cluster {n}");
    }
}

#[test]
fn a_scaled_cell_of_400k_states_is_the_same_on_1_2_and_3_ranks() {
    let s = scaled();
    let args = [
        "check", "--json", "-s", &s, "-p", "legacy", "-p", "upstream",
    ];
    let (code, one, err) = pinlab(&args);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&one).unwrap();
    let legacy = &v["cells"][0];
    assert_eq!(legacy["states"], 398_001);
    assert_eq!(
        legacy["outcomes"],
        serde_json::json!(["ERR(ENOENT)", "LOST", "OK", "STALE"])
    );
    for n in ["2", "3"] {
        let mut a = args.to_vec();
        a.extend(["--local-cluster", n]);
        let (c, many, err) = pinlab(&a);
        assert_eq!(c, 0, "--local-cluster {n}: {err}");
        assert_eq!(many, one, "--local-cluster {n}");
    }
}

#[test]
fn explicit_ranks_with_a_hostfile_agree_and_only_rank_0_prints() {
    let dir = TempDir::new("hostfile");
    let h = hostfile(&dir, 2);
    let args = ["check", "-s", "fork-after-pin"];
    let spawn = |rank: &str| spawn_rank(&args, &h, rank);
    let (r1, r0) = (spawn("1"), spawn("0"));
    let (o0, o1) = (
        r0.wait_with_output().unwrap(),
        r1.wait_with_output().unwrap(),
    );
    assert_eq!(
        o0.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o0.stderr)
    );
    assert_eq!(
        o1.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o1.stderr)
    );
    let (_, single, _) = pinlab(&["check", "-s", "fork-after-pin"]);
    assert_eq!(String::from_utf8_lossy(&o0.stdout), single);
    assert!(o1.stdout.is_empty(), "only rank 0 prints");
}

#[test]
fn a_missing_rank_is_named_after_the_timeout() {
    let dir = TempDir::new("missing");
    let hosts = hostfile(&dir, 3);
    let start = Instant::now();
    let (code, out, err) = pinlab(&[
        "check",
        "-s",
        "fork-after-pin",
        "--cluster",
        &hosts,
        "--rank",
        "0",
        "--cluster-timeout",
        "1",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(err.contains("timed out"), "{err}");
    assert!(err.contains("rank 1") && err.contains("rank 2"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_killed_rank_is_an_error_naming_it_not_a_wrong_answer() {
    let dir = TempDir::new("killed");
    let h = hostfile(&dir, 2);
    let s = scaled();
    let args = ["check", "-s", &s, "-p", "legacy"];
    let spawn = |rank: &str| spawn_rank(&args, &h, rank);
    let mut r0 = spawn("0");
    let mut r1 = spawn("1");
    // Let the ranks connect and start exploring, then kill rank 1.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(r0.try_wait().unwrap().is_none(), "rank 0 ended too early");
    r1.kill().unwrap();
    r1.wait().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = r0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "rank 0 hangs after rank 1 died"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut out, mut err) = (String::new(), String::new());
    r0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    r0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("lost the connection to rank 1"), "{err}");
    assert!(out.is_empty(), "no matrix after a lost rank: {out}");
}

#[test]
fn bad_cluster_input_is_a_clear_error() {
    let dir = TempDir::new("badhosts");
    let hosts = dir.0.join("hosts");
    std::fs::write(&hosts, "127.0.0.1:7001\n  node2\n").unwrap();
    let h = hosts.to_str().unwrap();
    let (code, _, err) = pinlab(&["check", "--cluster", h, "--rank", "0"]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{h}:2:3: expected `host:port`")),
        "{err}"
    );

    std::fs::write(&hosts, "127.0.0.1:7001\n").unwrap();
    let (code, _, err) = pinlab(&["check", "--cluster", h, "--rank", "1"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--rank 1 is not a rank of this cluster"),
        "{err}"
    );

    let (code, _, err) = pinlab(&["check", "--local-cluster", "2", "--search", "walk"]);
    assert_eq!(code, 2);
    assert!(err.contains("pinlab merge"), "{err}");

    let (code, _, err) = pinlab(&["check", "--rank", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--cluster"), "{err}");
}

#[test]
fn explore_on_a_cluster_prints_the_same_shortest_traces() {
    let args = [
        "explore",
        "rdma-pagecache-truncate",
        "-p",
        "legacy",
        "--json",
    ];
    let (code, one, err) = pinlab(&args);
    assert_eq!(code, 0, "{err}");
    assert!(one.contains("\"outcome\""), "{one}");
    let mut a = args.to_vec();
    a.extend(["--local-cluster", "3"]);
    let (code, many, err) = pinlab(&a);
    assert_eq!(code, 0, "{err}");
    assert_eq!(many, one);
}

#[test]
fn report_on_a_cluster_writes_the_same_page() {
    let dir = TempDir::new("cluster-report");
    let one = dir.0.join("one.html");
    let many = dir.0.join("many.html");
    let base = [
        "report",
        "-s",
        "fork-after-pin",
        "-s",
        "rdma-pagecache-truncate",
    ];
    let mut a = base.to_vec();
    a.extend(["--out", one.to_str().unwrap()]);
    let (code, _, err) = pinlab(&a);
    assert_eq!(code, 0, "{err}");
    let mut b = base.to_vec();
    b.extend(["--out", many.to_str().unwrap(), "--local-cluster", "2"]);
    let (code, out, err) = pinlab(&b);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("many.html"), "rank 0 names the page: {out}");
    assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&many).unwrap());
}
