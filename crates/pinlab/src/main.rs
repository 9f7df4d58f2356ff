//! `pinlab`: run pinning scenarios under pinning policies.
//!
//! Commands: `check` (the scenario × policy matrix of reachable outcomes, checked
//! against each scenario's expectations), `explore` (shortest trace of every bad
//! outcome of one cell, as a timeline), `report` (the matrix and the timelines
//! of every bad outcome as one HTML page), `run` (replay a saved trace),
//! `merge` (one matrix from several `check --json` runs; `check --cluster` and
//! `--local-cluster` are in `cluster.rs`),
//! `scenarios`, `policies`. Bad input exits 2 with a message naming the file,
//! line and column (or the argument); a failed check exits 1.

#![forbid(unsafe_code)]

use args::Bounds;

/// mimalloc: exploration allocates and frees many small, short-lived state
/// components; glibc malloc spent a third of a BFS in malloc/free and heap trimming.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Output goes through these: a closed pipe (`pinlab check | head`) ends the
// program quietly with the status a SIGPIPE death would give (141, so a script
// still sees that the output was cut), any other write error (a full disk,
// `> /dev/full`) is reported and exits 1 — never a panic, never a silent 0.
macro_rules! println {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            crate::output_failed(e);
        }
    }};
}
macro_rules! print {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($t)*) {
            crate::output_failed(e);
        }
    }};
}

/// Ends the program after a failed write to stdout (see the macros above).
fn output_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    eprintln!("pinlab: writing the output failed: {e}");
    std::process::exit(1);
}

/// Flushes stdout at the end, with the same rules as the macros.
fn flush_stdout() {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().flush() {
        output_failed(e);
    }
}

