//! The kernel's history: release presets, sub-steps inside fork and GUP-fast,
//! and `history` naming the commit that closed each known bug, checked against
//! the public record (docs/history.md).

use std::collections::BTreeSet;

use pinlab_explore::Config;
use pinlab_model::Outcome;
use pinlab_model::Policy;
use pinlab_scenario::builtin::builtin;
use pinlab_scenario::history::history;
use pinlab_scenario::model::Action;
use pinlab_scenario::{run_cell, timeline, Scenario};

fn scn(name: &str) -> Scenario {
    builtin(name).expect("built-in").expect("binds")
}

fn outcomes(s: &Scenario, policy: &str) -> BTreeSet<String> {
    run_cell(s, &Policy::parse(policy).unwrap(), &Config::default()).labels()
}

fn set(xs: &[&str]) -> BTreeSet<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

/// (first release where the outcome is gone, commit ids that closed it).
fn closed(name: &str, outcome: &str) -> (String, Vec<&'static str>) {
    let h = history(&scn(name), &Config::default());
    assert!(h.releases.iter().all(|r| r.exhaustive), "{name}");
    let c = h
        .closed
        .iter()
        .find(|c| c.outcome.to_string() == outcome)
        .unwrap_or_else(|| panic!("{name}: {outcome} never closed: {:?}", h.closed));
    assert!(c.for_good, "{name}: {outcome} comes back");
    (c.release.clone(), c.commits.iter().map(|k| k.id).collect())
}

