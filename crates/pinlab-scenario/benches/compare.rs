//! Explorer benchmarks, side by side in one run on one machine (only ratios are
//! stable on a shared 2-core machine):
//!
//! 1. pinlab-explore BFS vs stateright 0.31 BFS on the *same* models — the
//!    two-phase commit protocol of stateright's own example, written once as a
//!    `pinlab_explore::Model`, and a real scenario cell — run through an adapter,
//!    so both explorers call the same `actions`, `step` and `check`. State
//!    reductions are off (partial-order and symmetry reduction are model hooks
//!    stateright does not call), so both store the same states: unique states
//!    per second, pinlab with and without sleep sets (which skip transitions,
//!    never states). Then the transitions a perfect independence relation
//!    would let sleep sets skip on the real cell.
//! 2. The scaled cells under `scenarios/scale/`: unique states/s for BFS with 1
//!    and 2 threads and DFS, and bytes per stored state (peak RSS growth of a
//!    child process running the cell alone, divided by the states).
//! 3. States with and without each reduction.
//! 4. SPIN on the Promela model of `dio-writeback-truncate-p3-d2`
//!    (`benches/promela/`), with and without its partial-order reduction, against
//!    pinlab on the cell (if `spin` and `cc` are installed; skipped otherwise).
//!
//! `cargo bench -p pinlab-scenario --bench compare` (`-- quick` for one sample
//! per measurement, `-- only=1,3` for some sections). docs/PERFORMANCE.md
//! quotes a run.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use pinlab_explore::{Config, Search};
use pinlab_model::Policy;
use pinlab_scenario::model::Bound;
use pinlab_scenario::Scenario;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// ---------------------------------------------------------------------------
// Two-phase commit (Gray & Lamport), as in stateright's examples/2pc.rs.

mod twopc {
    use std::collections::BTreeSet;

    #[derive(Clone, Debug, Eq, Hash, PartialEq)]
    pub struct State {
        rm_state: Vec<Rm>,
        tm_state: Tm,
        tm_prepared: Vec<bool>,
        msgs: BTreeSet<Msg>,
    }

    #[derive(Clone, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
    enum Msg {
        Prepared(usize),
        Commit,
        Abort,
    }

    #[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
    enum Rm {
        Working,
        Prepared,
        Committed,
        Aborted,
    }

    #[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
    enum Tm {
        Init,
        Committed,
        Aborted,
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Action {
        TmRcvPrepared(usize),
        TmCommit,
        TmAbort,
        RmPrepare(usize),
        RmChooseToAbort(usize),
        RmRcvCommitMsg(usize),
        RmRcvAbortMsg(usize),
    }

    pub struct TwoPhase {
        pub rms: usize,
    }

    impl pinlab_explore::Model for TwoPhase {
        type State = State;
        type Action = Action;
        type Outcome = bool;

        fn initial_state(&self) -> State {
            State {
                rm_state: vec![Rm::Working; self.rms],
                tm_state: Tm::Init,
                tm_prepared: vec![false; self.rms],
                msgs: BTreeSet::new(),
            }
        }

        fn actions(&self, s: &State, out: &mut Vec<Action>) {
            if s.tm_state == Tm::Init && s.tm_prepared.iter().all(|p| *p) {
                out.push(Action::TmCommit);
            }
            if s.tm_state == Tm::Init {
                out.push(Action::TmAbort);
            }
            for rm in 0..self.rms {
                if s.tm_state == Tm::Init && s.msgs.contains(&Msg::Prepared(rm)) {
                    out.push(Action::TmRcvPrepared(rm));
                }
                if s.rm_state[rm] == Rm::Working {
                    out.push(Action::RmPrepare(rm));
                    out.push(Action::RmChooseToAbort(rm));
                }
                if s.msgs.contains(&Msg::Commit) {
                    out.push(Action::RmRcvCommitMsg(rm));
                }
                if s.msgs.contains(&Msg::Abort) {
                    out.push(Action::RmRcvAbortMsg(rm));
                }
            }
        }

