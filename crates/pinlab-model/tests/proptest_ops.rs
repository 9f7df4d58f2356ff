//! Property tests: random operation sequences (≤ 40 operations over ≤ 3
//! processes and ≤ 3 buffers: 4 KiB, 16 KiB and a 2 MiB MADV_HUGEPAGE area)
//! through every public `Machine` operation (ksmd scans, MADV_MERGEABLE and
//! MADV_COLLAPSE, MADV_COLD and MADV_PAGEOUT, mremap, mlock and kswapd included), run under every preset of
//! `Policy::presets()` with a random user zone, THP mode and swap on or off.
//!
//! Properties: nothing panics; `check_invariants` holds after every operation;
//! under policies with `anon_exclusive` the ghost never reports LEAK_OTHER;
//! once every process has exited, `nr_foll_pin_acquired == nr_foll_pin_released`
//! and the only folios left are shmem page-cache folios held by their cache alone.

use pinlab_model::dev::rdma::access::*;
use pinlab_model::gup::foll::*;
use pinlab_model::gup::GupApi;
use pinlab_model::mem::{FolioKind, Zone};
use pinlab_model::vm::mremap::*;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;
use pinlab_model::{Machine, MachineConfig, Outcome, Pid, Policy, Switch, Thp, WriteId};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// Buffer slots: size in pages.
const SLOTS: [u64; 3] = [1, 4, 512];
const MAX_PROCS: usize = 3;
const MAX_OBJS: usize = 3;

/// A sub-range of a buffer slot: page offset, page count (0 allowed), byte
/// offset; `wild` replaces it with a bad address or length (1: near the top of
/// the address space, 2: address 0, 3: a huge length).
#[derive(Debug, Clone, Copy)]
struct Range {
    b: u8,
    off: u16,
    len: u16,
    byte: u16,
    wild: u8,
}

#[derive(Debug, Clone)]
enum Op {
    Mmap {
        p: u8,
        b: u8,
        shared: bool,
        /// The 2 MiB slot only: 1 MAP_HUGETLB, 2 with MAP_NORESERVE.
        huge: u8,
        populate: bool,
    },
    Munmap {
        p: u8,
        r: Range,
    },
    Mprotect {
        p: u8,
        r: Range,
        rw: bool,
    },
    /// `mremap` of a range: `mode` picks the flags and destination (see
    /// `World::apply`), `to` a destination slot, `delta` a size change in pages.
    Mremap {
        p: u8,
        r: Range,
        mode: u8,
        to: u8,
        delta: i8,
    },
    Madvise {
        p: u8,
        r: Range,
        advice: u8,
    },
    /// `mode` 0: `mlock`, 1: `mlock2(MLOCK_ONFAULT)`, 2: `munlock`, 3..=9:
    /// `mlockall` with flags `mode - 3` (0 and `MCL_ONFAULT` alone fail),
    /// otherwise `munlockall`.
    Mlock {
        p: u8,
        r: Range,
        mode: u8,
    },
    /// A kswapd pass (`reclaim()`).
    Reclaim,
    Store {
        p: u8,
        r: Range,
    },
    Load {
        p: u8,
        r: Range,
    },
    Fork {
        p: u8,
    },
    Exit {
        p: u8,
    },
    RingSetup {
        p: u8,
    },
    Register {
        p: u8,
        ring: u8,
        r: Range,
    },
    Unregister {
        p: u8,
        ring: u8,
    },
    ReadFixed {
        p: u8,
        ring: u8,
        off: u64,
        len: u64,
    },
    WriteFixed {
        p: u8,
        ring: u8,
        off: u64,
        len: u64,
    },
    RegMr {
        p: u8,
        r: Range,
        access: u8,
    },
    DeregMr {
        p: u8,
        mr: u8,
    },
    RdmaWrite {
        mr: u8,
    },
    RdmaRead {
        mr: u8,
    },
    Pipe {
        p: u8,
    },
    Vmsplice {
        p: u8,
        pipe: u8,
        r: Range,
    },
    PipeRead {
        p: u8,
        pipe: u8,
    },
    Gup {
        holder: u8,
        target: u8,
        api: u8,
        r: Range,
        flags: u32,
    },
    GupRelease {
        h: u8,
        dirty: bool,
    },
    KsmScan,
}

