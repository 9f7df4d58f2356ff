//! Binding of one statement: call names, argument counts, flag names (with their
//! uapi values), variables and actor references, each error at its token.

use super::flags::*;
use super::*;
use crate::ast::{ActorKind, Expr, ExprKind, Stmt};
use pinlab_model::gup::foll::NAMES as FOLL_NAMES;
use pinlab_model::gup::GupApi;
use std::collections::BTreeSet;

impl Binder<'_> {
    fn e(&self, span: Span, m: impl Into<String>) -> ParseError {
        err(self.file, span, m)
    }

    fn flags(&self, e: &Expr, table: &[(&str, u64)], what: &str) -> Result<u64, ParseError> {
        if let ExprKind::Int(v) = e.kind {
            return Ok(v);
        }
        let names = e.flag_names().ok_or_else(|| {
            self.e(
                e.span,
                format!("expected {what} flags such as {}, found `{e}`", table[0].0),
            )
        })?;
        let mut v = 0;
        for n in names {
            let Some((_, f)) = table.iter().find(|(k, _)| *k == n) else {
                let known: Vec<&str> = table.iter().map(|(k, _)| *k).collect();
                return Err(self.e(
                    e.span,
                    format!(
                        "unknown {what} flag `{n}`; expected one of {}",
                        known.join(", ")
                    ),
                ));
            };
            v |= f;
        }
        Ok(v)
    }

    pub(crate) fn slot(&mut self, name: &str) -> usize {
        let n = self.slots.len();
        *self.slots.entry(name.to_string()).or_insert(n)
    }

    fn arg(&mut self, e: &Expr, known: &BTreeSet<String>) -> Result<Arg, ParseError> {
        if let Some(v) = e.as_int() {
            return Ok(Arg::Const(v));
        }
        match &e.kind {
            ExprKind::Ident(n) if n == "NULL" => Ok(Arg::Const(0)),
            ExprKind::Ident(n) => {
                if !known.contains(n) {
                    return Err(self.e(e.span, format!("variable `{n}` is not set before this statement (in this actor or, for a child, in its parent before the fork)")));
                }
                Ok(Arg::Var(self.slot(n), 0))
            }
            ExprKind::Add(a, b) => {
                let (base, off) = match (a.as_int(), b.as_int()) {
                    (None, Some(o)) if !a.is_constant() => (a, o),
                    (Some(o), None) if !b.is_constant() => (b, o),
                    _ if e.is_constant() => {
                        return Err(self.e(
                            e.span,
                            format!("`{e}` overflows 64 bits; expected a value below 2^64"),
                        ))
                    }
                    _ => {
                        return Err(self.e(
                            e.span,
                            format!("expected `variable + constant`, found `{e}`"),
                        ))
                    }
                };
                let arg = self.arg(base, known)?;
                let overflow = || {
                    self.e(
                        e.span,
                        format!("`{e}` overflows 64 bits; expected a value below 2^64"),
                    )
                };
                match arg {
                    Arg::Var(s, o) => Ok(Arg::Var(s, o.checked_add(off).ok_or_else(overflow)?)),
                    Arg::Const(c) => Ok(Arg::Const(c.checked_add(off).ok_or_else(overflow)?)),
                }
            }
            ExprKind::Mul(..) if e.is_constant() => Err(self.e(
                e.span,
                format!("`{e}` overflows 64 bits; expected a value below 2^64"),
            )),
            _ => Err(self.e(
                e.span,
                format!("expected an integer, a variable or `variable + constant`, found `{e}`"),
            )),
        }
    }

    fn tag(&self, e: &Expr) -> Result<char, ParseError> {
        match e.kind {
            ExprKind::Char(c) => Ok(c),
            _ => Err(self.e(
                e.span,
                format!("expected a content tag such as 'P', found `{e}`"),
            )),
        }
    }

    fn actor_ref(&self, e: &Expr) -> Result<usize, ParseError> {
        match &e.kind {
            ExprKind::Ident(n) => self
                .ast
                .actors
                .iter()
                .position(|a| &a.name == n)
                .ok_or_else(|| self.e(e.span, format!("unknown actor `{n}`"))),
            _ => Err(self.e(e.span, format!("expected an actor name, found `{e}`"))),
        }
    }

    fn var_ref(&mut self, e: &Expr, me: usize) -> Result<VarRef, ParseError> {
        match &e.kind {
            ExprKind::Field(a, v) => {
                let actor = self
                    .ast
                    .actors
                    .iter()
                    .position(|x| &x.name == a)
                    .ok_or_else(|| self.e(e.span, format!("unknown actor `{a}`")))?;
                if !self.ast.actors[actor]
                    .body
                    .iter()
                    .any(|s| s.bind.as_ref().is_some_and(|(b, _)| b == v))
                {
                    return Err(self.e(e.span, format!("actor `{a}` never sets a variable `{v}`")));
                }
                Ok(VarRef {
                    actor,
                    slot: self.slot(v),
                })
            }
            ExprKind::Ident(v) => Ok(VarRef {
                actor: me,
                slot: self.slot(v),
            }),
            _ => Err(self.e(
                e.span,
                format!("expected `actor.variable` such as `parent.mr`, found `{e}`"),
            )),
        }
    }

    fn nargs(&self, s: &Stmt, n: &[usize], sig: &str) -> Result<(), ParseError> {
        if n.contains(&s.args.len()) {
            Ok(())
        } else {
            Err(self.e(
                s.call_span,
                format!(
                    "`{}` takes {} argument(s): {sig}; found {}",
                    s.call,
                    n.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(" or "),
                    s.args.len()
                ),
            ))
        }
    }

    pub(crate) fn stmt(
        &mut self,
        s: &Stmt,
        me: usize,
        known: &BTreeSet<String>,
    ) -> Result<Call, ParseError> {
        use Mechanism::*;
        let a = &s.args;
        let allowed: Option<&[&str]> = match self.ast.actors[me].kind {
            ActorKind::Kthread => Some(&["writeback", "reclaim", "sync", "drop_caches"]),
            ActorKind::Peer => Some(&["rdma_write", "rdma_read", "gpu_write", "gpu_read", "wait"]),
            _ => None,
        };
        if let Some(ok) = allowed {
            if !ok.contains(&s.call.as_str()) {
                return Err(self.e(
                    s.call_span,
                    format!(
                        "a {} actor cannot call `{}`; expected one of {}",
                        self.ast.actors[me].kind.keyword(),
                        s.call,
                        ok.join(", ")
                    ),
                ));
            }
        }
        let call = match s.call.as_str() {
            "mmap" => {
                self.nargs(
                    s,
                    &[3, 4, 5, 6],
                    "mmap(NULL, len, prot, flags[, fd, offset])",
                )?;
                let null_first = matches!(&a[0].kind, ExprKind::Ident(n) if n == "NULL");
                // mmap(addr, len, prot, MAP_...|MAP_FIXED): the 4-argument form with an address.
                let fixed_first = !null_first && a.len() == 4;
                let o = usize::from(null_first || fixed_first);
                if a.len() - o != 3 && a.len() - o != 5 {
                    return Err(self.e(s.call_span, "expected mmap(NULL, len, prot, flags) or mmap(NULL, len, prot, flags, fd, offset)"));
                }
                let flags = self.flags(&a[o + 2], MAP, "MAP_*")?;
                if flags & MAP_SHARED != 0 {
                    self.uses.insert(Shmem);
                }
                self.uses.insert(AnonMemory);
                let len = self.arg(&a[o], known)?;
                let prot = self.flags(&a[o + 1], PROT, "PROT_*")?;
                if a.len() - o == 3 {
                    if flags & MAP_ANONYMOUS == 0 {
                        return Err(self.e(a[o + 2].span, "expected MAP_ANONYMOUS, or a file descriptor and offset after the flags"));
                    }
                    let fixed = if fixed_first {
                        if flags & MAP_FIXED == 0 {
                            return Err(self.e(
                                a[0].span,
                                "an address as first argument needs MAP_FIXED (else write NULL)",
                            ));
                        }
                        Some(self.arg(&a[0], known)?)
                    } else {
                        None
                    };
                    Call::Mmap {
                        len,
                        prot,
                        flags,
                        fixed,
                    }
                } else {
                    if flags & MAP_ANONYMOUS != 0 {
                        return Err(self.e(a[o + 2].span, "MAP_ANONYMOUS takes no file descriptor"));
                    }
                    Call::MmapFile {
                        len,
                        prot,
                        flags,
                        fd: self.arg(&a[o + 3], known)?,
                        off: self.arg(&a[o + 4], known)?,
                    }
                }
            }
            "open" => {
                self.nargs(s, &[2], "open(\"path\", O_...)")?;
                let path = match &a[0].kind {
                    ExprKind::Str(p) => p.clone(),
                    _ => {
                        return Err(self.e(
                            a[0].span,
                            format!("expected a path string, found `{}`", a[0]),
                        ))
                    }
                };
                self.uses.insert(if path.starts_with("/dev/shm/") {
                    Shmem
                } else if path.starts_with("/mnt/pmem/") || path.starts_with("/dev/dax") {
                    FsDax
                } else {
                    PageCache
                });
                Call::Open {
                    path,
                    flags: self.flags(&a[1], OFLAGS, "O_*")?,
                }
            }
            "memfd_create" => {
                self.nargs(s, &[2], "memfd_create(\"name\", flags)")?;
                let name = match &a[0].kind {
                    ExprKind::Str(p) => p.clone(),
                    _ => {
                        return Err(self.e(
                            a[0].span,
                            format!("expected a name string, found `{}`", a[0]),
                        ))
                    }
                };
                let flags = self.flags(&a[1], MFD, "MFD_*")?;
                if flags & 4 == 0 {
                    self.uses.insert(Shmem);
                }
                Call::MemfdCreate {
                    name,
                    hugetlb: flags & 4 != 0,
                }
            }
            "memfd_secret" => {
                self.nargs(s, &[0, 1], "memfd_secret(0)")?;
                Call::MemfdSecret
            }
            "close" => {
                self.nargs(s, &[1], "close(fd)")?;
                Call::Close {
                    fd: self.arg(&a[0], known)?,
                }
            }
            "ftruncate" => {
                self.nargs(s, &[2], "ftruncate(fd, length)")?;
                Call::Ftruncate {
                    fd: self.arg(&a[0], known)?,
                    len: self.arg(&a[1], known)?,
                }
            }
            "fallocate" => {
                self.nargs(s, &[4], "fallocate(fd, mode, offset, len)")?;
                Call::Fallocate {
                    fd: self.arg(&a[0], known)?,
                    mode: self.flags(&a[1], FALLOC, "FALLOC_FL_*")?,
                    off: self.arg(&a[2], known)?,
                    len: self.arg(&a[3], known)?,
                }
            }
            "pwrite" | "write" => {
                let pw = s.call == "pwrite";
                self.nargs(
                    s,
                    if pw { &[4] } else { &[3] },
                    if pw {
                        "pwrite(fd, 'c', len, offset)"
                    } else {
                        "write(fd, 'c', len)"
                    },
                )?;
                Call::FileWrite {
                    fd: self.arg(&a[0], known)?,
                    tag: self.tag(&a[1])?,
                    len: self.arg(&a[2], known)?,
                    off: if pw {
                        Some(self.arg(&a[3], known)?)
                    } else {
                        None
                    },
                }
            }
            "pread" => {
                self.nargs(
                    s,
                    &[3, 4],
                    "pread(fd, len, offset) or pread(fd, buf, len, offset)",
                )?;
                let fd = self.arg(&a[0], known)?;
                if a.len() == 3 {
                    Call::FileRead {
                        fd,
                        buf: None,
                        len: self.arg(&a[1], known)?,
                        off: self.arg(&a[2], known)?,
                    }
                } else {
                    Call::FileRead {
                        fd,
                        buf: Some(self.arg(&a[1], known)?),
                        len: self.arg(&a[2], known)?,
                        off: self.arg(&a[3], known)?,
                    }
                }
            }
            "fsync" => {
                self.nargs(s, &[1], "fsync(fd)")?;
                Call::Fsync {
                    fd: self.arg(&a[0], known)?,
                }
            }
            "sync" => {
                self.nargs(s, &[0], "sync()")?;
                Call::Sync
            }
            "drop_caches" => {
                self.nargs(s, &[0], "drop_caches()")?;
                Call::DropCaches
            }
            "lseek" => {
                self.nargs(s, &[3], "lseek(fd, offset, SEEK_SET|SEEK_END)")?;
                Call::Lseek {
                    fd: self.arg(&a[0], known)?,
                    off: self.arg(&a[1], known)?,
                    whence: self.flags(&a[2], SEEK, "SEEK_*")?,
                }
            }
            "writeback" | "reclaim" => {
                self.nargs(s, &[0], &format!("{}()", s.call))?;
                if !matches!(self.ast.actors[me].kind, ActorKind::Kthread) {
                    return Err(self.e(
                        s.call_span,
                        format!(
                            "`{}` is what a kernel thread does: expected it in a `kthread` actor",
                            s.call
                        ),
                    ));
                }
                if s.call == "writeback" {
                    self.uses.insert(PageCache);
                    Call::Writeback
                } else {
                    self.uses.insert(Reclaim);
                    Call::Reclaim
                }
            }
            "munmap" => {
                self.nargs(s, &[2], "munmap(addr, len)")?;
                self.uses.insert(AnonMemory);
                Call::Munmap {
                    addr: self.arg(&a[0], known)?,
                    len: self.arg(&a[1], known)?,
                }
            }
            "mremap" => {
                self.nargs(
                    s,
                    &[4, 5],
                    "mremap(addr, old_len, new_len, flags[, new_addr])",
                )?;
                self.uses.insert(AnonMemory);
                Call::Mremap {
                    addr: self.arg(&a[0], known)?,
                    old_len: self.arg(&a[1], known)?,
                    new_len: self.arg(&a[2], known)?,
                    flags: self.flags(&a[3], MREMAP, "MREMAP_*")?,
                    new_addr: a.get(4).map(|e| self.arg(e, known)).transpose()?,
                }
            }
            "mprotect" => {
                self.nargs(s, &[3], "mprotect(addr, len, prot)")?;
                self.uses.insert(AnonMemory);
                Call::Mprotect {
                    addr: self.arg(&a[0], known)?,
                    len: self.arg(&a[1], known)?,
                    prot: self.flags(&a[2], PROT, "PROT_*")?,
                }
            }
            "madvise" => {
                self.nargs(s, &[3], "madvise(addr, len, advice)")?;
                self.uses.insert(AnonMemory);
                Call::Madvise {
                    addr: self.arg(&a[0], known)?,
                    len: self.arg(&a[1], known)?,
                    advice: self.flags(&a[2], MADV, "MADV_*")?,
                }
            }
            "memset" => {
                self.nargs(s, &[3], "memset(addr, 'c', len)")?;
                Call::Memset {
                    addr: self.arg(&a[0], known)?,
                    tag: self.tag(&a[1])?,
                    len: self.arg(&a[2], known)?,
                }
            }
            "load" => {
                self.nargs(s, &[2], "load(addr, len)")?;
                Call::Load {
                    addr: self.arg(&a[0], known)?,
                    len: self.arg(&a[1], known)?,
                }
            }
            "fork" => {
                self.nargs(s, &[1], "fork(child)")?;
                self.uses.insert(Fork);
                let c = self.actor_ref(&a[0])?;
                let ok = matches!(&self.ast.actors[c].kind, ActorKind::Child { parent, thread: false, .. } if *parent == self.ast.actors[me].name);
                if !ok {
                    return Err(self.e(
                        a[0].span,
                        format!(
                            "expected a `child {} of {}` actor",
                            self.ast.actors[c].name, self.ast.actors[me].name
                        ),
                    ));
                }
                Call::Fork { child: c }
            }
            "pthread_create" => {
                self.nargs(s, &[1], "pthread_create(thread)")?;
                let c = self.actor_ref(&a[0])?;
                let ok = matches!(&self.ast.actors[c].kind, ActorKind::Child { parent, thread: true, .. } if *parent == self.ast.actors[me].name);
                if !ok {
                    return Err(self.e(
                        a[0].span,
                        format!(
                            "expected a `thread {} of {}` actor",
                            self.ast.actors[c].name, self.ast.actors[me].name
                        ),
                    ));
                }
                Call::PthreadCreate { thread: c }
            }
            "exit" => {
                self.nargs(s, &[0], "exit()")?;
                Call::Exit
            }
            "fcntl" => {
                self.nargs(
                    s,
                    &[3],
                    "fcntl(fd, F_SETLEASE, F_LAYOUT|F_EXCLUSIVE or F_UNLCK)",
                )?;
                match &a[1].kind {
                    ExprKind::Ident(c) if c == "F_SETLEASE" => {}
                    _ => {
                        return Err(
                            self.e(a[1].span, format!("expected F_SETLEASE, found `{}`", a[1]))
                        )
                    }
                }
                let names = a[2].flag_names().unwrap_or_default();
                let take = if names == ["F_UNLCK"] {
                    false
                } else if names.contains(&"F_LAYOUT")
                    && names
                        .iter()
                        .all(|n| *n == "F_LAYOUT" || *n == "F_EXCLUSIVE")
                {
                    true
                } else {
                    return Err(self.e(
                        a[2].span,
                        format!("expected F_LAYOUT|F_EXCLUSIVE or F_UNLCK, found `{}`", a[2]),
                    ));
                };
                self.uses.insert(Leases);
                Call::SetLease {
                    fd: self.arg(&a[0], known)?,
                    take,
                }
            }
            "ioctl" => {
                self.nargs(
                    s,
                    &[3],
                    "ioctl(fd, FS_IOC_SETFLAGS, FS_IMMUTABLE_LAYOUT_FL)",
                )?;
                let ok = matches!(&a[1].kind, ExprKind::Ident(c) if c == "FS_IOC_SETFLAGS")
                    && a[2].flag_names() == Some(vec!["FS_IMMUTABLE_LAYOUT_FL"]);
                if !ok {
                    return Err(self.e(
                        a[1].span,
                        "expected ioctl(fd, FS_IOC_SETFLAGS, FS_IMMUTABLE_LAYOUT_FL)",
                    ));
                }
                Call::SetImmutableLayout {
                    fd: self.arg(&a[0], known)?,
                }
            }
            "kill" => {
                self.nargs(s, &[2], "kill(actor or pid, SIGINT|SIGTERM|SIGKILL)")?;
                let sig = match &a[1].kind {
                    ExprKind::Ident(n) if n == "SIGINT" => 2,
                    ExprKind::Ident(n) if n == "SIGKILL" => 9,
                    ExprKind::Ident(n) if n == "SIGTERM" => 15,
                    _ => {
                        return Err(self.e(
                            a[1].span,
                            format!("expected SIGINT, SIGTERM or SIGKILL, found `{}`", a[1]),
                        ))
                    }
                };
                match &a[0].kind {
                    ExprKind::Ident(n) if self.ast.actors.iter().any(|x| &x.name == n) => {
                        Call::Kill {
                            actor: Some(self.actor_ref(&a[0])?),
                            var: None,
                            sig,
                        }
                    }
                    _ => Call::Kill {
                        actor: None,
                        var: Some(self.arg(&a[0], known)?),
                        sig,
                    },
                }
            }
            "send_fd" => {
                self.nargs(s, &[2], "send_fd(actor, fd)")?;
                Call::SendFd {
                    to: self.actor_ref(&a[0])?,
                    what: self.arg(&a[1], known)?,
                }
            }
            "file_pins" => {
                self.nargs(s, &[1], "pid = file_pins(\"path\")")?;
                let path = match &a[0].kind {
                    ExprKind::Str(p) => p.clone(),
                    _ => {
                        return Err(self.e(
                            a[0].span,
                            format!("expected a path string, found `{}`", a[0]),
                        ))
                    }
                };
                Call::FilePins { path }
            }
            "wait" => {
                self.nargs(s, &[1], "wait(actor)")?;
                Call::Wait {
                    actor: self.actor_ref(&a[0])?,
                }
            }
            "io_uring_setup" => {
                self.nargs(s, &[0, 1], "io_uring_setup(entries)")?;
                self.uses.insert(IoUring);
                Call::IoUringSetup
            }
            "io_uring_register" => {
                const USAGE: &str = "io_uring_register(ring, IORING_REGISTER_BUFFERS, addr, len[, addr, len]...), io_uring_register(ring, IORING_REGISTER_BUFFERS2, IORING_RSRC_REGISTER_SPARSE, nr), io_uring_register(ring, IORING_REGISTER_BUFFERS_UPDATE, offset, addr, len[, addr, len]...), io_uring_register(ring, IORING_REGISTER_CLONE_BUFFERS, src_ring[, IORING_REGISTER_DST_REPLACE]) or io_uring_register(ring, IORING_UNREGISTER_BUFFERS)";
                if a.len() < 2 {
                    return Err(self.e(
                        s.span,
                        format!("expected {USAGE}, found {} argument(s)", a.len()),
                    ));
                }
                let ring = self.arg(&a[0], known)?;
                let op = match &a[1].kind {
                    ExprKind::Ident(op) => op.as_str(),
                    _ => "",
                };
                let iovs = |b: &mut Self, from: usize| -> Result<Vec<(Arg, Arg)>, ParseError> {
                    a[from..]
                        .chunks(2)
                        .map(|c| Ok((b.arg(&c[0], known)?, b.arg(&c[1], known)?)))
                        .collect()
                };
                match (op, a.len()) {
                    ("IORING_REGISTER_BUFFERS", 4) => Call::RegisterBuffers {
                        ring,
                        addr: self.arg(&a[2], known)?,
                        len: self.arg(&a[3], known)?,
                    },
                    ("IORING_REGISTER_BUFFERS", n) if n >= 6 && n % 2 == 0 => {
                        Call::RegisterBuffersIov {
                            ring,
                            iovs: iovs(self, 2)?,
                        }
                    }
                    ("IORING_REGISTER_BUFFERS2", 4) => {
                        if !matches!(&a[2].kind, ExprKind::Ident(f) if f == "IORING_RSRC_REGISTER_SPARSE")
                        {
                            return Err(self.e(a[2].span, format!("expected IORING_RSRC_REGISTER_SPARSE (the model's IORING_REGISTER_BUFFERS2 makes sparse tables), found `{}`", a[2])));
                        }
                        Call::RegisterSparse {
                            ring,
                            nr: self.arg(&a[3], known)?,
                        }
                    }
                    ("IORING_REGISTER_BUFFERS_UPDATE", n) if n >= 5 && n % 2 == 1 => {
                        Call::UpdateBuffers {
                            ring,
                            off: self.arg(&a[2], known)?,
                            iovs: iovs(self, 3)?,
                        }
                    }
                    ("IORING_UNREGISTER_BUFFERS", 2) => Call::UnregisterBuffers { ring },
                    ("IORING_REGISTER_CLONE_BUFFERS", 3 | 4) => {
                        if let Some(f) = a.get(3) {
                            if !matches!(&f.kind, ExprKind::Ident(f) if f == "IORING_REGISTER_DST_REPLACE")
                            {
                                return Err(self.e(f.span, format!("expected IORING_REGISTER_DST_REPLACE (the only flag the model's IORING_REGISTER_CLONE_BUFFERS takes), found `{f}`")));
                            }
                        }
                        Call::CloneBuffers {
                            ring,
                            src: self.arg(&a[2], known)?,
                            replace: a.len() == 4,
                        }
                    }
                    _ => {
                        return Err(self.e(
                            a[1].span,
                            format!(
                                "expected {USAGE}, found `{}` with {} argument(s)",
                                a[1],
                                a.len()
                            ),
                        ))
                    }
                }
            }
            "read_fixed" => {
                self.nargs(
                    s,
                    &[4, 5],
                    "read_fixed(ring, offset, len, 'c'[, buf_index])",
                )?;
                Call::ReadFixed {
                    ring: self.arg(&a[0], known)?,
                    off: self.arg(&a[1], known)?,
                    len: self.arg(&a[2], known)?,
                    tag: self.tag(&a[3])?,
                    index: match a.get(4) {
                        Some(x) => self.arg(x, known)?,
                        None => Arg::Const(0),
                    },
                }
            }
            "write_fixed" => {
                self.nargs(s, &[3, 4], "write_fixed(ring, offset, len[, buf_index])")?;
                Call::WriteFixed {
                    ring: self.arg(&a[0], known)?,
                    off: self.arg(&a[1], known)?,
                    len: self.arg(&a[2], known)?,
                    index: match a.get(3) {
                        Some(x) => self.arg(x, known)?,
                        None => Arg::Const(0),
                    },
                }
            }
            "ibv_reg_mr" => {
                self.nargs(s, &[3], "ibv_reg_mr(addr, len, access)")?;
                self.uses.insert(Rdma);
                Call::RegMr {
                    addr: self.arg(&a[0], known)?,
                    len: self.arg(&a[1], known)?,
                    access: self.flags(&a[2], IBV, "IBV_ACCESS_*")?,
                }
            }
            "ibv_dereg_mr" => {
                self.nargs(s, &[1], "ibv_dereg_mr(mr)")?;
                Call::DeregMr {
                    mr: self.arg(&a[0], known)?,
                }
            }
            "pipe" => {
                self.nargs(s, &[0], "pipe()")?;
                Call::Pipe
            }
            "vmsplice" => {
                self.nargs(s, &[3, 4], "vmsplice(pipe, addr, len[, nr_segs])")?;
                self.uses.insert(Vmsplice);
                let nr_segs = match a.get(3) {
                    Some(e) => {
                        e.as_int()
                            .filter(|&n| (1..=1024).contains(&n))
                            .ok_or_else(|| {
                                self.e(e.span, "expected nr_segs between 1 and 1024 (IOV_MAX)")
                            })?
                    }
                    None => 1,
                };
                Call::Vmsplice {
                    pipe: self.arg(&a[0], known)?,
                    addr: self.arg(&a[1], known)?,
                    len: self.arg(&a[2], known)?,
                    nr_segs,
                }
            }
            "pipe_read" => {
                self.nargs(s, &[1], "pipe_read(pipe)")?;
                Call::PipeRead {
                    pipe: self.arg(&a[0], known)?,
                }
            }
            "unpin_user_pages" | "put_page" => {
                self.nargs(s, &[1], &format!("{}(handle)", s.call))?;
                Call::Release {
                    handle: self.arg(&a[0], known)?,
                    dirty: false,
                }
            }
            "unpin_user_pages_dirty_lock" => {
                self.nargs(s, &[2], "unpin_user_pages_dirty_lock(handle, make_dirty)")?;
                let dirty = match a[1].kind {
                    ExprKind::Bool(b) => b,
                    _ => return Err(self.e(a[1].span, "expected true or false")),
                };
                Call::Release {
                    handle: self.arg(&a[0], known)?,
                    dirty,
                }
            }
            "gpu_svm_bind" => {
                self.nargs(s, &[2], "gpu_svm_bind(addr, len)")?;
                self.uses.insert(Notifiers);
                Call::GpuBind {
                    addr: self.arg(&a[0], known)?,
                    len: self.arg(&a[1], known)?,
                }
            }
            "gpu_write" | "gpu_read" => {
                self.nargs(
                    s,
                    if s.call == "gpu_write" { &[2] } else { &[1] },
                    "gpu_write(actor.svm, 'c') / gpu_read(actor.svm)",
                )?;
                self.uses.insert(Notifiers);
                let svm = self.var_ref(&a[0], me)?;
                if s.call == "gpu_write" {
                    Call::GpuWrite {
                        svm,
                        tag: self.tag(&a[1])?,
                    }
                } else {
                    Call::GpuRead { svm }
                }
            }
            "rdma_write" | "rdma_read" => {
                self.nargs(
                    s,
                    if s.call == "rdma_write" { &[2] } else { &[1] },
                    "rdma_write(actor.mr, 'c') / rdma_read(actor.mr)",
                )?;
                if !matches!(self.ast.actors[me].kind, ActorKind::Peer) {
                    return Err(self.e(
                        s.call_span,
                        format!(
                            "`{}` is a remote operation: expected it in a `peer` actor",
                            s.call
                        ),
                    ));
                }
                let mr = self.var_ref(&a[0], me)?;
                if s.call == "rdma_write" {
                    Call::RdmaWrite {
                        mr,
                        tag: self.tag(&a[1])?,
                    }
                } else {
                    Call::RdmaRead { mr }
                }
            }
            name => {
                let Some(api) = GupApi::from_name(name) else {
                    return Err(self.e(s.call_span, format!("unknown call `{name}`; expected a statement listed in docs/scenarios.md (mmap, munmap, mremap, mprotect, madvise, memset, load, fork, exit, wait, kill, send_fd, file_pins, fcntl, ioctl, open, memfd_create, memfd_secret, close, ftruncate, fallocate, pwrite, write, pread, fsync, sync, drop_caches, lseek, writeback, reclaim, io_uring_setup, io_uring_register, read_fixed, write_fixed, ibv_reg_mr, ibv_dereg_mr, pipe, vmsplice, pipe_read, get_user_pages*, pin_user_pages*, unpin_user_pages*, put_page, rdma_write, rdma_read)")));
                };
                self.uses.insert(Gup);
                let remote = name.ends_with("_remote");
                self.nargs(
                    s,
                    if remote { &[4] } else { &[3] },
                    &format!(
                        "{name}({}addr, nr_pages, gup_flags)",
                        if remote { "actor, " } else { "" }
                    ),
                )?;
                let o = usize::from(remote);
                let target = if remote {
                    Some(self.actor_ref(&a[0])?)
                } else {
                    None
                };
                let flags = if let Some(0) = a[o + 2].as_int() {
                    0
                } else {
                    self.flags(
                        &a[o + 2],
                        &FOLL_NAMES
                            .iter()
                            .map(|(n, v)| (*n, *v as u64))
                            .collect::<Vec<_>>(),
                        "FOLL_*",
                    )? as u32
                };
                Call::Gup {
                    api,
                    target,
                    addr: self.arg(&a[o], known)?,
                    nr: self.arg(&a[o + 1], known)?,
                    flags,
                }
            }
        };
        Ok(call)
    }
}
