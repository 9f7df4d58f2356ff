//! Generic explicit-state explorer. It knows nothing of kernels: a [`Model`] gives
//! an initial state, the enabled actions of a state (in a deterministic order), a
//! step function, an invariant check and the outcomes of terminal states.
//!
//! Three modes share the same result type, [`Exploration`]:
//!
//! * [`explore`]: level-synchronous BFS. Every level is expanded in parallel;
//!   workers insert successors into one lock-free visited table, and the next
//!   level is ordered by each state's smallest (parent position, action) key, so
//!   the result (states, outcomes, traces) is identical whatever the thread
//!   count, and every outcome
//!   comes with a *shortest* trace. Only fingerprints plus a parent pointer
//!   (parent fingerprint, action index) are kept for visited states; full states
//!   are kept for the current and next frontier only.
//!   Without partial-order reduction it uses sleep sets ([`Config::sleep_sets`],
//!   [`Model::independence`]): the same states, outcomes and traces, fewer
//!   transitions executed.
//! * [`explore_dfs`]: sequential DFS storing fingerprints only (memory-lean,
//!   traces not shortest).
//! * [`random_walks`]: seeded random walks, reproducible from the seed.
//!
//! Invariants common to all modes: every reached state is [`Model::check`]ed once
//! it is first reached; a state failing the check is a *model bug*, recorded with
//! a trace and not expanded further; a state with no enabled action is terminal
//! and contributes `outcomes(state, !finished(state))`; a run cut by a bound has
//! `exhaustive == false` and names the bound.
//!
//! States are identified by a 64-bit [`fingerprint`] (hash compaction): two
//! distinct states with the same fingerprint would be merged. With 10^8 states the
//! probability of any collision is about 3·10^-4.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bfs;
pub mod cluster;
mod dfs;
pub mod memory;
mod progress;
mod record;
mod sleep;
mod trace;
mod visited;
mod walk;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub use bfs::explore;
pub use dfs::explore_dfs;
pub use pinlab_state::{fingerprint, FpHasher, Shared, SharedDefault};
pub use sleep::check_independence;
pub use trace::{replay, ReplayError};
pub use walk::{random_walks, random_walks_with, SplitMix64};

/// A finite transition system to explore.
pub trait Model: Sync {
    /// A full state. Hashed with [`fingerprint`] to identify it.
    type State: Clone + Eq + std::hash::Hash + Send + Sync;
    /// One step of one actor.
    type Action: Clone + std::fmt::Debug + Send + Sync;
    /// What a terminal state means (verdict, observed result, hang...).
    type Outcome: Clone + Ord + std::fmt::Debug + Send + Sync;
    /// The single initial state.
    fn initial_state(&self) -> Self::State;
    /// Enabled actions of `state`, in a deterministic order (the explorer relies on it to rebuild traces by index).
    fn actions(&self, state: &Self::State, out: &mut Vec<Self::Action>);
    /// The successor of `state` by the enabled `action`.
    fn step(&self, state: &Self::State, action: &Self::Action) -> Self::State;
    /// Invariant check run on every reached state; Err(msg) is a MODEL BUG (not an outcome).
    fn check(&self, state: &Self::State) -> Result<(), String>;
    /// True when every actor has finished. A state with no enabled action and !finished is a hang.
    fn finished(&self, state: &Self::State) -> bool;
    /// Outcomes of a terminal state (no enabled actions). `hung` = !finished(state).
    fn outcomes(&self, state: &Self::State, hung: bool) -> Vec<Self::Outcome>;

    /// Partial-order reduction (called when [`Config::por`] is set and more than
    /// one action is enabled): shrink `enabled` (the output of [`Model::actions`],
    /// in order) to a *persistent set* of `state` — a non-empty subset such that
    /// no sequence of actions outside it, from `state`, contains an action that is
    /// dependent on an action in it — keeping the relative order. Searching only
    /// persistent sets reaches every terminal state (Godefroid 1996, Thm. 4.3), so
    /// every outcome judged from a terminal state is kept; states in between may be
    /// skipped (their [`Model::check`] is then not run). Default: no reduction.
    fn persistent(&self, _state: &Self::State, _enabled: &mut Vec<Self::Action>) {}

    /// Symmetry reduction (called on every reached state when
    /// [`Config::symmetry`] is set): replace `state` by the representative of its
    /// class, e.g. renumber frames in a canonical order. The renaming must be an
    /// automorphism of the model: it maps actions to actions, successors to
    /// renamed successors, and keeps `check`, `finished` and `outcomes`. It
    /// may permute actions (interchangeable actors); such an action must have
    /// no [`Model::action_id`] (its id would not name the same action in the
    /// renamed state), and the traces the searches report are mapped back to
    /// runs from [`Model::initial_state`] by matching canonical successors
    /// (`trace::concretize`). Default: no reduction.
    fn canonicalize(&self, _state: &mut Self::State) {}