const ADVICE: [u64; 11] = [
    MADV_DONTNEED,
    MADV_FREE,
    MADV_DONTFORK,
    MADV_DOFORK,
    MADV_WIPEONFORK,
    MADV_HUGEPAGE,
    MADV_MERGEABLE,
    MADV_COLLAPSE,
    MADV_PAGEOUT,
    MADV_COLD,
    MADV_REMOVE,
];

const APIS: [GupApi; 6] = [
    GupApi::GetUserPages,
    GupApi::GetUserPagesRemote,
    GupApi::GetUserPagesFast,
    GupApi::PinUserPages,
    GupApi::PinUserPagesRemote,
    GupApi::PinUserPagesFast,
];

/// Flags a raw GUP caller may pass (bit i of the op's `flags` selects entry i),
/// internal ones included so that argument checking is exercised.
const GUP_FLAGS: [u32; 12] = [
    FOLL_WRITE,
    FOLL_LONGTERM,
    FOLL_FORCE,
    FOLL_GET,
    FOLL_PIN,
    FOLL_NOWAIT,
    FOLL_NOFAULT,
    FOLL_DUMP,
    FOLL_ANON,
    FOLL_PCI_P2PDMA,
    FOLL_TOUCH,
    FOLL_FAST_ONLY,
];

/// Mostly the flag sets real callers pass; sometimes any mix of [`GUP_FLAGS`]
/// (bit i selects entry i), internal flags included, to exercise argument checks.
fn gup_flags() -> impl Strategy<Value = u32> {
    let bits = any::<u16>().prop_map(|b| {
        GUP_FLAGS
            .iter()
            .enumerate()
            .filter(|(i, _)| b & (1 << i) != 0)
            .fold(0, |acc, (_, &f)| acc | f)
    });
    prop_oneof![
        2 => Just(0),
        3 => Just(FOLL_WRITE),
        3 => Just(FOLL_WRITE | FOLL_LONGTERM),
        2 => Just(FOLL_LONGTERM),
        1 => Just(FOLL_WRITE | FOLL_FORCE),
        1 => Just(FOLL_FORCE | FOLL_LONGTERM),
        1 => Just(FOLL_GET),
        2 => bits,
    ]
}

fn range() -> impl Strategy<Value = Range> {
    (
        0u8..3,
        prop_oneof![2 => Just(0u16), 3 => any::<u16>()],
        prop_oneof![1 => Just(0u16), 3 => Just(u16::MAX), 4 => 1u16..8, 3 => any::<u16>()],
        prop_oneof![6 => Just(0u16), 1 => 0u16..4096],
        prop_oneof![40 => Just(0u8), 1 => 1u8..4],
    )
        .prop_map(|(b, off, len, byte, wild)| Range {
            b,
            off,
            len,
            byte,
            wild,
        })
}

/// Byte offset into a registered buffer (mostly inside the first pages).
fn fixed_off() -> impl Strategy<Value = u64> {
    prop_oneof![4 => Just(0u64), 4 => 0u64..(4 * PAGE_SIZE), 1 => any::<u64>()]
}

/// Byte length of a fixed-buffer I/O.
fn fixed_len() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 1u64..(2 * PAGE_SIZE), 2 => Just(PAGE_SIZE), 1 => any::<u64>()]
}

