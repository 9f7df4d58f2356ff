//! Optional progress on stderr, when requested: on a terminal a spinner that
//! appears once the run has lasted half a second and is cleared when it ends;
//! otherwise (a log file, CI) a plain line every [`LINE_EVERY`], so a long run
//! is never silent and a short one prints nothing.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const DELAY: Duration = Duration::from_millis(500);
/// How often a plain progress line is printed when stderr is not a terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(5);

pub(crate) struct Progress {
    enabled: bool,
    terminal: bool,
    start: Instant,
    bar: Option<ProgressBar>,
    last_line: Instant,
}

impl Progress {
    pub fn new(requested: bool, start: Instant) -> Self {
        Progress {
            enabled: requested,
            terminal: std::io::stderr().is_terminal(),
            start,
            bar: None,
            last_line: start,
        }
    }

    /// Reports the current counters (cheap when disabled or too early).
    pub fn update(&mut self, what: &str, states: u64, depth: u32) {
        if !self.enabled {
            return;
        }
        let elapsed = self.start.elapsed();
        if !self.terminal {
            if self.last_line.elapsed() >= LINE_EVERY {
                self.last_line = Instant::now();
                let rate = states as f64 / elapsed.as_secs_f64().max(1e-9);
                eprintln!(
                    "pinlab: {what}: {states} states, depth {depth}, {rate:.0} states/s, {:.0} s",
                    elapsed.as_secs_f64()
                );
            }
            return;
        }
        if self.bar.is_none() {
            if elapsed < DELAY {
                return;
            }
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            let rate = states as f64 / elapsed.as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "{what}: {states} states, depth {depth}, {rate:.0} states/s"
            ));
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
