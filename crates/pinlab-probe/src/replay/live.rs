//! Executing one trace on the live kernel.
//!
//! The coordinator (this process) creates a command pipe and a reply pipe per
//! scenario actor, then forks one executor per scenario `process`. An executor
//! runs its actor's statements one at a time when told to (a 5-byte command:
//! kind, actor, pc) and answers with the step's result; a `fork(child)`
//! statement is a real `fork()`, after which the child process is the executor
//! of the `child` actor (it inherits the pipes, the variables and the address
//! space). A peer's `rdma_write`/`rdma_read` is carried out by the executor of
//! the process owning the MR: an MR is an io_uring fixed buffer (both are
//! `pin_user_pages_fast(FOLL_WRITE|FOLL_LONGTERM)`), a remote write is
//! `IORING_OP_READ_FIXED` from a payload file full of the written byte, a
//! remote read is `IORING_OP_WRITE_FIXED` to a scratch file read back. Only one
//! step runs at a time, so the kernel sees the trace's interleaving. An executor
//! killed by a fault (a store to an unmapped page) answers nothing: the step is
//! `-EFAULT`, as the model records a SIGSEGV.
//!
//! The coordinator is made a child subreaper for the run, so every executor
//! (also the forked ones) is reaped before it returns.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pinlab_scenario::bind::{Arg, Call, Kind, Scenario};
use pinlab_scenario::model::Action;

use crate::sys::{self, Ring, PAGE};
use pinlab_model::dev::rdma::access::{IBV_ACCESS_REMOTE_READ, IBV_ACCESS_REMOTE_WRITE};

mod coordinator;
pub(super) mod layout;
pub use coordinator::{run, LiveRun};

const RUN: u8 = 1;
const DEVICE: u8 = 2;
const VIEW: u8 = 3;
const QUIT: u8 = 0xff;

/// How an executor's error reply starts when the step cannot be replayed
/// faithfully: the trace is skipped with the rest of the message.
const UNFAITHFUL: &str = "unfaithful: ";

/// A ring's registered buffers as the executor registered them: each slot's
/// `(address, length)`, `None` for an empty slot.
type BufTable = Vec<Option<(u64, u64)>>;

/// Where a trace's files live: scenario paths map to `root/<path>`, and
/// `/dev/shm/<name>` to `shm/<name>` (fresh directories per trace).
#[derive(Debug, Clone)]
pub struct Files {
    /// Directory on the private ext4.
    pub root: PathBuf,
    /// Directory in the /dev/shm tmpfs.
    pub shm: PathBuf,
    /// The private ext4's image (its disk), for the on-disk view.
    pub image: Option<PathBuf>,
    /// `setup { memlock }`: the executors run as this unused uid under this
    /// RLIMIT_MEMLOCK (bytes), without CAP_IPC_LOCK, as the model's processes do.
    pub user: Option<(u32, u64)>,
}

impl Files {
    fn path(&self, p: &str) -> PathBuf {
        match p.strip_prefix("/dev/shm/") {
            Some(name) => self.shm.join(name),
            None => self.root.join(p.trim_start_matches('/')),
        }
    }
}

/// A variable's live value.
#[derive(Debug, Clone, Copy)]
enum Val {
    Int(u64),
    Ring(usize),
    Mr(usize),
    /// A pipe group (index into [`Exec::pipes`]).
    Pipe(usize),
    File(RawFd),
    /// A file variable whose descriptor the scenario closed and whose number
    /// the kernel has handed out again: a call through it would reach the
    /// new file (the model's open files have no numbers), so it skips.
    Stale,
    Failed,
}

/// One executor's state (copied into a child by `fork`).
struct Exec<'a> {
    scn: &'a Scenario,
    /// Each actor's variables, by actor then slot: a thread gets a copy of
    /// its process's at `pthread_create`, a child of its parent's at `fork`
    /// (as the model's actors do), and each binds its own.
    vars: Vec<Vec<Option<Val>>>,
    /// The actor whose statement runs (whose variables arguments name).
    cur: usize,
    /// Rings, with the buffer table registered on each.
    rings: Vec<(Ring, BufTable)>,
    files: Files,
    /// The scenario's pipes: each a group of real pipes, so that one scenario
    /// pipe holds more buffers than a real pipe can (the model's pipes are
    /// unbounded).
    pipes: Vec<PipeGroup>,
    /// Length of each mapping variable (copied into a child by `fork`).
    lens: Vec<Vec<Option<u64>>>,
    /// The `ibv_reg_mr` access flags of each MR (by ring), which the HCA
    /// checks before a remote access.
    mr_access: std::collections::HashMap<usize, u64>,
    /// Descriptors the scenario closed, and those of them a later open got
    /// again (the kernel reuses the lowest free number).
    closed_fds: std::collections::HashSet<RawFd>,
}

/// Per-actor pipes: (command read, command write, reply read, reply write).
#[derive(Clone, Copy)]
struct Pipes {
    cmd_r: RawFd,
    cmd_w: RawFd,
    rep_r: RawFd,
    rep_w: RawFd,
}

fn pipe() -> Result<(RawFd, RawFd), String> {
    let mut p = [0; 2];
    // SAFETY: creating a pipe into a local array.
    if unsafe { libc::pipe(p.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    Ok((p[0], p[1]))
}

fn write_all(fd: RawFd, b: &[u8]) -> bool {
    // SAFETY: borrowing a descriptor we own for one write; not closed here.
    let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    f.write_all(b).is_ok()
}

fn read_exact(fd: RawFd, b: &mut [u8]) -> bool {
    // SAFETY: borrowing a descriptor we own for one read; not closed here.
    let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    f.read_exact(b).is_ok()
}

fn errno_name(e: i32) -> String {
    let n = match e {
        libc::EPERM => "EPERM",
        libc::EINTR => "EINTR",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ETXTBSY => "ETXTBSY",
        libc::EAGAIN => "EAGAIN",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::ESRCH => "ESRCH",
        libc::ENOENT => "ENOENT",
        libc::EFBIG => "EFBIG",
        libc::ENOSYS => "ENOSYS",
        libc::EIO => "EIO",
        libc::ESPIPE => "ESPIPE",
        libc::EMLINK => "EMLINK",
        libc::EREMOTEIO => "EREMOTEIO",
        libc::EHWPOISON => "EHWPOISON",
        libc::ECANCELED => "ECANCELED",
        _ => return format!("errno {e}"),
    };
    n.to_string()
}

fn last_err() -> String {
    format!(
        "= -{}",
        errno_name(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    )
}

/// A page-aligned private anonymous buffer for the executor's own reads and
/// writes (`pwrite` of a content tag, `pread` without a buffer): an
/// `O_DIRECT` descriptor needs an aligned buffer, and the kernel pins exactly
/// `len / 4096` pages of it, as the model counts.
struct PageBuf {
    addr: usize,
    map: usize,
    len: usize,
}

impl PageBuf {
    fn new(len: usize, fill: u8) -> Result<PageBuf, String> {
        let map = len.div_ceil(PAGE).max(1) * PAGE;
        // SAFETY: a new private anonymous mapping, owned by the PageBuf.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!(
                "buffer of {len} bytes: {}",
                std::io::Error::last_os_error()
            ));
        }
        if fill != 0 {
            // SAFETY: the mapping is `map >= len` bytes and writable.
            unsafe { std::ptr::write_bytes(p as *mut u8, fill, len) };
        }
        Ok(PageBuf {
            addr: p as usize,
            map,
            len,
        })
    }

    fn ptr(&self) -> *mut u8 {
        self.addr as *mut u8
    }

    /// A copy of its first `n` bytes.
    fn bytes(&self, n: usize) -> Vec<u8> {
        // SAFETY: the mapping is readable and `n <= len` (a read returns at most len).
        unsafe { std::slice::from_raw_parts(self.ptr(), n.min(self.len)) }.to_vec()
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        // SAFETY: unmapping the PageBuf's own mapping.
        unsafe { libc::munmap(self.ptr() as *mut _, self.map) };
    }
}