fn op() -> impl Strategy<Value = Op> {
    let p = || 0u8..3;
    let small = || any::<u8>();
    prop_oneof![
        4 => (p(), 0u8..3, prop::bool::weighted(0.2), prop_oneof![6 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)], prop::bool::weighted(0.2)).prop_map(|(p, b, shared, huge, populate)| Op::Mmap { p, b, shared, huge, populate }),
        1 => (p(), range()).prop_map(|(p, r)| Op::Munmap { p, r }),
        2 => (p(), range(), any::<bool>()).prop_map(|(p, r, rw)| Op::Mprotect { p, r, rw }),
        2 => (p(), range(), 0u8..11).prop_map(|(p, r, advice)| Op::Madvise { p, r, advice }),
        2 => (p(), range(), 0u8..11).prop_map(|(p, r, mode)| Op::Mlock { p, r, mode }),
        1 => Just(Op::Reclaim),
        1 => (p(), range(), 0u8..6, 0u8..3, -2i8..=2).prop_map(|(p, r, mode, to, delta)| Op::Mremap { p, r, mode, to, delta }),
        5 => (p(), range()).prop_map(|(p, r)| Op::Store { p, r }),
        3 => (p(), range()).prop_map(|(p, r)| Op::Load { p, r }),
        3 => p().prop_map(|p| Op::Fork { p }),
        1 => p().prop_map(|p| Op::Exit { p }),
        2 => p().prop_map(|p| Op::RingSetup { p }),
        3 => (p(), small(), range()).prop_map(|(p, ring, r)| Op::Register { p, ring, r }),
        1 => (p(), small()).prop_map(|(p, ring)| Op::Unregister { p, ring }),
        2 => (p(), small(), fixed_off(), fixed_len()).prop_map(|(p, ring, off, len)| Op::ReadFixed { p, ring, off, len }),
        2 => (p(), small(), fixed_off(), fixed_len()).prop_map(|(p, ring, off, len)| Op::WriteFixed { p, ring, off, len }),
        2 => (p(), range(), 0u8..16).prop_map(|(p, r, access)| Op::RegMr { p, r, access }),
        1 => (p(), small()).prop_map(|(p, mr)| Op::DeregMr { p, mr }),
        1 => small().prop_map(|mr| Op::RdmaWrite { mr }),
        1 => small().prop_map(|mr| Op::RdmaRead { mr }),
        1 => p().prop_map(|p| Op::Pipe { p }),
        2 => (p(), small(), range()).prop_map(|(p, pipe, r)| Op::Vmsplice { p, pipe, r }),
        1 => (p(), small()).prop_map(|(p, pipe)| Op::PipeRead { p, pipe }),
        4 => (p(), p(), 0u8..6, range(), gup_flags()).prop_map(|(holder, target, api, r, flags)| Op::Gup { holder, target, api, r, flags }),
        2 => (small(), any::<bool>()).prop_map(|(h, dirty)| Op::GupRelease { h, dirty }),
        1 => Just(Op::KsmScan),
    ]
}

/// The test's view of the run: pids, buffer addresses and device object ids.
#[derive(Clone)]
struct World {
    m: Machine,
    pol: Policy,
    procs: Vec<Pid>,
    addr: [Option<u64>; 3],
    rings: Vec<usize>,
    mrs: Vec<usize>,
    pipes: Vec<usize>,
    handles: Vec<usize>,
}

fn pick<T: Copy>(v: &[T], i: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[i as usize % v.len()])
}

impl World {
    /// The initial state: one process with the three buffers mapped (private,
    /// the 2 MiB one with MADV_HUGEPAGE), an io_uring instance and a pipe.
    fn new(pol: &Policy, cfg: &MachineConfig) -> World {
        let mut w = World {
            m: Machine::new(cfg.clone()),
            pol: pol.clone(),
            procs: Vec::new(),
            addr: [None; 3],
            rings: Vec::new(),
            mrs: Vec::new(),
            pipes: Vec::new(),
            handles: Vec::new(),
        };
        let p = w.m.spawn("p0");
        w.procs.push(p);
        for b in 0..3 {
            assert!(w.apply(
                0,
                &Op::Mmap {
                    p: 0,
                    b,
                    shared: false,
                    huge: 0,
                    populate: false,
                }
            ));
        }
        assert!(w.apply(0, &Op::RingSetup { p: 0 }));
        assert!(w.apply(0, &Op::Pipe { p: 0 }));
        w
    }

    fn pid(&self, p: u8) -> Pid {
        self.procs[p as usize % self.procs.len()]
    }

