//! The probe's undo journal: every change it makes to the host is recorded
//! *before* it is made, so that it is undone whatever ends the run.
//!
//! * Normal end: each guard undoes its change on drop and marks its entry done.
//! * SIGINT, SIGTERM, SIGHUP: [`install_signal_handler`]'s handler undoes every
//!   active entry, newest first, with async-signal-safe calls only (the entries
//!   are kept in a fixed table of atomics and leaked C strings, set up before
//!   the change is made), removes the journal file and exits `128 + signal`.
//! * SIGKILL (or a crash): the journal file stays behind, and the next probe run
//!   ([`recover`], called under the probe lock before anything else) undoes
//!   what it lists and says so on stderr.
//!
//! Entries, undone newest first: unmount a mount point (lazily, so a busy
//! mount still goes away), swap off a swapfile, remove a file or an (empty)
//! directory, write a value back to a sysfs or procfs setting.
//!
//! On-disk format (`/tmp/pinlab-probe.journal`), one line per event:
//! `pid N`, then `ID KIND PATH` or `ID write PATH VALUE`, and `done ID`.

use std::ffi::{CStr, CString};
use std::fs;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};
use std::sync::Mutex;

/// Where the journal lives (beside the probe lock).
pub const JOURNAL: &str = "/tmp/pinlab-probe.journal";
const JOURNAL_C: &CStr = c"/tmp/pinlab-probe.journal";

/// The journal path in use: [`JOURNAL`] unless [`use_path`] chose another
/// (the signal handler reads the C string; it is set once and leaked).
static PATH_C: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

fn journal_path() -> PathBuf {
    let p = PATH_C.load(Ordering::SeqCst);
    if p.is_null() {
        PathBuf::from(JOURNAL)
    } else {
        // SAFETY: set by `use_path` from a leaked CString, never freed.
        PathBuf::from(std::ffi::OsStr::from_bytes(
            unsafe { CStr::from_ptr(p) }.to_bytes(),
        ))
    }
}

/// Uses `p` instead of [`JOURNAL`] (for tests, which must not touch a real
/// probe's journal). Call before anything else of this module.
pub fn use_path(p: &Path) {
    PATH_C.store(leak(p.as_os_str().as_bytes()), Ordering::SeqCst);
}

/// One undo action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// `umount -l PATH` (and the mount point is removed by its own entry).
    Umount(PathBuf),
    /// `swapoff PATH`.
    Swapoff(PathBuf),
    /// `rm PATH`.
    RemoveFile(PathBuf),
    /// `rmdir PATH`.
    RemoveDir(PathBuf),
    /// The probe's private directory: `rm -r` by a normal end and by a later
    /// run's [`recover`]; a signal handler empties it with raw `getdents64` /
    /// `unlinkat` (three levels deep, no allocation) and removes it.
    RemoveTree(PathBuf),
    /// Write `VALUE` to the setting `PATH`.
    Write(PathBuf, String),
}

const KIND_FREE: u8 = 0;
const KIND_UMOUNT: u8 = 1;
const KIND_SWAPOFF: u8 = 2;
const KIND_RM: u8 = 3;
const KIND_RMDIR: u8 = 4;
const KIND_WRITE: u8 = 5;
const KIND_RMTREE: u8 = 6;
const SLOTS: usize = 64;

struct Slot {
    kind: AtomicU8,
    path: AtomicPtr<libc::c_char>,
    value: AtomicPtr<libc::c_char>,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    kind: AtomicU8::new(KIND_FREE),
    path: AtomicPtr::new(std::ptr::null_mut()),
    value: AtomicPtr::new(std::ptr::null_mut()),
};
static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
/// Serialises registrations and the on-disk file (never taken in the handler).
static FILE: Mutex<()> = Mutex::new(());

