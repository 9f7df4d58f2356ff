//! `pinlab probe --replay`: explored interleavings executed on the live kernel.
//!
//! For a scenario, a deterministic sample of its terminal traces (seeded random
//! walks over every interleaving, at granularity `atomic`: kernel-internal
//! sub-steps have no user-space counterpart) is taken under the release preset
//! of the running kernel (`upstream` if it has none). Each trace is executed on
//! the kernel with one real process per scenario process and child (children by
//! a real `fork`), and a coordinator that releases exactly one step at a time in
//! trace order ([`live`]), so the kernel runs the trace's interleaving. Every
//! step's result is compared with the model's prediction along the same trace,
//! and so is the trace's `nr_foll_pin_acquired` delta. A trace with a step that
//! has no faithful kernel counterpart in this version is `SKIP(reason)` (see
//! [`unsupported`] and docs/probe.md).

use std::collections::BTreeSet;

use pinlab_explore::{Model, SplitMix64};
use pinlab_model::Policy;
use pinlab_scenario::bind::{Call, Kind, Scenario};
use pinlab_scenario::model::{Action, Bound};

pub mod live;

/// One replayed trace.
#[derive(Debug, Clone)]
pub struct TraceResult {
    /// `scenario#k` (k-th sampled trace).
    pub name: String,
    /// The steps as `actor: statement`.
    pub steps: Vec<String>,
    /// The verdict.
    pub verdict: crate::Verdict,
    /// For a failure: the first differing observation, both values.
    pub diff: Option<String>,
}

/// The policy whose predictions the running kernel should match: its release
/// preset (`vX.Y` of `uname -r`) if there is one, else `upstream`.
pub fn kernel_policy() -> Policy {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel.trim().split(['.', '-']);
    let name = match (it.next(), it.next()) {
        (Some(a), Some(b)) => format!("v{a}.{b}"),
        _ => String::new(),
    };
    Policy::preset(&name).unwrap_or_else(|| Policy::preset("upstream").expect("preset"))
}

/// Up to `n` distinct terminal traces of `scn` under `policy`: seeded random
/// walks (seed `fingerprint`-derived from the walk number), in order of first
/// appearance; at most `20 n` walks are tried.
pub fn sample_traces(scn: &Scenario, policy: &Policy, n: usize) -> Vec<Vec<Action>> {
    let model = Bound { scn, policy };
    let mut seen: BTreeSet<Vec<u16>> = BTreeSet::new();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for walk in 0..20 * n as u64 {
        if out.len() >= n {
            break;
        }
        let mut rng = SplitMix64::new(pinlab_explore::fingerprint(&(0x7265_706c_6179u64, walk)));
        let mut s = model.initial_state();
        let mut trace = Vec::new();
        loop {
            buf.clear();
            model.actions(&s, &mut buf);
            if buf.is_empty() || trace.len() > 10_000 {
                break;
            }
            let a = buf[rng.below(buf.len())];
            s = model.step(&s, &a);
            trace.push(a);
        }
        let key: Vec<u16> = trace.iter().map(|a| a.actor).collect();
        if seen.insert(key) {
            out.push(trace);
        }
    }
    out
}

/// Why the live replay cannot run `scn`'s statement `call` of an actor of kind
/// `kind` faithfully, if it cannot.
pub fn unsupported(scn: &Scenario, kind: Kind, call: &Call) -> Option<String> {
    use pinlab_model::dev::rdma::access::*;
    let why = |s: &str| Some(s.to_string());
    match kind {
        Kind::Kthread => return why("a kernel thread's pass (writeback, reclaim) has no step-by-step user-space trigger yet"),
        Kind::Child { thread: true, .. } => return why("threads are not replayed yet"),
        _ => {}
    }
    match call {
        Call::Mmap {
            flags, fixed: None, ..
        } if flags & pinlab_model::vm::uapi::MAP_HUGETLB == 0 => None,
        Call::Munmap { .. }
        | Call::Madvise { .. }
        | Call::Memset { .. }
        | Call::Load { .. }
        | Call::Fork { .. }
        | Call::Exit
        | Call::Wait { .. }
        | Call::IoUringSetup
        | Call::RegisterBuffers { .. }
        | Call::UnregisterBuffers { .. }
        | Call::ReadFixed { .. }
        | Call::WriteFixed { .. }
        | Call::DeregMr { .. }
        | Call::Pipe
        | Call::PipeRead { .. }
        | Call::RdmaWrite { .. }
        | Call::RdmaRead { .. } => None,
        Call::Vmsplice { nr_segs, .. } if *nr_segs <= 64 => None,
        Call::Vmsplice { .. } => why("vmsplice of more than 64 iovecs (pipe capacity)"),
        Call::RegMr { access, .. }
            if access & IBV_ACCESS_ON_DEMAND == 0
                && pinlab_model::Machine::ib_access_writable(*access)
                && scn.cfg.user_zone == pinlab_model::mem::Zone::Normal =>
        {
            // ib_umem_get and IORING_REGISTER_BUFFERS both pin with
            // pin_user_pages_fast(FOLL_WRITE|FOLL_LONGTERM).
            None
        }
        Call::RegMr { .. } => {
            why("an ODP or read-only MR (io_uring registration always pins FOLL_WRITE)")
        }
        other => Some(format!("no live mapping for `{}` yet", call_name(other))),
    }
}

fn call_name(c: &Call) -> String {
    let s = format!("{c:?}");
    s.split([' ', '{', '(']).next().unwrap_or("").to_string()
}

