//! Toy models shared by the integration tests.
#![allow(dead_code)]

use pinlab_explore::{Exploration, Model};

/// Outcomes of every toy model.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Outcome {
    /// Final value of the shared counter.
    Final(u32),
    /// Terminal node of a graph.
    Node(usize),
    /// Every actor finished.
    Done,
    /// Terminal state with an unfinished actor.
    Hang,
}

// ---------------------------------------------------------------------------
// Racy counter: `threads` threads each do `incs` times `tmp = x; x = tmp + 1`.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CAct {
    Read(usize),
    Write(usize),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CState {
    pub x: u32,
    /// (pc, tmp) per thread: even pc = about to read, odd pc = about to write.
    pub th: Vec<(u8, u32)>,
}

pub struct Counter {
    pub threads: usize,
    pub incs: u8,
    /// check() fails with "stale read" when a thread is about to write a value
    /// read before another thread's write.
    pub forbid_stale: bool,
}

impl Counter {
    pub fn new(threads: usize, incs: u8) -> Self {
        Counter {
            threads,
            incs,
            forbid_stale: false,
        }
    }
}

impl Model for Counter {
    type State = CState;
    type Action = CAct;
    type Outcome = Outcome;

    fn initial_state(&self) -> CState {
        CState {
            x: 0,
            th: vec![(0, 0); self.threads],
        }
    }

    fn actions(&self, s: &CState, out: &mut Vec<CAct>) {
        for (t, &(pc, _)) in s.th.iter().enumerate() {
            if pc < 2 * self.incs {
                out.push(if pc % 2 == 0 {
                    CAct::Read(t)
                } else {
                    CAct::Write(t)
                });
            }
        }
    }

    fn step(&self, s: &CState, a: &CAct) -> CState {
        let mut s = s.clone();
        match *a {
            CAct::Read(t) => s.th[t] = (s.th[t].0 + 1, s.x),
            CAct::Write(t) => {
                s.x = s.th[t].1 + 1;
                s.th[t].0 += 1;
            }
        }
        s
    }

    fn check(&self, s: &CState) -> Result<(), String> {
        if s.x > self.threads as u32 * u32::from(self.incs) {
            return Err(format!("counter overflow: {}", s.x));
        }
        if self.forbid_stale && s.th.iter().any(|&(pc, tmp)| pc % 2 == 1 && tmp < s.x) {
            return Err("stale read".into());
        }
        Ok(())
    }

    fn finished(&self, s: &CState) -> bool {
        s.th.iter().all(|&(pc, _)| pc == 2 * self.incs)
    }

    fn outcomes(&self, s: &CState, hung: bool) -> Vec<Outcome> {
        let mut v = vec![Outcome::Final(s.x)];
        if hung {
            v.push(Outcome::Hang);
        }
        v
    }

    /// A thread's next step; two reads commute (each writes its own `tmp`).
    fn action_id(&self, a: &CAct) -> Option<u32> {
        match *a {
            CAct::Read(t) | CAct::Write(t) => Some(t as u32),
        }
    }

    fn independence(&self, _: &CState, enabled: &[CAct], out: &mut Vec<u64>) {
        let reads = enabled
            .iter()
            .enumerate()
            .filter(|(_, a)| matches!(a, CAct::Read(_)))
            .fold(0u64, |m, (j, _)| m | 1 << j);
        out.extend(enabled.iter().enumerate().map(|(i, a)| match a {
            CAct::Read(_) => reads & !(1 << i),
            CAct::Write(_) => 0,
        }));
    }
}

// ---------------------------------------------------------------------------
// Lock-order deadlock: thread 0 takes lock 0 then 1, thread 1 takes 1 then 0.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LAct {
    Acquire { t: usize, lock: usize },
    Release { t: usize },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct LState {
    /// Owner of each lock.
    pub owner: [Option<usize>; 2],
    /// 0: take first lock, 1: take second, 2: release both, 3: done.
    pub pc: [u8; 2],
}

pub struct Deadlock;

impl Deadlock {
    fn order(t: usize) -> [usize; 2] {
        if t == 0 {
            [0, 1]
        } else {
            [1, 0]
        }
    }
}

impl Model for Deadlock {
    type State = LState;
    type Action = LAct;
    type Outcome = Outcome;

    fn initial_state(&self) -> LState {
        LState {
            owner: [None; 2],
            pc: [0; 2],
        }
    }

    fn actions(&self, s: &LState, out: &mut Vec<LAct>) {
        for t in 0..2 {
            match s.pc[t] {
                pc @ (0 | 1) => {
                    let lock = Self::order(t)[pc as usize];
                    if s.owner[lock].is_none() {
                        out.push(LAct::Acquire { t, lock });
                    }
                }
                2 => out.push(LAct::Release { t }),
                _ => {}
            }
        }
    }

    fn step(&self, s: &LState, a: &LAct) -> LState {
        let mut s = s.clone();
        match *a {
            LAct::Acquire { t, lock } => {
                s.owner[lock] = Some(t);
                s.pc[t] += 1;
            }
            LAct::Release { t } => {
                for o in &mut s.owner {
                    if *o == Some(t) {
                        *o = None;
                    }
                }
                s.pc[t] += 1;
            }
        }
        s
    }

    fn check(&self, s: &LState) -> Result<(), String> {
        for t in 0..2 {
            let held = s.owner.iter().filter(|&&o| o == Some(t)).count();
            let want = match s.pc[t] {
                0 | 3 => 0,
                pc => pc.min(2) as usize,
            };
            if held != want {
                return Err(format!("thread {t} holds {held} locks at pc {}", s.pc[t]));
            }
        }
        Ok(())
    }