/// Writes `contents` to `path` atomically: into a temporary file in the same
/// directory, flushed to disk, then renamed over `path`. A failure (a full
/// disk) leaves any old file untouched and removes the temporary one.
fn write_atomic(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

use clap::{Parser, Subcommand};
use pinlab_model::{Policy, Switch};
use pinlab_report::Matrix;
use pinlab_scenario::builtin::BUILTINS;
use pinlab_scenario::Scenario;
use std::process::ExitCode;

// Declared after the output macros above, so that every module prints through them.
mod args;
mod cluster;
mod explore;
mod history;
mod merge;
mod replay;
mod report;
mod serve;
use explore::{explore_cmd, run_trace, StateView};
use report::report_cmd;

#[derive(Parser)]
#[command(
    name = "pinlab",
    version,
    about = "An executable model of Linux DMA page pinning: which policy loses data, leaks, corrupts, oopses or hangs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the scenario × policy matrix of reachable outcomes; exit 1 if a cell contradicts an expectation.
    Check {
        /// Scenario name (built-in) or path to a .scn file; repeatable. Default: all built-ins.
        #[arg(long = "scenario", short = 's')]
        scenarios: Vec<String>,
        /// Policy (preset, or preset+switch+no_switch); repeatable. Default: every preset.
        #[arg(long = "policy", short = 'p')]
        policies: Vec<String>,
        /// Print JSON ({"schema_version":1,"cells":[...]}) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        bounds: Bounds,
        #[command(flatten)]
        cluster: cluster::ClusterArgs,
    },
    /// Print the shortest trace to each bad outcome of one scenario under one policy.
    Explore {
        /// Scenario name or .scn path.
        scenario: String,
        /// Policy.
        #[arg(long, short = 'p', default_value = "upstream")]
        policy: String,
        /// Only this outcome (e.g. LOST, ERR(EFAULT)); OK is shown only when asked for.
        #[arg(long)]
        outcome: Option<String>,
        /// Print timelines as JSON.
        #[arg(long)]
        json: bool,
        /// Write each trace to DIR/SCENARIO.POLICY.OUTCOME.trace for `pinlab run --trace`.
        #[arg(long)]
        save_traces: Option<std::path::PathBuf>,
        /// What each step shows: `touched` (the folios it touched) or `full` (every process's VMAs and PTEs, every folio with its holders, every inode's page cache and blocks, the hugetlb pool and reservations; `* ` marks what changed).
        #[arg(long, value_enum, default_value_t = StateView::Touched)]
        state: StateView,
        #[command(flatten)]
        bounds: Bounds,
        #[command(flatten)]
        cluster: cluster::ClusterArgs,
    },
    /// Replay a trace saved by `explore --save-traces` and print its timeline.
    ///
    /// The replay is verified: every step must be runnable and give the result
    /// the trace recorded, the run must end where the trace ends, with the
    /// recorded outcome; otherwise it stops at the first difference, prints both
    /// values and exits 1. With `--policy P` the same interleaving is replayed
    /// under another policy to show where (and whether) it diverges; that
    /// report exits 0.
    Run {
        /// Trace file.
        #[arg(long)]
        trace: std::path::PathBuf,
        /// Scenario (built-in name or .scn path), instead of the one the trace names.
        #[arg(long)]
        scenario: Option<String>,
        /// Replay under this policy instead of the recorded one ("what would P have done here").
        #[arg(long, short = 'p')]
        policy: Option<String>,
    },
    /// Run the conformance cases (or, with --replay, explored interleavings) on the running kernel against the model.
    ///
    /// Prints PASS, FAIL (with both values) or SKIP(reason) per case and a closing
    /// line `N passed, N failed, N skipped`; exits 1 on any FAIL, 3 if nothing
    /// could be checked (every case skipped). Cases that read
    /// PFNs or change a system setting (the hugetlb pool, restored afterwards) run
    /// only as root; without root they are skipped, as are cases whose facility
    /// (io_uring, THP, hugetlb, memfd_secret) is missing.
    Probe {
        /// Only cases whose name contains NAME (repeatable).
        #[arg(long = "case")]
        cases: Vec<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// List the case names and exit.
        #[arg(long)]
        list: bool,
        /// Replay explored interleavings of a scenario (built-in name, .scn file, or `all`) on the kernel, step by step, against the model's prediction.
        #[arg(long, value_name = "SCENARIO|FILE|all")]
        replay: Option<String>,
        /// With --replay: the policy whose predictions the kernel should match (default: the release preset of the running kernel, else upstream).
        #[arg(long, short = 'p')]
        policy: Option<String>,
        /// With --replay: traces sampled per scenario (deterministic seeded walks, distinct interleavings).
        #[arg(long, default_value_t = 60)]
        max_traces: usize,
    },
    /// Merge the JSON of several `check --json` runs into one matrix (swarm shards).
    ///
    /// For random-walk shards run anywhere (`check --json --search walk --seed S`,
    /// one seed per shard): cells are matched by scenario and policy, outcomes
    /// united, and verdicts judged again from the merged outcomes; a cell no
    /// shard explored exhaustively stays bounded. See docs/distributed.md.
    Merge {
        /// JSON files written by `pinlab check --json`.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<std::path::PathBuf>,
        /// A scenario file, for cells whose scenario is not built in; repeatable.
        #[arg(long = "scenario", short = 's')]
        scenarios: Vec<String>,
        /// Print JSON (the `check --json` schema) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write a self-contained HTML report: the matrix and an SVG timeline of every bad outcome.
    ///
    /// Runs the matrix like `check` (same selection, bounds and exit codes) and,
    /// for every cell, a shortest trace to each outcome other than OK and ERR(...).
    Report {
        /// Scenario name (built-in) or path to a .scn file; repeatable. Default: all built-ins.
        #[arg(long = "scenario", short = 's')]
        scenarios: Vec<String>,
        /// Policy (preset, or preset+switch+no_switch); repeatable. Default: every preset.
        #[arg(long = "policy", short = 'p')]
        policies: Vec<String>,
        /// Output file.
        #[arg(long, short = 'o', default_value = "pinlab-report.html")]
        out: std::path::PathBuf,
        /// `full`: each timeline gets a folded section with the full state after every step (changes marked).
        #[arg(long, value_enum, default_value_t = StateView::Touched)]
        state: StateView,
        #[command(flatten)]
        bounds: Bounds,
        #[command(flatten)]
        cluster: cluster::ClusterArgs,
    },
    /// List the built-in scenarios, or print one's source (`pinlab scenarios NAME --source`).
    Scenarios {
        /// A built-in scenario.
        name: Option<String>,
        /// Print its `.scn` source.
        #[arg(long, requires = "name")]
        source: bool,
    },
    /// Print a shell completion script (`pinlab completions bash > /etc/bash_completion.d/pinlab`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout (`pinlab man | man -l -`).
    Man,
    /// A local web UI to walk a cell's state graph: the matrix, then per state the steps so far, the enabled actions, the shortest trace to each outcome and the full state.
    Serve {
        /// Address to listen on (port 0: any free port; the URL is printed).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// Serve only this scenario (built-in name or .scn path); `/` opens its cell.
        scenario: Option<String>,
        /// With a scenario: the policy of its cell (default upstream); without: the matrix's only column.
        #[arg(long, short = 'p')]
        policy: Option<String>,
    },
    /// Print a scaled scenario (more peers, children, pages) for measuring the explorer.
    ///
    /// Without arguments, lists the families and their parameters; with a family
    /// and one value per parameter, prints the scenario text (the files under
    /// scenarios/scale/ are such outputs): `pinlab scale rdma-pagecache-truncate 2 4 > big.scn`.
    Scale {
        /// Family name.
        family: Option<String>,
        /// One value per parameter of the family, each from 1 to 26.
        values: Vec<u32>,
    },
    /// Run a scenario under every kernel release preset (v4.14 … v7.2).
    ///
    /// Prints, per release, the reachable outcomes, and for each bad outcome the
    /// first release where it stops being reachable with the commits that closed
    /// it (found by exploring that release without each of its new switches).
    /// `--json` prints
    /// `{"schema_version":1,"scenario":S,"releases":[{"release":"v5.4","outcomes":[...],"exhaustive":true},...],"closed":[...]}`.
    /// Exits 3 if a bound cut some release's exploration.
    History {
        /// Scenario name (built-in) or path to a .scn file.
        scenario: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        bounds: Bounds,
    },
    /// List the policy presets, the release presets and the switches.
    Policies {
        /// Show one policy (preset, release `vX.Y` or composition): its switches, each with the commit that introduced it.
        #[arg(long)]
        show: Option<String>,
    },
}

fn load_scenario(s: &str) -> Result<Scenario, String> {
    if let Some(r) = pinlab_scenario::builtin::builtin(s) {
        return r.map_err(|e| e.to_string());
    }
    let bytes = std::fs::read(s).map_err(|e| {
        let hint = pinlab_model::policy::did_you_mean(s, BUILTINS.iter().map(|b| b.name))
            .map_or(String::new(), |c| format!(" (did you mean `{c}`?)"));
        format!(
            "{s}: not a built-in scenario and not a readable file ({e}){hint}; see `pinlab scenarios`"
        )
    })?;
    let text = utf8_text(s, bytes, "a scenario")?;
    pinlab_scenario::load(s, &text).map_err(|e| e.to_string())
}

/// `bytes` of `file` as text, or an error naming the line and column of the
/// first byte that is not UTF-8 and what the file should be (`what`).
fn utf8_text(file: &str, bytes: Vec<u8>, what: &str) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| {
        let ok = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = 1 + ok.iter().filter(|&&b| b == b'\n').count();
        let start = ok.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let col = 1 + String::from_utf8_lossy(&ok[start..]).chars().count();
        let byte = e.as_bytes()[ok.len()];
        format!("{file}:{line}:{col}: byte {byte:#04x} is not UTF-8; expected {what} in UTF-8 text")
    })
}

