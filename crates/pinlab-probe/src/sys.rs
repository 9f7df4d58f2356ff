//! Thin, checked wrappers around the syscalls the probe makes.
//!
//! Every `unsafe` block calls one libc function or io_uring operation on memory the
//! probe mapped itself; each carries a `// SAFETY:` comment. Mappings unmap on
//! drop, file descriptors close on drop, rings unregister on drop.

use crate::journal;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Page size.
pub const PAGE: usize = 4096;
/// PMD size.
pub const PMD: usize = 2 << 20;

/// The calling thread's errno as its name.
pub fn errno_name(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EFAULT) => "EFAULT".into(),
        Some(libc::EINVAL) => "EINVAL".into(),
        Some(libc::ENOMEM) => "ENOMEM".into(),
        Some(libc::EBUSY) => "EBUSY".into(),
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP".into(),
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::EAGAIN) => "EAGAIN".into(),
        Some(libc::ENOSPC) => "ENOSPC".into(),
        Some(libc::ENOSYS) => "ENOSYS".into(),
        Some(n) => format!("errno {n}"),
        None => e.to_string(),
    }
}

/// A mapping that is unmapped on drop.
pub struct Mapping {
    /// Start address.
    pub ptr: *mut u8,
    /// Length.
    pub len: usize,
}

impl Mapping {
    /// A private anonymous read-write mapping of `len` bytes (nothing touched yet).
    pub fn anon_rw(len: usize) -> io::Result<Mapping> {
        Mapping::new(
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
            0,
        )
    }

    /// `mmap(NULL, len, prot, flags, fd, off)`; `align` > 0 aligns the start.
    pub fn new(
        len: usize,
        prot: i32,
        flags: i32,
        fd: RawFd,
        off: i64,
        align: usize,
    ) -> io::Result<Mapping> {
        let extra = if align > PAGE { align } else { 0 };
        // SAFETY: a fresh mapping at an address the kernel chooses; no existing memory is touched.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len + extra, prot, flags, fd, off) };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let p = p as usize;
        if extra == 0 {
            return Ok(Mapping {
                ptr: p as *mut u8,
                len,
            });
        }
        let start = p.div_ceil(align) * align;
        // SAFETY: unmapping the unaligned head and tail of the mapping we just made.
        unsafe {
            if start > p {
                libc::munmap(p as *mut _, start - p);
            }
            let end = p + len + extra;
            if end > start + len {
                libc::munmap((start + len) as *mut _, end - start - len);
            }
        }
        Ok(Mapping {
            ptr: start as *mut u8,
            len,
        })
    }

    /// Address of byte `off`.
    pub fn at(&self, off: usize) -> *mut u8 {
        self.ptr.wrapping_add(off)
    }

    /// Writes `byte` to every page (faults them in writable).
    pub fn touch_write(&self, byte: u8) {
        for off in (0..self.len).step_by(PAGE) {
            // SAFETY: inside our own writable mapping.
            unsafe { std::ptr::write_volatile(self.at(off), byte) };
        }
    }

    /// Reads every page (faults them in readable).
    pub fn touch_read(&self) -> u8 {
        let mut x = 0u8;
        for off in (0..self.len).step_by(PAGE) {
            // SAFETY: inside our own readable mapping.
            x ^= unsafe { std::ptr::read_volatile(self.at(off)) };
        }
        x
    }

    /// Reads byte `off`.
    pub fn read(&self, off: usize) -> u8 {
        // SAFETY: inside our own readable mapping.
        unsafe { std::ptr::read_volatile(self.at(off)) }
    }

    /// `madvise`.
    pub fn madvise(&self, off: usize, len: usize, advice: i32) -> io::Result<()> {
        // SAFETY: advice on our own mapping.
        check(unsafe { libc::madvise(self.at(off) as *mut _, len, advice) })
    }

    /// `mprotect`.
    pub fn mprotect(&self, prot: i32) -> io::Result<()> {
        // SAFETY: protection change of our own mapping.
        check(unsafe { libc::mprotect(self.ptr as *mut _, self.len, prot) })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping once.
        unsafe { libc::munmap(self.ptr as *mut _, self.len) };
    }
}