        fn step(&self, s: &State, a: &Action) -> State {
            let mut s = s.clone();
            match *a {
                Action::TmRcvPrepared(rm) => s.tm_prepared[rm] = true,
                Action::TmCommit => {
                    s.tm_state = Tm::Committed;
                    s.msgs.insert(Msg::Commit);
                }
                Action::TmAbort => {
                    s.tm_state = Tm::Aborted;
                    s.msgs.insert(Msg::Abort);
                }
                Action::RmPrepare(rm) => {
                    s.rm_state[rm] = Rm::Prepared;
                    s.msgs.insert(Msg::Prepared(rm));
                }
                Action::RmChooseToAbort(rm) => s.rm_state[rm] = Rm::Aborted,
                Action::RmRcvCommitMsg(rm) => s.rm_state[rm] = Rm::Committed,
                Action::RmRcvAbortMsg(rm) => s.rm_state[rm] = Rm::Aborted,
            }
            s
        }

        /// The consistency invariant: no RM committed while another aborted.
        fn check(&self, s: &State) -> Result<(), String> {
            let c = s.rm_state.contains(&Rm::Committed);
            let a = s.rm_state.contains(&Rm::Aborted);
            if c && a {
                Err("inconsistent".into())
            } else {
                Ok(())
            }
        }

        fn finished(&self, _: &State) -> bool {
            true
        }

        fn outcomes(&self, s: &State, _: bool) -> Vec<bool> {
            vec![s.tm_state == Tm::Committed]
        }

        fn action_id(&self, a: &Action) -> Option<u32> {
            let per_rm = |rm: usize, k: usize| (2 + 5 * rm + k) as u32;
            Some(match *a {
                Action::TmCommit => 0,
                Action::TmAbort => 1,
                Action::TmRcvPrepared(rm) => per_rm(rm, 0),
                Action::RmPrepare(rm) => per_rm(rm, 1),
                Action::RmChooseToAbort(rm) => per_rm(rm, 2),
                Action::RmRcvCommitMsg(rm) => per_rm(rm, 3),
                Action::RmRcvAbortMsg(rm) => per_rm(rm, 4),
            })
        }