fn scale_cmd(family: Option<&str>, values: &[u32]) -> Result<ExitCode, String> {
    use pinlab_scenario::scale::{generate, FAMILIES};
    let Some(name) = family else {
        for f in FAMILIES {
            let params: Vec<String> = f.params.iter().map(|(_, what)| what.to_string()).collect();
            println!("{:<26} {}", f.name, params.join(" "));
        }
        return Ok(ExitCode::SUCCESS);
    };
    let Some(f) = FAMILIES.iter().find(|f| f.name == name) else {
        let names: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
        return Err(format!(
            "scale: unknown family {name:?}; expected one of {}",
            names.join(", ")
        ));
    };
    match generate(name, values) {
        Some(text) => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let params: Vec<&str> = f.params.iter().map(|(_, what)| *what).collect();
            Err(format!(
                "scale {name}: expected {} value(s) ({}), each from 1 to 26, found {values:?}",
                f.params.len(),
                params.join(", ")
            ))
        }
    }
}

fn load_policy(p: &str) -> Result<Policy, String> {
    Policy::parse(p).map_err(|e| format!("--policy {e}"))
}

/// The selected scenarios and policies (all built-ins / every preset when empty).
fn selection(
    scenarios: &[String],
    policies: &[String],
) -> Result<(Vec<Scenario>, Vec<Policy>), String> {
    let scns: Vec<Scenario> = if scenarios.is_empty() {
        pinlab_scenario::builtin::all().map_err(|e| e.to_string())?
    } else {
        // `-s X -s X` is one scenario.
        let mut v: Vec<Scenario> = Vec::new();
        for s in scenarios {
            let scn = load_scenario(s)?;
            if !v
                .iter()
                .any(|o| o.name == scn.name && o.source_hash == scn.source_hash)
            {
                v.push(scn);
            }
        }
        v
    };
    let pols: Vec<Policy> = if policies.is_empty() {
        // Every preset, then every other policy an `expect` line names (a
        // composition such as `follpin+bounce_writeback`), so that every
        // expectation is evaluated.
        let mut pols = Policy::presets();
        for e in scns.iter().flat_map(|s| &s.expects) {
            let p = load_policy(&e.policy)?;
            if !pols
                .iter()
                .any(|q| q.name() == p.name() || q.switches().eq(p.switches()))
            {
                pols.push(p);
            }
        }
        pols
    } else {
        // `-p P -p P` is one policy.
        let mut v: Vec<Policy> = Vec::new();
        for p in policies {
            let pol = load_policy(p)?;
            if !v.iter().any(|o| o.name() == pol.name()) {
                v.push(pol);
            }
        }
        v
    };
    Ok((scns, pols))
}

