//! State building blocks shared by the pinlab model and its explorer.
//!
//! * [`fingerprint`]: a fixed-key, platform-independent 64-bit hash of a state
//!   (the explorer identifies states by it).
//! * [`Shared`]: a copy-on-write component. Cloning a state clones `Arc`s;
//!   the first mutable access to a component that other states still share copies
//!   that component only (`Arc::make_mut`). Each component caches its own
//!   fingerprint, so fingerprinting a successor rehashes only what its step changed.
//! * [`SharedDefault`]: a [`Shared`] that is an uncounted static while it holds
//!   its type's default (components most runs never change).
//!
//! * [`check_step_deadline`]: a cooperative time limit inside one long step.
//!
//! Invariant: a [`Shared`] value hashes as the fingerprint of its content, so two
//! states that are equal have equal fingerprints however their components are shared.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod deadline;
mod fingerprint;
mod shared;
mod shared_default;

pub use deadline::{check_step_deadline, set_step_deadline, StepDeadline};
pub use fingerprint::{fingerprint, FpHasher, FpMap, FpSet, IdHasher};
pub use shared::{with_interning, Shared};
pub use shared_default::{SharedDefault, StaticDefault};
