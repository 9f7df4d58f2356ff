//! memfd seals in the scenario language (`fcntl(fd, F_ADD_SEALS, ...)`,
//! `fcntl(fd, F_GET_SEALS)`) against pins: `F_SEAL_WRITE` waits for pinned
//! pages and gives up `EBUSY` (`memfd_wait_for_pins`), `F_SEAL_FUTURE_WRITE`
//! does not look, so DMA through an existing pin still changes the sealed
//! file (host probe Exp. 3b); only `MFD_ALLOW_SEALING` memfds can be sealed.

use pinlab_explore::Config;
use pinlab_model::Policy;
use pinlab_scenario::{load, run_cell};

const SCENARIO: &str = r#"scenario memfd-seal-pin
process app {
    fd = memfd_create("buf", MFD_ALLOW_SEALING)
    ftruncate(fd, 8K)
    buf = mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)
    memset(buf, 'A', 8K)
    ring = io_uring_setup(8)
    io_uring_register(ring, IORING_REGISTER_BUFFERS, buf, 4K)
    munmap(buf, 8K)
    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)
    fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE|F_SEAL_SHRINK)
    s = fcntl(fd, F_GET_SEALS)
    read_fixed(ring, 0, 4K, 'R')
    pread(fd, 8K, 0)
    ftruncate(fd, 4K)
    pwrite(fd, 'W', 4K, 0)
    io_uring_register(ring, IORING_UNREGISTER_BUFFERS)
    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)
    ro = mmap(NULL, 8K, PROT_READ, MAP_SHARED, fd, 0)
    mprotect(ro, 8K, PROT_READ|PROT_WRITE)
    fd2 = memfd_create("plain", 0)
    fcntl(fd2, F_ADD_SEALS, F_SEAL_WRITE)
    fcntl(fd2, F_GET_SEALS)
}
"#;

/// Runs the one actor to its end; each statement's text and final result.
fn results(scn: &pinlab_scenario::Scenario, pol: &Policy) -> Vec<(String, String)> {
    use pinlab_explore::Model;
    let m = pinlab_scenario::model::Bound { scn, policy: pol };
    let mut s = m.initial_state();
    let mut out = Vec::new();
    let mut acts = Vec::new();
    loop {
        acts.clear();
        m.actions(&s, &mut acts);
        if acts.is_empty() {
            break;
        }
        let info = m.exec(&mut s, 0);
        // A statement in several steps has its result on the last.
        if let Some(r) = info.result {
            if !r.starts_with("= [") && !info.text.contains("[gup_fast:") {
                out.push((info.text, r));
            }
        }
    }
    out
}

#[test]
fn write_seals_against_a_pin_step_by_step() {
    let scn = load("memfd-seal-pin.scn", SCENARIO).unwrap();
    for p in ["legacy", "v5.10", "upstream"] {
        let pol = Policy::parse(p).unwrap();
        let run = run_cell(&scn, &pol, &Config::default());
        assert!(run.exhaustive && run.model_bugs.is_empty(), "{p}");
        let r = results(&scn, &pol);
        let of = |needle: &str| -> Vec<&str> {
            r.iter()
                .filter(|(t, _)| t.starts_with(needle))
                .map(|(_, v)| v.as_str())
                .collect()
        };
        // Pinned: EBUSY; after unregister: 0.
        assert_eq!(
            of("fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)"),
            ["= -EBUSY", "= 0"],
            "{p}: {r:?}"
        );
        assert_eq!(
            of("fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE"),
            ["= 0"],
            "{p}"
        );
        assert_eq!(
            of("s = fcntl(fd, F_GET_SEALS)"),
            ["= F_SEAL_SHRINK|F_SEAL_FUTURE_WRITE"],
            "{p}"
        );
        assert_eq!(of("pread"), ["= 'R' 'A'"], "{p}: DMA into the sealed file");
        assert_eq!(of("ftruncate(fd, 4096)"), ["= -EPERM"], "{p}");
        assert_eq!(of("pwrite"), ["= -EPERM"], "{p}");
        assert_eq!(of("mprotect"), ["= -EACCES"], "{p}");
        // Without MFD_ALLOW_SEALING the inode keeps F_SEAL_SEAL.
        assert_eq!(of("fcntl(fd2, F_ADD_SEALS"), ["= -EPERM"], "{p}");
        assert_eq!(of("fcntl(fd2, F_GET_SEALS)"), ["= F_SEAL_SEAL"], "{p}");
    }
}

#[test]
fn seal_names_are_checked_where_they_are_written() {
    let bad = "scenario s\nprocess p {\n  fd = memfd_create(\"x\", MFD_ALLOW_SEALING)\n  fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE|O_RDWR)\n}\n";
    let e = load("s.scn", bad).unwrap_err().to_string();
    assert!(
        e.contains("s.scn:4:26") && e.contains("unknown F_SEAL_* flag `O_RDWR`"),
        "{e}"
    );
    let bad = "scenario s\nprocess p {\n  fd = memfd_create(\"x\", 0)\n  fcntl(fd, F_GET_SEALS, F_SEAL_WRITE)\n}\n";
    let e = load("s.scn", bad).unwrap_err().to_string();
    assert!(e.contains("takes 2 argument(s)"), "{e}");
}
