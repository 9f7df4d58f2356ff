//! Controls for the ghost oracles next to the cow.c cases: data a process hands
//! over on purpose (vmsplice into a pipe another process reads) is not a leak,
//! while data that reaches a pipe through a COW bug is (cow.rs `*__legacy_leaks`).

mod common;

use common::*;
use pinlab_model::vm::PAGE_SIZE;
use pinlab_model::Outcome;

#[test]
fn vmsplice_to_child_through_inherited_pipe_is_not_a_leak() {
    for pol in ["upstream", "legacy"] {
        let mut s = Sim::new(pol);
        let p = s.spawn("parent");
        let a = s.mmap(p, PAGE_SIZE);
        s.store(p, a, PAGE_SIZE, 'A');
        let pipe = s.pipe(p);
        let c = s.fork(p);
        // The parent writes after fork, then sends the page to its child.
        let w = s.store(p, a, PAGE_SIZE, 'B');
        s.vmsplice(p, pipe, a, PAGE_SIZE);
        assert_eq!(s.pipe_read(c, pipe), vers(w, 1));
        assert!(
            !s.outcomes().contains(&Outcome::LeakOther),
            "{pol}: {:?}",
            s.m.judge(&[])
        );
    }
}

#[test]
fn vmsplice_sender_may_update_the_page_while_it_sits_in_the_pipe() {
    // vmsplice references the page: a later write by the sender into its own
    // (exclusive) page is what the reader gets.
    let mut s = Sim::new("upstream");
    let p = s.spawn("parent");
    let a = s.mmap(p, PAGE_SIZE);
    s.store(p, a, PAGE_SIZE, 'A');
    let pipe = s.pipe(p);
    let c = s.fork(p);
    s.store(p, a, PAGE_SIZE, 'B');
    s.vmsplice(p, pipe, a, PAGE_SIZE);
    let w = s.store(p, a, PAGE_SIZE, 'C');
    assert_eq!(s.pipe_read(c, pipe), vers(w, 1));
    assert!(!s.outcomes().contains(&Outcome::LeakOther));
}
