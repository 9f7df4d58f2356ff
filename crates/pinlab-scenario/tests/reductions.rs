//! Reductions prove themselves: every built-in cell explored with and without
//! partial-order reduction and frame symmetry (all four combinations) reaches
//! the same outcome set, gets the same verdict, and stays free of model bugs;
//! the reduced runs never store more states than the unreduced one. The same
//! for the scaled scenarios under `scenarios/scale/` at their smallest size.
//! Sleep sets keep every state: with and without them (partial-order reduction
//! off), the same states, outcomes and shortest traces; and the independence
//! they rely on holds on every state of every built-in cell.

use pinlab_explore::{check_independence, Config, Search};
use pinlab_model::Policy;
use pinlab_scenario::builtin::all;
use pinlab_scenario::model::Bound;
use pinlab_scenario::{run_cell, Scenario};

fn cfg(por: bool, symmetry: bool, search: Search) -> Config {
    Config {
        por,
        symmetry,
        search,
        sleep_sets: false,
        ..Config::default()
    }
}

#[test]
fn sleep_sets_keep_every_state_and_every_shortest_trace() {
    for scn in all().unwrap() {
        for p in Policy::presets() {
            for symmetry in [false, true] {
                let off = run_cell(&scn, &p, &cfg(false, symmetry, Search::Bfs));
                let on = run_cell(
                    &scn,
                    &p,
                    &Config {
                        sleep_sets: true,
                        ..cfg(false, symmetry, Search::Bfs)
                    },
                );
                let what = format!("{} / {} symmetry={symmetry}", scn.name, p.name());
                assert_eq!(on.states, off.states, "{what}: states differ");
                assert_eq!(
                    on.outcomes, off.outcomes,
                    "{what}: outcomes or traces differ"
                );
                assert_eq!(on.model_bugs, off.model_bugs, "{what}");
            }
        }
    }
}

/// Calls `f` with every built-in cell the model runs (scenario × preset, the
/// preset with the scenario's driver bugs), as a model.
fn for_each_modelled_builtin_cell(mut f: impl FnMut(&Bound<'_>, &str)) {
    for scn in all().unwrap() {
        for p in Policy::presets() {
            if !p.unmodelled_for(&scn.uses).is_empty() {
                continue;
            }
            let eff = p.with_switches(&scn.driver_bugs);
            let model = Bound {
                scn: &scn,
                policy: &eff,
            };
            f(&model, &format!("{} / {}", scn.name, p.name()));
        }
    }
}

#[test]
fn independence_claims_hold_on_every_builtin_cell() {
    let mut claims = 0;
    for_each_modelled_builtin_cell(|model, cell| {
        for symmetry in [false, true] {
            let c = cfg(false, symmetry, Search::Bfs);
            claims +=
                check_independence(model, &c, 20_000).unwrap_or_else(|e| panic!("{cell}: {e}"));
        }
    });
    assert!(claims > 0, "no independence claimed at all");
}

fn same_under_every_reduction(scn: &Scenario, p: &Policy, search: Search) {
    let base = run_cell(scn, p, &cfg(false, false, search));
    assert!(base.exhaustive, "{} / {}: bounded", scn.name, p.name());
    let base_cell = base.cell(scn);
    for (por, sym) in [(true, false), (false, true), (true, true)] {
        let run = run_cell(scn, p, &cfg(por, sym, search));
        let what = format!(
            "{} / {} with por={por} symmetry={sym} ({search:?})",
            scn.name,
            p.name()
        );
        assert!(run.exhaustive, "{what}: bounded");
        assert_eq!(run.labels(), base.labels(), "{what}: outcome sets differ");
        assert_eq!(
            run.cell(scn).verdict,
            base_cell.verdict,
            "{what}: verdicts differ"
        );
        assert!(run.model_bugs.is_empty(), "{what}: {:?}", run.model_bugs);
        assert!(
            run.states <= base.states,
            "{what}: more states than unreduced"
        );
    }
}

#[test]
fn builtin_cells_have_the_same_outcomes_and_verdicts_with_and_without_reductions() {
    for scn in all().unwrap() {
        for p in Policy::presets() {
            same_under_every_reduction(&scn, &p, Search::Bfs);
        }
    }
}

#[test]
fn dfs_agrees_with_bfs_under_reductions() {
    for scn in all().unwrap() {
        for p in Policy::presets() {
            let b = run_cell(&scn, &p, &cfg(true, true, Search::Bfs));
            let d = run_cell(&scn, &p, &cfg(true, true, Search::Dfs));
            assert_eq!(b.labels(), d.labels(), "{} / {}", scn.name, p.name());
            assert_eq!(b.states, d.states, "{} / {}", scn.name, p.name());
        }
    }
}

#[test]
fn canonicalizing_a_successor_from_its_parent_is_canonicalizing_it() {
    // `Bound::canonicalize_successor` skips the renaming when the step left
    // every component it reads the same shared value: it must give exactly
    // what `canonicalize` gives, on every successor of every built-in cell.
    use pinlab_explore::Model;
    let mut skipped = 0u64;
    for_each_modelled_builtin_cell(|model, cell| {
        let mut init = model.initial_state();
        model.canonicalize(&mut init);
        let mut seen = std::collections::HashSet::from([pinlab_explore::fingerprint(&init)]);
        let mut queue = std::collections::VecDeque::from([init]);
        let mut actions = Vec::new();
        while let Some(s) = queue.pop_front() {
            if seen.len() > 5_000 {
                break;
            }
            actions.clear();
            model.actions(&s, &mut actions);
            for a in &actions {
                let n = model.step(&s, a);
                let mut full = n.clone();
                model.canonicalize(&mut full);
                let mut quick = n;
                model.canonicalize_successor(&s, &mut quick);
                assert_eq!(quick, full, "{cell}: after {a:?}");
                if pinlab_explore::Shared::ptr_eq(&quick.m.frames, &s.m.frames) {
                    skipped += 1;
                }
                if seen.insert(pinlab_explore::fingerprint(&full)) {
                    queue.push_back(full);
                }
            }
        }
    });
    assert!(skipped > 0, "no successor left the frames shared");
}
