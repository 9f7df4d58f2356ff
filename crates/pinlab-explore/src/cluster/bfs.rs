//! The distributed level-synchronous BFS (see the parent module for the model).
//!
//! Per worker: `visited`, the fingerprints of its partition ever stored (8 bytes
//! per state plus the hash table's slack), the states of the current level it
//! owns with their paths, and the candidates of the next level that reached it
//! (deduplicated on arrival, keeping the smallest path). Rounds of one level:
//!
//! 1. expand the own frontier; successors go to their owners; `Status` (time or
//!    memory stop, a state held at the depth bound) is broadcast;
//! 2. `Count` of new states (not in `visited`) — the total decides a
//!    `max_states` cut, where `Paths` (each rank's first paths) picks the
//!    globally first states in path order;
//! 3. `Frontier`: new states that passed `check()`; zero everywhere ends the run.
//!
//! At the end `Summary` carries each worker's outcomes (smallest (depth, path)
//! each), model bugs and counters to every worker, which merge them the same way.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::vec::{Broadcast, Input};
use timely::dataflow::operators::{Operator, Probe};
use timely::dataflow::{InputHandleVec, ProbeHandle};
use timely::worker::Worker;

use pinlab_state::{fingerprint, FpMap, FpSet};

use crate::memory::rss_bytes;
use crate::trace::actions_from_indices;
use crate::MAX_MODEL_BUGS;
use crate::{enabled, initial, successor, Bound, Config, Exploration, Model, StepError};

/// Action indices from the initial state.
type Path = Vec<u32>;
/// A successor on its way to its owner.
type Cand<S> = (u64, Path, S);
/// A control record: sender, bincode of a [`Ctl`].
type CtlMsg = (u32, Vec<u8>);

/// States expanded between two `worker.step()`s (lets records flow and be
/// deduplicated while a level is expanded, so they do not pile up in queues).
const STEP_EVERY: usize = 64;
/// How long a worker waits for the others before it says whom it waits for
/// (and again every as long).
const WAIT_NOTE: std::time::Duration = std::time::Duration::from_secs(30);
/// States expanded between two memory readings.
const MEMORY_EVERY: u64 = 8192;

/// A model bug found by one worker: sort key (trace length, 0 = a panicking
/// step / 1 = a failing check, path) and message.
type BugEvent = (u32, u8, Path, String);

#[derive(Serialize, Deserialize)]
enum Ctl<O> {
    /// After expanding: 0 or the stop reason (1 time, 2 memory); a state at
    /// the depth bound had enabled actions.
    Status { stop: u8, blocked: bool },
    /// New states received in this level.
    Count(u64),
    /// The first paths of the new states (at a `max_states` cut).
    Paths(Vec<Path>),
    /// States of the next frontier (new and passing `check()`).
    Frontier(u64),
    /// The worker's results.
    Summary {
        transitions: u64,
        terminal_states: u64,
        outcomes: Vec<(O, u32, Path)>,
        bugs: Vec<BugEvent>,
    },
}

const STOP_TIME: u8 = 1;
const STOP_MEMORY: u8 = 2;

/// What the dedup operator fills in.
struct Inbox<S> {
    visited: FpSet,
    next: FpMap<(Path, S)>,
}

impl<S> Inbox<S> {
    fn offer(&mut self, fp: u64, path: Path, s: S) {
        if self.visited.contains(&fp) {
            return;
        }
        match self.next.entry(fp) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((path, s));
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                if path < o.get().0 {
                    *o.get_mut() = (path, s);
                }
            }
        }
    }
}

/// The dataflow of one exploration: inputs, probe and what the operators fill.
struct Net<S: Clone + 'static> {
    cands: InputHandleVec<u64, Cand<S>>,
    ctl: InputHandleVec<u64, CtlMsg>,
    probe: ProbeHandle<u64>,
    inbox: Rc<RefCell<Inbox<S>>>,
    /// Control records with the round they were sent in (a faster worker's
    /// record of the next round may arrive before this round is over).
    ctl_inbox: Rc<RefCell<Vec<(u64, CtlMsg)>>>,
    round: u64,
    me: u32,
    peers: usize,
    /// Workers per rank (to name the rank of a worker).
    per_rank: usize,
}