    fn finished(&self, s: &LState) -> bool {
        s.pc == [3, 3]
    }

    fn outcomes(&self, _s: &LState, hung: bool) -> Vec<Outcome> {
        vec![if hung { Outcome::Hang } else { Outcome::Done }]
    }
}

// ---------------------------------------------------------------------------
// Explicit graph: state = node, action = target node (in adjacency order).

pub struct Graph {
    pub edges: Vec<Vec<usize>>,
    /// Nodes failing check() with "bad node N".
    pub bad: Vec<usize>,
    /// Terminal nodes that count as hung.
    pub unfinished: Vec<usize>,
}

impl Model for Graph {
    type State = usize;
    type Action = usize;
    type Outcome = Outcome;

    fn initial_state(&self) -> usize {
        0
    }

    fn actions(&self, s: &usize, out: &mut Vec<usize>) {
        out.extend(self.edges[*s].iter().copied());
    }

    fn step(&self, _s: &usize, a: &usize) -> usize {
        *a
    }

    fn check(&self, s: &usize) -> Result<(), String> {
        if self.bad.contains(s) {
            Err(format!("bad node {s}"))
        } else {
            Ok(())
        }
    }

    fn finished(&self, s: &usize) -> bool {
        !self.unfinished.contains(s)
    }

    fn outcomes(&self, s: &usize, hung: bool) -> Vec<Outcome> {
        let mut v = vec![Outcome::Node(*s)];
        if hung {
            v.push(Outcome::Hang);
        }
        v
    }
}

/// 0 -> 1, 2;  1 -> 3, 5;  2 -> 4, 5, 6;  4 -> 3;  6 -> 7.
/// 3 and 5 are terminal (5 unfinished: a hang); 6 fails check; 7 is only
/// reachable through 6.
pub fn sample_graph() -> Graph {
    Graph {
        edges: vec![
            vec![1, 2],
            vec![3, 5],
            vec![4, 5, 6],
            vec![],
            vec![3],
            vec![],
            vec![7],
            vec![],
        ],
        bad: vec![6],
        unfinished: vec![5],
    }
}

/// Everything in an exploration except `elapsed`, as text, for equality checks.
pub fn summary<M: Model>(e: &Exploration<M>) -> String {
    format!(
        "outcomes={:?}\nbugs={:?}\nstates={} transitions={} terminal={} depth={} exhaustive={} bound={:?}",
        e.outcomes,
        e.model_bugs,
        e.states,
        e.transitions,
        e.terminal_states,
        e.depth,
        e.exhaustive,
        e.bound
    )
}

// ---------------------------------------------------------------------------
// Straight-line programs over shared variables, with the exact independence
// relation of their operations (for sleep sets).

/// One operation of a [`Prog`] thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `reg = var`.
    Load(usize),
    /// `var = (reg + 1) % 4`.
    Store(usize),
    /// `reg ^= 1`.
    Local,
}

/// Threads running straight-line code; the action is the thread index.
pub struct Prog {
    pub code: Vec<Vec<Op>>,
    pub vars: usize,
    /// `check` fails when variable `.0` holds `.1`.
    pub bad: Option<(usize, u8)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PState {
    pub pc: Vec<u8>,
    pub reg: Vec<u8>,
    pub var: Vec<u8>,
}

impl Prog {
    fn op(&self, s: &PState, t: usize) -> Op {
        self.code[t][s.pc[t] as usize]
    }
}

impl Model for Prog {
    type State = PState;
    type Action = usize;
    type Outcome = Outcome;

    fn initial_state(&self) -> PState {
        PState {
            pc: vec![0; self.code.len()],
            reg: vec![0; self.code.len()],
            var: vec![0; self.vars],
        }
    }

    fn actions(&self, s: &PState, out: &mut Vec<usize>) {
        out.extend((0..self.code.len()).filter(|&t| (s.pc[t] as usize) < self.code[t].len()));
    }

    fn step(&self, s: &PState, &t: &usize) -> PState {
        let mut n = s.clone();
        match self.op(s, t) {
            Op::Load(v) => n.reg[t] = s.var[v],
            Op::Store(v) => n.var[v] = (s.reg[t] + 1) % 4,
            Op::Local => n.reg[t] ^= 1,
        }
        n.pc[t] += 1;
        n
    }

    fn check(&self, s: &PState) -> Result<(), String> {
        match self.bad {
            Some((v, x)) if s.var[v] == x => Err(format!("var {v} = {x}")),
            _ => Ok(()),
        }
    }

    fn finished(&self, _: &PState) -> bool {
        true
    }

    fn outcomes(&self, s: &PState, _: bool) -> Vec<Outcome> {
        vec![Outcome::Final(
            s.var.iter().fold(0, |m, &x| m * 4 + u32::from(x)),
        )]
    }

    fn action_id(&self, &t: &usize) -> Option<u32> {
        Some(t as u32)
    }

    /// Operations of two threads conflict when they reach the same variable
    /// and one stores to it.
    fn independence(&self, s: &PState, enabled: &[usize], out: &mut Vec<u64>) {
        let var = |op| match op {
            Op::Load(v) => Some((v, false)),
            Op::Store(v) => Some((v, true)),
            Op::Local => None,
        };
        for &a in enabled {
            let mut m = 0u64;
            for (j, &b) in enabled.iter().enumerate() {
                let conflict = match (var(self.op(s, a)), var(self.op(s, b))) {
                    (Some((x, wa)), Some((y, wb))) => x == y && (wa || wb),
                    _ => false,
                };
                if a != b && !conflict {
                    m |= 1 << j;
                }
            }
            out.push(m);
        }
    }
}
