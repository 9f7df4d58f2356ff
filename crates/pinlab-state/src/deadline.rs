//! A cooperative deadline for a single model step.
//!
//! A step that does a lot of work (a `memset` of gigabytes, a huge direct read)
//! cannot be cut by a time budget checked only between steps. The explorer
//! sets the run's deadline for the thread before a step
//! ([`set_step_deadline`]); the model's per-page loops call
//! [`check_step_deadline`], which every 1024 calls reads the clock and, once
//! the deadline has passed, unwinds the step with a [`StepDeadline`] payload.
//! The explorer catches it and ends the run as bounded by its time budget; the
//! half-done step is thrown away with its state copy, so no state is corrupted.

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    static TICK: Cell<u32> = const { Cell::new(0) };
}

/// The panic payload of a step stopped by its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepDeadline;

/// Sets (or with `None` clears) the deadline of the steps this thread runs.
pub fn set_step_deadline(d: Option<Instant>) {
    DEADLINE.with(|c| c.set(d));
}

/// Called from long loops of a step: unwinds with [`StepDeadline`] once the
/// thread's deadline has passed (the clock is read every 1024 calls).
#[inline]
pub fn check_step_deadline() {
    DEADLINE.with(|c| {
        if let Some(d) = c.get() {
            let t = TICK.with(|t| {
                let v = t.get().wrapping_add(1);
                t.set(v);
                v
            });
            if t % 1024 == 0 && Instant::now() >= d {
                std::panic::panic_any(StepDeadline);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passed_deadline_unwinds_a_long_loop_and_none_never_does() {
        set_step_deadline(None);
        for _ in 0..10_000 {
            check_step_deadline();
        }
        set_step_deadline(Some(Instant::now()));
        let r = std::panic::catch_unwind(|| {
            for _ in 0..10_000 {
                check_step_deadline();
            }
        });
        set_step_deadline(None);
        assert!(r.unwrap_err().is::<StepDeadline>());
    }
}