/// `'P'×4 0`: the first byte of each page, run-length encoded as the model's
/// traces print versions.
pub fn describe_pages(bytes: &[u8]) -> String {
    let mut out: Vec<(String, usize)> = Vec::new();
    for chunk in bytes.chunks(PAGE) {
        let t = match chunk[0] {
            0 => "0".to_string(),
            b => format!("'{}'", b as char),
        };
        match out.last_mut() {
            Some((last, n)) if *last == t => *n += 1,
            _ => out.push((t, 1)),
        }
    }
    out.iter()
        .map(|(t, n)| {
            if *n > 1 {
                format!("{t}×{n}")
            } else {
                t.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Exec<'_> {
    fn val(&self, a: Arg) -> Result<u64, ()> {
        match a {
            Arg::Const(c) => Ok(c),
            Arg::Var(slot, off) => match self.vars[self.cur][slot] {
                Some(Val::Int(v)) => Ok(v.wrapping_add(off)),
                _ => Err(()),
            },
        }
    }

    fn obj(&self, a: Arg) -> Option<Val> {
        match a {
            Arg::Var(slot, _) => self.vars[self.cur][slot],
            Arg::Const(_) => None,
        }
    }

    fn payload(&self, tag: char, len: u64) -> Result<std::fs::File, String> {
        let p = self
            .files
            .root
            .join(format!(".payload-{}-{len}", tag as u32));
        if !p.exists() {
            std::fs::write(&p, vec![tag as u8; len as usize]).map_err(|e| e.to_string())?;
        }
        std::fs::File::open(&p).map_err(|e| e.to_string())
    }

    fn scratch(&self) -> Result<std::fs::File, String> {
        let p = self.files.root.join(format!(".scratch-{}", sys::getpid()));
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(p)
            .map_err(|e| e.to_string())
    }

    /// A device write of `tag` into fixed buffer `ring` at `off`, `len` bytes.
    fn dma_in(
        &mut self,
        ring: usize,
        index: u16,
        off: u64,
        len: u64,
        tag: char,
    ) -> Result<i32, String> {
        use std::os::fd::AsRawFd;
        let f = self.payload(tag, len)?;
        // A slot without a registered buffer: the kernel answers (-EFAULT), as
        // the model predicts.
        let base = self.slot(ring, index).map_or(0, |(b, _)| b);
        let ptr = base.wrapping_add(off) as *mut u8;
        self.rings[ring]
            .0
            .read_fixed_buf(f.as_raw_fd(), ptr, len as usize, 0, index)
            .map_err(|e| e.to_string())
    }

    /// Buffer `index` of the table of ring `ring`, as registered: `(address, length)`.
    fn slot(&self, ring: usize, index: u16) -> Option<(u64, u64)> {
        self.rings[ring]
            .1
            .get(usize::from(index))
            .copied()
            .flatten()
    }

    /// A device read of fixed buffer `ring` at `off`: what it read.
    fn dma_out(
        &mut self,
        ring: usize,
        index: u16,
        off: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, String> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::FileExt;
        let f = self.scratch()?;
        let base = self.slot(ring, index).map_or(0, |(b, _)| b);
        let ptr = base.wrapping_add(off) as *const u8;
        let n = self.rings[ring]
            .0
            .write_fixed_buf(f.as_raw_fd(), ptr, len as usize, 0, index)
            .map_err(|e| e.to_string())?;
        if n != len as i32 {
            return Ok(None);
        }
        let mut b = vec![0u8; len as usize];
        f.read_exact_at(&mut b, 0).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(self.files.root.join(format!(".scratch-{}", sys::getpid())));
        Ok(Some(b))
    }

    /// Why a call on a ring the scenario closed cannot be replayed faithfully,
    /// if so: the kernel handed its descriptor number out again (to a file or
    /// ring of the scenario, or to the executor's own), so the call would
    /// reach that file. Otherwise the call is made on the old number and the
    /// kernel answers for it (`-EBADF`).
    fn closed_ring_reused(&self, call: &Call) -> Option<String> {
        let rings: Vec<Arg> = match *call {
            Call::RegisterBuffers { ring, .. }
            | Call::RegisterBuffersIov { ring, .. }
            | Call::RegisterSparse { ring, .. }
            | Call::UpdateBuffers { ring, .. }
            | Call::UnregisterBuffers { ring }
            | Call::ReadFixed { ring, .. }
            | Call::WriteFixed { ring, .. }
            | Call::Close { fd: ring }
            | Call::Fadvise { fd: ring, .. }
            | Call::Readahead { fd: ring, .. } => vec![ring],
            Call::CloneBuffers { ring, src, .. } => vec![ring, src],
            _ => return None,
        };
        rings.into_iter().find_map(|a| match self.obj(a) {
            Some(Val::Ring(r)) if self.rings[r].0.number_reused() => Some(
                "a call on a closed ring whose descriptor number the kernel has handed out again"
                    .to_string(),
            ),
            _ => None,
        })
    }

    /// The descriptor a file, pipe (its first real pipe's read end) or ring
    /// variable stands for.
    fn any_fd(&self, a: Arg) -> Option<RawFd> {
        match self.obj(a)? {
            Val::File(f) => Some(f),
            Val::Pipe(p) => self.pipes[p].ends.first().map(|e| e.0),
            Val::Ring(r) => Some(self.rings[r].0.fd()),
            _ => None,
        }
    }

    /// Why `call` cannot be replayed faithfully if a variable it uses as a
    /// descriptor holds something else (an address, a ring where a file is
    /// wanted): the model's variables are typed and it answers `-EBADF`; a C
    /// program would pass the value's low 32 bits, which may name any
    /// descriptor (or, for a ring, a file's: `-EOPNOTSUPP`).
    fn mistyped(&self, call: &Call) -> Option<String> {
        let file = |v: Val| matches!(v, Val::File(_));
        let ring = |v: Val| matches!(v, Val::Ring(_));
        let pipe = |v: Val| matches!(v, Val::Pipe(_));
        let (args, ok): (Vec<Arg>, &dyn Fn(Val) -> bool) = match *call {
            Call::Close { fd } => (vec![fd], &|v| file(v) || ring(v)),
            Call::MmapFile { fd, .. }
            | Call::Ftruncate { fd, .. }
            | Call::Fallocate { fd, .. }
            | Call::FileWrite { fd, .. }
            | Call::FileWriteBuf { fd, .. }
            | Call::FileRead { fd, .. }
            | Call::Fsync { fd }
            | Call::Lseek { fd, .. }
            | Call::SetLease { fd, .. }
            | Call::AddSeals { fd, .. }
            | Call::GetSeals { fd }
            | Call::SetImmutableLayout { fd } => (vec![fd], &file),
            Call::RegisterBuffers { ring: r, .. }
            | Call::RegisterBuffersIov { ring: r, .. }
            | Call::RegisterSparse { ring: r, .. }
            | Call::UpdateBuffers { ring: r, .. }
            | Call::UnregisterBuffers { ring: r }
            | Call::ReadFixed { ring: r, .. }
            | Call::WriteFixed { ring: r, .. } => (vec![r], &ring),
            Call::CloneBuffers { ring: r, src, .. } => (vec![r, src], &ring),
            Call::Vmsplice { pipe: p, .. } | Call::PipeRead { pipe: p } => (vec![p], &pipe),
            Call::Fadvise { fd, .. } | Call::Readahead { fd, .. } => {
                (vec![fd], &|v| file(v) || pipe(v) || ring(v))
            }
            _ => return None,
        };
        args.into_iter().find_map(|a| match (a, self.obj(a)) {
            (Arg::Var(slot, _), Some(Val::Stale)) => Some(format!(
                "`{}` names a file the scenario closed, and the kernel has handed its descriptor number out again (a call through it would reach the new file; the model's open files have no numbers)",
                self.scn.vars[slot]
            )),
            (Arg::Var(slot, _), Some(v)) if !matches!(v, Val::Failed) && !ok(v) => Some(format!(
                "`{}` holds no descriptor of the kind the call wants (the model's typed variable answers -EBADF; a C program would pass the value's low 32 bits)",
                self.scn.vars[slot]
            )),
            _ => None,
        })
    }

    /// Why the user memory `call` hands the kernel cannot be replayed
    /// faithfully, if so: a range reaching beyond the mapping its variable
    /// names, or a constant address. The model's address space holds the
    /// scenario's mappings alone; the
    /// executor's holds its own code, heap and rings too, which such a range
    /// could reach — with a different result, and a store or an munmap there
    /// would wreck the executor.
    fn outside_mappings(&self, call: &Call) -> Option<String> {
        let (addr, len) = match *call {
            Call::RegisterBuffersIov { ref iovs, .. } | Call::UpdateBuffers { ref iovs, .. } => {
                return iovs.iter().find_map(|&(a, l)| self.outside(a, l));
            }
            Call::Munmap { addr, len }
            | Call::Mprotect { addr, len, .. }
            | Call::Mremap {
                addr, old_len: len, ..
            }
            | Call::Madvise { addr, len, .. }
            | Call::Mlock { addr, len, .. }
            | Call::Munlock { addr, len }
            | Call::Memset { addr, len, .. }
            | Call::Load { addr, len }
            | Call::Mincore { addr, len }
            | Call::RegisterBuffers { addr, len, .. }
            | Call::RegMr { addr, len, .. }
            | Call::Vmsplice { addr, len, .. } => (addr, len),
            Call::FileRead {
                buf: Some(addr),
                len,
                ..
            }
            | Call::FileWriteBuf { buf: addr, len, .. } => (addr, len),
            _ => return None,
        };
        self.outside(addr, len)
    }

    /// [`Exec::outside_mappings`] of one range.
    fn outside(&self, addr: Arg, len: Arg) -> Option<String> {
        let n = self.val(len).ok()?;
        match addr {
            Arg::Const(0) => None,
            Arg::Const(a) => Some(format!(
                "a constant address ({a:#x}): the model's and the kernel's layouts differ"
            )),
            Arg::Var(slot, off) => {
                let l = self.lens[self.cur][slot]?;
                (off.checked_add(n).is_none_or(|end| end > l)).then(|| {
                    format!(
                        "`{}` + {off:#x}, {n:#x} bytes, reaches beyond the {l:#x}-byte mapping it names (the executor's own memory may be mapped there)",
                        self.scn.vars[slot]
                    )
                })
            }
        }
    }

    /// Runs statement `pc` of actor `who` (this executor's own, or a peer's
    /// device access on an MR of ours). Returns the result and what to bind;
    /// `Err` starting with [`UNFAITHFUL`] when the step cannot be replayed
    /// faithfully ([`Exec::outside_mappings`]).
    fn run(&mut self, who: usize, pc: usize) -> Result<(Option<String>, Option<Val>), String> {
        self.cur = who;
        let op = &self.scn.actors[who].body[pc];
        let call = op.call.clone();
        if let Some(why) = self.outside_mappings(&call) {
            return Err(format!("{UNFAITHFUL}{why}"));
        }
        if let Some(why) = self
            .closed_ring_reused(&call)
            .or_else(|| self.mistyped(&call))
        {
            return Err(format!("{UNFAITHFUL}{why}"));
        }
        // An argument naming a failed call: the statement is skipped.
        let failed = |e: &Self, a: Arg| matches!(a, Arg::Var(s, _) if matches!(e.vars[e.cur][s], Some(Val::Failed)));
        macro_rules! v {
            ($a:expr) => {
                match self.val($a) {
                    Ok(x) => x,
                    Err(()) if failed(self, $a) => return Ok((None, Some(Val::Failed))),
                    Err(()) => return Ok((Some("= -EFAULT".into()), Some(Val::Failed))),
                }
            };
        }
        let ok0 = |r: i32| -> (Option<String>, Option<Val>) {
            if r == 0 {
                (Some("= 0".into()), None)
            } else {
                (Some(last_err()), Some(Val::Failed))
            }
        };
        Ok(match call {
            Call::Mmap {
                len, prot, flags, ..
            } => {
                let len = v!(len);
                // SAFETY: a fresh anonymous mapping at an address the kernel picks.
                let p = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        len as usize,
                        prot as i32,
                        flags as i32,
                        -1,
                        0,
                    )
                };
                if p == libc::MAP_FAILED {
                    (Some(last_err()), Some(Val::Failed))
                } else {
                    (Some(format!("= {:#x}", p as u64)), Some(Val::Int(p as u64)))
                }
            }
            Call::Munmap { addr, len } => {
                let (a, l) = (v!(addr), v!(len));
                // SAFETY: unmapping a range of this executor's (scenario's) own address space.
                ok0(unsafe { libc::munmap(a as *mut _, l as usize) })
            }
            Call::Madvise { addr, len, advice } => {
                let (a, l) = (v!(addr), v!(len));
                // SAFETY: advice on this executor's own range.
                ok0(unsafe { libc::madvise(a as *mut _, l as usize, advice as i32) })
            }
            Call::Mlock {
                addr, len, flags, ..
            } => {
                let (a, l) = (v!(addr), v!(len));
                // SAFETY: mlock2 of this executor's own range; mlock(a, l) is
                // mlock2(a, l, 0) in the kernel (do_mlock).
                ok0(unsafe { libc::syscall(libc::SYS_mlock2, a, l, flags) } as i32)
            }
            Call::Munlock { addr, len } => {
                let (a, l) = (v!(addr), v!(len));
                // SAFETY: munlock of this executor's own range.
                ok0(unsafe { libc::munlock(a as *const _, l as usize) })
            }
            Call::Mprotect { addr, len, prot } => {
                let (a, l) = (v!(addr), v!(len));
                // SAFETY: protection change of this executor's own range.
                ok0(unsafe { libc::mprotect(a as *mut _, l as usize, prot as i32) })
            }
            Call::Mremap {
                addr,
                old_len,
                new_len,
                flags,
                new_addr,
            } => {
                // Only the forms `unsupported` lets through: a shrink (in
                // place) or MREMAP_DONTUNMAP (always moves, to an address
                // the kernel picks). The fifth argument is always passed
                // (variadic in libc: left out, whatever the register holds
                // is the kernel's new_addr, and 6.18 refuses a bad one).
                let (a, o, n) = (v!(addr), v!(old_len), v!(new_len));
                let to = match new_addr {
                    Some(t) => v!(t),
                    None => 0,
                };
                // SAFETY: remaps this executor's own (scenario's) range.
                let p = unsafe {
                    libc::mremap(
                        a as *mut _,
                        o as usize,
                        n as usize,
                        flags as i32,
                        to as usize as *mut libc::c_void,
                    )
                };
                if p == libc::MAP_FAILED {
                    (Some(last_err()), Some(Val::Failed))
                } else {
                    // A shrink in place leaves the head: later accesses past
                    // it are treated as beyond the mapping (skipped), also
                    // when the shrunk range was only part of it (the hole
                    // could hold the executor's own memory). A move with
                    // MREMAP_DONTUNMAP leaves the old mapping as it was.
                    if let (Arg::Var(slot, 0), true) = (addr, p as u64 == a) {
                        self.lens[who][slot] = Some(n.min(o));
                    }
                    (Some(format!("= {:#x}", p as u64)), Some(Val::Int(p as u64)))
                }
            }
            Call::Memset { addr, tag, len } => {
                let (a, l) = (v!(addr), v!(len));
                // SAFETY: the scenario's store; a fault kills this executor
                // (SIGSEGV), which the coordinator records as -EFAULT.
                unsafe { std::ptr::write_bytes(a as *mut u8, tag as u8, l as usize) };
                (None, None)
            }
            Call::Mincore { addr, len } => {
                let (a, l) = (v!(addr), v!(len));
                let n = (l as usize).div_ceil(PAGE);
                // A page whose read is still in flight (readahead) reads
                // as absent, where the model's page cache is uptodate at
                // once: ask until two answers 20 ms apart agree (at most
                // about a second).
                let ask = || {
                    let mut vec = vec![0u8; n.max(1)];
                    // SAFETY: mincore of this executor's own range into a
                    // buffer of one byte per page.
                    let r = unsafe { libc::mincore(a as *mut _, l as usize, vec.as_mut_ptr()) };
                    (if r == 0 { None } else { Some(last_err()) }, vec)
                };
                let mut prev = ask();
                for _ in 0..50 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    let now = ask();
                    if now == prev {
                        break;
                    }
                    prev = now;
                }
                match prev {
                    (None, vec) => {
                        let vec: Vec<bool> = vec[..n].iter().map(|b| b & 1 == 1).collect();
                        (
                            Some(format!(
                                "= {}",
                                pinlab_model::vm::mincore::describe_mincore(&vec)
                            )),
                            None,
                        )
                    }
                    (err, _) => (err, Some(Val::Failed)),
                }
            }
            Call::Load { addr, len } => {
                let (a, l) = (v!(addr), v!(len));
                let mut b = vec![0u8; l as usize];
                for (i, x) in b.iter_mut().enumerate().step_by(PAGE) {
                    // SAFETY: the scenario's load; a fault kills this executor.
                    *x = unsafe { std::ptr::read_volatile((a as usize + i) as *const u8) };
                }
                (Some(format!("= {}", describe_pages(&b))), None)
            }
            Call::IoUringSetup => match self.new_ring() {
                Ok(r) => {
                    self.rings.push((r, Vec::new()));
                    (
                        Some("= <handle>".into()),
                        Some(Val::Ring(self.rings.len() - 1)),
                    )
                }
                Err(e) => (
                    Some(format!("= -{}", errno_name(e.raw_os_error().unwrap_or(0)))),
                    Some(Val::Failed),
                ),
            },
            Call::RegisterBuffers { ring, addr, len } => {
                let Some(Val::Ring(r)) = self.obj(ring) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let (a, l) = (v!(addr), v!(len));
                match self.rings[r].0.register(a as *mut u8, l as usize) {
                    Ok(()) => {
                        self.rings[r].1 = vec![Some((a, l))];
                        (Some("= 0".into()), None)
                    }
                    Err(e) => (
                        Some(format!("= -{}", errno_name(e.raw_os_error().unwrap_or(0)))),
                        None,
                    ),
                }
            }
            Call::RegisterBuffersIov { ring, ref iovs } => {
                let Some(Val::Ring(r)) = self.obj(ring) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let mut table = Vec::new();
                for &(a, l) in iovs {
                    table.push((v!(a), v!(l)));
                }
                let ptrs: Vec<(*mut u8, usize)> = table
                    .iter()
                    .map(|&(a, l)| (a as *mut u8, l as usize))
                    .collect();
                match self.rings[r].0.register_iovs(&ptrs) {
                    Ok(()) => {
                        // A `NULL, 0` iovec leaves its slot empty.
                        self.rings[r].1 = table
                            .into_iter()
                            .map(|(a, l)| (a != 0 || l != 0).then_some((a, l)))
                            .collect();
                        (Some("= 0".into()), None)
                    }
                    Err(e) => (
                        Some(format!("= -{}", errno_name(e.raw_os_error().unwrap_or(0)))),
                        None,
                    ),
                }
            }
            Call::RegisterSparse { ring, nr } => {
                let Some(Val::Ring(r)) = self.obj(ring) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let n = v!(nr);
                let Ok(n32) = u32::try_from(n) else {
                    return Err(format!("{UNFAITHFUL}a table of {n} slots"));
                };
                match self.rings[r].0.register_sparse(n32) {
                    Ok(()) => {
                        self.rings[r].1 = vec![None; n as usize];
                        (Some("= 0".into()), None)
                    }
                    Err(e) => (
                        Some(format!("= -{}", errno_name(e.raw_os_error().unwrap_or(0)))),
                        None,
                    ),
                }
            }
            Call::UpdateBuffers {
                ring,
                off,
                ref iovs,
            } => {
                let Some(Val::Ring(r)) = self.obj(ring) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let first = v!(off);
                let mut table = Vec::new();
                for &(a, l) in iovs {
                    table.push((v!(a), v!(l)));
                }
                let Ok(first) = u32::try_from(first) else {
                    return Err(format!("{UNFAITHFUL}a slot number beyond u32"));
                };
                // One call, as the scenario's: the kernel checks the range
                // against the table first, then updates the iovecs in order
                // and returns how many it updated before the first failure.
                match self.rings[r].0.update(first, &table) {
                    Ok(done) => {
                        for (k, &(a, l)) in table.iter().take(done).enumerate() {
                            let i = first as usize + k;
                            if self.rings[r].1.len() <= i {
                                self.rings[r].1.resize(i + 1, None);
                            }
                            self.rings[r].1[i] = (a != 0 || l != 0).then_some((a, l));
                        }
                        (Some(format!("= {done}")), None)
                    }
                    Err(e) => (
                        Some(format!("= -{}", errno_name(e.raw_os_error().unwrap_or(0)))),
                        None,
                    ),
                }
            }
            Call::CloneBuffers { ring, src, replace } => {
                let (Some(Val::Ring(d)), Some(Val::Ring(s))) = (self.obj(ring), self.obj(src))
                else {
                    return Ok((None, Some(Val::Failed)));
                };
                let src_fd = self.rings[s].0.fd();
                match self.rings[d].0.clone_buffers(src_fd, replace) {
                    Ok(()) => {
                        self.rings[d].1 = self.rings[s].1.clone();
                        (Some("= 0".into()), None)
                    }
                    Err(e) => (
                        Some(format!("= -{}", errno_name(e.raw_os_error().unwrap_or(0)))),
                        None,
                    ),
                }
            }
            Call::UnregisterBuffers { ring } | Call::DeregMr { mr: ring } => {
                let r = match self.obj(ring) {
                    Some(Val::Ring(r) | Val::Mr(r)) => r,
                    _ => return Ok((None, Some(Val::Failed))),
                };
                if matches!(op.call, Call::DeregMr { .. }) && !self.rings[r].0.is_registered() {
                    return Err(format!(
                        "{UNFAITHFUL}ibv_dereg_mr of an MR deregistered already: the io_uring registration standing in for it answers ENXIO, uverbs finds no object under the handle"
                    ));
                }
                self.rings[r].1.clear();
                match self.rings[r].0.unregister() {
                    Ok(()) => (Some("= 0".into()), None),
                    Err(e) => (
                        Some(format!("= -{}", errno_name(e.raw_os_error().unwrap_or(0)))),
                        None,
                    ),
                }
            }
            Call::ReadFixed {
                ring,
                off,
                len,
                tag,
                index,
            } => {
                let Some(Val::Ring(r)) = self.obj(ring) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let (o, l, i) = (v!(off), v!(len), v!(index));
                let Ok(i) = u16::try_from(i) else {
                    return Err(format!("{UNFAITHFUL}a buffer index ({i}) beyond u16"));
                };
                if let Some(e) = self.rings[r].0.closed_enter_error() {
                    let e = errno_name(e.raw_os_error().unwrap_or(0));
                    return Ok((Some(format!("= -{e}")), None));
                }
                let n = self.dma_in(r, i, o, l, tag)?;
                (
                    Some(if n < 0 {
                        format!("= -{}", errno_name(-n))
                    } else {
                        format!("= cqe.res {n}")
                    }),
                    None,
                )
            }
            Call::WriteFixed {
                ring,
                off,
                len,
                index,
            } => {
                let Some(Val::Ring(r)) = self.obj(ring) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let (o, l, i) = (v!(off), v!(len), v!(index));
                let Ok(i) = u16::try_from(i) else {
                    return Err(format!("{UNFAITHFUL}a buffer index ({i}) beyond u16"));
                };
                if let Some(e) = self.rings[r].0.closed_enter_error() {
                    let e = errno_name(e.raw_os_error().unwrap_or(0));
                    return Ok((Some(format!("= -{e}")), None));
                }
                match self.dma_out(r, i, o, l)? {
                    Some(b) => (Some(format!("= device read {}", describe_pages(&b))), None),
                    None => (Some("= -EFAULT".into()), None),
                }
            }
            Call::RegMr { addr, len, access } => {
                let (a, l) = (v!(addr), v!(len));
                if l == 0 {
                    // ib_umem_get refuses an empty MR (-EINVAL); io_uring's
                    // registration standing in for it checks otherwise.
                    return Err(format!(
                        "{UNFAITHFUL}an MR of length 0: the io_uring registration standing in for it has other argument checks than ib_umem_get"
                    ));
                }
                let start = a / PAGE as u64 * PAGE as u64;
                let end = (a + l).div_ceil(PAGE as u64) * PAGE as u64;
                let mut ring = self
                    .new_ring()
                    .map_err(|e| format!("io_uring unavailable: {e}"))?;
                match ring.register(start as *mut u8, (end - start) as usize) {
                    Ok(()) => {
                        self.rings.push((ring, vec![Some((start, end - start))]));
                        self.mr_access.insert(self.rings.len() - 1, access);
                        (
                            Some("= <handle>".into()),
                            Some(Val::Mr(self.rings.len() - 1)),
                        )
                    }
                    Err(e) => (
                        Some(format!("= -{}", errno_name(e.raw_os_error().unwrap_or(0)))),
                        Some(Val::Failed),
                    ),
                }
            }
            Call::Pipe => {
                // As many real pipes as the scenario's vmsplices into this
                // variable can fill, made now: a process forked later holds
                // them all, as it holds the model's one pipe.
                let want = op
                    .bind
                    .and_then(|slot| pipe_volume(self.scn, slot))
                    .map_or(1, |n| n.div_ceil(PIPE_BUFS).clamp(1, MAX_PIPES));
                let mut ends = Vec::new();
                for _ in 0..want {
                    match new_pipe() {
                        Ok(p) => ends.push(p),
                        Err(e) => {
                            for (r, w) in ends {
                                // SAFETY: closing the pipes just made.
                                unsafe {
                                    libc::close(r);
                                    libc::close(w);
                                }
                            }
                            return Ok((Some(e), Some(Val::Failed)));
                        }
                    }
                }
                // Their descriptors take the lowest free numbers: a number
                // the scenario closed names a pipe now.
                for &(r, w) in &ends {
                    self.note_fd(r);
                    self.note_fd(w);
                }
                self.pipes.push(PipeGroup {
                    ends,
                    creator: sys::getpid(),
                });
                (
                    Some("= <handle>".into()),
                    Some(Val::Pipe(self.pipes.len() - 1)),
                )
            }
            Call::Vmsplice {
                pipe,
                addr,
                len,
                nr_segs,
            } => {
                let Some(Val::Pipe(g)) = self.obj(pipe) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let (a, l) = (v!(addr), v!(len));
                // Each iovec takes one pipe buffer per page; fill the group's
                // pipes in order (how full each is, the kernel says: another
                // process holding the group may have filled some).
                let per = (l as usize).div_ceil(PAGE).max(1);
                let mut left = nr_segs as usize;
                let mut total = 0isize;
                let mut at = 0;
                while left > 0 {
                    if at == self.pipes[g].ends.len() {
                        if self.pipes[g].creator != sys::getpid() {
                            return Err(format!(
                                "{UNFAITHFUL}a vmsplice beyond the pipes made for the scenario's pipe, in a process that did not make them (a pipe added here would be this process's alone)"
                            ));
                        }
                        match new_pipe() {
                            Ok(p) => {
                                self.note_fd(p.0);
                                self.note_fd(p.1);
                                self.pipes[g].ends.push(p);
                            }
                            Err(e) => return Ok((Some(e), None)),
                        }
                    }
                    let (rd, wr) = self.pipes[g].ends[at];
                    let used = pipe_bytes(rd).div_ceil(PAGE);
                    let k = left.min(PIPE_BUFS.saturating_sub(used) / per);
                    at += 1;
                    if k == 0 {
                        continue;
                    }
                    let iov = vec![
                        libc::iovec {
                            iov_base: a as *mut _,
                            iov_len: l as usize
                        };
                        k
                    ];
                    // SAFETY: vmsplice of our own range into our own pipe.
                    let r = unsafe { libc::vmsplice(wr, iov.as_ptr(), k, libc::SPLICE_F_NONBLOCK) };
                    if r < 0 {
                        return Ok((Some(last_err()), None));
                    }
                    total += r;
                    left -= k;
                }
                (Some(format!("= {total}")), None)
            }
            Call::PipeRead { pipe } => {
                let Some(Val::Pipe(g)) = self.obj(pipe) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let mut all = Vec::new();
                let mut b = vec![0u8; PAGE];
                for &(rd, _) in &self.pipes[g].ends {
                    loop {
                        // SAFETY: reading our own non-blocking pipe into a local buffer.
                        let n = unsafe { libc::read(rd, b.as_mut_ptr() as *mut _, PAGE) };
                        if n <= 0 {
                            break;
                        }
                        all.extend_from_slice(&b[..n as usize]);
                    }
                }
                (
                    Some(format!(
                        "= {}",
                        if all.is_empty() {
                            String::new()
                        } else {
                            describe_pages(&all)
                        }
                    )),
                    None,
                )
            }
            Call::RdmaWrite { mr, tag } => {
                let r = match self.vars[mr.actor][mr.slot] {
                    Some(Val::Mr(r)) => r,
                    _ => return Ok((Some("= IBV_WC_REM_ACCESS_ERR (no MR)".into()), None)),
                };
                // The HCA checks the MR's remote access rights first.
                if self
                    .mr_access
                    .get(&r)
                    .is_some_and(|a| a & IBV_ACCESS_REMOTE_WRITE == 0)
                {
                    return Ok((Some("= IBV_WC_REM_ACCESS_ERR".into()), None));
                }
                let Some((_, len)) = self.slot(r, 0) else {
                    return Ok((Some("= IBV_WC_REM_ACCESS_ERR".into()), None));
                };
                let n = self.dma_in(r, 0, 0, len, tag)?;
                (
                    Some(if n == len as i32 {
                        "= IBV_WC_SUCCESS".into()
                    } else {
                        "= IBV_WC_REM_ACCESS_ERR".into()
                    }),
                    None,
                )
            }
            Call::RdmaRead { mr } => {
                let r = match self.vars[mr.actor][mr.slot] {
                    Some(Val::Mr(r)) => r,
                    _ => return Ok((Some("= IBV_WC_REM_ACCESS_ERR (no MR)".into()), None)),
                };
                if self
                    .mr_access
                    .get(&r)
                    .is_some_and(|a| a & IBV_ACCESS_REMOTE_READ == 0)
                {
                    return Ok((Some("= IBV_WC_REM_ACCESS_ERR".into()), None));
                }
                let Some((_, len)) = self.slot(r, 0) else {
                    return Ok((Some("= IBV_WC_REM_ACCESS_ERR".into()), None));
                };
                match self.dma_out(r, 0, 0, len)? {
                    Some(b) => (
                        Some(format!("= IBV_WC_SUCCESS, read {}", describe_pages(&b))),
                        None,
                    ),
                    None => (Some("= IBV_WC_REM_ACCESS_ERR".into()), None),
                }
            }
            Call::Open { path, flags } => {
                let c = std::ffi::CString::new(self.files.path(&path).to_string_lossy().as_bytes())
                    .map_err(|e| e.to_string())?;
                // SAFETY: opening a file of this trace's private directories.
                let fd = unsafe { libc::open(c.as_ptr(), flags as i32, 0o644) };
                if fd < 0 {
                    (Some(last_err()), Some(Val::Failed))
                } else {
                    (Some("= <handle>".into()), Some(Val::File(fd)))
                }
            }
            Call::MemfdCreate {
                name,
                hugetlb,
                sealing,
            } => {
                let c = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
                let flags = if hugetlb { libc::MFD_HUGETLB } else { 0 }
                    | if sealing { libc::MFD_ALLOW_SEALING } else { 0 };
                // SAFETY: a new anonymous memfd.
                let fd = unsafe { libc::memfd_create(c.as_ptr(), flags) };
                if fd < 0 {
                    (Some(last_err()), Some(Val::Failed))
                } else {
                    (Some("= <handle>".into()), Some(Val::File(fd)))
                }
            }
            Call::Close { fd } => {
                if let Some(Val::Ring(r)) = self.obj(fd) {
                    if self.rings[r].0.is_closed() {
                        // Its descriptor is closed already: close(2) of the
                        // number (not handed out again: `closed_ring_reused`).
                        let e = self.rings[r].0.close_again();
                        return Ok((
                            Some(format!("= -{}", errno_name(e.raw_os_error().unwrap_or(0)))),
                            None,
                        ));
                    }
                    // The kernel frees the ring from a kworker (the trace's
                    // `io_ring_exit_work` step waits for it).
                    self.rings[r].0.close();
                    self.rings[r].1.clear();
                    return Ok((Some("= 0".into()), None));
                }
                let Some(Val::File(f)) = self.obj(fd) else {
                    return Ok((None, Some(Val::Failed)));
                };
                // SAFETY: closing the scenario's own descriptor.
                let r = ok0(unsafe { libc::close(f) });
                self.closed_fds.insert(f);
                r
            }
            Call::MmapFile {
                len,
                prot,
                flags,
                fd,
                off,
            } => {
                let Some(Val::File(f)) = self.obj(fd) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let (l, o) = (v!(len), v!(off));
                // SAFETY: a fresh file mapping at an address the kernel picks.
                let p = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        l as usize,
                        prot as i32,
                        flags as i32,
                        f,
                        o as i64,
                    )
                };
                if p == libc::MAP_FAILED {
                    (Some(last_err()), Some(Val::Failed))
                } else {
                    (Some(format!("= {:#x}", p as u64)), Some(Val::Int(p as u64)))
                }
            }
            Call::Ftruncate { fd, len } => {
                let Some(Val::File(f)) = self.obj(fd) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let l = v!(len);
                // SAFETY: truncating the scenario's own file.
                ok0(unsafe { libc::ftruncate(f, l as i64) })
            }
            Call::Fallocate { fd, mode, off, len } => {
                let Some(Val::File(f)) = self.obj(fd) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let (o, l) = (v!(off), v!(len));
                // SAFETY: fallocate on the scenario's own file.
                ok0(unsafe { libc::fallocate(f, mode as i32, o as i64, l as i64) })
            }
            Call::FileWrite { fd, tag, len, off } => {
                let Some(Val::File(f)) = self.obj(fd) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let l = v!(len);
                let b = PageBuf::new(l as usize, tag as u8)?;
                let r = match off {
                    // SAFETY: writing a local buffer to the scenario's own file.
                    Some(o) => unsafe { libc::pwrite(f, b.ptr() as *const _, b.len, v!(o) as i64) },
                    // SAFETY: the same, at the file position.
                    None => unsafe { libc::write(f, b.ptr() as *const _, b.len) },
                };
                (
                    Some(if r < 0 { last_err() } else { format!("= {r}") }),
                    None,
                )
            }
            Call::FileWriteBuf { fd, buf, len, off } => {
                let Some(Val::File(f)) = self.obj(fd) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let (b, l) = (v!(buf), v!(len) as usize);
                let r = match off {
                    // SAFETY: writing the scenario's own memory to its own
                    // file; a fault there returns EFAULT.
                    Some(o) => unsafe { libc::pwrite(f, b as *const _, l, v!(o) as i64) },
                    // SAFETY: the same, at the file position.
                    None => unsafe { libc::write(f, b as *const _, l) },
                };
                (
                    Some(if r < 0 { last_err() } else { format!("= {r}") }),
                    None,
                )
            }
            Call::FileRead { fd, buf, len, off } => {
                let Some(Val::File(f)) = self.obj(fd) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let (l, o) = (v!(len), v!(off));
                match buf {
                    Some(b) => {
                        let b = v!(b);
                        // SAFETY: reading into the scenario's own buffer; a fault
                        // there returns EFAULT.
                        let r = unsafe { libc::pread(f, b as *mut _, l as usize, o as i64) };
                        (
                            Some(if r < 0 { last_err() } else { format!("= {r}") }),
                            None,
                        )
                    }
                    None => {
                        let b = PageBuf::new(l as usize, 0)?;
                        // SAFETY: reading into a local buffer.
                        let r = unsafe { libc::pread(f, b.ptr() as *mut _, b.len, o as i64) };
                        if r < 0 {
                            (Some(last_err()), None)
                        } else {
                            let got = b.bytes(r as usize);
                            (Some(format!("= {}", describe_pages(&got))), None)
                        }
                    }
                }
            }
            Call::Fsync { fd } => {
                let Some(Val::File(f)) = self.obj(fd) else {
                    return Ok((None, Some(Val::Failed)));
                };
                // SAFETY: fsync of the scenario's own file.
                ok0(unsafe { libc::fsync(f) })
            }
            Call::Fadvise {
                fd,
                off,
                len,
                advice,
            } => {
                let Some(raw) = self.any_fd(fd) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let (o, l) = (v!(off), v!(len));
                // SAFETY: posix_fadvise of a descriptor of the scenario's own
                // (it returns the error number instead of setting errno).
                match unsafe { libc::posix_fadvise(raw, o as i64, l as i64, advice as i32) } {
                    0 => (Some("= 0".into()), None),
                    e => (Some(format!("= -{}", errno_name(e))), None),
                }
            }
            Call::Readahead { fd, off, count } => {
                let Some(raw) = self.any_fd(fd) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let (o, c) = (v!(off), v!(count));
                // SAFETY: readahead(2) of a descriptor of the scenario's own.
                let r = unsafe { libc::readahead(raw, o as i64, c as usize) };
                (Some(if r < 0 { last_err() } else { "= 0".into() }), None)
            }
            Call::Sync => {
                // The scenario's sync() writes back its files: syncfs of the
                // private filesystem, not of the whole host.
                let c = std::ffi::CString::new(self.files.root.to_string_lossy().as_bytes())
                    .map_err(|e| e.to_string())?;
                // SAFETY: open + syncfs + close of our own directory.
                unsafe {
                    let d = libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                    if d >= 0 {
                        libc::syncfs(d);
                        libc::close(d);
                    }
                }
                (None, None)
            }
            Call::Lseek { fd, off, whence } => {
                let Some(Val::File(f)) = self.obj(fd) else {
                    return Ok((None, Some(Val::Failed)));
                };
                let o = v!(off);
                // SAFETY: lseek on the scenario's own file.
                let r = unsafe { libc::lseek(f, o as i64, whence as i32) };
                (
                    Some(if r < 0 { last_err() } else { format!("= {r}") }),
                    None,
                )
            }
            Call::AddSeals { fd, seals } => {
                let Some(Val::File(f)) = self.obj(fd) else {
                    return Ok((None, Some(Val::Failed)));
                };
                // SAFETY: fcntl on the scenario's own file.
                ok0(unsafe { libc::fcntl(f, libc::F_ADD_SEALS, seals as libc::c_int) })
            }
            Call::GetSeals { fd } => {
                let Some(Val::File(f)) = self.obj(fd) else {
                    return Ok((None, Some(Val::Failed)));
                };
                // SAFETY: fcntl on the scenario's own file.
                let r = unsafe { libc::fcntl(f, libc::F_GET_SEALS) };
                if r < 0 {
                    (Some(last_err()), Some(Val::Failed))
                } else {
                    (
                        Some(format!(
                            "= {}",
                            pinlab_model::fs::memfd::seal_names(r as u32)
                        )),
                        Some(Val::Int(r as u64)),
                    )
                }
            }
            Call::Wait { .. } => (None, None),
            other => return Err(format!("no live mapping for {other:?}")),
        })
    }

    /// Binds the statement's variable, if it has one and the step gave a value
    /// (a mapping's length too).
    fn bind(&mut self, who: usize, pc: usize, v: Option<Val>) {
        self.cur = who;
        let op = &self.scn.actors[who].body[pc];
        if let (Some(slot), Some(x)) = (op.bind, v) {
            // Variables naming a closed file with this number go stale
            // first; then this one names the new file.
            if let Val::File(fd) = x {
                self.note_fd(fd);
            }
            self.vars[who][slot] = Some(x);
            if let (
                Val::Int(_),
                Call::Mmap { len, .. }
                | Call::MmapFile { len, .. }
                | Call::Mremap { new_len: len, .. },
            ) = (x, &op.call)
            {
                self.lens[who][slot] = self.val(*len).ok();
            }
        }
    }

    /// A new io_uring instance whose ring memory (mapped by `io_uring_setup`'s
    /// caller, here the executor) takes no room the model's address space has
    /// free: the kernel hands out the highest free gap, which may be a range
    /// the scenario unmapped (or a child did not inherit) and will map again,
    /// or the room above a mapping the model's next one would take — the
    /// model's mappings are the scenario's alone. So it is made while
    /// placeholders hold all but the bottom of the free area
    /// ([`layout::hold_executor_window`]).
    fn new_ring(&mut self) -> std::io::Result<Ring> {
        let held = layout::hold_executor_window();
        let r = Ring::new();
        if let Ok(ring) = &r {
            self.note_fd(ring.fd());
        }
        layout::release(held);
        r
    }

    /// A descriptor the kernel just handed out: if the scenario had closed
    /// that number (the kernel hands out the lowest free one), every variable
    /// still naming the old file is [`Val::Stale`] from now on.
    fn note_fd(&mut self, fd: RawFd) {
        if self.closed_fds.remove(&fd) {
            for v in self.vars.iter_mut().flatten() {
                if matches!(*v, Some(Val::File(f)) if f == fd) {
                    *v = Some(Val::Stale);
                }
            }
        }
    }

    /// Gives actor `to` (a thread being created, or a child being forked) a
    /// copy of actor `from`'s variables.
    fn inherit(&mut self, from: usize, to: usize) {
        self.vars[to] = self.vars[from].clone();
        self.lens[to] = self.lens[from].clone();
    }

    /// What a load of each mapping variable's range reads now, through
    /// `/proc/self/mem` (an unmapped or SIGBUS range reads as `fault`), one line
    /// per variable as [`super::end_view`] prints them.
    fn view(&mut self, me: usize) -> String {
        use std::os::unix::fs::FileExt;
        let mem = std::fs::File::open("/proc/self/mem");
        let vmpin = sys::vm_pin_kb(sys::getpid()).map_or("?".to_string(), |k| k.to_string());
        let vmlck = sys::vm_lck_kb(sys::getpid()).map_or(", VmLck ?".to_string(), super::vm_lck);
        let mut lines = vec![format!(
            "{}: VmPin {vmpin} kB{vmlck}",
            self.scn.actors[me].name
        )];
        self.cur = me;
        for slot in 0..self.vars[me].len() {
            // The length the model's view uses ([`crate::replay::mapping_len`]:
            // the first mmap binding the variable), also when a later one
            // rebound it.
            let len = crate::replay::mapping_len(self.scn, slot).and_then(|l| self.val(l).ok());
            let (Some(Val::Int(addr)), Some(len)) = (self.vars[me][slot], len) else {
                continue;
            };
            let mut b = vec![0u8; len as usize];
            // /proc/self/mem reads with FOLL_FORCE, through PROT_NONE too; a
            // load does not (`access_error`: not `vma_is_accessible`), and the
            // model's view is a load.
            let loadable = free_gaps(addr, len, &mapped_ranges_where(accessible)).is_empty();
            let desc = match &mem {
                Ok(f) if loadable && f.read_exact_at(&mut b, addr).is_ok() => describe_pages(&b),
                _ => "gone".into(),
            };
            lines.push(format!(
                "{}: {} = {desc}",
                self.scn.actors[me].name, self.scn.vars[slot]
            ));
        }
        lines.join("\n")
    }
}

