//! Binding of the device and GUP statements: io_uring, RDMA MRs and the remote
//! peer, pipes and vmsplice, GPU mirrors, raw GUP calls (and the error for an
//! unknown call).

use super::super::flags::*;
use super::super::*;
use crate::ast::{ActorKind, ExprKind, Stmt};
use pinlab_model::gup::foll::NAMES as FOLL_NAMES;
use pinlab_model::gup::GupApi;
use std::collections::BTreeSet;

impl Binder<'_> {
    /// A statement that is not a memory, file or process call.
    pub(super) fn stmt_dev(
        &mut self,
        s: &Stmt,
        me: usize,
        known: &BTreeSet<String>,
    ) -> Result<Call, ParseError> {
        use Mechanism::*;
        let a = &s.args;
        let call = match s.call.as_str() {
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
                    return Err(self.e(s.call_span, format!("unknown call `{name}`; expected a statement listed in docs/scenarios.md (mmap, munmap, mremap, mprotect, madvise, memset, load, fork, exit, wait, kill, send_fd, file_pins, fcntl, ioctl, open, memfd_create, memfd_secret, close, ftruncate, fallocate, pwrite, write, pread, fsync, posix_fadvise, readahead, sync, drop_caches, lseek, writeback, reclaim, io_uring_setup, io_uring_register, read_fixed, write_fixed, ibv_reg_mr, ibv_dereg_mr, pipe, vmsplice, pipe_read, get_user_pages*, pin_user_pages*, unpin_user_pages*, put_page, rdma_write, rdma_read)")));
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