fn check(r: i32) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `memfd_create(name, flags)`.
pub fn memfd_create(name: &str, flags: u32) -> io::Result<OwnedFd> {
    let c = CString::new(name).expect("name");
    // SAFETY: plain syscall with a valid C string.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `memfd_secret(0)` (syscall 447).
pub fn memfd_secret() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::syscall(447, 0) } as i32;
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ftruncate`.
pub fn ftruncate(fd: &OwnedFd, len: usize) -> io::Result<()> {
    // SAFETY: plain syscall on our descriptor.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), len as i64) })
}

/// `fallocate`.
pub fn fallocate(fd: &OwnedFd, mode: i32, off: usize, len: usize) -> io::Result<()> {
    // SAFETY: plain syscall on our descriptor.
    check(unsafe { libc::fallocate(fd.as_raw_fd(), mode, off as i64, len as i64) })
}

/// `pread` into a buffer we own.
pub fn pread(fd: &OwnedFd, buf: &mut [u8], off: usize) -> io::Result<usize> {
    // SAFETY: reading into a buffer we own, of its length.
    let n = unsafe {
        libc::pread(
            fd.as_raw_fd(),
            buf.as_mut_ptr() as *mut _,
            buf.len(),
            off as i64,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Opens (creating) a file.
pub fn open(path: &std::path::Path, flags: i32) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().to_string_lossy().as_bytes()).expect("path");
    // SAFETY: plain syscall with a valid C string.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether we are root.
pub fn is_root() -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::geteuid() == 0 }
}

/// (`nr_foll_pin_acquired`, `nr_foll_pin_released`), exact: `stat_refresh` first.
pub fn pin_counters() -> io::Result<(u64, u64)> {
    fs::write("/proc/sys/vm/stat_refresh", "1")?;
    let s = fs::read_to_string("/proc/vmstat")?;
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.trim().parse::<u64>().ok()))
    };
    match (get("nr_foll_pin_acquired "), get("nr_foll_pin_released ")) {
        (Some(a), Some(r)) => Ok((a, r)),
        _ => Err(io::Error::other("no nr_foll_pin_* in /proc/vmstat")),
    }
}

/// A `/proc/vmstat` field (after `stat_refresh`).
pub fn vmstat(field: &str) -> io::Result<u64> {
    fs::write("/proc/sys/vm/stat_refresh", "1")?;
    let s = fs::read_to_string("/proc/vmstat")?;
    s.lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .and_then(|r| r.strip_prefix(' '))
                .and_then(|r| r.trim().parse().ok())
        })
        .ok_or_else(|| io::Error::other(format!("no {field} in /proc/vmstat")))
}

/// `VmPin:` of a process, in kB.
pub fn vm_pin_kb(pid: i32) -> io::Result<u64> {
    status_kb(pid, "VmPin:")
}

/// `VmLck:` (`mm->locked_vm`) of a process, in kB.
pub fn vm_lck_kb(pid: i32) -> io::Result<u64> {
    status_kb(pid, "VmLck:")
}

/// A `kB` field of `/proc/PID/status`.
fn status_kb(pid: i32, field: &str) -> io::Result<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .map(|r| r.trim().trim_end_matches("kB").trim().parse().unwrap_or(0))
        })
        .ok_or_else(|| io::Error::other(format!("no {field}")))
}

/// The PFN backing `addr` in process `pid` (root), or `None` if not present.
pub fn pfn(pid: i32, addr: usize) -> io::Result<Option<u64>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = fs::File::open(format!("/proc/{pid}/pagemap"))?;
    f.seek(SeekFrom::Start((addr / PAGE * 8) as u64))?;
    let mut b = [0u8; 8];
    f.read_exact(&mut b)?;
    let e = u64::from_le_bytes(b);
    Ok((e >> 63 & 1 == 1).then_some(e & ((1 << 55) - 1)))
}

/// Our pid.
pub fn getpid() -> i32 {
    // SAFETY: plain syscall.
    unsafe { libc::getpid() }
}

/// Pins this process (a replay executor; its children and threads inherit
/// it) to the first CPU it may run on (`sched_setaffinity`). The kernel keeps
/// per-CPU folio batches (`lru_add` after a fault, `lru_lazyfree` after
/// `MADV_FREE`) that `lru_add_drain()` empties on the local CPU only: a step
/// that woke up on the other CPU than the one before it would not see them
/// drained (measured on 6.18: `MADV_FREE` and `MADV_PAGEOUT` discard the
/// pages only if they run on the CPU that faulted them in, and that ran
/// `MADV_FREE`). The model has no such batches; on one CPU every local drain
/// reaches them, as the model assumes. Best effort: a failure leaves the
/// affinity as it was.
pub fn pin_to_one_cpu() {
    // SAFETY: cpu_set_t is plain data; sched_{get,set}affinity of ourselves.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if libc::sched_getaffinity(0, size, &mut set) != 0 {
            return;
        }
        let Some(cpu) = (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &set)) else {
            return;
        };
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size, &set);
    }
}

/// Makes this process (a replay executor) an unprivileged user: RLIMIT_MEMLOCK
/// set to `memlock` bytes, no supplementary groups, gid and uid `uid` (which
/// drops CAP_IPC_LOCK with every other capability); dumpable again, so that it
/// can still read its own `/proc/self/mem` (a change of uid clears the flag).
pub fn become_unprivileged(uid: u32, memlock: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: memlock,
        rlim_max: memlock,
    };
    // SAFETY: changing this process's own limit and credentials.
    let ok = unsafe {
        libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) == 0
            && libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(uid) == 0
            && libc::setuid(uid) == 0
            && libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An io_uring with a one-slot buffer table.
pub struct Ring {
    /// `None` once closed ([`Ring::close`]).
    ring: Option<io_uring::IoUring>,
    /// Its descriptor number, kept after the close: a later call on the
    /// closed ring makes its system call on that number, as a program that
    /// kept the number would ([`Ring::number_reused`] first).
    fd: RawFd,
    registered: bool,
}

/// `IORING_UNREGISTER_BUFFERS`, the opcode a closed ring's registration
/// calls are made with (the descriptor lookup fails before any opcode is read).
const IORING_UNREGISTER_BUFFERS: libc::c_long = 1;

/// The system call an operation on a ring makes (what a closed ring's
/// operation asks the kernel on its old descriptor number).
#[derive(Debug, Clone, Copy)]
enum Via {
    /// `io_uring_register(2)`.
    Register,
    /// `io_uring_enter(2)`.
    Enter,
}

impl Ring {
    /// The ring; once closed, the kernel's answer to `via` on the closed
    /// descriptor number (`-EBADF`: `fget` finds no file). The caller checks
    /// [`Ring::number_reused`] first.
    fn io(&mut self, via: Via) -> io::Result<&mut io_uring::IoUring> {
        if self.ring.is_none() {
            // SAFETY: a system call on a descriptor number nothing holds (the
            // caller checked): the kernel looks it up and finds no file.
            let r = unsafe {
                match via {
                    Via::Register => libc::syscall(
                        libc::SYS_io_uring_register,
                        self.fd,
                        IORING_UNREGISTER_BUFFERS,
                        std::ptr::null::<u8>(),
                        0,
                    ),
                    Via::Enter => libc::syscall(
                        libc::SYS_io_uring_enter,
                        self.fd,
                        0,
                        0,
                        0,
                        std::ptr::null::<u8>(),
                        0,
                    ),
                }
            };
            return Err(if r < 0 {
                io::Error::last_os_error()
            } else {
                io::Error::other("a closed ring's descriptor number answered as an open ring")
            });
        }
        Ok(self.ring.as_mut().expect("open"))
    }

    /// `close(ring_fd)`: unmaps the rings and closes the descriptor; the kernel
    /// frees the ring (and unpins its buffers) from a kworker afterwards.
    pub fn close(&mut self) {
        self.registered = false;
        self.ring = None;
    }

    /// `close(ring_fd)` of a ring closed already: the kernel's answer for the
    /// number (`-EBADF`). The caller checks [`Ring::number_reused`] first.
    pub fn close_again(&self) -> io::Error {
        // SAFETY: closing a descriptor number nothing holds (checked by the caller).
        if unsafe { libc::close(self.fd) } == 0 {
            io::Error::other("a closed ring's descriptor number was open")
        } else {
            io::Error::last_os_error()
        }
    }

    /// For a closed ring, the kernel's answer to an `io_uring_enter` on its
    /// old descriptor number (`None` while open). The caller checks
    /// [`Ring::number_reused`] first.
    pub fn closed_enter_error(&mut self) -> Option<io::Error> {
        if self.ring.is_some() {
            return None;
        }
        self.io(Via::Enter).err()
    }

    /// Whether the ring is closed and its old descriptor number is open again
    /// (the kernel hands out the lowest free number): a call on the closed
    /// ring would then reach that file, which the model's ring has no notion of.
    pub fn number_reused(&self) -> bool {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        self.ring.is_none() && unsafe { libc::fcntl(self.fd, libc::F_GETFD) } >= 0
    }

    /// Whether [`Ring::close`] ran.
    pub fn is_closed(&self) -> bool {
        self.ring.is_none()
    }

    /// `io_uring_setup(8)`.
    pub fn new() -> io::Result<Ring> {
        use std::os::fd::AsRawFd;
        let ring = io_uring::IoUring::new(8)?;
        Ok(Ring {
            fd: ring.as_raw_fd(),
            ring: Some(ring),
            registered: false,
        })
    }

    /// `IORING_REGISTER_BUFFERS` with one iovec.
    pub fn register(&mut self, ptr: *mut u8, len: usize) -> io::Result<()> {
        let iov = libc::iovec {
            iov_base: ptr as *mut _,
            iov_len: len,
        };
        // SAFETY: the iovec names memory of a mapping that outlives the
        // registration (callers unregister, or drop the ring, before unmapping).
        unsafe { self.io(Via::Register)?.submitter().register_buffers(&[iov]) }?;
        self.registered = true;
        Ok(())
    }

    /// `IORING_REGISTER_BUFFERS` with several iovecs `(ptr, len)`.
    pub fn register_iovs(&mut self, iovs: &[(*mut u8, usize)]) -> io::Result<()> {
        let v: Vec<libc::iovec> = iovs
            .iter()
            .map(|&(p, l)| libc::iovec {
                iov_base: p as *mut _,
                iov_len: l,
            })
            .collect();
        // SAFETY: as `register`: the iovecs name memory that outlives the registration.
        unsafe { self.io(Via::Register)?.submitter().register_buffers(&v) }?;
        self.registered = true;
        Ok(())
    }

    /// `IORING_REGISTER_BUFFERS2` with `IORING_RSRC_REGISTER_SPARSE`: `nr` empty slots.
    pub fn register_sparse(&mut self, nr: u32) -> io::Result<()> {
        self.io(Via::Register)?
            .submitter()
            .register_buffers_sparse(nr)?;
        self.registered = true;
        Ok(())
    }

    /// `IORING_REGISTER_BUFFERS_UPDATE` of the slots from `offset` with the
    /// iovecs `bufs` (null and 0: empty the slot), in one system call:
    /// returns how many slots the kernel updated (`__io_sqe_buffers_update`
    /// stops at the first iovec that fails, and fails the call only if that
    /// is the first; a range past the table fails it up front). The
    /// io-uring crate's wrapper drops that count, so this calls
    /// `io_uring_register(2)` itself.
    pub fn update(&mut self, offset: u32, bufs: &[(u64, u64)]) -> io::Result<usize> {
        /// `struct io_uring_rsrc_update2` (include/uapi/linux/io_uring.h).
        #[repr(C)]
        struct RsrcUpdate2 {
            offset: u32,
            resv: u32,
            data: u64,
            tags: u64,
            nr: u32,
            resv2: u32,
        }
        /// `IORING_REGISTER_BUFFERS_UPDATE`.
        const IORING_REGISTER_BUFFERS_UPDATE: libc::c_long = 16;
        let fd = self.io(Via::Register)?.as_raw_fd();
        let v: Vec<libc::iovec> = bufs
            .iter()
            .map(|&(p, l)| libc::iovec {
                iov_base: p as *mut _,
                iov_len: l as usize,
            })
            .collect();
        let up = RsrcUpdate2 {
            offset,
            resv: 0,
            data: v.as_ptr() as u64,
            tags: 0,
            nr: v.len() as u32,
            resv2: 0,
        };
        // SAFETY: the kernel reads `up` and the iovec array it points to,
        // both alive for the call; the buffers are the scenario's own (a bad
        // one is the kernel's -EFAULT to report).
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                fd,
                IORING_REGISTER_BUFFERS_UPDATE,
                &up as *const RsrcUpdate2,
                std::mem::size_of::<RsrcUpdate2>(),
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as usize)
        }
    }

    /// `IORING_OP_READ_FIXED` of `len` bytes from `fd` into `ptr`, buffer `index`.
    pub fn read_fixed_index(
        &mut self,
        fd: RawFd,
        ptr: *mut u8,
        len: usize,
        index: u16,
    ) -> io::Result<i32> {
        let e = io_uring::opcode::ReadFixed::new(io_uring::types::Fd(fd), ptr, len as u32, index)
            .build();
        self.run(e)
    }

    /// Submits `IORING_OP_READ_FIXED` from `fd` into `ptr` (buffer `index`)
    /// without waiting for it.
    pub fn submit_read_fixed(
        &mut self,
        fd: RawFd,
        ptr: *mut u8,
        len: usize,
        index: u16,
    ) -> io::Result<()> {
        let e = io_uring::opcode::ReadFixed::new(io_uring::types::Fd(fd), ptr, len as u32, index)
            .build();
        // SAFETY: the entry refers to a registered buffer and a descriptor we own,
        // both kept alive until its completion is reaped.
        unsafe {
            self.io(Via::Enter)?
                .submission()
                .push(&e)
                .map_err(|_| io::Error::other("sq full"))?
        };
        self.io(Via::Enter)?.submit()?;
        Ok(())
    }

    /// Waits for one completion and returns its result.
    pub fn wait_cqe(&mut self) -> io::Result<i32> {
        self.io(Via::Enter)?.submit_and_wait(1)?;
        let cqe = self
            .io(Via::Enter)?
            .completion()
            .next()
            .ok_or_else(|| io::Error::other("no cqe"))?;
        Ok(cqe.result())
    }

    /// `IORING_UNREGISTER_BUFFERS`.
    /// The ring's descriptor number (kept once closed: a call on the closed
    /// ring is made on it, after [`Ring::number_reused`]).
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// `IORING_REGISTER_CLONE_BUFFERS` from the ring `src_fd` (its whole table;
    /// with `IORING_REGISTER_DST_REPLACE` if `replace`).
    pub fn clone_buffers(&mut self, src_fd: RawFd, replace: bool) -> io::Result<()> {
        let flags = if replace {
            io_uring::types::CloneBuffersFlags::DST_REPLACE
        } else {
            io_uring::types::CloneBuffersFlags::empty()
        };
        self.io(Via::Register)?
            .submitter()
            .register_buffers_clone_offset(src_fd, 0, 0, 0, flags)?;
        self.registered = true;
        Ok(())
    }

    /// Whether buffers are registered (since the last unregister).
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    pub fn unregister(&mut self) -> io::Result<()> {
        self.registered = false;
        self.io(Via::Register)?.submitter().unregister_buffers()
    }

    fn run(&mut self, e: io_uring::squeue::Entry) -> io::Result<i32> {
        // SAFETY: the entry refers to a registered buffer and a descriptor we own.
        unsafe {
            self.io(Via::Enter)?
                .submission()
                .push(&e)
                .map_err(|_| io::Error::other("sq full"))?
        };
        self.io(Via::Enter)?.submit_and_wait(1)?;
        let cqe = self
            .io(Via::Enter)?
            .completion()
            .next()
            .ok_or_else(|| io::Error::other("no cqe"))?;
        Ok(cqe.result())
    }

    /// `IORING_OP_READ_FIXED` of `len` bytes from `fd` at `off` into `ptr`.
    pub fn read_fixed(&mut self, fd: RawFd, ptr: *mut u8, len: usize, off: u64) -> io::Result<i32> {
        self.read_fixed_buf(fd, ptr, len, off, 0)
    }

    /// `IORING_OP_READ_FIXED` of `len` bytes from `fd` at `off` into `ptr`,
    /// inside registered buffer `index`.
    pub fn read_fixed_buf(
        &mut self,
        fd: RawFd,
        ptr: *mut u8,
        len: usize,
        off: u64,
        index: u16,
    ) -> io::Result<i32> {
        let e = io_uring::opcode::ReadFixed::new(io_uring::types::Fd(fd), ptr, len as u32, index)
            .offset(off)
            .build();
        self.run(e)
    }

    /// `IORING_OP_WRITE_FIXED` of `len` bytes from `ptr` to `fd` at `off`.
    pub fn write_fixed(
        &mut self,
        fd: RawFd,
        ptr: *const u8,
        len: usize,
        off: u64,
    ) -> io::Result<i32> {
        self.write_fixed_buf(fd, ptr, len, off, 0)
    }

    /// `IORING_OP_WRITE_FIXED` of `len` bytes from `ptr` to `fd` at `off`,
    /// inside registered buffer `index`.
    pub fn write_fixed_buf(
        &mut self,
        fd: RawFd,
        ptr: *const u8,
        len: usize,
        off: u64,
        index: u16,
    ) -> io::Result<i32> {
        let e = io_uring::opcode::WriteFixed::new(io_uring::types::Fd(fd), ptr, len as u32, index)
            .offset(off)
            .build();
        self.run(e)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.registered {
            if let Some(r) = &self.ring {
                let _ = r.submitter().unregister_buffers();
            }
        }
    }
}

/// Runs `f` in a forked child that stays alive until `release` is written to;
/// returns the child's pid and pipes to talk to it. `f` returns bytes for the parent.
pub struct Child {
    /// Child pid.
    pub pid: i32,
    to_child: RawFd,
    from_child: RawFd,
}

impl Child {
    /// Forks; the child runs `f(step)` for each byte the parent sends and writes
    /// back 8 bytes, until the parent sends 0xff.
    pub fn spawn(f: impl Fn(u8) -> u64) -> io::Result<Child> {
        let mut a = [0; 2];
        let mut b = [0; 2];
        // SAFETY: plain syscalls creating pipes into local arrays.
        unsafe {
            check(libc::pipe(a.as_mut_ptr()))?;
            check(libc::pipe(b.as_mut_ptr()))?;
        }
        // SAFETY: fork in a single-threaded probe; the child only runs `f` and
        // pipe I/O, then `_exit`s without unwinding.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            loop {
                let mut c = [0u8; 1];
                // SAFETY: reading one byte from our pipe.
                if unsafe { libc::read(a[0], c.as_mut_ptr() as *mut _, 1) } != 1 || c[0] == 0xff {
                    // SAFETY: leave without running destructors of the parent's state.
                    unsafe { libc::_exit(0) };
                }
                let v = f(c[0]).to_le_bytes();
                // SAFETY: writing 8 bytes to our pipe.
                unsafe { libc::write(b[1], v.as_ptr() as *const _, 8) };
            }
        }
        // SAFETY: closing the ends the parent does not use.
        unsafe {
            libc::close(a[0]);
            libc::close(b[1]);
        }
        Ok(Child {
            pid,
            to_child: a[1],
            from_child: b[0],
        })
    }

    /// Asks the child to run step `s`; returns its answer.
    pub fn ask(&self, s: u8) -> io::Result<u64> {
        let mut v = [0u8; 8];
        // SAFETY: one byte out, eight bytes back, on our pipes.
        unsafe {
            if libc::write(self.to_child, [s].as_ptr() as *const _, 1) != 1 {
                return Err(io::Error::last_os_error());
            }
            if libc::read(self.from_child, v.as_mut_ptr() as *mut _, 8) != 8 {
                return Err(io::Error::other("child did not answer"));
            }
        }
        Ok(u64::from_le_bytes(v))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: tell the child to exit, reap it, close our pipe ends.
        unsafe {
            libc::write(self.to_child, [0xffu8].as_ptr() as *const _, 1);
            let mut st = 0;
            libc::waitpid(self.pid, &mut st, 0);
            libc::close(self.to_child);
            libc::close(self.from_child);
        }
    }
}

/// A `/proc/meminfo` field's number (kB or pages), if there is one.
pub fn meminfo(field: &str) -> Option<u64> {
    let s = fs::read_to_string("/proc/meminfo").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// `HugePages_Total` if no page of the host's default-size hugetlb pool is in
/// use, reserved or surplus; else why not (those pages are someone else's —
/// or a reservation the kernel leaked, which only a reboot gives back, as a
/// partial `mremap` of a private hugetlb mapping does on 6.12–6.18: the model's
/// pool would not match, so the caller skips).
pub fn hugetlb_pool_unused() -> Result<u64, String> {
    let (total, free, rsvd, surp) = (
        meminfo("HugePages_Total"),
        meminfo("HugePages_Free"),
        meminfo("HugePages_Rsvd"),
        meminfo("HugePages_Surp"),
    );
    let (Some(total), Some(free), Some(rsvd), Some(surp)) = (total, free, rsvd, surp) else {
        return Err("no HugePages_* lines in /proc/meminfo".into());
    };
    if total != free || rsvd != 0 || surp != 0 {
        return Err(format!(
            "the host's pool is in use ({} of {total} pages used, {rsvd} reserved, {surp} surplus)",
            total - free.min(total)
        ));
    }
    Ok(total)
}

/// Raises `vm.nr_hugepages` to at least `n` for the guard's life, then restores it
/// (also after a signal or a killed run: see [`crate::journal`]). Refused
/// when the host's pool is in someone else's use ([`hugetlb_pool_unused`]).
pub struct HugePool {
    entry: Option<journal::Entry>,
}

impl HugePool {
    /// Sets the pool to `n` pages (root); fails if fewer could be reserved.
    pub fn ensure(n: u64) -> io::Result<HugePool> {
        const PATH: &str = "/proc/sys/vm/nr_hugepages";
        hugetlb_pool_unused().map_err(io::Error::other)?;
        let old: u64 = fs::read_to_string(PATH)?
            .trim()
            .parse()
            .map_err(io::Error::other)?;
        let entry = journal::register(journal::Undo::Write(PATH.into(), old.to_string()))
            .ok_or_else(|| io::Error::other("probe undo journal full"))?;
        let g = HugePool { entry: Some(entry) };
        fs::write(PATH, n.to_string())?;
        let got: u64 = fs::read_to_string(PATH)?
            .trim()
            .parse()
            .map_err(io::Error::other)?;
        if got < n {
            return Err(io::Error::other(format!(
                "only {got} of {n} huge pages could be reserved"
            )));
        }
        Ok(g)
    }
}

impl Drop for HugePool {
    fn drop(&mut self) {
        if let Some(e) = self.entry.take() {
            e.undo();
        }
    }
}

/// A temporary swapfile, on (`swapon`) for the guard's life; `swapoff` and
/// removed on drop, also after a signal or a killed run (see [`crate::journal`]).
pub struct Swapfile {
    /// Undo entries, newest last: remove the file, then swap it off.
    entries: Vec<journal::Entry>,
}

impl Swapfile {
    /// Writes `size` bytes of zeros at `path` (a swapfile must not be sparse),
    /// runs `mkswap` and `swapon` (root). `Err` says why it is not possible here
    /// (no mkswap, or a filesystem without swapfile support).
    pub fn new(path: &std::path::Path, size: usize) -> Result<Swapfile, String> {
        use std::io::Write;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::PermissionsExt;
        let full = || "probe undo journal full".to_string();
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        let mut g = Swapfile {
            entries: vec![
                journal::register(journal::Undo::RemoveFile(path.into())).ok_or_else(full)?
            ],
        };
        let mut f = fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..size.div_ceil(zeros.len()) {
            f.write_all(&zeros).map_err(|e| e.to_string())?;
        }
        f.sync_all().map_err(|e| e.to_string())?;
        drop(f);
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mkswap")
            .arg(path)
            .output()
            .map_err(|e| format!("mkswap: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mkswap failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        g.entries
            .push(journal::register(journal::Undo::Swapoff(path.into())).ok_or_else(full)?);
        // SAFETY: swapon of a NUL-terminated path we own.
        if unsafe { libc::swapon(c.as_ptr(), 0) } != 0 {
            let e = io::Error::last_os_error();
            if let Some(e) = g.entries.pop() {
                e.forget();
            }
            return Err(format!(
                "swapon: {} (no swapfile support here?)",
                errno_name(&e)
            ));
        }
        Ok(g)
    }
}

impl Drop for Swapfile {
    fn drop(&mut self) {
        while let Some(e) = self.entries.pop() {
            e.undo();
        }
    }
}

/// Waits (up to ~1 s) until the pin counters balance again after an asynchronous release.
pub fn wait_balanced(target_released: u64) {
    for _ in 0..100 {
        if pin_counters()
            .map(|(_, r)| r >= target_released)
            .unwrap_or(true)
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A small filesystem image, loop-mounted in a private directory for the guard's
/// life (root, and `mkfs.<fs>` installed); unmounted and deleted on drop, also
/// after a signal or a killed run (see [`crate::journal`]).
pub struct LoopFs {
    /// Mount point.
    pub dir: std::path::PathBuf,
    /// The filesystem image behind the loop device.
    pub img: std::path::PathBuf,
    /// Undo entries, newest last: the image, the mount point, the mount.
    entries: Vec<journal::Entry>,
}

impl LoopFs {
    /// Makes a `size`-byte `fstype` image under `parent` and mounts it.
    pub fn new(parent: &std::path::Path, fstype: &str, size: u64) -> Result<LoopFs, String> {
        use std::process::Command;
        let full = || "probe undo journal full".to_string();
        let mkfs = format!("mkfs.{fstype}");
        let which = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {mkfs}"))
            .output()
            .map_err(|e| e.to_string())?;
        if !which.status.success() {
            return Err(format!("{mkfs} is not installed"));
        }
        let img = parent.join(format!("{fstype}.img"));
        let dir = parent.join(format!("{fstype}.mnt"));
        let mut g = LoopFs {
            dir: dir.clone(),
            img: img.clone(),
            entries: vec![
                journal::register(journal::Undo::RemoveFile(img.clone())).ok_or_else(full)?
            ],
        };
        g.entries
            .push(journal::register(journal::Undo::RemoveDir(dir.clone())).ok_or_else(full)?);
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let f = fs::File::create(&img).map_err(|e| e.to_string())?;
        f.set_len(size).map_err(|e| e.to_string())?;
        drop(f);
        // mkfs.xfs forces with -f, mkfs.ext4 with -F.
        let force = if fstype == "xfs" { "-f" } else { "-F" };
        let out = Command::new(&mkfs)
            .arg("-q")
            .arg(force)
            .arg(&img)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "{mkfs} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        g.entries
            .push(journal::register(journal::Undo::Umount(dir.clone())).ok_or_else(full)?);
        let m = Command::new("mount")
            .arg("-o")
            .arg("loop")
            .arg(&img)
            .arg(&dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !m.status.success() {
            if let Some(e) = g.entries.pop() {
                e.forget();
            }
            return Err(format!(
                "mount -o loop failed: {}",
                String::from_utf8_lossy(&m.stderr).trim()
            ));
        }
        set_loop_read_ahead(&dir);
        Ok(g)
    }
}

/// The model reads ahead `VM_READAHEAD_PAGES` (128 KiB, the default
/// `read_ahead_kb`); a loop device may start with another (its backing
/// device's optimal I/O size: 2,560 KiB on the machine the probe was
/// written on), so the loop device under `dir` — the probe's own, gone with
/// its unmount — is set to 128 KiB before any file is opened (`f_ra` copies
/// it at open), and its `max_sectors_kb` to 1,280 (`BDI_IO_PAGES`, the
/// window limit of reads larger than 128 KiB). Best effort: without it only
/// readahead windows can differ.
fn set_loop_read_ahead(dir: &std::path::Path) {
    let Ok(out) = std::process::Command::new("findmnt")
        .args(["-n", "-o", "SOURCE"])
        .arg(dir)
        .output()
    else {
        return;
    };
    let src = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let Some(name) = src.strip_prefix("/dev/").filter(|n| n.starts_with("loop")) else {
        return;
    };
    // bdi->io_pages follows max_sectors_kb: 1,280 KiB, the model's 320 pages
    // (loop devices start there; set, so that a host default cannot differ).
    // First: applying the queue limits (blk_apply_bdi_limits) resets
    // read_ahead_kb to twice the optimal I/O size.
    let _ = fs::write(format!("/sys/block/{name}/queue/max_sectors_kb"), "1280");
    let _ = fs::write(format!("/sys/block/{name}/queue/read_ahead_kb"), "128");
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        // Unmounting a loop mount releases its (autoclear) loop device.
        while let Some(e) = self.entries.pop() {
            e.undo();
        }
    }
}

/// A tmpfs mounted with `opts` (e.g. `huge=always,size=16m`) in a private
/// directory for the guard's life (root); unmounted and removed on drop, also
/// after a signal or a killed run (see [`crate::journal`]).
pub struct TmpfsMount {
    /// Mount point.
    pub dir: std::path::PathBuf,
    /// Undo entries, newest last: the mount point, the mount.
    entries: Vec<journal::Entry>,
}

impl TmpfsMount {
    /// Mounts a tmpfs with `opts` at `parent/name`.
    pub fn new(parent: &std::path::Path, name: &str, opts: &str) -> Result<TmpfsMount, String> {
        let full = || "probe undo journal full".to_string();
        let dir = parent.join(name);
        let mut g = TmpfsMount {
            dir: dir.clone(),
            entries: vec![
                journal::register(journal::Undo::RemoveDir(dir.clone())).ok_or_else(full)?
            ],
        };
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        g.entries
            .push(journal::register(journal::Undo::Umount(dir.clone())).ok_or_else(full)?);
        let m = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "pinlab-probe"])
            .arg(&dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !m.status.success() {
            if let Some(e) = g.entries.pop() {
                e.forget();
            }
            return Err(format!(
                "mount -t tmpfs -o {opts} failed: {}",
                String::from_utf8_lossy(&m.stderr).trim()
            ));
        }
        Ok(g)
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        // The unmount is lazy: a mount still busy (a deferred io_uring
        // teardown) is detached now and released when the last user goes.
        while let Some(e) = self.entries.pop() {
            e.undo();
        }
    }
}

/// `struct fiemap_extent` (include/uapi/linux/fiemap.h).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct FiemapExtent {
    fe_logical: u64,
    fe_physical: u64,
    fe_length: u64,
    fe_reserved64: [u64; 2],
    fe_flags: u32,
    fe_reserved: [u32; 3],
}

/// `struct fiemap` with room for [`FIEMAP_EXTENTS`] extents.
#[repr(C)]
struct Fiemap {
    fm_start: u64,
    fm_length: u64,
    fm_flags: u32,
    fm_mapped_extents: u32,
    fm_extent_count: u32,
    fm_reserved: u32,
    fm_extents: [FiemapExtent; FIEMAP_EXTENTS],
}

const FIEMAP_EXTENTS: usize = 256;
/// `FS_IOC_FIEMAP` = `_IOWR('f', 11, struct fiemap)`.
const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
/// Extents whose data is not (or not yet) at `fe_physical`: FIEMAP_EXTENT_UNKNOWN,
/// _DELALLOC, _ENCODED, _DATA_ENCRYPTED, _NOT_ALIGNED, _DATA_INLINE,
/// _DATA_TAIL, _UNWRITTEN.
const FIEMAP_NOT_ON_DISK: u32 = 0x2 | 0x4 | 0x8 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800;

/// The first `len` bytes of `path` as they are on the disk (the filesystem
/// image `img` of its loop device), without writing any dirty page cache back
/// first (writeback already submitted is waited for): FIEMAP (no `FIEMAP_FLAG_SYNC`) maps each 512-byte sector to the
/// image; a hole, a delayed allocation or an unwritten extent reads as zeroes.
pub fn on_disk_bytes(
    path: &std::path::Path,
    img: &std::path::Path,
    len: u64,
) -> io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let f = fs::File::open(path)?;
    // Writeback already in flight (a close's auto_da_alloc flush, a
    // POSIX_FADV_DONTNEED) completes first, as the model's does within its
    // step; SYNC_FILE_RANGE_WAIT_BEFORE alone starts none.
    // SAFETY: sync_file_range on a descriptor we own.
    unsafe { libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WAIT_BEFORE) };
    let mut fm = Box::new(Fiemap {
        fm_start: 0,
        fm_length: len,
        fm_flags: 0,
        fm_mapped_extents: 0,
        fm_extent_count: FIEMAP_EXTENTS as u32,
        fm_reserved: 0,
        fm_extents: [FiemapExtent::default(); FIEMAP_EXTENTS],
    });
    // SAFETY: FS_IOC_FIEMAP fills the struct we own, up to fm_extent_count extents.
    if unsafe { libc::ioctl(f.as_raw_fd(), FS_IOC_FIEMAP, &mut *fm as *mut Fiemap) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let extents = &fm.fm_extents[..(fm.fm_mapped_extents as usize).min(FIEMAP_EXTENTS)];
    let image = fs::File::open(img)?;
    let mut out = vec![0u8; len as usize];
    for (k, sector) in out.chunks_mut(512).enumerate() {
        let off = k as u64 * 512;
        let Some(e) = extents
            .iter()
            .find(|e| e.fe_logical <= off && off < e.fe_logical + e.fe_length)
        else {
            continue;
        };
        if e.fe_flags & FIEMAP_NOT_ON_DISK != 0 {
            continue;
        }
        image.read_exact_at(sector, e.fe_physical + (off - e.fe_logical))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_executor_runs_on_one_cpu() {
        // sched_setaffinity(0) acts on the calling thread: this test's own.
        super::pin_to_one_cpu();
        // SAFETY: reading our own affinity into a zeroed cpu_set_t.
        let n = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
                0
            );
            libc::CPU_COUNT(&set)
        };
        assert_eq!(n, 1);
    }
}