fn kind_name(k: u8) -> &'static str {
    match k {
        KIND_UMOUNT => "umount",
        KIND_SWAPOFF => "swapoff",
        KIND_RM => "rm",
        KIND_RMDIR => "rmdir",
        KIND_RMTREE => "rmtree",
        _ => "write",
    }
}

fn append(line: &str) {
    if let Ok(mut f) = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(journal_path())
    {
        let _ = f.write_all(line.as_bytes());
        let _ = f.sync_data();
    }
}

fn leak(s: &[u8]) -> *mut libc::c_char {
    CString::new(s)
        .unwrap_or_else(|_| CString::from(c"/nonexistent"))
        .into_raw()
}

/// A registered change; undoing it (normally, on drop of its guard) goes
/// through [`Entry::undo`].
#[derive(Debug)]
pub struct Entry(usize);

/// Records `u` before the change it undoes is made. `None` if the table is full
/// (the caller then must not make the change).
pub fn register(u: Undo) -> Option<Entry> {
    let _g = FILE.lock().unwrap_or_else(|e| e.into_inner());
    let id = (0..SLOTS).find(|&i| TABLE[i].kind.load(Ordering::SeqCst) == KIND_FREE)?;
    let (kind, path, value) = match &u {
        Undo::Umount(p) => (KIND_UMOUNT, p, None),
        Undo::Swapoff(p) => (KIND_SWAPOFF, p, None),
        Undo::RemoveFile(p) => (KIND_RM, p, None),
        Undo::RemoveDir(p) => (KIND_RMDIR, p, None),
        Undo::RemoveTree(p) => (KIND_RMTREE, p, None),
        Undo::Write(p, v) => (KIND_WRITE, p, Some(v)),
    };
    let s = &TABLE[id];
    s.path
        .store(leak(path.as_os_str().as_bytes()), Ordering::SeqCst);
    s.value.store(
        value.map_or(std::ptr::null_mut(), |v| leak(v.as_bytes())),
        Ordering::SeqCst,
    );
    s.kind.store(kind, Ordering::SeqCst);
    let line = match value {
        Some(v) => format!("{id} write {} {v}\n", path.display()),
        None => format!("{id} {} {}\n", kind_name(kind), path.display()),
    };
    append(&line);
    Some(Entry(id))
}

impl Entry {
    /// Undoes the change now and marks the entry done.
    pub fn undo(self) {
        let _g = FILE.lock().unwrap_or_else(|e| e.into_inner());
        let s = &TABLE[self.0];
        let kind = s.kind.swap(KIND_FREE, Ordering::SeqCst);
        if kind != KIND_FREE {
            // SAFETY: the pointers were leaked by `register` for this slot and
            // are never freed; `undo_raw` only makes plain syscalls with them.
            unsafe {
                undo_raw(
                    kind,
                    s.path.load(Ordering::SeqCst),
                    s.value.load(Ordering::SeqCst),
                )
            };
        }
        append(&format!("done {}\n", self.0));
    }

    /// Marks the entry done without undoing anything (the change was not made
    /// after all, or was undone another way).
    pub fn forget(self) {
        let _g = FILE.lock().unwrap_or_else(|e| e.into_inner());
        TABLE[self.0].kind.store(KIND_FREE, Ordering::SeqCst);
        append(&format!("done {}\n", self.0));
    }
}

/// Undoes one entry with async-signal-safe calls only.
///
/// # Safety
/// `path` (and `value` for a write) must be valid NUL-terminated strings.
unsafe fn undo_raw(kind: u8, path: *const libc::c_char, value: *const libc::c_char) {
    // SAFETY (for every call below): plain syscalls on NUL-terminated strings
    // the caller vouches for.
    unsafe {
        match kind {
            KIND_UMOUNT => {
                libc::umount2(path, libc::MNT_DETACH);
            }
            KIND_SWAPOFF => {
                libc::swapoff(path);
            }
            KIND_RM => {
                libc::unlink(path);
            }
            KIND_RMDIR => {
                libc::rmdir(path);
            }
            KIND_RMTREE => {
                let fd = libc::open(path, libc::O_RDONLY | libc::O_DIRECTORY);
                if fd >= 0 {
                    rm_tree_at(fd, 3);
                    libc::close(fd);
                }
                libc::rmdir(path);
            }
            KIND_WRITE => {
                let fd = libc::open(path, libc::O_WRONLY);
                if fd >= 0 && !value.is_null() {
                    libc::write(fd, value as *const _, libc::strlen(value));
                    libc::close(fd);
                } else if fd >= 0 {
                    libc::close(fd);
                }
            }
            _ => {}
        }
    }
}

