//! The coordinator side of a live replay: the executor loop each forked
//! process runs ([`serve`]), the reply pipe protocol, and [`run`], which
//! forks the executors, drives the trace one step at a time and collects each
//! step's result, the `nr_foll_pin_acquired` delta and the end view.

use super::*;

/// What a live run gave: each step's result, the (`nr_foll_pin_acquired`,
/// `nr_foll_pin_released`) deltas and the end view.
pub type LiveRun = (Vec<Option<String>>, (u64, u64), Vec<String>);

/// How long the released counter may lag the end of a trace: io_uring unpins
/// a closed ring's buffers from a kworker (`io_ring_exit_work`), and an exited
/// process's ring goes the same way, milliseconds after the step.
const RELEASE_SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

/// The reply prefix of an executor leaving at the scenario's `exit()`,
/// followed by its pid.
const EXITING: &str = "(exiting ";

/// How long [`wait_exited`] waits for an exiting executor.
const EXIT_WAIT_MS: i32 = 2000;

/// Waits until process `pid` has exited (its pidfd polls readable once the
/// whole thread group is dead or a zombie, which `do_exit` makes it after
/// `exit_mm` dropped the address space): without this the next step raced
/// the exit's unmapping (found replaying a hugetlb page the child shared —
/// the parent's fault ran before the child's exit freed the page). A process
/// already reaped, or one slower than `EXIT_WAIT_MS`, ends the wait.
fn wait_exited(pid: libc::pid_t) {
    // SAFETY: pidfd_open of a pid; the descriptor is closed below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        return;
    }
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polling then closing a descriptor we own.
    unsafe {
        libc::poll(&mut pfd, 1, EXIT_WAIT_MS);
        libc::close(fd);
    }
}

/// A pidfd of the coordinator, opened before it forks the executors (which
/// inherit it): it becomes readable when the coordinator exits, e.g. when an
/// interrupted probe restores the host and leaves. -1 when none.
static COORD_PIDFD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Waits for the next command on `fd` into `cmd`: false when the pipe ends or
/// the coordinator is gone. Every executor holds both ends of every actor's
/// pipes (threads and forked children serve other actors from them), so a
/// dead coordinator ends no read: without this an interrupted run left its
/// executors waiting forever, holding the trace's files (so the private
/// ext4's loop device stayed attached) and the probe's lock.
fn next_command(fd: RawFd, cmd: &mut [u8]) -> bool {
    let pidfd = COORD_PIDFD.load(std::sync::atomic::Ordering::Relaxed);
    if pidfd < 0 {
        return read_exact(fd, cmd);
    }
    loop {
        let mut fds = [
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: polling two descriptors of a local array.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n < 0 || fds[0].revents != 0 {
            break;
        }
        if fds[1].revents != 0 {
            return false;
        }
    }
    read_exact(fd, cmd)
}

/// The executor loop of actor `me` (a process, a forked child, or a thread
/// of one: threads share the executor state — rings, files, pipes — but each
/// actor binds its own variables): never returns.
fn serve(exec: Arc<Mutex<Exec<'static>>>, mut me: usize, pipes: Arc<Vec<Pipes>>) -> ! {
    loop {
        let mut cmd = [0u8; 5];
        if !next_command(pipes[me].cmd_r, &mut cmd) || cmd[0] == QUIT {
            // Reap our own children that already quit, then leave without
            // running destructors (rings stay registered until the fd closes).
            // SAFETY: non-blocking reaping and _exit (the whole process).
            unsafe {
                while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
                libc::_exit(0)
            }
        }
        let who = u16::from_le_bytes([cmd[1], cmd[2]]) as usize;
        let pc = u16::from_le_bytes([cmd[3], cmd[4]]) as usize;
        let mut ex = exec.lock().unwrap_or_else(|e| e.into_inner());
        if cmd[0] == VIEW {
            let v = ex.view(me);
            drop(ex);
            reply(pipes[me].rep_w, Some(&v));
            continue;
        }
        let call = ex.scn.actors[who].body[pc].call.clone();
        if cmd[0] == RUN {
            match call {
                Call::Fork { child } => {
                    // SAFETY: fork; the child continues this loop as the
                    // executor of `child` (other threads do not exist there).
                    let pid = unsafe { libc::fork() };
                    if pid == 0 {
                        ex.inherit(who, child);
                        me = child;
                        continue;
                    }
                    let (res, bind) = if pid < 0 {
                        (Some(last_err()), Some(Val::Failed))
                    } else {
                        (Some("= <handle>".into()), None)
                    };
                    ex.bind(who, pc, bind);
                    drop(ex);
                    reply(pipes[me].rep_w, res.as_deref());
                    continue;
                }
                Call::PthreadCreate { thread } => {
                    ex.inherit(who, thread);
                    // The thread's stack and allocator state are the
                    // executor's: at the bottom of the free area, not where
                    // the scenario's mappings are (`layout.rs`).
                    let held = super::layout::hold_executor_window();
                    let (e2, p2) = (exec.clone(), pipes.clone());
                    drop(ex);
                    // The new thread's first allocation sets up the
                    // allocator's per-thread state with an mmap of its own;
                    // made now, before the step ends, it cannot land in a
                    // range the scenario unmaps later (the model's address
                    // space has no executor memory: a register of that
                    // range would succeed on the kernel, found replaying a
                    // thread that registers after its process's munmap).
                    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
                    std::thread::spawn(move || {
                        drop(std::hint::black_box(vec![0u8; 64]));
                        let _ = ready_tx.send(());
                        serve(e2, thread, p2)
                    });
                    let _ = ready_rx.recv();
                    super::layout::release(held);
                    reply(pipes[me].rep_w, Some("= <handle>"));
                    continue;
                }
                Call::Exit => {
                    // The coordinator waits for this process to be gone
                    // (its mm torn down) before the next step: say which.
                    // SAFETY: getpid has no preconditions.
                    let pid = unsafe { libc::getpid() };
                    reply(pipes[me].rep_w, Some(&format!("{EXITING}{pid}")));
                    // SAFETY: the scenario's exit() (exit_group): leave now.
                    unsafe { libc::_exit(0) };
                }
                _ => {}
            }
        }
        let r = ex.run(who, pc);
        let res = match r {
            Ok((res, bind)) => {
                if cmd[0] == RUN {
                    ex.bind(who, pc, bind);
                }
                res
            }
            Err(e) => Some(format!("(executor error: {e})")),
        };
        drop(ex);
        reply(pipes[me].rep_w, res.as_deref());
    }
}

/// `syncfs` of the filesystem holding `dir`: whether it succeeded.
fn syncfs(dir: &std::path::Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.to_string_lossy().as_bytes()) else {
        return false;
    };
    // SAFETY: open + syncfs + close of our own directory.
    unsafe {
        let d = libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
        if d < 0 {
            return false;
        }
        let r = libc::syncfs(d);
        libc::close(d);
        r == 0
    }
}