impl<S> Net<S>
where
    S: Clone + Send + Serialize + DeserializeOwned + 'static,
{
    fn new(worker: &mut Worker, per_rank: usize) -> Self {
        let mut cands = InputHandleVec::new();
        let mut ctl = InputHandleVec::new();
        let probe = ProbeHandle::new();
        let inbox = Rc::new(RefCell::new(Inbox {
            visited: FpSet::default(),
            next: FpMap::default(),
        }));
        let ctl_inbox = Rc::new(RefCell::new(Vec::new()));
        let me = worker.index() as u32;
        let (ib, cb, p) = (inbox.clone(), ctl_inbox.clone(), probe.clone());
        worker.dataflow::<u64, _, _>(|scope| {
            scope
                .input_from(&mut cands)
                .unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                    Exchange::new(|c: &Cand<S>| c.0),
                    "pinlab-dedup",
                    move |_, _| {
                        move |input, _| {
                            input.for_each(|_, data| {
                                let mut ib = ib.borrow_mut();
                                for (fp, path, s) in data.drain(..) {
                                    ib.offer(fp, path, s);
                                }
                            })
                        }
                    },
                )
                .probe_with(&p);
            scope
                .input_from(&mut ctl)
                .broadcast()
                .unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                    Pipeline,
                    "pinlab-control",
                    move |_, _| {
                        move |input, _| {
                            input.for_each(|cap, data| {
                                let t = cap.least().copied().unwrap_or_default();
                                cb.borrow_mut().extend(data.drain(..).map(|m| (t, m)))
                            })
                        }
                    },
                )
                .probe_with(&p);
        });
        Net {
            cands,
            ctl,
            probe,
            inbox,
            ctl_inbox,
            round: 0,
            me,
            peers: worker.peers(),
            per_rank: per_rank.max(1),
        }
    }

    /// Ends the round: sends `msg` to every worker, waits until every record of
    /// the round (candidates and control) has arrived everywhere, and returns
    /// every worker's control record in worker order.
    fn gather<O: Serialize + DeserializeOwned>(
        &mut self,
        worker: &mut Worker,
        msg: &Ctl<O>,
    ) -> Vec<Ctl<O>> {
        let bytes = bincode::serialize(msg).expect("control records serialize");
        self.ctl.send((self.me, bytes));
        let sent = self.round;
        self.round += 1;
        self.cands.advance_to(self.round);
        self.ctl.advance_to(self.round);
        // Waiting for the slowest worker; a worker that stays silent (a stalled
        // rank, a slow level) is named on stderr every WAIT_NOTE.
        let start = Instant::now();
        let mut noted = 0;
        while self.probe.less_than(&self.round) {
            worker.step_or_park(Some(WAIT_NOTE / 10));
            let waited = start.elapsed().as_secs() / WAIT_NOTE.as_secs();
            if waited > noted {
                noted = waited;
                let have: Vec<u32> = self
                    .ctl_inbox
                    .borrow()
                    .iter()
                    .filter(|(t, _)| *t == sent)
                    .map(|(_, m)| m.0)
                    .collect();
                let missing: Vec<String> = (0..self.peers as u32)
                    .filter(|w| !have.contains(w))
                    .map(|w| format!("worker {w} (rank {})", w as usize / self.per_rank))
                    .collect();
                eprintln!(
                    "pinlab: worker {} waits {} s for {} to end round {sent}",
                    self.me,
                    start.elapsed().as_secs(),
                    if missing.is_empty() {
                        "records in flight".to_string()
                    } else {
                        missing.join(", ")
                    }
                );
            }
        }
        let mut got: Vec<CtlMsg> = Vec::new();
        self.ctl_inbox.borrow_mut().retain_mut(|(t, m)| {
            if *t == sent {
                got.push(std::mem::take(m));
            }
            *t != sent
        });
        got.sort_by_key(|m| m.0);
        got.into_iter()
            .map(|(from, b)| {
                bincode::deserialize(&b).unwrap_or_else(|e| {
                    panic!("control record from worker {from} does not decode: {e}")
                })
            })
            .collect()
    }

    /// Closes the inputs and lets the dataflow finish.
    fn close(self, worker: &mut Worker) {
        let Net {
            cands, ctl, probe, ..
        } = self;
        drop(cands);
        drop(ctl);
        while !probe.done() {
            worker.step_or_park(None);
        }
    }
}

/// This worker's share of the results.
struct Local<M: Model> {
    outcomes: BTreeMap<M::Outcome, (u32, Path)>,
    bugs: Vec<BugEvent>,
    transitions: u64,
    terminal_states: u64,
}