/// Buffers of one real pipe of a group (sized to 1 MiB).
const PIPE_BUFS: usize = 256;

/// A non-blocking pipe sized to [`PIPE_BUFS`] buffers: (read, write, 0 used).
/// One scenario pipe: real pipes (read end, write end), filled in order.
struct PipeGroup {
    ends: Vec<(RawFd, RawFd)>,
    /// The process that made them: a pipe another process added would be its
    /// alone.
    creator: libc::pid_t,
}

/// Most real pipes made for one scenario pipe up front (64 MiB of buffers).
const MAX_PIPES: usize = 64;

/// Pipe buffers the scenario's `vmsplice`s into variable `slot` can add at
/// most (each statement runs once), if every length is a constant.
fn pipe_volume(scn: &Scenario, slot: usize) -> Option<usize> {
    let mut n = 0;
    for a in &scn.actors {
        for o in &a.body {
            if let Call::Vmsplice {
                pipe: Arg::Var(s, _),
                len,
                nr_segs,
                ..
            } = o.call
            {
                if s == slot {
                    let Arg::Const(l) = len else {
                        return None;
                    };
                    n = ((l as usize).div_ceil(PAGE).max(1))
                        .saturating_mul(nr_segs as usize)
                        .saturating_add(n);
                }
            }
        }
    }
    Some(n)
}

