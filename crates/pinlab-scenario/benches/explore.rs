//! Explorer throughput on the built-in fork scenarios: unique states per second.

use divan::counter::ItemsCount;
use divan::Bencher;
use pinlab_explore::{explore, Config};
use pinlab_model::Policy;
use pinlab_scenario::builtin::builtin;
use pinlab_scenario::model::Bound;

fn main() {
    divan::main();
}

#[divan::bench(args = ["legacy", "upstream"])]
fn fork_after_pin(b: Bencher, policy: &str) {
    let scn = builtin("fork-after-pin").unwrap().unwrap();
    let p = Policy::preset(policy).unwrap();
    let model = Bound {
        scn: &scn,
        policy: &p,
    };
    let cfg = Config {
        threads: 1,
        ..Config::default()
    };
    let states = explore(&model, &cfg).states;
    b.counter(ItemsCount::new(states))
        .bench(|| explore(&model, &cfg).states);
}

#[divan::bench(args = ["legacy", "upstream"])]
fn fork_after_iouring_pin(b: Bencher, policy: &str) {
    let scn = builtin("fork-after-iouring-pin").unwrap().unwrap();
    let p = Policy::preset(policy).unwrap();
    let model = Bound {
        scn: &scn,
        policy: &p,
    };
    let cfg = Config {
        threads: 1,
        ..Config::default()
    };
    let states = explore(&model, &cfg).states;
    b.counter(ItemsCount::new(states))
        .bench(|| explore(&model, &cfg).states);
}
