//! The probe's undo journal: a run interrupted by SIGINT/SIGTERM/SIGHUP undoes
//! its host changes in the signal handler; one killed by SIGKILL leaves a
//! journal that the next run's `recover` undoes. Settings are written back,
//! mounts go (root only), files and directories are removed.
//!
//! The interrupted run is this test binary re-executed in a child mode (the
//! handler calls `_exit`, which must not end the test harness).

#![cfg(target_os = "linux")]

use pinlab_probe::journal::{self, Undo};
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pinlab-journal-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Makes the changes the way the probe's guards do: each registered first.
fn make_changes(d: &Path, mount: bool) {
    let setting = d.join("setting");
    journal::register(Undo::Write(setting.clone(), "old".into())).unwrap();
    std::fs::write(&setting, "new").unwrap();
    let img = d.join("image");
    journal::register(Undo::RemoveFile(img.clone())).unwrap();
    std::fs::write(&img, "data").unwrap();
    let mnt = d.join("mnt");
    journal::register(Undo::RemoveDir(mnt.clone())).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    if mount {
        journal::register(Undo::Umount(mnt.clone())).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "pinlab-journal-test"])
            .arg(&mnt)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

fn check_undone(d: &Path, journal_file: &Path) {
    assert_eq!(std::fs::read_to_string(d.join("setting")).unwrap(), "old");
    assert!(!d.join("image").exists());
    assert!(!d.join("mnt").exists());
    assert!(!journal::is_mounted(&d.join("mnt")));
    assert!(!journal_file.exists(), "the journal is removed");
}

#[test]
fn child_mode() {
    // Only does something when re-executed by the tests below.
    let Ok(dir) = std::env::var("PINLAB_JOURNAL_CHILD") else {
        return;
    };
    let d = PathBuf::from(dir);
    journal::use_path(&d.join("journal"));
    let _ = journal::recover();
    journal::install_signal_handler();
    make_changes(&d, is_root());
    match std::env::var("PINLAB_JOURNAL_SIGNAL").as_deref() {
        // SAFETY: raising a signal at ourselves; the handler exits.
        Ok("kill") => unsafe {
            libc::raise(libc::SIGKILL);
        },
        _ => unsafe {
            libc::raise(libc::SIGINT);
        },
    }
    unreachable!("the signal ends the process");
}

fn child(d: &Path, signal: &str) -> std::process::ExitStatus {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_mode",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("PINLAB_JOURNAL_CHILD", d)
        .env("PINLAB_JOURNAL_SIGNAL", signal)
        .status()
        .unwrap()
}

#[test]
fn sigint_undoes_every_change() {
    let d = scratch("int");
    std::fs::write(d.join("setting"), "old").unwrap();
    let st = child(&d, "int");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), None);
    assert_eq!(st.code(), Some(128 + libc::SIGINT));
    check_undone(&d, &d.join("journal"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_next_run_undoes_what_a_sigkilled_run_left() {
    let d = scratch("kill");
    std::fs::write(d.join("setting"), "old").unwrap();
    let st = child(&d, "kill");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&st),
        Some(libc::SIGKILL)
    );
    assert_eq!(std::fs::read_to_string(d.join("setting")).unwrap(), "new");
    assert!(d.join("journal").exists(), "SIGKILL leaves the journal");
    // The next run (here: this process with the same journal) undoes it.
    journal::use_path(&d.join("journal"));
    let undone = journal::recover();
    assert!(
        undone.iter().any(|u| u.contains("wrote old back")),
        "{undone:?}"
    );
    journal::close();
    check_undone(&d, &d.join("journal"));
    std::fs::remove_dir_all(&d).unwrap();
}
