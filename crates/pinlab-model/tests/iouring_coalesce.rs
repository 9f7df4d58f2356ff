//! Which registered buffers io_uring coalesces to one pin per folio, by
//! release: none before v6.3; from v6.3 (57bebf807e2a) a buffer whose pages
//! all lie in one large folio; from v6.12 (a8edbb424b13) also a buffer made of
//! several large folios of one size. Counts: `_pincount` of each folio and the
//! `nr_foll_pin_*` deltas of the registration. (Release presets exist for the
//! LTS series: v6.1 is before both, v6.6 has the first, v6.12 both.)

mod common;
use common::Sim;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};

/// Registers `len` bytes at the start of an `n` × 2 MiB THP buffer under
/// `release`; returns each folio's `_pincount` and the registration's
/// (acquired, released) deltas.
fn register(release: &str, n: u64, len: u64) -> (Vec<i64>, (u64, u64)) {
    let mut s = Sim::new(release);
    let p = s.spawn("probe");
    let (a, _) = s.thp_buffer(p, n, 'P');
    let ring = s.ring(p);
    let base = s.pins();
    s.register(p, ring, a, len).unwrap();
    let delta = s.pins_since(base);
    let pins = (0..n)
        .map(|k| s.folio(s.pfn(p, a + k * PMD_SIZE).unwrap()).pincount)
        .collect();
    s.unregister(p, ring);
    (pins, delta)
}

#[test]
fn v6_1_keeps_one_pin_per_page_of_a_thp() {
    assert_eq!(register("v6.1", 1, 2 * PAGE_SIZE), (vec![2], (2, 0)));
}

#[test]
fn v6_6_coalesces_a_buffer_inside_one_thp() {
    assert_eq!(register("v6.6", 1, 2 * PAGE_SIZE), (vec![1], (2, 1)));
    assert_eq!(register("v6.6", 1, PMD_SIZE), (vec![1], (512, 511)));
}

#[test]
fn v6_6_keeps_one_pin_per_page_of_a_buffer_over_two_thps() {
    assert_eq!(
        register("v6.6", 2, 2 * PMD_SIZE),
        (vec![512, 512], (1024, 0))
    );
}

#[test]
fn v6_12_coalesces_a_buffer_over_two_thps() {
    assert_eq!(
        register("v6.12", 2, 2 * PMD_SIZE),
        (vec![1, 1], (1024, 1022))
    );
}

#[test]
fn the_proposal_presets_do_not_coalesce() {
    // legacy takes FOLL_GET references (no _pincount, no vmstat); follpin and
    // pwrite-race pin, one pin per page.
    assert_eq!(register("legacy", 1, 2 * PAGE_SIZE), (vec![0], (0, 0)));
    for p in ["follpin", "pwrite-race"] {
        assert_eq!(register(p, 1, 2 * PAGE_SIZE), (vec![2], (2, 0)), "{p}");
    }
}