    /// Byte address and length of a range (addresses of an unmapped slot are
    /// still used: the model must fail cleanly).
    fn span(&self, r: Range) -> (u64, u64) {
        let size = SLOTS[r.b as usize];
        let base = self.addr[r.b as usize].unwrap_or(0x5000_0000_0000);
        let off = r.off as u64 % size;
        let len = match r.len {
            0 => 0,
            u16::MAX => size - off,
            l => 1 + (l as u64 - 1) % (size - off),
        };
        let byte = (r.byte as u64).min(len * PAGE_SIZE / 2);
        let (a, l) = (base + off * PAGE_SIZE + byte, len * PAGE_SIZE - byte);
        match r.wild {
            1 => (
                u64::MAX - PAGE_SIZE + 1 - (r.off as u64 % 4) * PAGE_SIZE,
                l.max(1),
            ),
            2 => (0, l),
            3 => (a, u64::MAX - (r.byte as u64)),
            _ => (a, l),
        }
    }

    /// Applies one operation; returns whether the call succeeded (for coverage
    /// statistics only: failing calls are part of the test).
    fn apply(&mut self, step: usize, op: &Op) -> bool {
        let pol = self.pol.clone();
        let wid = |p: Pid| WriteId {
            actor: p as u16,
            pc: step as u16,
            tag: (b'a' + (step % 26) as u8) as char,
        };
        let page = |a: u64| a & !(PAGE_SIZE - 1);
        match *op {
            Op::Mmap {
                p,
                b,
                shared,
                huge,
                populate,
            } => {
                let pid = self.pid(p);
                let len = SLOTS[b as usize] * PAGE_SIZE;
                let mut flags = if shared { MAP_SHARED } else { MAP_PRIVATE } | MAP_ANONYMOUS;
                if b == 2 && huge > 0 {
                    flags |= MAP_HUGETLB | if huge == 2 { MAP_NORESERVE } else { 0 };
                }
                let Ok(a) = self.m.mmap_anon(pid, len, PROT_READ | PROT_WRITE, flags) else {
                    return false;
                };
                self.addr[b as usize] = Some(a);
                if populate {
                    self.m.mm_populate(&pol, pid, a, len);
                }
                b != 2
                    || flags & MAP_HUGETLB != 0
                    || self.m.madvise(pid, a, len, MADV_HUGEPAGE).is_ok()
            }
            Op::Munmap { p, r } => {
                let (a, l) = self.span(r);
                self.m.munmap(self.pid(p), page(a), l).is_ok()
            }
            Op::Mprotect { p, r, rw } => {
                let (a, l) = self.span(r);
                let prot = if rw {
                    PROT_READ | PROT_WRITE
                } else {
                    PROT_READ
                };
                self.m.mprotect(&pol, self.pid(p), page(a), l, prot).is_ok()
            }
            Op::Mremap {
                p,
                r,
                mode,
                to,
                delta,
            } => {
                let (a, l) = self.span(r);
                let grown = (page(l) as i64 + delta as i64 * PAGE_SIZE as i64).max(0) as u64;
                let mv = MREMAP_MAYMOVE | MREMAP_FIXED;
                // 0: in place; 1: MAYMOVE; 2: FIXED onto slot `to`; 3: DONTUNMAP;
                // 4: FIXED to a free area (PMD-aligned, or one page off for `to` 0);
                // 5: FIXED without MAYMOVE (EINVAL).
                let (flags, new_len, dst) = match mode {
                    0 => (0, grown, 0),
                    1 => (MREMAP_MAYMOVE, grown, 0),
                    2 => (mv, l, self.addr[to as usize].unwrap_or(0)),
                    3 => (MREMAP_MAYMOVE | MREMAP_DONTUNMAP, l, 0),
                    4 => (mv, grown, 0x6000_0000_0000 + u64::from(to == 0) * PAGE_SIZE),
                    _ => (MREMAP_FIXED, l, 0x6000_0000_0000),
                };
                let Ok(n) = self.m.mremap(self.pid(p), page(a), l, new_len, flags, dst) else {
                    return false;
                };
                if n != page(a) && r.off == 0 && r.wild == 0 && r.b != 2 {
                    // The whole small slot moved: follow it (the 2 MiB slot stays
                    // put so that THP operations keep their aligned address).
                    self.addr[r.b as usize] = Some(n);
                }
                true
            }
            Op::Madvise { p, r, advice } => {
                let (a, l) = self.span(r);
                self.m
                    .madvise(self.pid(p), page(a), l, ADVICE[advice as usize])
                    .is_ok()
            }
            Op::Mlock { p, r, mode } => {
                let (a, l) = self.span(r);
                let pid = self.pid(p);
                match mode {
                    0 => self.m.sys_mlock2(&pol, pid, a, l, 0).is_ok(),
                    1 => self.m.sys_mlock2(&pol, pid, a, l, MLOCK_ONFAULT).is_ok(),
                    2 => self.m.sys_munlock(pid, a, l).is_ok(),
                    3..=9 => self.m.sys_mlockall(&pol, pid, u64::from(mode - 3)).is_ok(),
                    _ => self.m.sys_munlockall(pid).is_ok(),
                }
            }
            Op::Reclaim => {
                self.m.reclaim(&pol);
                true
            }
            Op::Store { p, r } => {
                let (a, l) = self.span(r);
                let pid = self.pid(p);
                self.m.cpu_store(&pol, pid, a, l, wid(pid)).is_ok()
            }
            Op::Load { p, r } => {
                let (a, l) = self.span(r);
                self.m.cpu_load(&pol, self.pid(p), a, l).is_ok()
            }
            Op::Fork { p } => {
                if self.procs.len() >= MAX_PROCS {
                    return false;
                }
                let Ok(c) = self.m.fork(&pol, self.pid(p), "child") else {
                    return false;
                };
                self.procs.push(c);
                true
            }
            Op::Exit { p } => {
                let pid = self.pid(p);
                let alive = self.m.alive(pid);
                self.m.exit(&pol, pid);
                alive
            }
            Op::RingSetup { p } => {
                let pid = self.pid(p);
                if self.rings.len() >= MAX_OBJS || !self.m.alive(pid) {
                    return false;
                }
                self.rings.push(self.m.io_uring_setup(pid));
                true
            }
            Op::Register { p, ring, r } => {
                let Some(ring) = pick(&self.rings, ring) else {
                    return false;
                };
                let (a, l) = self.span(r);
                self.m
                    .io_uring_register_buffers(&pol, self.pid(p), ring, a, l)
                    .is_ok()
            }
            Op::Unregister { p, ring } => {
                let Some(ring) = pick(&self.rings, ring) else {
                    return false;
                };
                self.m
                    .io_uring_unregister_buffers(&pol, self.pid(p), ring)
                    .is_ok()
            }
            Op::ReadFixed { p, ring, off, len } => {
                let Some(ring) = pick(&self.rings, ring) else {
                    return false;
                };
                let pid = self.pid(p);
                self.m
                    .io_uring_read_fixed(pid, ring, off, len, wid(pid))
                    .is_ok()
            }
            Op::WriteFixed { p, ring, off, len } => {
                let Some(ring) = pick(&self.rings, ring) else {
                    return false;
                };
                self.m
                    .io_uring_write_fixed(self.pid(p), ring, off, len)
                    .is_ok()
            }
            Op::RegMr { p, r, access } => {
                if self.mrs.len() >= MAX_OBJS {
                    return false;
                }
                let (a, l) = self.span(r);
                let bits = [
                    IBV_ACCESS_LOCAL_WRITE,
                    IBV_ACCESS_REMOTE_WRITE,
                    IBV_ACCESS_REMOTE_READ,
                    IBV_ACCESS_REMOTE_ATOMIC,
                ];
                let acc = (0..4)
                    .filter(|i| access & (1 << i) != 0)
                    .fold(0, |acc, i| acc | bits[i]);
                let Ok(mr) = self.m.ibv_reg_mr(&pol, self.pid(p), a, l, acc) else {
                    return false;
                };
                self.mrs.push(mr);
                true
            }
            Op::DeregMr { p, mr } => {
                let Some(mr) = pick(&self.mrs, mr) else {
                    return false;
                };
                self.m.ibv_dereg_mr(&pol, self.pid(p), mr).is_ok()
            }
            Op::RdmaWrite { mr } => {
                let Some(mr) = pick(&self.mrs, mr) else {
                    return false;
                };
                let w = WriteId {
                    actor: 9,
                    pc: step as u16,
                    tag: 'R',
                };
                self.m.rdma_write(mr, w).is_ok()
            }
            Op::RdmaRead { mr } => {
                let Some(mr) = pick(&self.mrs, mr) else {
                    return false;
                };
                self.m.rdma_read(mr).is_ok()
            }
            Op::Pipe { p } => {
                let pid = self.pid(p);
                if self.pipes.len() >= MAX_OBJS || !self.m.alive(pid) {
                    return false;
                }
                self.pipes.push(self.m.pipe(pid));
                true
            }
            Op::Vmsplice { p, pipe, r } => {
                let Some(pipe) = pick(&self.pipes, pipe) else {
                    return false;
                };
                let (a, l) = self.span(r);
                self.m.vmsplice(&pol, self.pid(p), pipe, a, l).is_ok()
            }
            Op::PipeRead { p, pipe } => {
                let Some(pipe) = pick(&self.pipes, pipe) else {
                    return false;
                };
                self.m.pipe_read(self.pid(p), pipe).is_ok()
            }
            Op::Gup {
                holder,
                target,
                api,
                r,
                flags,
            } => {
                let (a, l) = self.span(r);
                let holder = self.pid(holder);
                if !self.m.alive(holder) {
                    return false;
                }
                let api = APIS[api as usize];
                let nr = l.div_ceil(PAGE_SIZE);
                let r = self
                    .m
                    .gup_handle(&pol, api, holder, self.pid(target), a, nr, flags);
                let Ok((h, n)) = r else { return false };
                self.handles.push(h);
                n > 0
            }
            Op::GupRelease { h, dirty } => {
                let Some(h) = pick(&self.handles, h) else {
                    return false;
                };
                self.m.gup_release(&pol, h, dirty).is_ok()
            }
            Op::KsmScan => {
                self.m.ksm_scan(&pol);
                true
            }
        }
    }
}

