//! Pin/unpin throughput of the model, in the shape of the host probe's Exp. 7
//! (`IORING_REGISTER_BUFFERS` of 1 GiB) and gup_test's `PIN_FAST_BENCHMARK`.
//!
//! Every benchmark builds its machine outside the timed part: one process, a
//! 1 GiB private anonymous mapping (THP off via `MADV_NOHUGEPAGE`, or PMD THPs
//! via `MADV_HUGEPAGE`), prefaulted by a CPU store to every 4 KiB page. The timed
//! part is one pin and the matching unpin of the whole range under the
//! `upstream` policy; items are 4 KiB pages, so divan's throughput column is
//! pages per second and `time / 262144` is ns per page.
//!
//! - `pin_unpin/{small_4k,thp_2m}`: `pin_user_pages_fast(FOLL_WRITE|FOLL_LONGTERM)`
//!   then `unpin_user_pages` (what `gup_test -a -w` times, but in one call).
//! - `iouring_register_unregister/{small_4k,thp_2m}`: `IORING_REGISTER_BUFFERS`
//!   with one 1 GiB iovec, then `IORING_UNREGISTER_BUFFERS` (Exp. 7).
//! - `iouring_register` / `iouring_unregister`: the two halves timed separately
//!   (the other half runs outside the timed part), to compare with Exp. 7's
//!   separate register and unregister figures.

use divan::counter::ItemsCount;
use divan::Bencher;
use pinlab_model::gup::foll::{FOLL_LONGTERM, FOLL_WRITE};
use pinlab_model::gup::GupApi;
use pinlab_model::vm::uapi::{
    MADV_HUGEPAGE, MADV_NOHUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE,
};
use pinlab_model::vm::PAGE_SIZE;
use pinlab_model::{Machine, MachineConfig, Pid, Policy, WriteId};

fn main() {
    divan::main();
}

/// 1 GiB, the largest buffer io_uring accepts.
const LEN: u64 = 1 << 30;
/// 4 KiB pages in [`LEN`].
const PAGES: u64 = LEN / PAGE_SIZE;

fn policy() -> Policy {
    Policy::preset("upstream").expect("upstream preset")
}

/// The memory kind under test.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Order-0 anonymous folios (`MADV_NOHUGEPAGE`).
    Small4k,
    /// PMD-mapped order-9 anonymous THPs (`MADV_HUGEPAGE`).
    Thp2m,
}

const KINDS: &[Kind] = &[Kind::Small4k, Kind::Thp2m];

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Small4k => "small_4k",
            Kind::Thp2m => "thp_2m",
        })
    }
}

/// A machine with one process whose 1 GiB anonymous buffer is prefaulted.
fn prefaulted(policy: &Policy, kind: Kind) -> (Machine, Pid, u64) {
    let mut m = Machine::new(MachineConfig::default());
    let pid = m.spawn("bench");
    let addr = m
        .mmap_anon(
            pid,
            LEN,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
        )
        .expect("mmap");
    let advice = match kind {
        Kind::Small4k => MADV_NOHUGEPAGE,
        Kind::Thp2m => MADV_HUGEPAGE,
    };
    m.madvise(pid, addr, LEN, advice).expect("madvise");
    let wid = WriteId {
        actor: 0,
        pc: 0,
        tag: 'P',
    };
    m.cpu_store(policy, pid, addr, LEN, wid).expect("prefault");
    let mm = m.mm(pid).expect("mm");
    match kind {
        Kind::Small4k => assert_eq!(mm.ptes.len() as u64, PAGES),
        Kind::Thp2m => assert_eq!(mm.pmds.len() as u64, PAGES / 512),
    }
    (m, pid, addr)
}

/// `pin_user_pages_fast(FOLL_WRITE|FOLL_LONGTERM)` of 1 GiB, then `unpin_user_pages`.
#[divan::bench(args = KINDS, sample_count = 10, sample_size = 1)]
fn pin_unpin(bencher: Bencher, kind: Kind) {
    let policy = policy();
    bencher
        .counter(ItemsCount::new(PAGES))
        .with_inputs(|| prefaulted(&policy, kind))
        .bench_local_refs(|(m, pid, addr)| {
            let r = m.gup(
                &policy,
                GupApi::PinUserPagesFast,
                *pid,
                *addr,
                PAGES,
                FOLL_WRITE | FOLL_LONGTERM,
            );
            assert_eq!(r.ret, Ok(PAGES as usize));
            m.unpin_user_pages(&policy, &r.pages);
            r.pages
        });
}

/// `IORING_REGISTER_BUFFERS` of one 1 GiB iovec, then `IORING_UNREGISTER_BUFFERS`.
#[divan::bench(args = KINDS, sample_count = 10, sample_size = 1)]
fn iouring_register_unregister(bencher: Bencher, kind: Kind) {
    let policy = policy();
    bencher
        .counter(ItemsCount::new(PAGES))
        .with_inputs(|| {
            let (mut m, pid, addr) = prefaulted(&policy, kind);
            let ring = m.io_uring_setup(pid);
            (m, pid, addr, ring)
        })
        .bench_local_refs(|(m, pid, addr, ring)| {
            m.io_uring_register_buffers(&policy, *pid, *ring, *addr, LEN)
                .expect("register");
            m.io_uring_unregister_buffers(&policy, *pid, *ring)
                .expect("unregister");
        });
}

/// `IORING_REGISTER_BUFFERS` alone (the ring is torn down untimed).
#[divan::bench(args = KINDS, sample_count = 10, sample_size = 1)]
fn iouring_register(bencher: Bencher, kind: Kind) {
    let policy = policy();
    bencher
        .counter(ItemsCount::new(PAGES))
        .with_inputs(|| {
            let (mut m, pid, addr) = prefaulted(&policy, kind);
            let ring = m.io_uring_setup(pid);
            (m, pid, addr, ring)
        })
        .bench_local_refs(|(m, pid, addr, ring)| {
            m.io_uring_register_buffers(&policy, *pid, *ring, *addr, LEN)
                .expect("register");
        });
}

/// `IORING_UNREGISTER_BUFFERS` alone (the registration is made untimed).
#[divan::bench(args = KINDS, sample_count = 10, sample_size = 1)]
fn iouring_unregister(bencher: Bencher, kind: Kind) {
    let policy = policy();
    bencher
        .counter(ItemsCount::new(PAGES))
        .with_inputs(|| {
            let (mut m, pid, addr) = prefaulted(&policy, kind);
            let ring = m.io_uring_setup(pid);
            m.io_uring_register_buffers(&policy, pid, ring, addr, LEN)
                .expect("register");
            (m, pid, ring)
        })
        .bench_local_refs(|(m, pid, ring)| {
            m.io_uring_unregister_buffers(&policy, *pid, *ring)
                .expect("unregister");
        });
}