/// Empties the directory open at `dirfd` with async-signal-safe calls only
/// (`getdents64`, `unlinkat`, `openat` and a buffer on the stack), descending
/// at most `depth` levels: what a signal handler can do for `rm -r`.
///
/// # Safety
/// `dirfd` must be an open directory descriptor.
unsafe fn rm_tree_at(dirfd: libc::c_int, depth: u32) {
    let mut buf = [0u8; 2048];
    // Removing entries while reading the directory may skip some: a few passes.
    for _ in 0..4 {
        let mut removed = false;
        // SAFETY: rewinding and reading our own descriptor into a stack buffer.
        unsafe { libc::lseek(dirfd, 0, libc::SEEK_SET) };
        loop {
            // SAFETY: the raw getdents64 syscall into the stack buffer.
            let n =
                unsafe { libc::syscall(libc::SYS_getdents64, dirfd, buf.as_mut_ptr(), buf.len()) };
            if n <= 0 {
                break;
            }
            let mut at = 0usize;
            while at + 19 < n as usize {
                // struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name.
                let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
                let dtype = buf[at + 18];
                let name = &buf[at + 19..at + reclen];
                let dot = name[0] == b'.' && (name[1] == 0 || (name[1] == b'.' && name[2] == 0));
                if !dot {
                    let np = name.as_ptr() as *const libc::c_char;
                    // SAFETY: fd-relative calls on a NUL-terminated name in our buffer.
                    unsafe {
                        if dtype == libc::DT_DIR && depth > 0 {
                            let sub = libc::openat(dirfd, np, libc::O_RDONLY | libc::O_DIRECTORY);
                            if sub >= 0 {
                                rm_tree_at(sub, depth - 1);
                                libc::close(sub);
                            }
                            removed |= libc::unlinkat(dirfd, np, libc::AT_REMOVEDIR) == 0;
                        } else {
                            removed |= libc::unlinkat(dirfd, np, 0) == 0;
                        }
                    }
                }
                if reclen == 0 {
                    break;
                }
                at += reclen;
            }
        }
        if !removed {
            break;
        }
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    for s in TABLE.iter().rev() {
        let kind = s.kind.swap(KIND_FREE, Ordering::SeqCst);
        if kind != KIND_FREE {
            // SAFETY: pointers leaked by `register` before the kind was set.
            unsafe {
                undo_raw(
                    kind,
                    s.path.load(Ordering::SeqCst),
                    s.value.load(Ordering::SeqCst),
                )
            };
        }
    }
    let p = PATH_C.load(Ordering::SeqCst);
    // SAFETY: async-signal-safe unlink of the journal path (a literal or a
    // leaked C string), then leaving at once.
    unsafe {
        libc::unlink(if p.is_null() { JOURNAL_C.as_ptr() } else { p });
        libc::_exit(128 + sig);
    }
}

/// Installs the SIGINT/SIGTERM/SIGHUP handler that undoes every active entry.
pub fn install_signal_handler() {
    for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only makes async-signal-safe calls.
        unsafe { libc::signal(s, on_signal as *const () as libc::sighandler_t) };
    }
}

