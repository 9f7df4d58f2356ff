//! Distributed exhaustive search on timely-dataflow.
//!
//! A *cluster* is a set of ranks (processes, one line each in a hostfile), each
//! running the same command with a few timely workers (threads). Every worker
//! runs the whole command (the same cells, in the same order); only the
//! explorations are distributed: [`Cluster::explore`] is a level-synchronous BFS
//! in which each worker owns the states whose fingerprint timely's `Exchange`
//! routes to it — its partition of the visited set — and successors travel to
//! their owner as (fingerprint, path, state) records (bincode between
//! processes). Timely's progress tracking tells every worker when all records of
//! a round have arrived, which makes the level barrier and the termination test;
//! small control records (`broadcast`) carry the counters each round needs.
//!
//! Every worker ends with the same [`Exploration`]: identical on every rank, and
//! identical to the single-process [`crate::explore`] (states, transitions,
//! terminal states, depth, widest level, outcomes with the same shortest trace,
//! model bugs), because a state carries its lexicographically smallest shortest
//! path and every choice the single-process search makes by "first in path
//! order" is made here by comparing paths. Bounds: `max_depth` and `max_states`
//! give the same result as one process (the states kept at a `max_states` cut
//! are the first in path order across all ranks); the time and memory bounds are
//! checked by each rank on its own and stop all ranks at the next round.
//!
//! Setup ([`execute`]): the sockets are connected here with a deadline and a
//! handshake (see `net`), then handed to timely; a rank lost later ends every
//! other rank with an error naming it (`net::install_lost_rank_hook`).

mod bfs;
mod net;

use std::hash::Hash;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Config, Exploration, Model};

/// The timely worker of the calling thread, with the cluster's explorer.
pub struct Cluster<'w> {
    worker: &'w mut timely::worker::Worker,
    /// Workers per rank.
    per_rank: usize,
}

impl Cluster<'_> {
    /// This worker's index among all workers of all ranks.
    pub fn index(&self) -> usize {
        self.worker.index()
    }

    /// Number of workers in the cluster.
    pub fn peers(&self) -> usize {
        self.worker.peers()
    }

    /// True for the worker that prints results (worker 0 of rank 0).
    pub fn is_leader(&self) -> bool {
        self.worker.index() == 0
    }

    /// Exhaustive BFS of `model` over all workers of the cluster (see the module
    /// docs); every worker must call it with the same model and configuration,
    /// and every worker gets the same result.
    pub fn explore<M>(&mut self, model: &M, cfg: &Config) -> Exploration<M>
    where
        M: Model,
        M::State: Serialize + DeserializeOwned + 'static,
        M::Outcome: Serialize + DeserializeOwned,
    {
        // States from other ranks share their unchanged components again.
        pinlab_state::with_interning(|| bfs::explore(self.worker, self.per_rank, model, cfg))
    }
}

/// Where the ranks of a cluster are and which one this process is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `host:port` of every rank, in rank order (rank 0 first).
    pub addresses: Vec<String>,
    /// This process's rank.
    pub rank: usize,
    /// Timely workers (threads) in this process.
    pub workers: usize,
    /// How long to wait for every rank to connect.
    pub timeout: Duration,
    /// Identifies the command every rank must run (e.g. a hash of its arguments
    /// without `--rank`); a rank with another id is refused.
    pub run_id: u64,
}

/// Reads a hostfile: one `host:port` per line, rank 0 first; blank lines and
/// lines starting with `#` are skipped. Errors name the file and line.
pub fn read_hostfile(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the hostfile: {e}", path.display()))?;
    let mut addrs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let col = line.find(l).unwrap_or(0) + 1;
        let Some((host, port)) = l.rsplit_once(':') else {
            return Err(format!(
                "{}:{}:{col}: expected `host:port` (one rank per line), found `{l}`",
                path.display(),
                i + 1
            ));
        };
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!(
                "{}:{}:{col}: expected `host:port` with a port number 0-65535, found `{l}`",
                path.display(),
                i + 1
            ));
        }
        addrs.push(l.to_string());
    }
    if addrs.is_empty() {
        return Err(format!(
            "{}:1:1: expected at least one `host:port` line, found none",
            path.display()
        ));
    }
    Ok(addrs)
}

/// A run id for [`ClusterConfig::run_id`] from the words of a command line.
pub fn run_id<S: Hash>(words: &[S]) -> u64 {
    crate::fingerprint(&words)
}

/// Connects this rank to the others, then runs `f` on each of this process's
/// timely workers; returns worker 0's result (the others' results are dropped,
/// a panic in any of them is an error).
pub fn execute<T, F>(cfg: &ClusterConfig, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: Fn(&mut Cluster) -> T + Send + Sync + 'static,
{
    use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
    use timely::communication::allocator::{AllocatorBuilder, ProcessBuilder};

    if cfg.rank >= cfg.addresses.len() {
        return Err(format!(
            "--rank {} is not a rank of this cluster: the hostfile names {} rank(s), 0 to {}",
            cfg.rank,
            cfg.addresses.len(),
            cfg.addresses.len() - 1
        ));
    }
    let workers = cfg.workers.max(1);
    let sockets = net::connect(&cfg.addresses, cfg.rank, cfg.run_id, cfg.timeout)?;
    net::install_lost_rank_hook(cfg.rank, cfg.addresses.clone());
    let hooks = timely::communication::Hooks::default();
    let procs =
        ProcessBuilder::new_typed_vector(workers, hooks.refill.clone(), hooks.spill.clone());
    let (builders, guard) =
        initialize_networking_from_sockets(procs, sockets, cfg.rank, workers, hooks)
            .map_err(|e| format!("rank {}: starting timely: {e}", cfg.rank))?;
    let builders = builders.into_iter().map(AllocatorBuilder::Tcp).collect();
    let guards = timely::execute::execute_from(
        builders,
        Box::new(guard),
        timely::WorkerConfig::default(),
        move |worker| {
            f(&mut Cluster {
                worker,
                per_rank: workers,
            })
        },
    )?;
    first(guards.join())
}

/// Runs `f` on `workers` timely workers (threads) of this one process: the
/// same distributed search without sockets (tests, and `--threads` on one
/// machine's timely workers). Returns every worker's result, in worker order.
pub fn execute_threads<T, F>(workers: usize, f: F) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    F: Fn(&mut Cluster) -> T + Send + Sync + 'static,
{
    let per_rank = workers.max(1);
    let guards = timely::execute(timely::Config::process(per_rank), move |worker| {
        f(&mut Cluster { worker, per_rank })
    })?;
    guards.join().into_iter().collect()
}

fn first<T>(results: Vec<Result<T, String>>) -> Result<T, String> {
    let mut out = None;
    for r in results {
        let r = r.map_err(|e| format!("a worker panicked: {e}"))?;
        out.get_or_insert(r);
    }
    out.ok_or_else(|| "no worker ran".to_string())
}