fn check(
    scenarios: Vec<String>,
    policies: Vec<String>,
    json: bool,
    bounds: &Bounds,
    cluster: &cluster::ClusterArgs,
) -> Result<ExitCode, String> {
    let (mut scns, pols) = selection(&scenarios, &policies)?;
    scns.iter_mut().for_each(|s| bounds.apply(s));
    let cfg = bounds.config()?;
    let m = match cluster.mode(&cfg)? {
        cluster::Mode::Local(n) => return cluster::spawn_local(n, cluster.timeout()),
        cluster::Mode::Rank(ccfg) => {
            let (m, leader) = cluster::run_rank(&ccfg, scns, pols, cfg)?;
            if !leader {
                return Ok(matrix_exit(&m));
            }
            m
        }
        cluster::Mode::Single => run_matrix(
            &scns,
            &pols,
            &cfg,
            &mut |model, cfg| pinlab_explore::run(model, cfg),
            true,
        ),
    };
    Ok(print_matrix(&m, json))
}

/// Prints a matrix as `check` does and returns `check`'s exit status for it.
fn print_matrix(m: &Matrix, json: bool) -> ExitCode {
    if json {
        println!("{}", pinlab_report::to_json_string(m));
    } else {
        print!("{}", pinlab_report::render_text(m));
    }
    matrix_exit(m)
}

/// Every cell of `scns` × `pols`, each explored by `explore`; `progress`: print
/// progress lines (see [`MatrixProgress`]).
fn run_matrix(
    scns: &[Scenario],
    pols: &[Policy],
    cfg: &pinlab_explore::Config,
    explore: &mut pinlab_scenario::Explorer<'_>,
    progress: bool,
) -> Matrix {
    let mut m = Matrix { cells: Vec::new() };
    let mut tick = MatrixProgress::new(scns.len() * pols.len());
    tick.quiet |= !progress;
    for s in scns {
        for p in pols {
            tick.cell(&s.name, p.name());
            m.cells
                .push(pinlab_scenario::run_cell_with(s, p, cfg, explore).cell(s));
        }
    }
    m
}

/// A line on stderr every few seconds while a matrix runs, when stderr is not
/// a terminal (a log, CI): which cell of how many. Short runs print nothing.
struct MatrixProgress {
    total: usize,
    done: usize,
    start: std::time::Instant,
    last: std::time::Instant,
    quiet: bool,
}

impl MatrixProgress {
    fn new(total: usize) -> Self {
        use std::io::IsTerminal;
        let now = std::time::Instant::now();
        MatrixProgress {
            total,
            done: 0,
            start: now,
            last: now,
            quiet: std::io::stderr().is_terminal(),
        }
    }