impl<M: Model> Local<M> {
    /// Keeps the first event per message, at most [`MAX_MODEL_BUGS`] messages
    /// (events arrive in key order level by level, so these are the first ones).
    fn bug(&mut self, ev: BugEvent) {
        if let Some(old) = self.bugs.iter_mut().find(|b| b.3 == ev.3) {
            if (ev.0, ev.1, &ev.2) < (old.0, old.1, &old.2) {
                *old = ev;
            }
        } else if self.bugs.len() < MAX_MODEL_BUGS {
            self.bugs.push(ev);
        }
    }
}

/// See the module docs (run inside [`pinlab_state::with_interning`]).
pub(super) fn explore<M>(
    worker: &mut Worker,
    per_rank: usize,
    model: &M,
    cfg: &Config,
) -> Exploration<M>
where
    M: Model,
    M::State: Serialize + DeserializeOwned + 'static,
    M::Outcome: Serialize + DeserializeOwned,
{
    let start = Instant::now();
    let mut net: Net<M::State> = Net::new(worker, per_rank);
    let mut local = Local::<M> {
        outcomes: BTreeMap::new(),
        bugs: Vec::new(),
        transitions: 0,
        terminal_states: 0,
    };
    let max_states = cfg.max_states.unwrap_or(u64::MAX);
    let (mut states, mut depth_reached, mut widest) = (0u64, 0u32, 0u64);
    let mut bound: Option<Bound> = None;
    let cut = |b: Bound, bound: &mut Option<Bound>| {
        bound.get_or_insert(b);
    };

    if worker.index() == 0 {
        let init = initial(model, cfg);
        net.cands.send((fingerprint(&init), Vec::new(), init));
    }
    let (mut stop, mut blocked) = (0u8, false);
    let mut frontier: Vec<(u64, Path, M::State)> = Vec::new();
    let mut buf = Vec::new();
    let mut expanded = 0u64;
    // `d`: depth of the candidates being collected.
    let mut d = 0u32;
    loop {
        // Round 1: every candidate of depth d is with its owner.
        let status = net.gather::<M::Outcome>(worker, &Ctl::Status { stop, blocked });
        let mut reasons = status.iter().filter_map(|c| match c {
            Ctl::Status { stop, .. } if *stop != 0 => Some(*stop),
            _ => None,
        });
        if let Some(r) = reasons.next() {
            cut(
                if r == STOP_TIME {
                    Bound::TimeBudget
                } else {
                    Bound::MaxMemory
                },
                &mut bound,
            );
            break;
        }
        if status
            .iter()
            .any(|c| matches!(c, Ctl::Status { blocked: true, .. }))
        {
            cut(Bound::MaxDepth, &mut bound);
        }
        // Round 2: new states, in path order; a state bound keeps the first ones.
        let mut new: Vec<(Path, u64, M::State)> = {
            let mut ib = net.inbox.borrow_mut();
            ib.next.drain().map(|(fp, (p, s))| (p, fp, s)).collect()
        };
        new.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let counts = net.gather::<M::Outcome>(worker, &Ctl::Count(new.len() as u64));
        let total: u64 = counts
            .iter()
            .map(|c| if let Ctl::Count(n) = c { *n } else { 0 })
            .sum();
        // The root is always stored (as in the single-process search).
        let room = if d == 0 {
            u64::MAX
        } else {
            max_states.saturating_sub(states)
        };
        let kept = if total > room {
            cut(Bound::MaxStates, &mut bound);
            let mine: Vec<Path> = new
                .iter()
                .take(room as usize)
                .map(|n| n.0.clone())
                .collect();
            let all = net.gather::<M::Outcome>(worker, &Ctl::Paths(mine));
            let mut paths: Vec<Path> = all
                .into_iter()
                .flat_map(|c| if let Ctl::Paths(p) = c { p } else { Vec::new() })
                .collect();
            paths.sort_unstable();
            match room.checked_sub(1).and_then(|i| paths.get(i as usize)) {
                Some(last) => new.retain(|n| n.0 <= *last),
                None => new.clear(),
            }
            room
        } else {
            total
        };
        {
            let mut ib = net.inbox.borrow_mut();
            ib.visited.extend(new.iter().map(|n| n.1));
        }
        states += kept;
        if kept > 0 {
            depth_reached = d;
        }
        // Round 3: the next frontier (a state failing its check is not expanded).
        frontier.clear();
        for (path, fp, s) in new {
            match model.check(&s) {
                Err(msg) => local.bug((d, 1, path, msg)),
                Ok(()) => frontier.push((fp, path, s)),
            }
        }
        let sizes = net.gather::<M::Outcome>(worker, &Ctl::Frontier(frontier.len() as u64));
        let width: u64 = sizes
            .iter()
            .map(|c| if let Ctl::Frontier(n) = c { *n } else { 0 })
            .sum();
        if width == 0 {
            break;
        }
        widest = widest.max(width);
        // Expand depth d; its successors are the candidates of depth d + 1.
        let peek = cfg.max_depth.is_some_and(|m| d >= m);
        let deadline = cfg.time_budget.map(|b| start + b);
        (stop, blocked) = (0, false);
        'level: for (k, (_, path, s)) in frontier.iter().enumerate() {
            if deadline.is_some_and(|t| Instant::now() >= t) {
                stop = STOP_TIME;
                break;
            }
            expanded += 1;
            if let Some(limit) = cfg.max_memory {
                if expanded % MEMORY_EVERY == 0 && rss_bytes().is_some_and(|r| r > limit) {
                    stop = STOP_MEMORY;
                    break;
                }
            }
            enabled(model, cfg, s, &mut buf);
            if buf.is_empty() {
                local.terminal_states += 1;
                let hung = !model.finished(s);
                for o in model.outcomes(s, hung) {
                    let e = local.outcomes.entry(o).or_insert_with(|| (d, path.clone()));
                    if (d, path) < (e.0, &e.1) {
                        *e = (d, path.clone());
                    }
                }
                continue;
            }
            if peek {
                blocked = true;
                continue;
            }
            local.transitions += buf.len() as u64;
            for (i, a) in buf.iter().enumerate() {
                let mut p = path.clone();
                p.push(u32::try_from(i).unwrap_or(u32::MAX - 1));
                match successor(model, cfg, s, a, deadline) {
                    Ok(n) => net.cands.send((fingerprint(&n), p, n)),
                    Err(StepError::Panic(msg)) => local.bug((d + 1, 0, p, msg)),
                    Err(StepError::Deadline) => {
                        stop = STOP_TIME;
                        break 'level;
                    }
                }
            }
            if k % STEP_EVERY == STEP_EVERY - 1 {
                worker.step();
            }
        }
        d += 1;
    }

    // Every worker's results, merged the same way everywhere.
    let mine = Ctl::Summary {
        transitions: local.transitions,
        terminal_states: local.terminal_states,
        outcomes: local
            .outcomes
            .into_iter()
            .map(|(o, (d, p))| (o, d, p))
            .collect(),
        bugs: local.bugs,
    };
    let all = net.gather::<M::Outcome>(worker, &mine);
    net.close(worker);
    let (mut transitions, mut terminal_states) = (0, 0);
    let mut outcomes: BTreeMap<M::Outcome, (u32, Path)> = BTreeMap::new();
    let mut bugs: Vec<BugEvent> = Vec::new();
    for c in all {
        if let Ctl::Summary {
            transitions: t,
            terminal_states: ts,
            outcomes: os,
            bugs: bs,
        } = c
        {
            transitions += t;
            terminal_states += ts;
            for (o, d, p) in os {
                let e = outcomes.entry(o).or_insert_with(|| (d, p.clone()));
                if (d, &p) < (e.0, &e.1) {
                    *e = (d, p);
                }
            }
            bugs.extend(bs);
        }
    }
    bugs.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    let mut model_bugs: Vec<(String, Vec<M::Action>)> = Vec::new();
    for (_, _, path, msg) in bugs {
        if model_bugs.len() < MAX_MODEL_BUGS && !model_bugs.iter().any(|(m, _)| *m == msg) {
            model_bugs.push((msg, actions_from_indices(model, cfg, &path)));
        }
    }
    Exploration {
        outcomes: outcomes
            .into_iter()
            .map(|(o, (_, p))| (o, actions_from_indices(model, cfg, &p)))
            .collect(),
        model_bugs,
        states,
        transitions,
        terminal_states,
        depth: depth_reached,
        widest,
        exhaustive: bound.is_none(),
        bound,
        elapsed: start.elapsed(),
    }
}