#[test]
fn gup_fast_vs_fork_is_a_race_inside_the_system_calls() {
    let s = scn("gup-fast-vs-fork");
    // v5.10 has the early COW at fork but not write_protect_seq: only an
    // interleaving inside fork and GUP-fast loses the device's data.
    let bad = outcomes(&s, "v5.10");
    assert!(
        bad.contains("LOST") && bad.contains("LEAK_OTHER"),
        "{bad:?}"
    );
    assert_eq!(outcomes(&s, "v5.15"), set(&["OK"]));
    assert_eq!(
        outcomes(&s, "v5.10+gup_fast_write_protect_seq"),
        set(&["OK"])
    );
    let mut atomic = s.clone();
    atomic.fine = false;
    assert_eq!(
        outcomes(&atomic, "v5.10"),
        set(&["OK"]),
        "atomic steps cannot reach it"
    );
    // The shortest trace shows the window: fork decides, GUP-fast walks, grabs
    // and rechecks, then fork write-protects.
    let p = Policy::parse("v5.10").unwrap();
    let run = run_cell(&s, &p, &Config::default());
    let (o, trace) = run
        .outcomes
        .iter()
        .find(|(o, _)| o.to_string() == "LOST")
        .unwrap();
    let tl = timeline(&s, &p, *o, trace);
    let texts: Vec<&str> = tl.steps.iter().map(|st| st.action.as_str()).collect();
    let at = |needle: &str| {
        texts
            .iter()
            .position(|t| t.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` step in {texts:#?}"))
    };
    let decide = at("fork: mmap_write_lock, write_protect_seq begin");
    let walk = at("gup_fast: walk pte");
    let grab = at("gup_fast: try_grab_folio");
    let recheck = at("gup_fast: recheck pte");
    let wrprotect = at("fork: copy_page_range");
    assert!(
        decide < walk && walk < grab && grab < recheck && recheck < wrprotect,
        "{texts:#?}"
    );
}

#[test]
fn a_gup_fast_walk_that_a_fork_overtook_says_it_dropped_its_pins() {
    // v5.15 (write_protect_seq): the thread's walk takes the page, the fork
    // starts and ends, and the walk's last step sees the seqcount moved:
    // `gup_fast_unpin_user_pages`, then the slow path for every page. A walk
    // no fork overtook takes the page and needs no slow path.
    let s = scn("gup-fast-vs-fork");
    let p = Policy::parse("v5.15").unwrap();
    let idx = |name: &str| s.actors.iter().position(|a| a.name == name).unwrap() as u16;
    let (parent, t) = (idx("parent"), idx("t"));
    let steps = |order: &[u16]| {
        let trace: Vec<Action> = order.iter().map(|&actor| Action { actor }).collect();
        let tl = timeline(&s, &p, Outcome::Ok, &trace);
        tl.steps.last().unwrap().action.clone()
    };
    // mmap, memset, pthread_create; walk, grab, recheck; fork (two steps);
    // the walk's end.
    let overtaken = steps(&[parent, parent, parent, t, t, t, parent, parent, t]);
    assert!(
        overtaken.contains(
            "[gup_fast: write_protect_seq moved (a fork ran): 1 pin(s) dropped, slow path for 1 of 1 page(s), rest of the call]"
        ),
        "{overtaken}"
    );
    let alone = steps(&[parent, parent, parent, t, t, t, t]);
    assert!(
        alone.contains("[gup_fast: write_protect_seq unchanged, no slow path, rest of the call]"),
        "{alone}"
    );
}

#[test]
fn known_bugs_close_where_the_public_record_says() {
    // fork after a long-term pin: 5.9 early COW (needs 5.7's pin tracking).
    for name in ["fork-after-pin", "fork-after-iouring-pin"] {
        let (rel, ids) = closed(name, "LOST");
        assert_eq!(rel, "v5.10", "{name}");
        assert!(ids.contains(&"70e806e4e645"), "{name}: {ids:?}");
    }
    assert_eq!(
        closed("gup-fast-vs-fork", "LOST"),
        ("v5.15".into(), vec!["57efa1fe5957"])
    );
    assert_eq!(
        closed("vmsplice-cow-leak", "LEAK_OTHER"),
        ("v5.10".into(), vec!["09854ba94c6a"])
    );
    assert_eq!(
        closed("ro-pin-cow", "STALE"),
        ("v6.1".into(), vec!["6c287605fd56"])
    );
    assert_eq!(
        closed("rdma-pagecache-truncate", "LOST"),
        ("v6.6".into(), vec!["8ac268436e6d"])
    );
    // The ext4 crash: Kara's vmscan change and Stoakes' refusal each prevent it.
    let (rel, ids) = closed("rdma-pagecache-writeback", "OOPS");
    assert_eq!(rel, "v6.6");
    assert_eq!(ids, vec!["d824ec2a1546", "8ac268436e6d"]);
    // fs-dax: the long-term pin refusal (4.15) and the DAX busy wait (4.18).
    let (rel, ids) = closed("rdma-fsdax-truncate", "LEAK_OTHER");
    assert_eq!(rel, "v4.19");
    assert_eq!(ids, vec!["2bb6d2837083", "5fac7408d828"]);
}

#[test]
fn ro_pin_cow_is_bad_only_between_refcount_reuse_and_anon_exclusive() {
    let s = scn("ro-pin-cow");
    for r in ["v4.14", "v4.19", "v5.4", "v6.1", "v6.18", "v7.2"] {
        assert_eq!(outcomes(&s, r), set(&["OK"]), "{r}");
    }
    for r in ["v5.10", "v5.15"] {
        assert_eq!(outcomes(&s, r), set(&["OK", "STALE"]), "{r}");
    }
}

#[test]
fn history_runs_for_every_builtin() {
    for b in pinlab_scenario::builtin::BUILTINS {
        let h = history(&scn(b.name), &Config::default());
        assert_eq!(
            h.releases.len(),
            pinlab_model::policy::releases::RELEASES.len()
        );
        assert!(
            h.releases
                .iter()
                .all(|r| r.exhaustive && !r.outcomes.is_empty()),
            "{}",
            b.name
        );
    }
}

#[test]
fn release_presets_are_the_commits_in_them() {
    assert_eq!(Policy::parse("v4.14").unwrap().switches().count(), 0);
    let v510: Vec<&str> = Policy::parse("v5.10")
        .unwrap()
        .switches()
        .map(|s| s.name())
        .collect();
    assert_eq!(
        v510,
        [
            "foll_pin_tracking",
            "early_cow_on_fork",
            "io_uring",
            "mremap_dontunmap",
            "madv_cold_pageout",
            "cow_reuse_by_refcount",
            "longterm_refuses_fsdax",
            "dax_truncate_waits_for_idle",
            "filemap_fault_drops_mmap_lock"
        ]
    );
    // Today's releases have every mainline switch `upstream` has.
    let up: BTreeSet<_> = Policy::parse("upstream").unwrap().switches().collect();
    let now: BTreeSet<_> = Policy::parse("v6.18").unwrap().switches().collect();
    assert_eq!(up, now);
    let e = Policy::parse("v5.5").unwrap_err();
    assert!(
        e.message.contains("a release v4.14, v4.19"),
        "{}",
        e.message
    );
}

#[test]
fn threads_share_the_process() {
    let text = "scenario t\nprocess p {\n  buf = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)\n  pthread_create(t)\n  wait(t)\n  load(buf, 4K)\n}\nthread t of p {\n  memset(buf, 'T', 4K)\n  exit()\n}\n";
    let s = pinlab_scenario::load("t.scn", text).unwrap();
    // exit() in a thread is exit_group: the whole process goes, and the main
    // thread never loads.
    assert_eq!(outcomes(&s, "upstream"), set(&["OK"]));
    let p = Policy::parse("upstream").unwrap();
    let run = run_cell(&s, &p, &Config::default());
    let (o, trace) = run.outcomes.iter().next().unwrap();
    let tl = timeline(&s, &p, *o, trace);
    assert!(
        tl.steps.iter().all(|st| !st.action.starts_with("load")),
        "{:?}",
        tl.steps
    );
    // A thread of a thread is refused, with its position.
    let bad =
        "scenario t\nprocess p {\n  pthread_create(a)\n}\nthread a of p {\n}\nthread b of a {\n}\n";
    let e = pinlab_scenario::load("t.scn", bad).unwrap_err().to_string();
    assert!(
        e.contains("t.scn:7:13")
            && e.contains("only a process or child can create threads")
            && e.contains("`thread b of p`"),
        "{e}"
    );
    let twice = "scenario t\nprocess p {\n  pthread_create(a)\n  pthread_create(a)\n}\nthread a of p {\n}\n";
    let e = pinlab_scenario::load("t.scn", twice)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t.scn:4:3") && e.contains("already started"),
        "{e}"
    );
    let never = "scenario t\nprocess p {\n}\nthread a of p {\n}\n";
    let e = pinlab_scenario::load("t.scn", never)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("expected a `pthread_create(a)` in its parent"),
        "{e}"
    );
}
