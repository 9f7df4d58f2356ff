//! Binding of one statement: call names, argument counts, flag names (with their
//! uapi values), variables and actor references, each error at its token.

use super::flags::*;
use super::*;
use crate::ast::{ActorKind, Expr, ExprKind, Stmt};
use std::collections::BTreeSet;

mod dev;

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
            ExprKind::Char('0') => Err(self.e(
                e.span,
                "content tag '0' stands for zero bytes (a hole, a fresh page); expected another character such as 'P'".to_string(),
            )),
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
                    sealing: flags & 2 != 0,
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
                        "pwrite(fd, 'c', len, offset) or pwrite(fd, buf, len, offset)"
                    } else {
                        "write(fd, 'c', len) or write(fd, buf, len)"
                    },
                )?;
                let off = if pw {
                    Some(self.arg(&a[3], known)?)
                } else {
                    None
                };
                if matches!(a[1].kind, ExprKind::Char(_)) {
                    Call::FileWrite {
                        fd: self.arg(&a[0], known)?,
                        tag: self.tag(&a[1])?,
                        len: self.arg(&a[2], known)?,
                        off,
                    }
                } else {
                    let buf = match a[1].kind {
                        ExprKind::Str(_) | ExprKind::Bool(_) | ExprKind::Field(..) | ExprKind::Or(_) => {
                            return Err(self.e(
                                a[1].span,
                                format!(
                                    "expected a content tag such as 'P' or a buffer (a variable or `variable + constant`), found `{}`",
                                    a[1]
                                ),
                            ))
                        }
                        _ => self.arg(&a[1], known)?,
                    };
                    Call::FileWriteBuf {
                        fd: self.arg(&a[0], known)?,
                        buf,
                        len: self.arg(&a[2], known)?,
                        off,
                    }
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
            "posix_fadvise" => {
                self.nargs(s, &[4], "posix_fadvise(fd, offset, len, POSIX_FADV_*)")?;
                Call::Fadvise {
                    fd: self.arg(&a[0], known)?,
                    off: self.arg(&a[1], known)?,
                    len: self.arg(&a[2], known)?,
                    advice: self.flags(&a[3], FADV, "POSIX_FADV_*")?,
                }
            }
            "readahead" => {
                self.nargs(s, &[3], "readahead(fd, offset, count)")?;
                Call::Readahead {
                    fd: self.arg(&a[0], known)?,
                    off: self.arg(&a[1], known)?,
                    count: self.arg(&a[2], known)?,
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
            "mlock" | "mlock2" => {
                let mlock2 = s.call == "mlock2";
                if mlock2 {
                    self.nargs(s, &[3], "mlock2(addr, len, 0|MLOCK_ONFAULT)")?;
                } else {
                    self.nargs(s, &[2], "mlock(addr, len)")?;
                }
                self.uses.insert(AnonMemory);
                Call::Mlock {
                    addr: self.arg(&a[0], known)?,
                    len: self.arg(&a[1], known)?,
                    flags: match a.get(2) {
                        Some(f) => self.flags(f, MLOCK, "MLOCK_*")?,
                        None => 0,
                    },
                    mlock2,
                }
            }
            "mincore" => {
                self.nargs(s, &[2], "mincore(addr, len)")?;
                self.uses.insert(AnonMemory);
                Call::Mincore {
                    addr: self.arg(&a[0], known)?,
                    len: self.arg(&a[1], known)?,
                }
            }
            "mlockall" => {
                self.nargs(s, &[1], "mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT)")?;
                self.uses.insert(AnonMemory);
                Call::Mlockall {
                    flags: self.flags(&a[0], MCL, "MCL_*")?,
                }
            }
            "munlockall" => {
                self.nargs(s, &[0], "munlockall()")?;
                self.uses.insert(AnonMemory);
                Call::Munlockall
            }
            "munlock" => {
                self.nargs(s, &[2], "munlock(addr, len)")?;
                self.uses.insert(AnonMemory);
                Call::Munlock {
                    addr: self.arg(&a[0], known)?,
                    len: self.arg(&a[1], known)?,
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
                const SIG: &str = "fcntl(fd, F_SETLEASE, F_LAYOUT|F_EXCLUSIVE or F_UNLCK), fcntl(fd, F_ADD_SEALS, F_SEAL_...) or fcntl(fd, F_GET_SEALS)";
                self.nargs(s, &[2, 3], SIG)?;
                let cmd = match &a[1].kind {
                    ExprKind::Ident(c)
                        if ["F_SETLEASE", "F_ADD_SEALS", "F_GET_SEALS"].contains(&c.as_str()) =>
                    {
                        c.as_str()
                    }
                    _ => {
                        return Err(self.e(
                            a[1].span,
                            format!(
                                "expected F_SETLEASE, F_ADD_SEALS or F_GET_SEALS, found `{}`",
                                a[1]
                            ),
                        ))
                    }
                };
                let want = if cmd == "F_GET_SEALS" { 2 } else { 3 };
                self.nargs(s, &[want], SIG)?;
                match cmd {
                    "F_GET_SEALS" => {
                        self.uses.insert(Shmem);
                        return Ok(Call::GetSeals {
                            fd: self.arg(&a[0], known)?,
                        });
                    }
                    "F_ADD_SEALS" => {
                        self.uses.insert(Shmem);
                        let seals = self.flags(&a[2], SEALS, "F_SEAL_*")?;
                        let seals = u32::try_from(seals).map_err(|_| {
                            self.e(a[2].span, format!("seals {seals:#x} do not fit in 32 bits"))
                        })?;
                        return Ok(Call::AddSeals {
                            fd: self.arg(&a[0], known)?,
                            seals,
                        });
                    }
                    _ => {}
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
            _ => self.stmt_dev(s, me, known)?,
        };
        Ok(call)
    }
}
