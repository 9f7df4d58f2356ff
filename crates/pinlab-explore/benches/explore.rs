//! Explorer throughput on toy models of about 100k states (states/second is
//! reported as items/second).

use divan::counter::ItemsCount;
use divan::Bencher;
use pinlab_explore::{explore, explore_dfs, random_walks, Config, Model};

fn main() {
    divan::main();
}

/// `threads` threads each increment a shared counter twice with a racy
/// read-modify-write (4 threads: 107 177 states).
struct Counter {
    threads: usize,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct State {
    x: u32,
    th: Vec<(u8, u32)>,
}

#[derive(Clone, Debug)]
enum Act {
    Read(usize),
    Write(usize),
}

impl Model for Counter {
    type State = State;
    type Action = Act;
    type Outcome = u32;

    fn initial_state(&self) -> State {
        State {
            x: 0,
            th: vec![(0, 0); self.threads],
        }
    }

    fn actions(&self, s: &State, out: &mut Vec<Act>) {
        for (t, &(pc, _)) in s.th.iter().enumerate() {
            match pc {
                0 | 2 => out.push(Act::Read(t)),
                1 | 3 => out.push(Act::Write(t)),
                _ => {}
            }
        }
    }

    fn step(&self, s: &State, a: &Act) -> State {
        let mut s = s.clone();
        match *a {
            Act::Read(t) => s.th[t] = (s.th[t].0 + 1, s.x),
            Act::Write(t) => {
                s.x = s.th[t].1 + 1;
                s.th[t].0 += 1;
            }
        }
        s
    }

    fn check(&self, s: &State) -> Result<(), String> {
        if s.x as usize > 2 * self.threads {
            Err("overflow".into())
        } else {
            Ok(())
        }
    }

    fn finished(&self, s: &State) -> bool {
        s.th.iter().all(|&(pc, _)| pc == 4)
    }

    fn outcomes(&self, s: &State, _hung: bool) -> Vec<u32> {
        vec![s.x]
    }
}

const MODEL: Counter = Counter { threads: 4 };
const STATES: u64 = 107_177;

#[divan::bench(args = [1, 2, 4, 0])]
fn bfs(bencher: Bencher, threads: usize) {
    let cfg = Config {
        threads,
        ..Config::default()
    };
    bencher
        .counter(ItemsCount::new(STATES))
        .bench(|| explore(&MODEL, &cfg).states);
}

#[divan::bench]
fn dfs(bencher: Bencher) {
    bencher
        .counter(ItemsCount::new(STATES))
        .bench(|| explore_dfs(&MODEL, &Config::default()).states);
}

/// 10k walks of 16 steps: items are steps taken.
#[divan::bench]
fn walks(bencher: Bencher) {
    bencher
        .counter(ItemsCount::new(10_000u64 * 16))
        .bench(|| random_walks(&MODEL, 1, 10_000, 64).transitions);
}