thread_local! {
    /// Per operation kind: (succeeded, attempted); printed with PINLAB_PROPTEST_STATS=1.
    static STATS: std::cell::RefCell<std::collections::BTreeMap<String, (u64, u64)>> =
        Default::default();
}

fn run(pol: &Policy, cfg: &MachineConfig, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut w = World::new(pol, cfg);
    if let Err(e) = w.m.check_invariants(pol) {
        return Err(TestCaseError::fail(format!(
            "{}: initial state: {e}",
            pol.name()
        )));
    }
    // Frame symmetry: a twin world canonicalized after every step must behave
    // exactly like the original up to the renaming, so canonicalizing the
    // original gives the twin itself (mem/canon.rs).
    // Worlds with mmu notifier mirrors (every MR under `hmm_mirror`) are never
    // canonicalized, as in the scenario binding.
    let mut twin = (!pol.has(Switch::hmm_mirror)).then(|| w.clone());
    for (step, op) in ops.iter().enumerate() {
        let ok = w.apply(step + 1, op);
        if let Some(twin) = twin.as_mut() {
            let canonical = twin.m.canonicalize_frames();
            let twin_ok = twin.apply(step + 1, op);
            prop_assert_eq!(
                ok,
                twin_ok,
                "{}: step {} {:?} differs on the canonical twin",
                pol.name(),
                step,
                op
            );
            let mut canon = w.m.clone();
            if canonical && canon.canonicalize_frames() {
                let mut t = twin.m.clone();
                prop_assert!(t.canonicalize_frames());
                prop_assert!(
                    canon == t,
                    "{}: step {} {:?}: canonical state differs from the canonical twin's",
                    pol.name(),
                    step,
                    op
                );
                let mut again = canon.clone();
                again.canonicalize_frames();
                prop_assert!(
                    again == canon,
                    "{}: canonicalization is not idempotent",
                    pol.name()
                );
            }
        }
        STATS.with(|s| {
            let kind = format!("{op:?}");
            let kind = kind.split([' ', '{']).next().unwrap_or("").to_string();
            let mut s = s.borrow_mut();
            let e = s.entry(kind).or_default();
            e.0 += ok as u64;
            e.1 += 1;
        });
        if let Err(e) = w.m.check_invariants(pol) {
            return Err(TestCaseError::fail(format!(
                "{}: invariant broken after step {step} {op:?}: {e}",
                pol.name()
            )));
        }
    }
    if pol.has(Switch::anon_exclusive) {
        // PageAnonExclusive (5.19+): no process ever sees another's private data.
        let leaks: Vec<_> =
            w.m.judge(&[])
                .into_iter()
                .filter(|(o, _)| *o == Outcome::LeakOther)
                .collect();
        prop_assert!(leaks.is_empty(), "{}: {leaks:?}", pol.name());
    }
    for pid in w.procs.clone() {
        w.m.exit(pol, pid);
        if let Err(e) = w.m.check_invariants(pol) {
            return Err(TestCaseError::fail(format!(
                "{}: invariant broken after exit of {pid}: {e}",
                pol.name()
            )));
        }
    }
    let vs = &w.m.vmstat;
    prop_assert_eq!(
        vs.nr_foll_pin_acquired,
        vs.nr_foll_pin_released,
        "{}: pins balance once everything exited",
        pol.name()
    );
    prop_assert!(
        w.m.dev.holds().is_empty(),
        "{}: device holds left",
        pol.name()
    );
    for (pfn, f) in w.m.frames.iter() {
        prop_assert!(
            matches!(f.kind, FolioKind::File { .. }) && f.refcount == f.nr_pages() as i64,
            "{}: folio {pfn:#x} left behind: {f:?}",
            pol.name()
        );
    }
    // Every hugetlb page is back in the pool (the files of MAP_HUGETLB
    // mappings were evicted with their last mapping).
    prop_assert_eq!(
        w.m.frames.hugetlb_free,
        cfg.nr_hugepages,
        "{}: hugetlb pages left in use",
        pol.name()
    );
    Ok(())
}