/// Bytes waiting in the pipe whose read end is `rd` (`FIONREAD`).
fn pipe_bytes(rd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let r = unsafe { libc::ioctl(rd, libc::FIONREAD, &mut n) };
    if r < 0 {
        0
    } else {
        n as usize
    }
}

fn new_pipe() -> Result<(RawFd, RawFd), String> {
    let mut p = [0; 2];
    // SAFETY: creating a pipe into a local array.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_NONBLOCK) } != 0 {
        return Err(last_err());
    }
    // SAFETY: sizing our own pipe.
    let cap = unsafe { libc::fcntl(p[1], libc::F_SETPIPE_SZ, (PIPE_BUFS * PAGE) as i32) };
    if cap < (PIPE_BUFS * PAGE) as i32 {
        // SAFETY: closing the pipe we just made.
        unsafe {
            libc::close(p[0]);
            libc::close(p[1]);
        }
        return Err("= -EPERM (cannot size a pipe to 1 MiB: /proc/sys/fs/pipe-max-size)".into());
    }
    Ok((p[0], p[1]))
}

/// The address ranges mapped in this process (`/proc/self/maps`), sorted.
fn mapped_ranges() -> Vec<(u64, u64)> {
    mapped_ranges_where(|_| true)
}

/// Whether a mapping with `/proc/self/maps` permissions `perms` (`rw-p`) can
/// be loaded from (`vma_is_accessible`: read, write or execute; on x86 a
/// writable page is readable).
fn accessible(perms: &str) -> bool {
    perms.chars().take(3).any(|c| c != '-')
}