    fn cell(&mut self, scenario: &str, policy: &str) {
        self.done += 1;
        if !self.quiet && self.last.elapsed() >= std::time::Duration::from_secs(5) {
            self.last = std::time::Instant::now();
            eprintln!(
                "pinlab: cell {}/{} ({scenario} / {policy}), {:.0} s",
                self.done,
                self.total,
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

/// Exit status of `check` and `report`: 1 if an expectation failed or the model
/// broke an invariant, else 3 if a bounded run left an expectation undecided,
/// else 0.
fn matrix_exit(m: &Matrix) -> ExitCode {
    if m.failed() {
        ExitCode::from(1)
    } else if m.inconclusive() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

fn probe_cmd(cases: &[String], json: bool, list: bool) -> Result<ExitCode, String> {
    use pinlab_probe::Verdict;
    if !pinlab_probe::supported() {
        return Err("pinlab probe is only supported on Linux".into());
    }
    if list {
        for n in pinlab_probe::case_names() {
            println!("{n}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let results = pinlab_probe::run(cases)?;
    if results.is_empty() {
        return Err(format!(
            "--case {}: no probe case matches (see `pinlab probe --list`)",
            cases.join(", ")
        ));
    }
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
            rows.push(
                serde_json::json!({"case": r.name, "verdict": v, "live": r.live, "model": r.model}),
            );
        } else {
            println!("{v:<6} {}", r.name);
            match r.verdict {
                Verdict::Pass => println!("       {}", r.live.as_deref().unwrap_or("")),
                Verdict::Fail => {
                    println!("       live:  {}", r.live.as_deref().unwrap_or(""));
                    println!("       model: {}", r.model.as_deref().unwrap_or(""));
                }
                Verdict::Skip(_) => {}
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"schema_version": 1, "cases": rows, "passed": p, "failed": f, "skipped": s})).expect("json"));
    } else {
        println!("{p} passed, {f} failed, {s} skipped");
    }
    Ok(probe_exit(p, f, s))
}

/// `pinlab man`: the manual page, generated from the command-line definition.
fn man_cmd() -> Result<ExitCode, String> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| e.to_string())?;
    std::io::Write::write_all(&mut std::io::stdout(), &out).map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// `pinlab scenarios NAME [--source]`: one built-in, with its title and cites,
/// or its source text.
fn scenario_cmd(name: &str, source: bool) -> Result<ExitCode, String> {
    let Some(b) = BUILTINS.iter().find(|b| b.name == name) else {
        let hint = pinlab_model::policy::did_you_mean(name, BUILTINS.iter().map(|b| b.name))
            .map_or(String::new(), |c| format!(" (did you mean `{c}`?)"));
        return Err(format!(
            "{name}: not a built-in scenario{hint}; see `pinlab scenarios`"
        ));
    };
    if source {
        print!("{}", b.text);
        return Ok(ExitCode::SUCCESS);
    }
    let s = pinlab_scenario::load(b.file, b.text).map_err(|e| e.to_string())?;
    println!("{:<26} {}", s.name, s.title.as_deref().unwrap_or(""));
    for c in &s.cites {
        println!("{:<26}   cites: {c}", "");
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit status of `probe` (and `probe --replay`): 1 on a failure; 3 when
/// nothing could be checked (every case skipped: not root, no facility), so that
/// a script does not take an unprivileged run for a pass; else 0.
pub(crate) fn probe_exit(passed: usize, failed: usize, skipped: usize) -> ExitCode {
    if failed > 0 {
        ExitCode::from(1)
    } else if passed == 0 && skipped > 0 {
        eprintln!(
            "pinlab probe: nothing was checked: every case was skipped (see the reasons; most cases need root for the exact pin counters)"
        );
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

fn scenarios_cmd() -> Result<ExitCode, String> {
    for b in BUILTINS {
        let s = pinlab_scenario::load(b.file, b.text).map_err(|e| e.to_string())?;
        println!("{:<26} {}", s.name, s.title.as_deref().unwrap_or(""));
        for c in &s.cites {
            println!("{:<26}   cites: {c}", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn policies_cmd() -> Result<ExitCode, String> {
    println!("Presets (compose with +switch or +no_switch, e.g. upstream+bounce_writeback):\n");
    for p in pinlab_model::policy::PRESETS {
        println!("{:<12} {:<15} {}", p.name, p.label, p.summary);
        let sw: Vec<&str> = p.switches.iter().map(|s| s.name()).collect();
        println!(
            "{:<12} switches: {}",
            "",
            if sw.is_empty() {
                "(none)".to_string()
            } else {
                sw.join(", ")
            }
        );
        let un: Vec<&str> = p
            .switches
            .iter()
            .filter(|s| !s.modelled())
            .map(|s| s.name())
            .collect();
        if !un.is_empty() {
            println!(
                "{:<12} NOT MODELLED YET: {} (cells of scenarios using what they act on show n/m)",
                "",
                un.join(", ")
            );
        }
        println!();
    }
    println!("Releases (the switches whose commit is in vX.Y.0; `pinlab policies --show vX.Y`):\n");
    for &r in pinlab_model::policy::releases::RELEASES {
        let p = Policy::release(r);
        let sw: Vec<&str> = p.switches().map(|s| s.name()).collect();
        println!(
            "{:<12} {}",
            p.name(),
            if sw.is_empty() {
                "(none)".to_string()
            } else {
                sw.join(", ")
            }
        );
    }
    println!();
    println!("Switches:\n");
    for s in Switch::ALL {
        let aff: Vec<String> = s.affects().iter().map(|m| format!("{m:?}")).collect();
        println!(
            "{:<32} {:<22} {:<13} {}",
            s.name(),
            s.since(),
            if s.modelled() {
                "modelled"
            } else {
                "NOT MODELLED"
            },
            s.summary()
        );
        println!("{:<32} acts on: {}", "", aff.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// Turns transparent huge pages off for this process's heap before a command
/// that explores (`check`, `explore`, `report`, `history`, `serve`): mimalloc
/// backs its arenas with THP and purges freed parts of them, and each purge of
/// a part of a huge page made the kernel fault in and clear a whole 2 MiB page
/// again — 7,669 huge-page faults (15 GiB cleared) for a 2.6 GiB peak in one
/// BFS, 15–35 % of its time (docs/PERFORMANCE.md, eleventh session).
/// `prctl(PR_SET_THP_DISABLE)` applies to this process only; the probe, which
/// tests THP, never calls it. A kernel without the prctl changes nothing.
fn no_thp_heap() {
    if std::env::var_os("PINLAB_HEAP_THP").is_none() {
        let _ = rustix::thread::disable_transparent_huge_pages(true);
    }
}

fn main() -> ExitCode {
    pinlab_explore::quiet_model_panics();
    let cli = Cli::parse();
    if matches!(
        cli.cmd,
        Cmd::Check { .. }
            | Cmd::Explore { .. }
            | Cmd::Report { .. }
            | Cmd::History { .. }
            | Cmd::Serve { .. }
    ) {
        no_thp_heap();
    }
    let r = match cli.cmd {
        Cmd::Check {
            scenarios,
            policies,
            json,
            bounds,
            cluster,
        } => check(scenarios, policies, json, &bounds, &cluster),
        Cmd::Explore {
            scenario,
            policy,
            outcome,
            json,
            save_traces,
            state,
            bounds,
            cluster,
        } => explore_cmd(
            &scenario,
            &policy,
            outcome,
            json,
            save_traces,
            state == StateView::Full,
            &bounds,
            &cluster,
        ),
        Cmd::Merge {
            files,
            scenarios,
            json,
        } => merge::merge(&files, &scenarios).map(|m| print_matrix(&m, json)),
        Cmd::Report {
            scenarios,
            policies,
            out,
            state,
            bounds,
            cluster,
        } => report_cmd(
            &scenarios,
            &policies,
            &out,
            state == StateView::Full,
            &bounds,
            &cluster,
        ),
        Cmd::Run {
            trace,
            scenario,
            policy,
        } => run_trace(&trace, scenario, policy),
        Cmd::Probe {
            replay: Some(what),
            policy,
            max_traces,
            json,
            ..
        } => replay::replay_cmd(&what, policy.as_deref(), max_traces, json),
        Cmd::Probe {
            cases, json, list, ..
        } => probe_cmd(&cases, json, list),
        Cmd::Scenarios { name: None, .. } => scenarios_cmd(),
        Cmd::Scenarios {
            name: Some(n),
            source,
        } => scenario_cmd(&n, source),
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "pinlab", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Man => man_cmd(),
        Cmd::Serve {
            addr,
            scenario,
            policy,
        } => (|| {
            let s = scenario.as_deref().map(load_scenario).transpose()?;
            let p = policy.as_deref().map(load_policy).transpose()?;
            serve::serve_cmd(&addr, s, p)
        })(),
        Cmd::Scale { family, values } => scale_cmd(family.as_deref(), &values),
        Cmd::Policies { show: None } => policies_cmd(),
        Cmd::Policies { show: Some(p) } => load_policy(&p).map(|p| {
            history::show_policy(&p);
            ExitCode::SUCCESS
        }),
        Cmd::History {
            scenario,
            json,
            bounds,
        } => load_scenario(&scenario).and_then(|mut s| {
            bounds.apply(&mut s);
            history::history_cmd(&s, json, &bounds)
        }),
    };
    flush_stdout();
    match r {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pinlab: {e}");
            ExitCode::from(2)
        }
    }
}
