//! Executing one statement of one actor: the syscall, its result, the bound
//! variable, a statement's phase when it sleeps, and the notes for traces.

use super::*;

impl Bound<'_> {
    /// Executes one step in place and describes it.
    pub fn exec(&self, s: &mut State, actor: usize) -> StepInfo {
        self.exec_as(s, actor, true)
    }

    /// Executes one step in place; `describe` renders the statement's text and
    /// result, with what a read returned (traces need them, the search does not:
    /// it discards the [`StepInfo`], and rendering was ~5 % of a search).
    ///
    /// Every step ends with the invalidations its page-table changes imply
    /// ([`Machine::mmu_notifier_sync`]), a process's exit (its own, a fault's
    /// SIGSEGV, a SIGKILL) included: `exit_mmap` calls `mmu_notifier_release`
    /// before it unmaps anything, so a device never sees a dead process's
    /// pages through its PTEs, and nothing is left pending for whichever
    /// actor runs next (a `wait`, which partial-order reduction takes to touch
    /// no machine state). Sub-steps of fork and GUP-fast too.
    pub(super) fn exec_as(&self, s: &mut State, actor: usize, describe: bool) -> StepInfo {
        let mut info = self.exec_step(s, actor, describe);
        info.notes.extend(s.m.mmu_notifier_sync());
        info
    }

    /// One step of `actor` (see [`Bound::exec_as`]), before the notifiers.
    fn exec_step(&self, s: &mut State, actor: usize, describe: bool) -> StepInfo {
        // The file system before the step: a step whose only change to it
        // is forgotten again (forget_unreadable_readahead) hands it back.
        let fs_before = s.m.fs.clone();
        // A result or a note, rendered for traces only (the search discards
        // them). Only for texts whose arguments have no side effect.
        macro_rules! say {
            ($($t:tt)*) => {
                if describe {
                    format!($($t)*)
                } else {
                    String::new()
                }
            };
        }
        let describe_all = |m: &Machine, vs: &[pinlab_model::Ver]| {
            if describe {
                describe_all(m, vs)
            } else {
                String::new()
            }
        };
        if let Some(info) = self.substep(s, actor) {
            return info;
        }
        let had_sub = s.actors[actor].sub.is_some();
        let fast_end = describe.then(|| self.gup_fast_end(s, actor)).flatten();
        let fork_plan = self.take_substep(s, actor);
        if had_sub {
            s.actors[actor].phase = 0;
        }
        let prog = &self.scn.actors[actor];
        let pc = s.actors[actor].pc as usize;
        let op = &prog.body[pc];
        let mut info = StepInfo {
            text: match (&op.call, had_sub) {
                _ if !describe => String::new(),
                (Call::Fork { .. }, true) => format!(
                    "{} [fork: copy_page_range, write_protect_seq end, mmap_write_unlock]",
                    op.text
                ),
                (_, true) => format!(
                    "{} [gup_fast: {}, rest of the call]",
                    op.text,
                    fast_end.as_deref().unwrap_or("end of the walk")
                ),
                _ => op.text.clone(),
            },
            ..Default::default()
        };
        let policy = self.policy;
        let me = s.actors[actor].clone();
        let pid = me.pid;
        let wid = |tag: char| WriteId {
            actor: self.scn.twin[actor],
            pc: pc as u16,
            tag,
        };
        let mut bind: Option<Value> = None;
        let mut kill = false;
        // The signal a faulting CPU access dies of (`VM_FAULT_SIGBUS` or
        // `VM_FAULT_SIGSEGV`, as `mm_fault_error` delivers it).
        let mut signal = "SIGSEGV";
        let mut forked: Option<(usize, Pid)> = None;
        let mut notes: Vec<String> = Vec::new();
        let mut next_phase: Option<u8> = None;
        let mut held = me.held;
        let mut fixed = me.fixed.clone();
        let phase = me.phase;
        let mut sig_consumed = false;
        let mut signal_to: Option<(Pid, u64)> = None;
        let send_to = match &op.call {
            Call::SendFd { to, .. } => s.actors[*to].pid,
            _ => None,
        };
        let kill_actor_pid = match &op.call {
            Call::Kill { actor: Some(t), .. } => s.actors[*t].pid,
            _ => None,
        };
        let target_pid = match &op.call {
            Call::Gup {
                target: Some(t), ..
            } => s.actors[*t].pid,
            _ => None,
        };
        let peer_mr = match &op.call {
            Call::RdmaWrite { mr, .. }
            | Call::RdmaRead { mr }
            | Call::GpuWrite { svm: mr, .. }
            | Call::GpuRead { svm: mr } => s.actors[mr.actor].vars[mr.slot],
            _ => None,
        };
        // Ok(Some(v)): success with a value to print; Err(e): syscall error.
        let res: Result<Option<String>, Errno> = (|| {
            let m = &mut s.m;
            let p = || pid.ok_or(Errno::EINVAL);
            // A statement whose argument names a failed call is skipped, as a
            // program checking its return values would (not an error of its own).
            let failed =
                |arg: Arg| matches!(arg, Arg::Var(slot, _) if me.vars[slot] == Some(Value::Failed));
            let v = |arg: Arg| {
                if failed(arg) {
                    Err(SKIPPED)
                } else {
                    self.val(&me, arg).ok_or(Errno::EFAULT)
                }
            };
            let fid = |arg: Arg| match self.obj(&me, arg) {
                Some(Value::File(f)) => Ok(f),
                Some(Value::Failed) => Err(SKIPPED),
                _ => Err(Errno::EBADF),
            };
            match op.call {
                Call::Open { ref path, flags } => {
                    let f = m.open(policy, p()?, path, flags)?;
                    bind = Some(Value::File(f));
                    Ok(Some(say!(
                        "fd (open file {f}, inode {})",
                        m.fs.files[f].ino
                    )))
                }
                Call::MemfdCreate {
                    ref name,
                    hugetlb,
                    sealing,
                } => {
                    let f = m.memfd_create_with(p()?, name, hugetlb, sealing)?;
                    bind = Some(Value::File(f));
                    Ok(Some(say!(
                        "fd (open file {f}, inode {})",
                        m.fs.files[f].ino
                    )))
                }
                Call::MemfdSecret => {
                    let f = m.sys_memfd_secret(policy, p()?)?;
                    bind = Some(Value::File(f));
                    Ok(Some(say!(
                        "fd (open file {f}, inode {})",
                        m.fs.files[f].ino
                    )))
                }
                Call::Close { fd } => match self.obj(&me, fd) {
                    Some(Value::Ring(r)) => {
                        m.io_uring_close(policy, p()?, r).map(|_| Some("0".into()))
                    }
                    _ => {
                        let file = fid(fd)?;
                        m.close(p()?, file)?;
                        notes.extend(m.ext4_release_file(policy, file));
                        Ok(Some("0".into()))
                    }
                },
                Call::MmapFile {
                    len,
                    prot,
                    flags,
                    fd,
                    off,
                } => {
                    let addr = m.mmap_file(p()?, v(len)?, prot, flags, fid(fd)?, v(off)?)?;
                    if m.mmap_populates(p()?, flags) {
                        m.mm_populate(policy, p()?, addr, v(len)?);
                    }
                    bind = Some(Value::Int(addr));
                    Ok(Some(say!("{addr:#x}")))
                }
                Call::Ftruncate { fd, len } => {
                    let (pid, f, newlen) = (p()?, fid(fd)?, v(len)?);
                    if phase == 0 {
                        m.do_ftruncate_check(pid, f)?;
                        let old = m.fs.inodes[m.file(pid, f)?.ino as usize].i_size;
                        if newlen < old
                            && m.dax_truncate_prepare(
                                policy,
                                pid,
                                f,
                                newlen.div_ceil(PAGE_SIZE),
                                u64::MAX,
                            )?
                        {
                            next_phase = Some(1);
                            return Ok(Some(
                                "[dax_break_layout: pages busy, waiting for them to go idle]"
                                    .into(),
                            ));
                        }
                    } else if me.sigpending {
                        sig_consumed = true;
                        return Err(Errno::EINTR);
                    }
                    m.ftruncate(policy, pid, f, newlen)
                        .map(|_| Some("0".into()))
                }
                Call::Fallocate { fd, mode, off, len }
                    if phase == 0
                        && mode == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                        // vfs_fallocate checks the arguments first.
                        && m.vfs_fallocate_check(p()?, fid(fd)?, v(off)?, v(len)?).is_ok()
                        && m.dax_truncate_prepare(
                            policy,
                            p()?,
                            fid(fd)?,
                            v(off)?.div_ceil(PAGE_SIZE),
                            v(off)?.saturating_add(v(len)?) / PAGE_SIZE,
                        )? =>
                {
                    next_phase = Some(1);
                    Ok(Some(
                        "[dax_break_layout: pages busy, waiting for them to go idle]".into(),
                    ))
                }
                Call::Fallocate { .. } if phase == 1 && me.sigpending => {
                    sig_consumed = true;
                    Err(Errno::EINTR)
                }
                // MADV_REMOVE punches through the mapping's file: on fs-dax
                // it waits for busy pages as fallocate does.
                Call::Madvise {
                    addr,
                    len,
                    advice: pinlab_model::vm::uapi::MADV_REMOVE,
                } if phase == 0 && m.madvise_remove_dax_wait(policy, p()?, v(addr)?, v(len)?) => {
                    next_phase = Some(1);
                    Ok(Some(
                        "[dax_break_layout: pages busy, waiting for them to go idle]".into(),
                    ))
                }
                Call::Madvise {
                    advice: pinlab_model::vm::uapi::MADV_REMOVE,
                    ..
                } if phase == 1 && me.sigpending => {
                    sig_consumed = true;
                    Err(Errno::EINTR)
                }
                Call::SetLease { fd, take } => {
                    if !policy.layout_leases() {
                        // No F_LAYOUT lease type without the proposal.
                        return Err(Errno::EINVAL);
                    }
                    let (pid, f) = (p()?, fid(fd)?);
                    if take {
                        m.set_layout_lease(pid, f)
                    } else {
                        m.release_layout_lease(pid, f)
                    }
                    .map(|_| Some("0".into()))
                }
                Call::AddSeals { fd, seals } => m
                    .memfd_add_seals(p()?, fid(fd)?, seals)
                    .map(|_| Some("0".into())),
                Call::GetSeals { fd } => {
                    let seals = m.memfd_get_seals(p()?, fid(fd)?)?;
                    bind = Some(Value::Int(u64::from(seals)));
                    Ok(Some(pinlab_model::fs::memfd::seal_names(seals)))
                }
                Call::SetImmutableLayout { fd } => {
                    if !policy.immutable_layout() {
                        return Err(Errno::EINVAL);
                    }
                    m.set_immutable_layout(p()?, fid(fd)?)
                        .map(|_| Some("0".into()))
                }
                Call::Kill { actor, var, sig } => {
                    let target = match (actor, var) {
                        (Some(_), _) => kill_actor_pid,
                        (_, Some(a)) => match self.obj(&me, a) {
                            Some(Value::Pid(p)) => Some(p),
                            Some(Value::Failed) => return Err(SKIPPED),
                            _ => None,
                        },
                        _ => None,
                    };
                    let t = target.filter(|t| m.alive(*t)).ok_or(Errno::ESRCH)?;
                    signal_to = Some((t, sig));
                    Ok(Some("0".into()))
                }
                Call::SendFd { what, .. } => {
                    let to = send_to.filter(|t| m.alive(*t)).ok_or(Errno::ESRCH)?;
                    match self.obj(&me, what) {
                        Some(Value::Mr(id)) => m.dev.mrs[id].holders.insert(to),
                        Some(Value::Ring(id)) => m.dev.rings[id].holders.insert(to),
                        Some(Value::Pipe(id)) => m.dev.pipes[id].holders.insert(to),
                        Some(Value::File(id)) => m.fs.files[id].holders.insert(to),
                        Some(Value::Failed) => return Err(SKIPPED),
                        _ => return Err(Errno::EBADF),
                    };
                    Ok(Some("0 (SCM_RIGHTS)".into()))
                }
                Call::GpuBind { addr, len } => {
                    let id = m.mmu_interval_notifier_insert(
                        pinlab_model::notifier::MirrorKind::Gpu,
                        p()?,
                        v(addr)?,
                        v(len)?,
                        true,
                    )?;
                    bind = Some(Value::Mirror(id));
                    Ok(Some(say!("svm mirror {id}")))
                }
                Call::FilePins { ref path } => {
                    let all = m.file_pins();
                    for (pid, owner, file) in &all {
                        notes.push(say!(
                            "/proc/{pid}/file_pins ({}): {owner} -> {file}",
                            m.procs[*pid as usize].name
                        ));
                    }
                    match all.iter().find(|(_, _, f)| *f == *path) {
                        Some((pid, _, _)) => {
                            bind = Some(Value::Pid(*pid));
                            Ok(Some(say!("{pid} ({})", m.procs[*pid as usize].name)))
                        }
                        None => Err(Errno::ESRCH),
                    }
                }
                Call::Fallocate { fd, mode, off, len } => m
                    .fallocate(policy, p()?, fid(fd)?, mode, v(off)?, v(len)?)
                    .map(|_| Some("0".into())),
                Call::FileWrite { fd, tag, len, off } => {
                    let off = match off {
                        Some(o) => Some(v(o)?),
                        None => None,
                    };
                    let (pid, file) = (p()?, fid(fd)?);
                    let n = m.file_write(policy, pid, file, off, v(len)?, wid(tag))?;
                    Ok(Some(n.to_string()))
                }
                Call::FileWriteBuf { fd, buf, len, off } => {
                    // After the first step the write goes on by its handle,
                    // whatever happens to the descriptor.
                    let w = pinlab_model::fs::write::UserWrite {
                        pid: p()?,
                        file: if phase == 0 {
                            fid(fd)?
                        } else {
                            fid(fd).unwrap_or(usize::MAX)
                        },
                        off: match off {
                            Some(o) => Some(v(o)?),
                            None => None,
                        },
                        len: v(len)?,
                        buf: v(buf)?,
                        wid: wid('?'),
                    };
                    if phase == 0 && !m.dio_goes_to_bio(w.pid, w.file) {
                        m.file_write_user(policy, &w).map(|n| Some(n.to_string()))
                    } else {
                        use pinlab_model::fs::write::DioWriteStep;
                        let st = m.dio_write_step(policy, &w, phase, &mut held)?;
                        next_phase = st.next_phase();
                        Ok(Some(match st {
                            DioWriteStep::Pinned(n) => say!("[DIO: {n} pages pinned]"),
                            DioWriteStep::Dma => say!("[DIO: device reads the buffer]"),
                            DioWriteStep::Done(n) => say!("{n} [DIO: unpin_user_pages]"),
                            DioWriteStep::Buffered(n) => {
                                say!("{n} [DIO: invalidation failed, written buffered]")
                            }
                        }))
                    }
                }
                Call::FileRead {
                    fd,
                    buf: None,
                    len,
                    off,
                } => {
                    let (pid, file, off) = (p()?, fid(fd)?, v(off)?);
                    let vs = m.file_read(policy, pid, file, off, v(len)?)?;
                    // A direct read pins the caller's buffer for the mapped pages.
                    if m.dio_goes_to_bio(pid, file) {
                        let ino = m.file(pid, file)?.ino;
                        let first = off / PAGE_SIZE;
                        let mapped = (first..first + vs.len() as u64)
                            .filter(|&i| m.dio_mapped(ino, i))
                            .count();
                        m.dio_private_buffer(policy, mapped as u64);
                    }
                    Ok(Some(describe_all(m, &vs)))
                }
                Call::FileRead {
                    fd,
                    buf: Some(b),
                    len,
                    off,
                } => {
                    let pid = p()?;
                    // A direct read in progress holds its own reference to
                    // the open file (fdget): a close meanwhile does not end it.
                    let of = if phase == 0 {
                        m.vfs_read_check(pid, fid(fd)?)?;
                        m.file(pid, fid(fd)?)?.clone()
                    } else {
                        m.fs.files.get(fid(fd)?).cloned().ok_or(Errno::EBADF)?
                    };
                    let count = pinlab_model::fs::rw_verify_area(v(off)?, v(len)?)?;
                    let (first, last) =
                        (v(off)? / PAGE_SIZE, (v(off)? + count).div_ceil(PAGE_SIZE));
                    let ext4 = m.fs.inodes[of.ino as usize].kind == pinlab_model::fs::FsKind::Ext4;
                    let below_eof = v(off)? < m.fs.inodes[of.ino as usize].i_size;
                    if of.direct && ext4 && phase == 0 && below_eof {
                        // Before a direct read the dirty page cache of its
                        // range goes to disk (kiocb_write_and_wait); one at
                        // or past EOF returns 0 before that (__iomap_dio_rw).
                        notes.extend(m.kiocb_write_and_wait(policy, of.ino, first, last));
                        if m.dio_read_misaligned(of.ino, v(off)?, count, v(b)?) {
                            return Err(Errno::EINVAL);
                        }
                        if let Some(k) = m.dio_read_delalloc(of.ino, v(off)?, count) {
                            // iomap submitted the mapped pages before the
                            // delayed extent: they are pinned, read into the
                            // buffer and unpinned, then the read fails -EIO.
                            let tags: Vec<char> = (first..first + k)
                                .map_while(|i| m.stored_page_data(of.ino, i))
                                .map(|x| m.tag_of(x))
                                .collect();
                            let holes: Vec<bool> = (first..first + tags.len() as u64)
                                .map(|i| !m.dio_mapped(of.ino, i))
                                .collect();
                            let mut h = None;
                            for ph in 0..3 {
                                m.dio_read_step(
                                    policy,
                                    pid,
                                    v(b)?,
                                    &tags,
                                    &holes,
                                    0,
                                    wid('?'),
                                    ph,
                                    &mut h,
                                )?;
                            }
                            return Err(Errno::EIO);
                        }
                    }
                    // What the read returns: a direct read on ext4 reads the
                    // blocks (at its DMA step, what they hold then), anything
                    // else the page cache.
                    let tags: Vec<char> = (first..last)
                        .map_while(|i| {
                            if of.direct && ext4 {
                                m.stored_page_data(of.ino, i)
                            } else {
                                m.file_page_data(of.ino, i)
                            }
                        })
                        .map(|x| m.tag_of(x))
                        .collect();
                    if of.direct {
                        // Direct I/O: iov_iter_extract_pages pins the buffer, the device
                        // DMAs, bio_release_pages unpins dirty: three steps.
                        use pinlab_model::dev::protocol::DioStep;
                        // iomap (ext4): past EOF the request is a hole that
                        // `iomap_dio_hole_iter` zero-fills in the user buffer.
                        let past_eof = if ext4 {
                            (last - first).saturating_sub(tags.len() as u64)
                        } else {
                            0
                        };
                        let holes: Vec<bool> = (first..first + tags.len() as u64)
                            .map(|i| ext4 && !m.dio_mapped(of.ino, i))
                            .collect();
                        let st = m.dio_read_step(
                            policy,
                            pid,
                            v(b)?,
                            &tags,
                            &holes,
                            past_eof,
                            wid('?'),
                            phase,
                            &mut held,
                        )?;
                        next_phase = st.next_phase();
                        Ok(Some(match st {
                            DioStep::Pinned(n) => say!("[DIO: {n} pages pinned]"),
                            DioStep::Dma => {
                                say!("[DIO: device DMA '{}']", tags.iter().collect::<String>())
                            }
                            DioStep::Unpinned => say!(
                                "{} [DIO: unpin_user_pages_dirty_lock]",
                                tags.len() as u64 * PAGE_SIZE
                            ),
                        }))
                    } else {
                        // filemap_read: the range comes in through readahead.
                        m.filemap_read_ahead(policy, fid(fd)?, v(off)?, count);
                        for i in first..first + tags.len() as u64 {
                            let x = m.file_page_data(of.ino, i).unwrap_or(0);
                            m.observe_file(pid, of.ino, i, x);
                        }
                        // filemap_read: copy_page_to_iter page by page; a
                        // fault ends the read without a signal: the bytes
                        // copied, or -EFAULT when none.
                        match m.copy_to_user_tags(policy, pid, v(b)?, &tags, wid('?')) {
                            0 if !tags.is_empty() => Err(Errno::EFAULT),
                            n => Ok(Some((n as u64 * PAGE_SIZE).to_string())),
                        }
                    }
                }
                Call::Fsync { fd } => {
                    let ino = m.file(p()?, fid(fd)?)?.ino;
                    notes = m.sync_fs(policy, Some(ino));
                    Ok(Some("0".into()))
                }
                Call::Fadvise {
                    fd,
                    off,
                    len,
                    advice,
                } => {
                    // A pipe is a FIFO (ESPIPE); io_uring's anonymous inode
                    // ignores the advice.
                    match self.obj(&me, fd) {
                        Some(Value::Pipe(_)) => return Err(Errno::ESPIPE),
                        Some(Value::Ring(r)) => {
                            m.io_uring_fd(p()?, r)?;
                            pinlab_model::fs::fadvise::fadvise_ignored(v(len)?, advice)?;
                        }
                        _ => {
                            let f = fid(fd)?;
                            m.file(p()?, f)?;
                            notes = m.vfs_fadvise(policy, f, v(off)?, v(len)?, advice)?;
                        }
                    }
                    Ok(Some("0".into()))
                }
                Call::Readahead { fd, off, count } => {
                    // Neither a pipe (its read end) nor io_uring's anonymous
                    // inode is a regular file.
                    match self.obj(&me, fd) {
                        Some(Value::Pipe(_)) => return Err(Errno::EINVAL),
                        Some(Value::Ring(r)) => {
                            m.io_uring_fd(p()?, r)?;
                            return Err(Errno::EINVAL);
                        }
                        _ => {
                            notes = m.ksys_readahead(policy, p()?, fid(fd)?, v(off)?, v(count)?)?
                        }
                    }
                    Ok(Some("0".into()))
                }
                Call::Sync => {
                    notes = m.sync_fs(policy, None);
                    Ok(None)
                }
                Call::DropCaches => Ok(Some(format!("{} folios evicted", m.drop_caches()))),
                Call::Lseek { fd, off, whence } => m
                    .lseek(p()?, fid(fd)?, v(off)?, whence)
                    .map(|n| Some(n.to_string())),
                Call::Writeback => {
                    let (n, more) = m.writeback_step(policy, phase);
                    notes = n;
                    next_phase = more.then_some(1);
                    Ok(Some(
                        if phase == 0 {
                            "[submitted]"
                        } else {
                            "[I/O completed]"
                        }
                        .into(),
                    ))
                }
                Call::Reclaim => {
                    notes = m.reclaim(policy);
                    Ok(None)
                }
                Call::IoRingExitWork => {
                    // The kworker stays at its one statement.
                    next_phase = Some(0);
                    let r = m.io_ring_exit_work(policy).ok_or(Errno::EINVAL)?;
                    Ok(Some(say!("ring {r} freed")))
                }
                Call::Mmap {
                    len,
                    prot,
                    flags,
                    fixed,
                } => {
                    let addr = match fixed {
                        Some(a) => {
                            // MAP_FIXED unmaps what was there (fput of each vm_file).
                            let vm_files = m.mapped_files(p()?);
                            let addr = m.mmap_anon_fixed(p()?, v(a)?, v(len)?, prot, flags)?;
                            notes.extend(m.fput_unmapped(policy, vm_files));
                            addr
                        }
                        None => m.mmap_anon(p()?, v(len)?, prot, flags)?,
                    };
                    if m.mmap_populates(p()?, flags) {
                        m.mm_populate(policy, p()?, addr, v(len)?);
                    }
                    bind = Some(Value::Int(addr));
                    Ok(Some(say!("{addr:#x}")))
                }
                Call::Munmap { addr, len } => {
                    let vm_files = m.mapped_files(p()?);
                    m.munmap(p()?, v(addr)?, v(len)?)?;
                    notes.extend(m.fput_unmapped(policy, vm_files));
                    Ok(Some("0".into()))
                }
                Call::Mremap {
                    addr,
                    old_len,
                    new_len,
                    flags,
                    new_addr,
                } => {
                    let to = match new_addr {
                        Some(a) => v(a)?,
                        None => 0,
                    };
                    let vm_files = m.mapped_files(p()?);
                    let addr =
                        m.sys_mremap(policy, p()?, v(addr)?, v(old_len)?, v(new_len)?, flags, to)?;
                    notes.extend(m.fput_unmapped(policy, vm_files));
                    bind = Some(Value::Int(addr));
                    Ok(Some(say!("{addr:#x}")))
                }
                Call::Mprotect { addr, len, prot } => m
                    .mprotect(policy, p()?, v(addr)?, v(len)?, prot)
                    .map(|_| Some("0".into())),
                Call::Madvise { addr, len, advice } => m
                    .sys_madvise(policy, p()?, v(addr)?, v(len)?, advice)
                    .map(|_| Some("0".into())),
                Call::Mlock {
                    addr, len, flags, ..
                } => m
                    .sys_mlock2(policy, p()?, v(addr)?, v(len)?, flags)
                    .map(|_| Some("0".into())),
                Call::Munlock { addr, len } => m
                    .sys_munlock(p()?, v(addr)?, v(len)?)
                    .map(|_| Some("0".into())),
                Call::Mincore { addr, len } => m
                    .mincore(p()?, v(addr)?, v(len)?)
                    .map(|vec| Some(pinlab_model::vm::mincore::describe_mincore(&vec))),
                Call::Mlockall { flags } => m
                    .sys_mlockall(policy, p()?, flags)
                    .map(|_| Some("0".into())),
                Call::Munlockall => m.sys_munlockall(p()?).map(|_| Some("0".into())),
                Call::Memset { addr, tag, len } => {
                    match m.cpu_store(policy, p()?, v(addr)?, v(len)?, wid(tag)) {
                        Ok(()) => Ok(None),
                        Err(f) => {
                            kill = true;
                            signal = f.signal();
                            Err(Errno::EFAULT)
                        }
                    }
                }
                Call::Load { addr, len } => match m.cpu_load(policy, p()?, v(addr)?, v(len)?) {
                    Ok(vs) => Ok(Some(describe_all(m, &vs))),
                    Err(f) => {
                        kill = true;
                        signal = f.signal();
                        Err(Errno::EFAULT)
                    }
                },
                Call::Fork { child } => {
                    let name = &self.scn.actors[child].name;
                    let c = match &fork_plan {
                        Some(plan) => m.fork_finish(policy, p()?, name, plan)?,
                        None => m.fork(policy, p()?, name)?,
                    };
                    forked = Some((child, c));
                    Ok(Some(say!("{c} (pid of {})", self.scn.actors[child].name)))
                }
                Call::PthreadCreate { thread } => {
                    // clone(CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD):
                    // no new mm, the thread runs on this process's.
                    let pid = p()?;
                    forked = Some((thread, pid));
                    Ok(Some(say!(
                        "thread {} of pid {pid}",
                        self.scn.actors[thread].name
                    )))
                }
                Call::Exit => {
                    m.exit(policy, p()?);
                    kill = true;
                    Ok(None)
                }
                Call::Wait { .. } => Ok(None),
                Call::IoUringSetup => {
                    let r = m.io_uring_setup_charged(policy, p()?)?;
                    bind = Some(Value::Ring(r));
                    Ok(Some(say!("ring {r}")))
                }
                Call::RegisterBuffers { ring, addr, len } => {
                    let Some(Value::Ring(r)) = self.obj(&me, ring) else {
                        return Err(if failed(ring) { SKIPPED } else { Errno::EBADF });
                    };
                    m.io_uring_register_buffers(policy, p()?, r, v(addr)?, v(len)?)
                        .map(|_| Some("0".into()))
                }
                Call::RegisterBuffersIov { ring, ref iovs } => {
                    let Some(Value::Ring(r)) = self.obj(&me, ring) else {
                        return Err(if failed(ring) { SKIPPED } else { Errno::EBADF });
                    };
                    let iovs = iovs
                        .iter()
                        .map(|&(a, l)| Ok((v(a)?, v(l)?)))
                        .collect::<Result<Vec<_>, Errno>>()?;
                    m.io_uring_register_buffers_iov(policy, p()?, r, &iovs)
                        .map(|_| Some("0".into()))
                }
                Call::RegisterSparse { ring, nr } => {
                    let Some(Value::Ring(r)) = self.obj(&me, ring) else {
                        return Err(if failed(ring) { SKIPPED } else { Errno::EBADF });
                    };
                    m.io_uring_register_buffers_sparse(p()?, r, v(nr)?)
                        .map(|_| Some("0".into()))
                }
                Call::UpdateBuffers {
                    ring,
                    off,
                    ref iovs,
                } => {
                    let Some(Value::Ring(r)) = self.obj(&me, ring) else {
                        return Err(if failed(ring) { SKIPPED } else { Errno::EBADF });
                    };
                    let iovs = iovs
                        .iter()
                        .map(|&(a, l)| Ok((v(a)?, v(l)?)))
                        .collect::<Result<Vec<_>, Errno>>()?;
                    m.io_uring_update_buffers(policy, p()?, r, v(off)?, &iovs)
                        .map(|n| Some(n.to_string()))
                }
                Call::UnregisterBuffers { ring } => {
                    let Some(Value::Ring(r)) = self.obj(&me, ring) else {
                        return Err(if failed(ring) { SKIPPED } else { Errno::EBADF });
                    };
                    m.io_uring_unregister_buffers(policy, p()?, r)
                        .map(|_| Some("0".into()))
                }
                Call::CloneBuffers { ring, src, replace } => {
                    let (Some(Value::Ring(d)), Some(Value::Ring(s))) =
                        (self.obj(&me, ring), self.obj(&me, src))
                    else {
                        return Err(if failed(ring) || failed(src) {
                            SKIPPED
                        } else {
                            Errno::EBADF
                        });
                    };
                    m.io_uring_clone_buffers(policy, p()?, d, s, replace)
                        .map(|_| Some("0".into()))
                }
                Call::ReadFixed {
                    ring,
                    off,
                    len,
                    tag,
                    index,
                } => {
                    let Some(Value::Ring(r)) = self.obj(&me, ring) else {
                        return Err(if failed(ring) { SKIPPED } else { Errno::EBADF });
                    };
                    // Two steps: the submission takes a reference on the
                    // buffer; the device's DMA and the CQE come later.
                    match fixed.take() {
                        None => {
                            let req =
                                m.io_uring_read_fixed_submit(p()?, r, v(index)?, v(off)?, v(len)?)?;
                            fixed = Some(Box::new(req));
                            next_phase = Some(1);
                            Ok(Some("[submitted]".into()))
                        }
                        Some(req) => m
                            .io_uring_read_fixed_complete(policy, r, *req, wid(tag))
                            .map(|n| Some(say!("cqe.res {n}"))),
                    }
                }
                Call::WriteFixed {
                    ring,
                    off,
                    len,
                    index,
                } => {
                    let Some(Value::Ring(r)) = self.obj(&me, ring) else {
                        return Err(if failed(ring) { SKIPPED } else { Errno::EBADF });
                    };
                    m.io_uring_write_fixed_at(p()?, r, v(index)?, v(off)?, v(len)?)
                        .map(|vs| Some(say!("device read {}", describe_all(m, &vs))))
                }
                Call::RegMr { addr, len, access } => {
                    let id = m.ibv_reg_mr(policy, p()?, v(addr)?, v(len)?, access)?;
                    bind = Some(Value::Mr(id));
                    Ok(Some(say!("mr {id}")))
                }
                Call::DeregMr { mr } => {
                    let Some(Value::Mr(id)) = self.obj(&me, mr) else {
                        return Err(if failed(mr) { SKIPPED } else { Errno::EBADF });
                    };
                    m.ibv_dereg_mr(policy, p()?, id).map(|_| Some("0".into()))
                }
                Call::Pipe => {
                    let id = m.pipe(p()?);
                    bind = Some(Value::Pipe(id));
                    Ok(Some(say!("pipe {id}")))
                }
                Call::Vmsplice {
                    pipe,
                    addr,
                    len,
                    nr_segs,
                } => {
                    let Some(Value::Pipe(id)) = self.obj(&me, pipe) else {
                        return Err(if failed(pipe) { SKIPPED } else { Errno::EBADF });
                    };
                    let mut total = 0;
                    for _ in 0..nr_segs {
                        total += m.vmsplice(policy, p()?, id, v(addr)?, v(len)?)?;
                    }
                    Ok(Some(total.to_string()))
                }
                Call::PipeRead { pipe } => {
                    let Some(Value::Pipe(id)) = self.obj(&me, pipe) else {
                        return Err(if failed(pipe) { SKIPPED } else { Errno::EBADF });
                    };
                    m.pipe_read(p()?, id).map(|vs| Some(describe_all(m, &vs)))
                }
                Call::Gup {
                    api,
                    target,
                    addr,
                    nr,
                    flags,
                } => {
                    let holder = p()?;
                    let tpid = match target {
                        Some(_) => target_pid.filter(|&t| m.alive(t)).ok_or(Errno::ESRCH)?,
                        None => holder,
                    };
                    let (h, n) =
                        m.gup_handle(policy, api, holder, tpid, v(addr)?, v(nr)?, flags)?;
                    bind = Some(Value::Handle(h));
                    Ok(Some(n.to_string()))
                }
                Call::Release { handle, dirty } => {
                    let Some(Value::Handle(h)) = self.obj(&me, handle) else {
                        return Err(if failed(handle) {
                            SKIPPED
                        } else {
                            Errno::EBADF
                        });
                    };
                    m.gup_release(policy, h, dirty).map(|_| None)
                }
                Call::RdmaWrite { mr, tag } | Call::GpuWrite { svm: mr, tag } => {
                    let _ = mr;
                    let w = WriteId {
                        actor: self.scn.twin[actor],
                        pc: pc as u16,
                        tag,
                    };
                    // An access in flight (a device fault being resolved) goes
                    // on through the mirror it started on, whatever the
                    // variable names now (the owner may have re-registered).
                    let mirror = match (phase, held, peer_mr) {
                        (1.., Some(mir), _) => Some(mir),
                        (_, _, Some(Value::Mirror(mir))) => Some(mir),
                        (_, _, Some(Value::Mr(id)))
                            if m.dev.mrs[id].state == pinlab_model::dev::MrState::Registered
                                && m.dev.mrs[id].access
                                    & pinlab_model::dev::rdma::access::IBV_ACCESS_REMOTE_WRITE
                                    != 0 =>
                        {
                            m.dev.mrs[id].odp
                        }
                        _ => None,
                    };
                    if let Some(mir) = mirror {
                        let (r, np) = mirror_step(m, policy, mir, true, Some(w), phase, describe);
                        next_phase = np;
                        held = np.map(|_| mir);
                        return r;
                    }
                    let id = match peer_mr {
                        Some(Value::Mr(id)) => id,
                        _ => return Ok(Some("IBV_WC_REM_ACCESS_ERR (no MR)".into())),
                    };
                    Ok(Some(
                        match m.rdma_write(
                            id,
                            WriteId {
                                actor: self.scn.twin[actor],
                                pc: pc as u16,
                                tag,
                            },
                        ) {
                            Ok(()) => "IBV_WC_SUCCESS".into(),
                            Err(_) => "IBV_WC_REM_ACCESS_ERR".into(),
                        },
                    ))
                }
                Call::RdmaRead { mr } | Call::GpuRead { svm: mr } => {
                    let _ = mr;
                    // An access in flight (a device fault being resolved) goes
                    // on through the mirror it started on, whatever the
                    // variable names now (the owner may have re-registered).
                    let mirror = match (phase, held, peer_mr) {
                        (1.., Some(mir), _) => Some(mir),
                        (_, _, Some(Value::Mirror(mir))) => Some(mir),
                        (_, _, Some(Value::Mr(id)))
                            if m.dev.mrs[id].state == pinlab_model::dev::MrState::Registered
                                && m.dev.mrs[id].access
                                    & pinlab_model::dev::rdma::access::IBV_ACCESS_REMOTE_READ
                                    != 0 =>
                        {
                            m.dev.mrs[id].odp
                        }
                        _ => None,
                    };
                    if let Some(mir) = mirror {
                        let (r, np) = mirror_step(m, policy, mir, false, None, phase, describe);
                        next_phase = np;
                        held = np.map(|_| mir);
                        return r;
                    }
                    let id = match peer_mr {
                        Some(Value::Mr(id)) => id,
                        _ => return Ok(Some("IBV_WC_REM_ACCESS_ERR (no MR)".into())),
                    };
                    Ok(Some(match m.rdma_read(id) {
                        Ok(vs) => say!("IBV_WC_SUCCESS, read {}", describe_all(m, &vs)),
                        Err(_) => "IBV_WC_REM_ACCESS_ERR".into(),
                    }))
                }
            }
        })();
        if let Some((child, cpid)) = forked {
            let vars = s.actors[actor].vars.clone();
            let c = &mut s.actors[child];
            c.pid = Some(cpid);
            c.vars = vars;
            c.status = if self.scn.actors[child].body.is_empty() {
                Status::Done
            } else {
                Status::Running
            };
        }
        info.result = match &res {
            _ if !describe => None,
            Ok(Some(v)) => Some(format!("= {v}")),
            Ok(None) => None,
            Err(e) => Some(format!("= -{e}")),
        };
        match res {
            Err(SKIPPED) => {
                info.result = None;
                info.notes
                    .push("skipped: an argument names a call that failed".into());
                bind = Some(Value::Failed);
            }
            Err(e) => {
                s.m.ghost.errors.insert(e);
                bind = Some(Value::Failed);
            }
            Ok(_) => {}
        }
        self.abandon_substep(s);
        info.notes.extend(notes);
        if sig_consumed {
            s.actors[actor].sigpending = false;
        }
        if let Some((t, sig)) = signal_to {
            let victim = (0..s.actors.len()).find(|&i| s.actors[i].pid == Some(t));
            if sig == 9 {
                info.notes
                    .push(format!("{} killed (SIGKILL)", s.m.procs[t as usize].name));
                s.m.exit(policy, t);
                // Every thread of the process dies with it.
                for a in s.actors.iter_mut().filter(|a| a.pid == Some(t)) {
                    a.status = Status::Done;
                }
                let _ = victim;
            } else if let Some(v) = victim {
                // [model assumption] the target has a handler: the signal only
                // interrupts its next interruptible wait.
                s.actors[v].sigpending = true;
            }
        }
        let a = &mut s.actors[actor];
        if let (Some(slot), Some(v)) = (op.bind, bind) {
            a.vars.set(slot, v);
        }
        a.held = held;
        a.fixed = fixed;
        match next_phase {
            Some(ph) if !kill => a.phase = ph,
            _ => {
                a.phase = 0;
                a.pc += 1;
                if a.pc as usize >= prog.body.len() {
                    a.status = Status::Done;
                }
            }
        }
        if kill {
            if let Some(pid) = pid {
                if s.m.alive(pid) {
                    info.notes.push(format!("{} killed by {signal}", prog.name));
                    s.m.exit(policy, pid);
                }
                // exit() and a fatal signal end every thread of the process.
                for a in s.actors.iter_mut().filter(|a| a.pid == Some(pid)) {
                    a.status = Status::Done;
                }
            }
            s.actors[actor].status = Status::Done;
        }
        // After every step, so that a dead readahead state is never part of
        // a state (the step may have ended the last reader).
        if super::ra_liveness::forget_unreadable_readahead(self.scn, s) && s.m.fs == fs_before {
            // Equal again: share the parent's value, so that the step counts
            // as leaving the file system alone (canonicalize_successor).
            s.m.fs = fs_before;
        }
        info
    }
}