fn cfg() -> impl Strategy<Value = MachineConfig> {
    (
        prop_oneof![Just(Zone::Normal), Just(Zone::Movable), Just(Zone::Cma)],
        prop_oneof![4 => Just(Thp::Madvise), 1 => Just(Thp::Always), 1 => Just(Thp::Never)],
        any::<bool>(),
        prop_oneof![2 => Just(0u64), 3 => 1u64..4],
    )
        .prop_map(|(user_zone, thp, swap, nr_hugepages)| MachineConfig {
            user_zone,
            thp,
            swap,
            nr_hugepages,
            ..MachineConfig::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_ops_keep_invariants_under_every_preset(
        cfg in cfg(),
        ops in prop::collection::vec(op(), 0..=40),
    ) {
        for pol in Policy::presets() {
            run(&pol, &cfg, &ops)?;
        }
    }
}

/// The generator must reach deep states: over 256 upstream runs every kind of
/// operation succeeds a fair number of times (per-kind counts are printed with
/// `--nocapture`).
#[test]
fn generator_reaches_deep_states() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strat = (cfg(), prop::collection::vec(op(), 0..=40));
    let pol = Policy::preset("upstream").expect("preset");
    STATS.with(|s| s.borrow_mut().clear());
    for _ in 0..256 {
        let (cfg, ops) = strat.new_tree(&mut runner).expect("tree").current();
        run(&pol, &cfg, &ops).expect("property");
    }
    STATS.with(|s| {
        let s = s.borrow();
        for (k, (ok, n)) in s.iter() {
            println!("{k:12} {ok:5} / {n:5}");
        }
        for kind in [
            "Mmap",
            "Munmap",
            "Mprotect",
            "Madvise",
            "Mlock",
            "Mremap",
            "Store",
            "Load",
            "Fork",
            "Exit",
            "Register",
            "Unregister",
            "ReadFixed",
            "WriteFixed",
            "RegMr",
            "DeregMr",
            "RdmaWrite",
            "RdmaRead",
            "Vmsplice",
            "PipeRead",
            "Gup",
            "GupRelease",
        ] {
            let (ok, n) = s.get(kind).copied().unwrap_or_default();
            assert!(
                ok >= 5 && ok * 20 >= n,
                "{kind} succeeded only {ok} of {n} times"
            );
        }
    });
}