    /// Symmetry reduction of a successor: `state` is the step of `parent`, a
    /// state the search stores (so already the output of
    /// [`Model::canonicalize`]). The result must be exactly
    /// `canonicalize(state)`; a model may use `parent` to skip the work when
    /// the step changed nothing the renaming depends on (canonicalization is
    /// idempotent). Default: [`Model::canonicalize`].
    fn canonicalize_successor(&self, _parent: &Self::State, state: &mut Self::State) {
        self.canonicalize(state)
    }

    /// Sleep sets ([`Config::sleep_sets`]): a stable identity of `a`, below
    /// [`SLEEP_IDS`], naming the *same* action in every state (two distinct
    /// actions enabled in one state never share an id). `None`: `a` is never
    /// put to sleep. Default: `None`.
    fn action_id(&self, _a: &Self::Action) -> Option<u32> {
        None
    }

    /// Sleep sets: for each action `enabled[i]` (the output of
    /// [`Model::actions`] at `state`, at most 64 considered), push the bitmask
    /// of the indices `j` such that `enabled[i]` and `enabled[j]` are
    /// *independent* at `state`: executing either leaves the other enabled and
    /// both orders reach the same state (`step(step(s, a), b) == step(step(s,
    /// b), a)`, after canonicalization under symmetry reduction). A claim may
    /// only be missing, never wrong: `tests` check claims with
    /// [`check_independence`]. Default: nothing is independent.
    fn independence(&self, _state: &Self::State, _enabled: &[Self::Action], _out: &mut Vec<u64>) {}
}

/// Action ids usable in a sleep set ([`Model::action_id`]): they are bits of a
/// 63-bit mask.
pub const SLEEP_IDS: u32 = 63;

/// The initial state as the search sees it (canonical under symmetry reduction).
pub(crate) fn initial<M: Model>(model: &M, cfg: &Config) -> M::State {
    let mut s = model.initial_state();
    if cfg.symmetry {
        model.canonicalize(&mut s);
    }
    s
}

/// The actions the search expands from `s` (reduced under partial-order reduction);
/// empty iff `s` is terminal.
pub(crate) fn enabled<M: Model>(model: &M, cfg: &Config, s: &M::State, out: &mut Vec<M::Action>) {
    out.clear();
    model.actions(s, out);
    if cfg.por && out.len() > 1 {
        let all = out.len();
        model.persistent(s, out);
        debug_assert!(
            !out.is_empty() && out.len() <= all,
            "persistent set must be a non-empty subset"
        );
    }
}

/// Why a step produced no successor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StepError {
    /// The model panicked: a model bug of the transition, with this message.
    Panic(String),
    /// The run's time budget ran out inside the step
    /// ([`pinlab_state::check_step_deadline`]).
    Deadline,
}

/// The successor the search stores (canonical under symmetry reduction), or why
/// there is none: a panic in the model's `step` (or `canonicalize`) is a model
/// bug of the transition, reported with its trace instead of aborting the run;
/// `deadline` (the end of the run's time budget) cuts a step that is still
/// running when it passes.
pub(crate) fn successor<M: Model>(
    model: &M,
    cfg: &Config,
    s: &M::State,
    a: &M::Action,
    deadline: Option<std::time::Instant>,
) -> Result<M::State, StepError> {
    IN_MODEL.with(|f| f.set(true));
    pinlab_state::set_step_deadline(deadline);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut n = model.step(s, a);
        if cfg.symmetry {
            model.canonicalize_successor(s, &mut n);
        }
        n
    }));
    pinlab_state::set_step_deadline(None);
    IN_MODEL.with(|f| f.set(false));
    r.map_err(|p| {
        if p.is::<pinlab_state::StepDeadline>() {
            return StepError::Deadline;
        }
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string payload)".into());
        StepError::Panic(format!("model panic in step {a:?}: {msg}"))
    })
}

thread_local! {
    /// Set while the model's step runs (for [`quiet_model_panics`]).
    static IN_MODEL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs a panic hook that stays silent for panics inside a model's step
/// (the explorer reports them as model bugs with a trace) and defers to the
/// previous hook for every other panic. For binaries; call once at start.
pub fn quiet_model_panics() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !IN_MODEL.with(|f| f.get()) {
            prev(info);
        }
    }));
}

/// Bounds and execution settings of a run. `Config::default()` is unbounded
/// (except for the default memory bound), uses rayon's default thread count,
/// shows no progress bar, and enables both reductions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Stop inserting (and expanding) once this many unique states are stored.
    pub max_states: Option<u64>,
    /// States at this depth (initial state = depth 0) are not expanded.
    pub max_depth: Option<u32>,
    /// Wall-clock budget, checked between chunks of work.
    pub time_budget: Option<Duration>,
    /// Worker threads for BFS; 0 = rayon default.
    pub threads: usize,
    /// Show a spinner on stderr (only if stderr is a terminal and the run lasts > 0.5 s).
    pub progress: bool,
    /// Stop (as bounded, [`Bound::MaxMemory`]) once the process's resident set
    /// exceeds this many bytes; `None`: no memory bound. Checked every few
    /// thousand states.
    pub max_memory: Option<u64>,
    /// Partial-order reduction: expand persistent sets ([`Model::persistent`]).
    pub por: bool,
    /// Symmetry reduction: canonical states ([`Model::canonicalize`]).
    pub symmetry: bool,
    /// Sleep sets ([`Model::independence`]): BFS does not execute an action
    /// whose successor another explored interleaving reaches. Every state is
    /// still stored, checked and reached at its depth with the same shortest
    /// trace; only transitions are saved. Applies to BFS without partial-order
    /// reduction ([`Config::por`] off): see [`explore`].
    pub sleep_sets: bool,
    /// The search [`run`] performs.
    pub search: Search,
}