fn reply(fd: RawFd, s: Option<&str>) {
    let mut b = Vec::new();
    match s {
        Some(s) => {
            b.push(1);
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        }
        None => b.push(0),
    }
    write_all(fd, &b);
}

/// How long the coordinator waits for a step's answer: every executor holds
/// every pipe (they are all forked from the coordinator), so a dead one is
/// noticed by its silence, not by end-of-file.
const ANSWER_TIMEOUT_MS: i32 = 3000;

fn read_reply(fd: RawFd) -> Option<Option<String>> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polling one descriptor we own.
    if unsafe { libc::poll(&mut pfd, 1, ANSWER_TIMEOUT_MS) } != 1 {
        return None;
    }
    let mut st = [0u8; 1];
    if !read_exact(fd, &mut st) {
        return None;
    }
    if st[0] == 0 {
        return Some(None);
    }
    let mut l = [0u8; 4];
    if !read_exact(fd, &mut l) {
        return None;
    }
    let mut b = vec![0u8; u32::from_le_bytes(l) as usize];
    if !read_exact(fd, &mut b) {
        return None;
    }
    Some(Some(String::from_utf8_lossy(&b).into_owned()))
}

/// Runs `trace` on the kernel (`pred` gives each step's statement); returns each
/// step's result, the pin counter deltas over the trace and the end view (see
/// [`crate::replay::end_view`]). The released delta is read once it reaches
/// `want_released` (the model's), or after `RELEASE_SETTLE`: the kernel
/// releases some pins asynchronously.
pub fn run(
    scn: &Scenario,
    trace: &[Action],
    pred: &[crate::replay::Predicted],
    files: &Files,
    want_released: u64,
) -> Result<LiveRun, String> {
    // SAFETY: makes orphaned executors our children, so that we reap them.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut pipes = Vec::new();
    for _ in &scn.actors {
        let (cmd_r, cmd_w) = pipe()?;
        let (rep_r, rep_w) = pipe()?;
        pipes.push(Pipes {
            cmd_r,
            cmd_w,
            rep_r,
            rep_w,
        });
    }
    // SAFETY: pidfd_open of this process; the descriptor is closed below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) } as i32;
    COORD_PIDFD.store(pidfd, std::sync::atomic::Ordering::Relaxed);
    let close_all = |pipes: &[Pipes]| {
        let pidfd = COORD_PIDFD.swap(-1, std::sync::atomic::Ordering::Relaxed);
        if pidfd >= 0 {
            // SAFETY: closing the pidfd this run opened.
            unsafe { libc::close(pidfd) };
        }
        for p in pipes {
            // SAFETY: closing the pipes this run created.
            unsafe {
                libc::close(p.cmd_r);
                libc::close(p.cmd_w);
                libc::close(p.rep_r);
                libc::close(p.rep_w);
            }
        }
    };
    let (a0, r0) = sys::pin_counters().map_err(|e| format!("pin counters: {e}"))?;
    for (i, a) in scn.actors.iter().enumerate() {
        if a.kind != Kind::Process {
            continue;
        }
        // SAFETY: fork of the (single-threaded) probe; the child only runs the
        // executor loop and leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            close_all(&pipes);
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            crate::sys::pin_to_one_cpu();
            if let Some((uid, memlock)) = files.user {
                if crate::sys::become_unprivileged(uid, memlock).is_err() {
                    // SAFETY: leaving the forked executor; the coordinator
                    // sees no answer and skips the trace.
                    unsafe { libc::_exit(125) };
                }
            }
            // The model's address-space layout (`layout.rs`): without it the
            // trace's placements are not the model's to compare.
            if super::layout::model_layout().is_err() {
                // SAFETY: leaving the forked executor; the coordinator sees
                // no answer and skips the trace.
                unsafe { libc::_exit(125) };
            }
            // The executor process lives until it _exits: its own copy of the
            // scenario may as well live forever.
            let scn: &'static Scenario = Box::leak(Box::new(scn.clone()));
            let exec = Exec {
                scn,
                vars: vec![vec![None; scn.vars.len()]; scn.actors.len()],
                cur: i,
                rings: Vec::new(),
                files: files.clone(),
                lens: vec![vec![None; scn.vars.len()]; scn.actors.len()],
                mr_access: Default::default(),
                closed_fds: Default::default(),
                pipes: Vec::new(),
            };
            serve(Arc::new(Mutex::new(exec)), i, Arc::new(pipes.clone()));
        }
    }
    let mut alive = vec![true; scn.actors.len()];
    // Executors running: the processes, and children once forked.
    let mut started: Vec<bool> = scn.actors.iter().map(|a| a.kind == Kind::Process).collect();
    let mut results = Vec::new();
    // Why the trace cannot be replayed faithfully, found mid-way: the run
    // stops, cleans up as usual and is skipped with this reason.
    let mut unfaithful: Option<String> = None;
    for a in trace {
        let i = a.actor as usize;
        let pc = pred[results.len()].pc;
        let call = &scn.actors[i].body[pc].call;
        if !pred[results.len()].ends {
            // An inner step of a split statement: the call runs at its last step.
            results.push(None);
            continue;
        }
        let (target, kind) = match (scn.actors[i].kind, call) {
            (_, Call::Wait { .. }) => {
                results.push(None);
                continue;
            }
            (Kind::Kthread, Call::IoRingExitWork) => {
                // The kernel's kworker frees the ring by itself: wait until
                // the pins it held are released (as many as the model says).
                let want = pred[results.len()].released;
                let until = std::time::Instant::now() + RELEASE_SETTLE;
                let freed = loop {
                    let (_, r) = sys::pin_counters().map_err(|e| format!("pin counters: {e}"))?;
                    if r - r0 >= want {
                        break true;
                    }
                    if std::time::Instant::now() >= until {
                        break false;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                };
                results.push(if freed {
                    pred[results.len()].result.clone()
                } else {
                    Some(format!(
                        "= not freed: nr_foll_pin_released did not reach +{want} within {} ms",
                        RELEASE_SETTLE.as_millis()
                    ))
                });
                continue;
            }
            (Kind::Kthread, Call::Writeback | Call::Sync) => {
                // The pass has no return value; its effect shows in later steps.
                if !syncfs(&files.root) {
                    unfaithful = Some("syncfs of the private filesystem failed".into());
                    break;
                }
                results.push(None);
                continue;
            }
            (Kind::Peer, Call::RdmaWrite { mr, .. } | Call::RdmaRead { mr }) => (mr.actor, DEVICE),
            _ => (i, RUN),
        };
        let predicted = pred[results.len()].result.as_deref().unwrap_or("");
        if !alive[target] && kind == DEVICE && predicted.starts_with("= IBV_WC_SUCCESS") {
            // The model's MR outlives the process that registered it (a child
            // inherited the verbs context); the emulating io_uring ring died
            // with that process.
            unfaithful = Some(format!(
                "step {}: the MR outlives the process that registered it, and the io_uring ring standing in for it died with that process",
                results.len() + 1
            ));
            break;
        }
        if !alive[target] {
            results.push(Some(match kind {
                DEVICE => "= IBV_WC_REM_ACCESS_ERR".to_string(),
                _ => "= -EFAULT".to_string(),
            }));
            continue;
        }
        let mut cmd = vec![kind];
        cmd.extend_from_slice(&(i as u16).to_le_bytes());
        cmd.extend_from_slice(&(pc as u16).to_le_bytes());
        write_all(pipes[target].cmd_w, &cmd);
        match read_reply(pipes[target].rep_r) {
            Some(Some(r)) if r.starts_with(&format!("(executor error: {UNFAITHFUL}")) => {
                let why = r
                    .trim_start_matches(&format!("(executor error: {UNFAITHFUL}"))
                    .trim_end_matches(')');
                unfaithful = Some(format!("step {}: {why}", results.len() + 1));
                break;
            }
            Some(mut r) => {
                if matches!(call, Call::Exit) {
                    alive[target] = false;
                    let pid = r.as_deref().and_then(|s| s.strip_prefix(EXITING));
                    if let Some(pid) = pid.and_then(|p| p.parse().ok()) {
                        wait_exited(pid);
                    }
                    // exit() has no result of its own.
                    r = None;
                }
                if let Call::Fork { child } = call {
                    started[*child] = r.as_deref().is_some_and(|x| !x.starts_with("= -"));
                }
                results.push(r);
            }
            None => {
                // The executor died: a fault in a CPU access (SIGSEGV).
                alive[target] = false;
                results.push(Some("= -EFAULT".into()));
            }
        }
    }
    let settle = std::time::Instant::now() + RELEASE_SETTLE;
    let (a1, r1) = loop {
        let (a, r) = sys::pin_counters().map_err(|e| format!("pin counters: {e}"))?;
        if r - r0 >= want_released || std::time::Instant::now() >= settle {
            break (a, r);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let mut view = Vec::new();
    for (i, a) in scn.actors.iter().enumerate() {
        if !(started[i]
            && alive[i]
            && matches!(a.kind, Kind::Process | Kind::Child { thread: false, .. }))
        {
            continue;
        }
        write_all(pipes[i].cmd_w, &[VIEW, 0, 0, 0, 0]);
        if let Some(Some(v)) = read_reply(pipes[i].rep_r) {
            view.extend(v.lines().map(str::to_string));
        }
    }
    // The on-disk view first: closing a file truncated to zero makes ext4
    // write it back (auto_da_alloc, `ext4_release_file`), so reading a file
    // through a descriptor of our own would change what is on disk.
    let mut disk = Vec::new();
    if let Some(img) = &files.image {
        for path in crate::replay::file_paths(scn) {
            if path.starts_with("/dev/shm/") {
                continue;
            }
            let p = files.path(&path);
            let Ok(len) = std::fs::metadata(&p).map(|m| m.len()) else {
                continue;
            };
            if len == 0 {
                continue;
            }
            let len = len.div_ceil(PAGE as u64) * PAGE as u64;
            let desc = match sys::on_disk_bytes(&p, img, len) {
                Ok(b) => describe_pages(&b),
                Err(e) => format!("unreadable ({e})"),
            };
            disk.push(format!("disk {path}: {desc}"));
        }
    }
    for path in crate::replay::file_paths(scn) {
        let desc = match std::fs::read(files.path(&path)) {
            Err(_) => "absent".to_string(),
            Ok(b) if b.is_empty() => "empty".into(),
            Ok(b) => describe_pages(&b),
        };
        view.push(format!("file {path}: {desc}"));
    }
    view.extend(disk);
    // Children first, so that a parent's exit does not race its child's quit.
    for (i, p) in pipes.iter().enumerate().rev() {
        if alive[i] {
            write_all(p.cmd_w, &[QUIT, 0, 0, 0, 0]);
        }
    }
    close_all(&pipes);
    // SAFETY: reaping every executor (ours, or orphans re-parented to us).
    unsafe { while libc::waitpid(-1, std::ptr::null_mut(), 0) > 0 {} };
    if let Ok((a, _)) = sys::pin_counters() {
        sys::wait_balanced(a);
    }
    if let Some(why) = unfaithful {
        return Err(why);
    }
    Ok((results, (a1 - a0, r1 - r0), view))
}
