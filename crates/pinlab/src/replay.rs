//! `pinlab probe --replay SCENARIO|FILE|all`: explored interleavings run on
//! the live kernel (see `pinlab_probe::replay`).

use std::process::ExitCode;

use pinlab_probe::Verdict;

/// `pinlab probe --replay`.
pub(crate) fn replay_cmd(
    what: &str,
    policy: Option<&str>,
    max: usize,
    json: bool,
) -> Result<ExitCode, String> {
    if !pinlab_probe::supported() {
        return Err("pinlab probe is only supported on Linux".into());
    }
    let scns = if what == "all" {
        pinlab_scenario::builtin::all().map_err(|e| e.to_string())?
    } else {
        vec![crate::load_scenario(what)?]
    };
    let pol = match policy {
        Some(p) => crate::load_policy(p)?,
        None => pinlab_probe::replay::kernel_policy(),
    };
    let results = pinlab_probe::replay::run(&scns, &pol, max)?;
    let (mut p, mut f, mut s) = (0, 0, 0);
    let mut rows = Vec::new();
    for r in &results {
        let v = match &r.verdict {
            Verdict::Pass => {
                p += 1;
                "PASS".to_string()
            }
            Verdict::Fail => {
                f += 1;
                "FAIL".to_string()
            }
            Verdict::Skip(why) => {
                s += 1;
                format!("SKIP({why})")
            }
        };
        if json {
            rows.push(serde_json::json!({"trace": r.name, "verdict": v, "steps": r.steps, "end": r.end, "diff": r.diff}));
        } else {
            println!("{v:<6} {}", r.name);
            if let Some(d) = &r.diff {
                println!("       {d}");
                for st in &r.steps {
                    println!("         {st}");
                }
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"schema_version": 1, "policy": pol.name(), "traces": rows, "passed": p, "failed": f, "skipped": s}))
                .expect("json")
        );
    } else {
        println!(
            "(predictions under {}) {p} passed, {f} failed, {s} skipped",
            pol.name()
        );
    }
    Ok(crate::probe_exit(p, f, s))
}