/// Undoes what an earlier, killed probe run left (its journal), newest first,
/// and starts a fresh journal for this run. Returns a description of each
/// action taken (empty if there was nothing to undo). Call under the probe lock.
pub fn recover() -> Vec<String> {
    let _g = FILE.lock().unwrap_or_else(|e| e.into_inner());
    let mut done = Vec::new();
    if let Ok(text) = fs::read_to_string(journal_path()) {
        let mut active: Vec<(usize, Undo)> = Vec::new();
        for line in text.lines() {
            let mut w = line.splitn(3, ' ');
            match (w.next(), w.next(), w.next()) {
                (Some("done"), Some(id), None) => {
                    if let Ok(id) = id.parse::<usize>() {
                        if let Some(k) = active.iter().rposition(|(i, _)| *i == id) {
                            active.remove(k);
                        }
                    }
                }
                (Some(id), Some(kind), Some(rest)) => {
                    let Ok(id) = id.parse::<usize>() else {
                        continue;
                    };
                    let u = match kind {
                        "umount" => Undo::Umount(rest.into()),
                        "swapoff" => Undo::Swapoff(rest.into()),
                        "rm" => Undo::RemoveFile(rest.into()),
                        "rmdir" => Undo::RemoveDir(rest.into()),
                        "rmtree" => Undo::RemoveTree(rest.into()),
                        "write" => match rest.rsplit_once(' ') {
                            Some((p, v)) => Undo::Write(p.into(), v.to_string()),
                            None => continue,
                        },
                        _ => continue,
                    };
                    active.push((id, u));
                }
                _ => {}
            }
        }
        for (_, u) in active.into_iter().rev() {
            if let Undo::RemoveTree(p) = &u {
                if fs::remove_dir_all(p).is_ok() {
                    done.push(format!("removed {}", p.display()));
                }
                continue;
            }
            let (kind, path, value) = match &u {
                Undo::Umount(p) => (KIND_UMOUNT, p.clone(), None),
                Undo::Swapoff(p) => (KIND_SWAPOFF, p.clone(), None),
                Undo::RemoveFile(p) => (KIND_RM, p.clone(), None),
                Undo::RemoveDir(p) | Undo::RemoveTree(p) => (KIND_RMDIR, p.clone(), None),
                Undo::Write(p, v) => (KIND_WRITE, p.clone(), Some(v.clone())),
            };
            let (Ok(cp), Ok(cv)) = (
                CString::new(path.as_os_str().as_bytes()),
                CString::new(value.clone().unwrap_or_default()),
            ) else {
                continue;
            };
            // SAFETY: both strings are valid for the call.
            unsafe {
                undo_raw(
                    kind,
                    cp.as_ptr(),
                    if value.is_some() {
                        cv.as_ptr()
                    } else {
                        std::ptr::null()
                    },
                )
            };
            done.push(match u {
                Undo::Write(p, v) => format!("wrote {v} back to {}", p.display()),
                Undo::Umount(p) => format!("unmounted {}", p.display()),
                Undo::Swapoff(p) => format!("swapped off {}", p.display()),
                Undo::RemoveFile(p) => format!("removed {}", p.display()),
                Undo::RemoveDir(p) | Undo::RemoveTree(p) => format!("removed {}", p.display()),
            });
        }
    }
    let _ = fs::write(journal_path(), format!("pid {}\n", std::process::id()));
    done
}

/// Ends this run's journal (every guard has undone its change).
pub fn close() {
    let _g = FILE.lock().unwrap_or_else(|e| e.into_inner());
    if TABLE
        .iter()
        .all(|s| s.kind.load(Ordering::SeqCst) == KIND_FREE)
    {
        let _ = fs::remove_file(journal_path());
    }
}

/// Whether `p` is listed in `/proc/self/mounts` as a mount point.
pub fn is_mounted(p: &Path) -> bool {
    fs::read_to_string("/proc/self/mounts").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split(' ').nth(1) == Some(&*p.to_string_lossy()))
    })
}