/// Search strategy of [`run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Search {
    /// Exhaustive BFS on all cores, shortest traces ([`explore`]).
    #[default]
    Bfs,
    /// Exhaustive sequential DFS storing 12 bytes per state, traces not shortest ([`explore_dfs`]).
    Dfs,
    /// Seeded random walks, never exhaustive ([`random_walks_with`]); walks are
    /// cut at [`Config::max_depth`], or [`WALK_DEPTH`] steps without one.
    Walk {
        /// Seed of the run (walk `i` uses `fingerprint(&(seed, i))`).
        seed: u64,
        /// Number of walks.
        walks: u64,
    },
}

/// Longest walk when no depth bound is given.
pub const WALK_DEPTH: u32 = 10_000;

/// Runs the search `cfg.search` selects.
pub fn run<M: Model>(model: &M, cfg: &Config) -> Exploration<M> {
    match cfg.search {
        Search::Bfs => explore(model, cfg),
        Search::Dfs => explore_dfs(model, cfg),
        Search::Walk { seed, walks } => {
            random_walks_with(model, cfg, seed, walks, cfg.max_depth.unwrap_or(WALK_DEPTH))
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_states: None,
            max_depth: None,
            time_budget: None,
            threads: 0,
            progress: false,
            max_memory: memory::default_max_memory(),
            por: true,
            symmetry: true,
            sleep_sets: true,
            search: Search::Bfs,
        }
    }
}

/// The bound that cut a non-exhaustive run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bound {
    /// [`Config::max_states`] was reached and some new state was not stored.
    MaxStates,
    /// Some state at [`Config::max_depth`] had enabled actions (or a walk hit its depth limit).
    MaxDepth,
    /// [`Config::time_budget`] ran out.
    TimeBudget,
    /// [`Config::max_memory`] was exceeded.
    MaxMemory,
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bound::MaxStates => "max-states",
            Bound::MaxDepth => "max-depth",
            Bound::TimeBudget => "time-budget",
            Bound::MaxMemory => "max-memory",
        })
    }
}

/// Maximum number of distinct model-bug messages kept in [`Exploration::model_bugs`].
pub const MAX_MODEL_BUGS: usize = 16;

/// Result of a run (any mode).
pub struct Exploration<M: Model> {
    /// For every outcome reached in some terminal state: one SHORTEST trace (sequence of actions from the initial state) reaching a terminal state with that outcome. BFS order guarantees shortest; ties broken deterministically (first found in BFS order).
    pub outcomes: BTreeMap<M::Outcome, Vec<M::Action>>,
    /// Model bugs (check() errors), each with the shortest trace to the first state that failed (deduplicated by message, at most [`MAX_MODEL_BUGS`]).
    pub model_bugs: Vec<(String, Vec<M::Action>)>,
    /// Unique states (by fingerprint).
    pub states: u64,
    /// Transitions executed (edges, including those to already visited states;
    /// not those sleep sets skip).
    pub transitions: u64,
    /// Unique states with no enabled action.
    pub terminal_states: u64,
    /// Deepest BFS level reached (initial state = 0).
    pub depth: u32,
    /// Most full states held at once: the widest BFS level (the DFS stack depth;
    /// 1 for walks). With the visited set, this is what a run's memory is made of.
    pub widest: u64,
    /// False iff some bound cut the search.
    pub exhaustive: bool,
    /// Which bound cut it (the first one that did).
    pub bound: Option<Bound>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl<M: Model> Exploration<M> {
    /// True when no model bug was found.
    pub fn is_clean(&self) -> bool {
        self.model_bugs.is_empty()
    }
}

impl<M: Model> Clone for Exploration<M> {
    fn clone(&self) -> Self {
        Exploration {
            outcomes: self.outcomes.clone(),
            model_bugs: self.model_bugs.clone(),
            states: self.states,
            transitions: self.transitions,
            terminal_states: self.terminal_states,
            depth: self.depth,
            widest: self.widest,
            exhaustive: self.exhaustive,
            bound: self.bound,
            elapsed: self.elapsed,
        }
    }
}

impl<M: Model> fmt::Debug for Exploration<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exploration")
            .field("outcomes", &self.outcomes)
            .field("model_bugs", &self.model_bugs)
            .field("states", &self.states)
            .field("transitions", &self.transitions)
            .field("terminal_states", &self.terminal_states)
            .field("depth", &self.depth)
            .field("widest", &self.widest)
            .field("exhaustive", &self.exhaustive)
            .field("bound", &self.bound)
            .field("elapsed", &self.elapsed)
            .finish()
    }
}
