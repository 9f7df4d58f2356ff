//! Command-line options shared by `check`, `report` and `explore`: the search
//! strategy, its bounds and the reductions, with value parsers that reject bad
//! values (NaN seconds, 99999 threads, a memory size that overflows) with a
//! message saying what was expected.

use clap::Args;
use pinlab_explore::{Config, Search};
use std::time::Duration;

#[derive(Args, Clone)]
pub(crate) struct Bounds {
    /// Stop after this many unique states (the run is then marked bounded).
    #[arg(long)]
    max_states: Option<u64>,
    /// Do not expand states deeper than this many steps (marks the run bounded).
    #[arg(long)]
    max_depth: Option<u32>,
    /// Stop after this many seconds per cell (marks the run bounded).
    #[arg(long, value_parser = parse_seconds)]
    time_budget: Option<Duration>,
    /// Stop a cell when pinlab's resident memory exceeds this many bytes (suffix K, M or G; `none`: no bound). Default: half of the memory available at start. Marks the run bounded.
    #[arg(long, value_parser = parse_memory)]
    max_memory: Option<MemoryBound>,
    /// Worker threads (0 = all cores, at most 256); results do not depend on it.
    #[arg(long, default_value_t = 0, value_parser = parse_threads)]
    threads: usize,
    /// Search strategy: `bfs` (exhaustive, shortest traces), `dfs` (exhaustive, about 12 bytes per state, traces not shortest) or `walk` (seeded random walks, never exhaustive).
    #[arg(long, value_enum, default_value_t = SearchArg::Bfs)]
    search: SearchArg,
    /// Seed of `--search walk` (the same seed gives the same walks) [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Number of walks of `--search walk` (each at most `--max-depth` steps, default 10000) [default: 10000].
    #[arg(long, value_parser = parse_walks)]
    walks: Option<u64>,
    /// Turn partial-order reduction off (it is on by default; outcomes are the same either way).
    #[arg(long)]
    no_por: bool,
    /// Turn symmetry reduction off (page frames, identical peers; it is on by default; outcomes are the same either way).
    #[arg(long)]
    no_symmetry: bool,
    /// Turn sleep sets off. They apply to BFS with `--no-por` (which checks every state): the same states, outcomes and traces, fewer transitions executed.
    #[arg(long)]
    no_sleep_sets: bool,
    /// Step granularity: `fine` runs fork and GUP-fast as their kernel sub-steps (other actors interleave between them), `atomic` runs every statement as one step. Default: the scenario's `setup { granularity = ... }`, else fine.
    #[arg(long, value_enum)]
    granularity: Option<GranularityArg>,
}

/// `--granularity`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum GranularityArg {
    Fine,
    Atomic,
}

impl Bounds {
    /// Applies `--granularity` to a loaded scenario.
    pub(crate) fn apply(&self, scn: &mut pinlab_scenario::Scenario) {
        if let Some(g) = self.granularity {
            scn.fine = g == GranularityArg::Fine;
        }
    }
}

/// `--search`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SearchArg {
    Bfs,
    Dfs,
    Walk,
}

/// `--max-memory`: a byte count or `none`.
#[derive(Clone, Copy)]
enum MemoryBound {
    Bytes(u64),
    None,
}

fn parse_threads(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|&n| n <= 256)
        .ok_or_else(|| format!("expected a thread count from 0 (all cores) to 256, found {s:?}"))
}

fn parse_walks(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("expected a positive number of walks, found {s:?}"))
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("expected a number of seconds, found {s:?}"))?;
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        return Err(format!(
            "expected a finite number of seconds between 0 and 1e9, found {s:?}"
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

fn parse_memory(s: &str) -> Result<MemoryBound, String> {
    if s == "none" {
        return Ok(MemoryBound::None);
    }
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'K') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .map(MemoryBound::Bytes)
        .ok_or_else(|| {
            format!("expected a positive byte count with an optional K, M or G suffix, or `none`, found {s:?}")
        })
}

impl Bounds {
    /// The explorer's configuration; an error for options that the chosen
    /// search would ignore (`--seed` or `--walks` without `--search walk`).
    pub(crate) fn config(&self) -> Result<Config, String> {
        if self.search != SearchArg::Walk {
            for (given, flag) in [
                (self.seed.is_some(), "--seed"),
                (self.walks.is_some(), "--walks"),
            ] {
                if given {
                    return Err(format!(
                        "{flag} applies only to random walks: add `--search walk` (the search is `--search {}`)",
                        if self.search == SearchArg::Dfs { "dfs" } else { "bfs" }
                    ));
                }
            }
        }
        let default = Config::default();
        Ok(Config {
            max_states: self.max_states,
            max_depth: self.max_depth,
            time_budget: self.time_budget,
            threads: self.threads,
            progress: true,
            max_memory: match self.max_memory {
                None => default.max_memory,
                Some(MemoryBound::None) => None,
                Some(MemoryBound::Bytes(b)) => Some(b),
            },
            por: !self.no_por,
            symmetry: !self.no_symmetry,
            sleep_sets: !self.no_sleep_sets,
            search: match self.search {
                SearchArg::Bfs => Search::Bfs,
                SearchArg::Dfs => Search::Dfs,
                SearchArg::Walk => Search::Walk {
                    seed: self.seed.unwrap_or(0),
                    walks: self.walks.unwrap_or(10_000),
                },
            },
        })
    }
}