/// [`mapped_ranges`] whose permissions satisfy `keep`.
fn mapped_ranges_where(keep: impl Fn(&str) -> bool) -> Vec<(u64, u64)> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut v: Vec<(u64, u64)> = maps
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (a, b) = f.next()?.split_once('-')?;
            keep(f.next()?).then_some(())?;
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            ))
        })
        .collect();
    v.sort_unstable();
    v
}

/// The parts of `[a, a + len)` that none of the sorted `mapped` ranges
/// (start, end) covers, as (start, length).
fn free_gaps(a: u64, len: u64, mapped: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let end = a.saturating_add(len);
    let mut out = Vec::new();
    let mut at = a;
    for &(s, e) in mapped {
        if e <= at {
            continue;
        }
        if s >= end {
            break;
        }
        if s > at {
            out.push((at, s - at));
        }
        at = at.max(e);
        if at >= end {
            break;
        }
    }
    if at < end {
        out.push((at, end - at));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{accessible, free_gaps};

    #[test]
    fn prot_none_is_not_accessible() {
        assert!(!accessible("---p"));
        assert!(accessible("r--p") && accessible("-w-p") && accessible("rw-s"));
    }

    #[test]
    fn free_gaps_are_the_holes_a_partial_munmap_left() {
        let k = 0x1000;
        // A whole range unmapped, one hole in the middle, none, and a range
        // that ends inside a mapping.
        assert_eq!(
            free_gaps(10 * k, 2 * k, &[(0, 10 * k)]),
            vec![(10 * k, 2 * k)]
        );
        assert_eq!(
            free_gaps(10 * k, 3 * k, &[(10 * k, 11 * k), (12 * k, 20 * k)]),
            vec![(11 * k, k)]
        );
        assert_eq!(free_gaps(10 * k, 2 * k, &[(8 * k, 14 * k)]), vec![]);
        assert_eq!(
            free_gaps(10 * k, 4 * k, &[(11 * k, 12 * k), (13 * k, 30 * k)]),
            vec![(10 * k, k), (12 * k, k)]
        );
    }

    #[test]
    fn every_model_errno_has_its_kernel_name() {
        // A kernel errno the executor printed as a number would differ from
        // the model's name for it (found with ESPIPE from posix_fadvise).
        let names: Vec<String> = (1..134).map(super::errno_name).collect();
        for e in pinlab_model::Errno::ALL {
            assert!(names.contains(&e.name().to_string()), "{e}");
        }
    }
}