/// The model's prediction along `trace`: per step, the actor name, the statement
/// text and the result (`= ...` or none), and the trace's
/// `nr_foll_pin_acquired` delta.
pub fn predict(
    scn: &Scenario,
    policy: &Policy,
    trace: &[Action],
) -> (Vec<(String, String, Option<String>)>, u64) {
    let model = Bound { scn, policy };
    let mut s = model.initial_state();
    let mut out = Vec::new();
    for a in trace {
        let info = model.exec(&mut s, a.actor as usize);
        out.push((
            scn.actors[a.actor as usize].name.clone(),
            info.text,
            info.result,
        ));
    }
    (out, s.m.vmstat.nr_foll_pin_acquired)
}

/// The first statement of `trace` the live replay cannot run, as a reason.
pub fn trace_unsupported(scn: &Scenario, trace: &[Action]) -> Option<String> {
    let mut pcs = vec![0usize; scn.actors.len()];
    for a in trace {
        let i = a.actor as usize;
        let prog = &scn.actors[i];
        let op = &prog.body[pcs[i]];
        if let Some(why) = unsupported(scn, prog.kind, &op.call) {
            return Some(format!("{} `{}`: {why}", prog.name, op.text));
        }
        pcs[i] += 1;
    }
    if !scn.cfg.swap && scn.cfg.nr_hugepages == 0 {
        None
    } else {
        Some("a setup the live replay does not configure (swap, hugetlb pool)".into())
    }
}

/// Handle-returning statements: their values (addresses, pids, ids) differ
/// between the model and the kernel, so only success or the errno is compared.
fn normalize(call: &Call, r: &Option<String>) -> Option<String> {
    let handle = matches!(
        call,
        Call::Mmap { .. }
            | Call::Fork { .. }
            | Call::IoUringSetup
            | Call::RegMr { .. }
            | Call::Pipe
    );
    match r {
        Some(s) if handle && !s.starts_with("= -") => Some("= <handle>".into()),
        other => other.clone(),
    }
}

/// Replays up to `max` sampled traces of each scenario under `policy`.
pub fn run(scns: &[Scenario], policy: &Policy, max: usize) -> Result<Vec<TraceResult>, String> {
    let _lock = crate::cases::Lock::take()?;
    for what in crate::journal::recover() {
        eprintln!("pinlab probe: an interrupted earlier run left the host changed: {what}");
    }
    crate::journal::install_signal_handler();
    let dir = std::env::temp_dir().join(format!("pinlab-replay-{}", crate::sys::getpid()));
    let dir_entry = crate::journal::register(crate::journal::Undo::RemoveTree(dir.clone()))
        .ok_or("probe undo journal full")?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let root = crate::sys::is_root() && crate::sys::pin_counters().is_ok();
    let mut out = Vec::new();
    for scn in scns {
        let mut scn = scn.clone();
        scn.fine = false;
        let eff = policy.with_switches(&scn.driver_bugs);
        for (k, trace) in sample_traces(&scn, &eff, max).into_iter().enumerate() {
            let (pred, acq) = predict(&scn, &eff, &trace);
            let steps: Vec<String> = pred.iter().map(|(a, t, _)| format!("{a}: {t}")).collect();
            let name = format!("{}#{}", scn.name, k + 1);
            let skip = |why: String| TraceResult {
                name: name.clone(),
                steps: steps.clone(),
                verdict: crate::Verdict::Skip(why),
                diff: None,
            };
            if !root {
                out.push(skip(
                    "needs root (nr_foll_pin_* via /proc/sys/vm/stat_refresh)".into(),
                ));
                continue;
            }
            if let Some(why) = trace_unsupported(&scn, &trace) {
                out.push(skip(why));
                continue;
            }
            let mut diff = None;
            let mut outcome = None;
            for _attempt in 0..2 {
                let (live, live_acq) = match live::run(&scn, &trace, &dir) {
                    Ok(x) => x,
                    Err(e) => {
                        outcome = Some(crate::Verdict::Skip(e));
                        break;
                    }
                };
                diff = None;
                let mut pcs = vec![0usize; scn.actors.len()];
                for (i, (a, l)) in trace.iter().zip(&live).enumerate() {
                    let actor = a.actor as usize;
                    let call = &scn.actors[actor].body[pcs[actor]].call;
                    pcs[actor] += 1;
                    let (m, l) = (normalize(call, &pred[i].2), normalize(call, l));
                    if m != l {
                        diff = Some(format!(
                            "step {} {}: `{}`: model {} / kernel {}",
                            i + 1,
                            pred[i].0,
                            pred[i].1,
                            m.as_deref().unwrap_or("(no result)"),
                            l.as_deref().unwrap_or("(no result)")
                        ));
                        break;
                    }
                }
                if diff.is_none() && live_acq != acq {
                    diff = Some(format!(
                        "nr_foll_pin_acquired over the trace: model +{acq} / kernel +{live_acq}"
                    ));
                    if let Some(noise) = crate::cases::host_noise() {
                        outcome = Some(crate::Verdict::Skip(format!("host busy: {noise}")));
                        break;
                    }
                    continue;
                }
                outcome = Some(if diff.is_none() {
                    crate::Verdict::Pass
                } else {
                    crate::Verdict::Fail
                });
                break;
            }
            out.push(TraceResult {
                name,
                steps,
                verdict: outcome.unwrap_or(crate::Verdict::Fail),
                diff,
            });
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    dir_entry.undo();
    crate::journal::close();
    Ok(out)
}
