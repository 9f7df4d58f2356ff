//! Optional progress spinner on stderr. It appears only when requested, when
//! stderr is a terminal, and once the run has lasted more than half a second, so
//! short runs and piped output stay silent. It is cleared when the run ends.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const DELAY: Duration = Duration::from_millis(500);

pub(crate) struct Progress {
    enabled: bool,
    start: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(requested: bool, start: Instant) -> Self {
        Progress {
            enabled: requested && std::io::stderr().is_terminal(),
            start,
            bar: None,
        }
    }

    /// Reports the current counters (cheap when disabled or too early).
    pub fn update(&mut self, what: &str, states: u64, depth: u32) {
        if !self.enabled {
            return;
        }
        let elapsed = self.start.elapsed();
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