        /// Footprints over the TM's state, each `tm_prepared[rm]` and each
        /// `rm_state[rm]`; messages are only ever inserted into a set and
        /// tested for presence, so a message never makes two actions dependent.
        fn independence(&self, _: &State, enabled: &[Action], out: &mut Vec<u64>) {
            let tm = 1u64;
            let prepared = |rm: usize| 1u64 << (1 + rm);
            let all_prepared = (0..self.rms).fold(0, |m, rm| m | prepared(rm));
            let rm_state = |rm: usize| 1u64 << (1 + self.rms + rm);
            // (reads, writes) of each action.
            let foot = |a: &Action| match *a {
                Action::TmRcvPrepared(rm) => (tm, prepared(rm)),
                Action::TmCommit => (tm | all_prepared, tm),
                Action::TmAbort => (tm, tm),
                Action::RmPrepare(rm) | Action::RmChooseToAbort(rm) => (rm_state(rm), rm_state(rm)),
                Action::RmRcvCommitMsg(rm) | Action::RmRcvAbortMsg(rm) => (0, rm_state(rm)),
            };
            let feet: Vec<(u64, u64)> = enabled.iter().map(foot).collect();
            for (i, &(ra, wa)) in feet.iter().enumerate() {
                let mut m = 0;
                for (j, &(rb, wb)) in feet.iter().enumerate() {
                    if i != j && wa & (rb | wb) == 0 && wb & ra == 0 {
                        m |= 1 << j;
                    }
                }
                out.push(m);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Any pinlab model as a stateright model: same actions, step and invariant.

struct Sr<M>(M);

impl<M> stateright::Model for Sr<M>
where
    M: pinlab_explore::Model + Send + Sync + 'static,
    M::State: std::fmt::Debug,
    M::Action: PartialEq,
{
    type State = M::State;
    type Action = M::Action;

    fn init_states(&self) -> Vec<M::State> {
        vec![self.0.initial_state()]
    }

    fn actions(&self, s: &M::State, out: &mut Vec<M::Action>) {
        self.0.actions(s, out)
    }

    fn next_state(&self, s: &M::State, a: M::Action) -> Option<M::State> {
        Some(self.0.step(s, &a))
    }

    fn properties(&self) -> Vec<stateright::Property<Self>> {
        vec![stateright::Property::always(
            "check",
            |m: &Self, s: &M::State| m.0.check(s).is_ok(),
        )]
    }
}

// ---------------------------------------------------------------------------

fn quick() -> bool {
    std::env::args().any(|a| a == "quick")
}

fn samples(big: bool) -> usize {
    match (quick(), big) {
        (true, _) => 1,
        (false, true) => 3,
        (false, false) => 5,
    }
}

/// Median of `n` timings of `f`, which returns the unique state count.
fn median(n: usize, mut f: impl FnMut() -> u64) -> (u64, Duration) {
    let mut times = Vec::new();
    let mut states = 0;
    for _ in 0..n {
        let t = Instant::now();
        states = f();
        times.push(t.elapsed());
    }
    times.sort();
    (states, times[times.len() / 2])
}

/// Medians of `n` timings of each of `fs`, run in turn after one untimed run
/// of each: the first run in a process pays for faulting in its heap (on this
/// VM, zeroing fresh pages is a quarter of a first run), and taking turns
/// spreads the machine's drift over all of them.
fn medians(n: usize, fs: &mut [&mut dyn FnMut() -> u64]) -> Vec<(u64, Duration)> {
    for f in fs.iter_mut() {
        f();
    }
    let mut times = vec![Vec::new(); fs.len()];
    let mut states = vec![0; fs.len()];
    for _ in 0..n {
        for (k, f) in fs.iter_mut().enumerate() {
            let t = Instant::now();
            states[k] = f();
            times[k].push(t.elapsed());
        }
    }
    times
        .into_iter()
        .zip(states)
        .map(|(mut t, s)| {
            t.sort();
            (s, t[n / 2])
        })
        .collect()
}

fn rate(states: u64, d: Duration) -> f64 {
    states as f64 / d.as_secs_f64()
}

fn no_reduction(threads: usize) -> Config {
    Config {
        threads,
        por: false,
        symmetry: false,
        max_memory: None,
        ..Config::default()
    }
}

fn stateright_bfs<M>(m: M, threads: usize) -> u64
where
    M: pinlab_explore::Model + Send + Sync + 'static,
    M::State: std::fmt::Debug,
    M::Action: PartialEq,
{
    use stateright::{Checker, Model as _};
    let c = Sr(m).checker().threads(threads).spawn_bfs().join();
    c.unique_state_count() as u64
}

fn scale_file(name: &str) -> String {
    format!(
        "{}/../../scenarios/scale/{name}.scn",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn load_leak(name: &str) -> &'static Scenario {
    let path = scale_file(name);
    let text = std::fs::read_to_string(&path).expect("scaled scenario");
    Box::leak(Box::new(
        pinlab_scenario::load(&path, &text).expect("binds"),
    ))
}

fn cell(name: &str, policy: &str) -> Bound<'static> {
    let scn = load_leak(name);
    let p = Policy::parse(policy).expect("policy");
    let eff: &'static Policy = Box::leak(Box::new(p.with_switches(&scn.driver_bugs)));
    Bound { scn, policy: eff }
}

/// One row of section 1: pinlab with and without sleep sets, and stateright,
/// on the same model.
fn stateright_row<M>(name: &str, threads: usize, n: usize, model: impl Fn() -> M)
where
    M: pinlab_explore::Model + Send + Sync + 'static,
    M::State: std::fmt::Debug,
    M::Action: PartialEq,
{
    let plain = Config {
        sleep_sets: false,
        ..no_reduction(threads)
    };
    let r = medians(
        n,
        &mut [
            &mut || pinlab_explore::explore(&model(), &no_reduction(threads)).states,
            &mut || pinlab_explore::explore(&model(), &plain).states,
            &mut || stateright_bfs(model(), threads),
        ],
    );
    let sr = rate(r[2].0, r[2].1);
    for (s, _) in &r {
        assert_eq!(*s, r[2].0, "every explorer must see the same state graph");
    }
    println!(
        "| {name} | {} | {threads} | {:.0} ({:.2}×) | {:.0} ({:.2}×) | {sr:.0} |",
        r[2].0,
        rate(r[0].0, r[0].1),
        rate(r[0].0, r[0].1) / sr,
        rate(r[1].0, r[1].1),
        rate(r[1].0, r[1].1) / sr,
    );
}

/// `M` with the most independence there is: two enabled actions are
/// independent when executing them both ways reaches the same state and
/// neither disables the other — found by executing them, so only for counting
/// how many transitions a perfect independence relation would let sleep sets
/// skip.
struct Oracle<M>(M);

impl<M: pinlab_explore::Model> pinlab_explore::Model for Oracle<M> {
    type State = M::State;
    type Action = M::Action;
    type Outcome = M::Outcome;
    fn initial_state(&self) -> M::State {
        self.0.initial_state()
    }
    fn actions(&self, s: &M::State, out: &mut Vec<M::Action>) {
        self.0.actions(s, out)
    }
    fn step(&self, s: &M::State, a: &M::Action) -> M::State {
        self.0.step(s, a)
    }
    fn check(&self, s: &M::State) -> Result<(), String> {
        self.0.check(s)
    }
    fn finished(&self, s: &M::State) -> bool {
        self.0.finished(s)
    }
    fn outcomes(&self, s: &M::State, hung: bool) -> Vec<M::Outcome> {
        self.0.outcomes(s, hung)
    }
    fn action_id(&self, a: &M::Action) -> Option<u32> {
        self.0.action_id(a)
    }
    fn independence(&self, s: &M::State, enabled: &[M::Action], out: &mut Vec<u64>) {
        let ids = |st: &M::State| {
            let mut v = Vec::new();
            self.0.actions(st, &mut v);
            v.iter().map(|a| self.0.action_id(a)).collect::<Vec<_>>()
        };
        let succ: Vec<M::State> = enabled.iter().map(|a| self.0.step(s, a)).collect();
        let enabled_after: Vec<_> = succ.iter().map(ids).collect();
        for (i, a) in enabled.iter().enumerate() {
            let mut m = 0u64;
            for (j, b) in enabled.iter().enumerate().take(64) {
                if i != j
                    && enabled_after[i].contains(&self.0.action_id(b))
                    && enabled_after[j].contains(&self.0.action_id(a))
                    && self.0.step(&succ[i], b) == self.0.step(&succ[j], a)
                {
                    m |= 1 << j;
                }
            }
            out.push(m);
        }
    }
}

fn section_stateright() {
    println!("## 1. pinlab-explore vs stateright 0.31: BFS, same model, same states");
    println!();
    println!("Unique states/s (ratio to stateright). pinlab's sleep sets skip transitions, never states; POR and symmetry are off.");
    println!();
    println!(
        "| model | states | threads | pinlab, sleep sets | pinlab, no sleep sets | stateright |"
    );
    println!("|---|---|---|---|---|---|");
    let real = std::env::var("PINLAB_BENCH_REAL")
        .unwrap_or_else(|_| "rdma-pagecache-truncate-p2-n2".into());
    let real = real.as_str();
    // The independence claims sleep sets rely on, checked on every state.
    let claims = no_reduction(1);
    pinlab_explore::check_independence(&twopc::TwoPhase { rms: 5 }, &claims, usize::MAX)
        .expect("two-phase commit: independence");
    pinlab_explore::check_independence(&cell(real, "legacy"), &claims, usize::MAX)
        .expect("scenario cell: independence");
    for threads in [1usize, 2] {
        for rms in [6usize, 7] {
            stateright_row(
                &format!("two-phase commit, {rms} RMs"),
                threads,
                samples(rms == 7),
                || twopc::TwoPhase { rms },
            );
        }
        stateright_row(&format!("{real} / legacy"), threads, samples(true), || {
            cell(real, "legacy")
        });
    }
    println!();
    let one = no_reduction(1);
    let twopc = |c: &Config| pinlab_explore::explore(&twopc::TwoPhase { rms: 7 }, c).transitions;
    println!(
        "Transitions executed on two-phase commit, 7 RMs: {} without sleep sets, {} with.",
        twopc(&Config {
            sleep_sets: false,
            ..one.clone()
        }),
        twopc(&one)
    );
    println!();
    // How much a finer independence relation could give on the real cell.
    let off = pinlab_explore::explore(
        &cell(real, "legacy"),
        &Config {
            sleep_sets: false,
            ..one.clone()
        },
    );
    let model = pinlab_explore::explore(&cell(real, "legacy"), &one);
    let oracle = pinlab_explore::explore(&Oracle(cell(real, "legacy")), &one);
    assert_eq!((model.states, oracle.states), (off.states, off.states));
    println!("Transitions executed on {real} / legacy ({} states): {} without sleep sets, {} with the model's independence, {} with an oracle (every pair of enabled actions executed both ways: the most any independence relation can give, {:.0} % fewer).", off.states, off.transitions, model.transitions, oracle.transitions, 100.0 * (1.0 - oracle.transitions as f64 / off.transitions as f64));
    println!();
}

/// VmHWM (peak resident set) of this process in bytes.
fn vm_hwm() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// Child mode: explore one cell and print `states secs hwm_growth`.
fn child(args: &[String]) {
    let (name, policy, search, threads, por, sym) = (
        &args[0],
        &args[1],
        &args[2],
        args[3].parse().expect("threads"),
        args[4] == "1",
        args[5] == "1",
    );
    let model = cell(name, policy);
    let before = vm_hwm();
    let cfg = Config {
        threads,
        por,
        symmetry: sym,
        max_memory: None,
        search: if search == "dfs" {
            Search::Dfs
        } else {
            Search::Bfs
        },
        ..Config::default()
    };
    let x = pinlab_explore::run(&model, &cfg);
    let outs: BTreeSet<String> = x.outcomes.keys().map(|o| o.to_string()).collect();
    println!(
        "{} {} {} {}",
        x.states,
        x.elapsed.as_secs_f64(),
        vm_hwm().saturating_sub(before),
        outs.into_iter().collect::<Vec<_>>().join(",")
    );
}

struct Run {
    states: u64,
    secs: f64,
    bytes: u64,
    outcomes: String,
}

fn run_child(name: &str, policy: &str, search: &str, threads: usize, por: bool, sym: bool) -> Run {
    let exe = std::env::current_exe().expect("exe");
    let b = |x: bool| if x { "1" } else { "0" };
    let out = Command::new(exe)
        .args([
            "--child",
            name,
            policy,
            search,
            &threads.to_string(),
            b(por),
            b(sym),
        ])
        .output()
        .expect("child run");
    let s = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = s.split_whitespace().collect();
    assert!(
        f.len() >= 3,
        "child failed: {s} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Run {
        states: f[0].parse().expect("states"),
        secs: f[1].parse().expect("secs"),
        bytes: f[2].parse().expect("bytes"),
        outcomes: f.get(3).unwrap_or(&"").to_string(),
    }
}

fn best_of(n: usize, f: impl Fn() -> Run) -> Run {
    let mut runs: Vec<Run> = (0..n).map(|_| f()).collect();
    runs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    runs.swap_remove(runs.len() / 2)
}

const SCALED: &[(&str, &str)] = &[
    ("rdma-pagecache-truncate-p2-n4", "legacy"),
    ("rdma-pagecache-truncate-p2-n5", "legacy"),
    ("fork-after-pin-c5-n2", "upstream"),
    ("fork-after-pin-twins-c1-n4", "legacy"),
    ("rdma-pagecache-truncate-twins-p2-n4", "legacy"),
    ("dio-writeback-truncate-p3-d2", "legacy"),
];

fn section_scale() {
    println!("## 2. Scaled cells: unique states/s and bytes per stored state (reductions on)");
    println!();
    println!("| cell | search | threads | states | time | states/s | peak RSS growth | bytes/state | outcomes |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, policy) in SCALED {
        let mut one = None;
        for (search, threads) in [("bfs", 1usize), ("bfs", 2), ("dfs", 1)] {
            let n = if name.ends_with("-n5") {
                1
            } else {
                samples(true)
            };
            let r = best_of(n, || run_child(name, policy, search, threads, true, true));
            println!(
                "| {name} / {policy} | {search} | {threads} | {} | {:.2} s | {:.0} | {:.0} MiB | {:.0} | {} |",
                r.states,
                r.secs,
                rate(r.states, Duration::from_secs_f64(r.secs)),
                r.bytes as f64 / (1 << 20) as f64,
                r.bytes as f64 / r.states as f64,
                r.outcomes
            );
            if search == "bfs" && threads == 1 {
                one = Some(r.secs);
            } else if search == "bfs" {
                println!(
                    "|   speed-up of 2 threads over 1 | | | | | {:.2}× | | | |",
                    one.unwrap_or(r.secs) / r.secs
                );
            }
        }
    }
    println!();
}

fn section_reductions() {
    println!("## 3. States with and without each reduction (BFS, 2 threads)");
    println!();
    println!("| cell | none | POR | symmetry (frames, identical peers) | both | outcomes equal |");
    println!("|---|---|---|---|---|---|");
    for (name, policy) in SCALED {
        let runs: Vec<Run> = [(false, false), (true, false), (false, true), (true, true)]
            .iter()
            .map(|&(p, s)| run_child(name, policy, "bfs", 2, p, s))
            .collect();
        let same = runs.iter().all(|r| r.outcomes == runs[0].outcomes);
        println!(
            "| {name} / {policy} | {} ({:.2} s) | {} ({:.2} s) | {} ({:.2} s) | {} ({:.2} s) | {} |",
            runs[0].states,
            runs[0].secs,
            runs[1].states,
            runs[1].secs,
            runs[2].states,
            runs[2].secs,
            runs[3].states,
            runs[3].secs,
            if same { "yes" } else { "NO" }
        );
    }
    println!();
}

/// Builds and runs SPIN's verifier for `model.pml` with `cflags`; returns
/// (states stored, seconds of the verifier run alone).
fn spin_run(dir: &std::path::Path, cflags: &[&str]) -> Option<(u64, f64)> {
    let pml = format!(
        "{}/benches/promela/dio-writeback-truncate.pml",
        env!("CARGO_MANIFEST_DIR")
    );
    Command::new("spin")
        .arg("-a")
        .arg(&pml)
        .current_dir(dir)
        .output()
        .ok()?;
    let mut cc = Command::new("cc");
    cc.args(["-O2", "-w", "-o", "pan"])
        .args(cflags)
        .arg("pan.c")
        .current_dir(dir);
    if !cc.status().ok()?.success() {
        return None;
    }
    let t = Instant::now();
    let out = Command::new("./pan")
        .args(["-m100000"])
        .current_dir(dir)
        .output()
        .ok()?;
    let secs = t.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let stored = text
        .lines()
        .find(|l| l.contains("states, stored"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())?;
    Some((stored, secs))
}

fn section_spin() {
    println!("## 4. SPIN on the Promela counterpart of dio-writeback-truncate-p3-d2");
    println!();
    let dir = std::env::temp_dir().join(format!("pinlab-spin-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let por = spin_run(&dir, &["-DSAFETY"]);
    let nopor = spin_run(&dir, &["-DSAFETY", "-DNOREDUCE"]);
    let _ = std::fs::remove_dir_all(&dir);
    let (Some((sp, st)), Some((np, nt))) = (por, nopor) else {
        println!("skipped: `spin` or `cc` is not installed (Debian: apt-get install spin gcc)");
        println!();
        return;
    };
    let name = "dio-writeback-truncate-p3-d2";
    let r = best_of(samples(false), || {
        run_child(name, "legacy", "bfs", 2, true, true)
    });
    let r1 = best_of(samples(false), || {
        run_child(name, "legacy", "bfs", 1, true, true)
    });
    println!("| explorer | states | time | pinlab / SPIN (POR) |");
    println!("|---|---|---|---|");
    println!("| SPIN, partial-order reduction | {sp} | {st:.3} s | |");
    println!("| SPIN, -DNOREDUCE | {np} | {nt:.3} s | |");
    println!(
        "| pinlab, BFS, POR + symmetry, 2 threads | {} | {:.3} s | {:.1}× |",
        r.states,
        r.secs,
        r.secs / st
    );
    println!(
        "| pinlab, BFS, POR + symmetry, 1 thread | {} | {:.3} s | {:.1}× |",
        r1.states,
        r1.secs,
        r1.secs / st
    );
    println!();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1..]);
        return;
    }
    if !cfg!(target_os = "linux") {
        println!("the comparison benchmarks read /proc; skipped on this platform");
        return;
    }
    println!(
        "# pinlab explorer benchmarks ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();
    let only = args
        .iter()
        .find_map(|a| a.strip_prefix("only="))
        .map(str::to_string);
    let want = |n: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x == n));
    if want("1") {
        section_stateright();
    }
    if want("2") {
        section_scale();
    }
    if want("3") {
        section_reductions();
    }
    if want("4") {
        section_spin();
    }
    if only.as_deref() == Some("pinlab2pc") {
        let (s, t) = median(3, || {
            pinlab_explore::explore(&twopc::TwoPhase { rms: 7 }, &no_reduction(1)).states
        });
        println!("pinlab 2pc: {s} states {:.0}/s", rate(s, t));
    }
    if only.as_deref() == Some("pinlabreal") {
        let (s, t) = median(3, || {
            pinlab_explore::explore(
                &cell("rdma-pagecache-truncate-p2-n2", "legacy"),
                &no_reduction(1),
            )
            .states
        });
        println!("pinlab real: {s} states {:.0}/s", rate(s, t));
    }
    if only.as_deref() == Some("srreal") {
        let (s, t) = median(3, || {
            stateright_bfs(cell("rdma-pagecache-truncate-p2-n2", "legacy"), 1)
        });
        println!("stateright real: {s} states {:.0}/s", rate(s, t));
    }
    if only.as_deref() == Some("sr2pc") {
        let (s, t) = median(3, || stateright_bfs(twopc::TwoPhase { rms: 7 }, 1));
        println!("stateright 2pc: {s} states {:.0}/s", rate(s, t));
    }
}
