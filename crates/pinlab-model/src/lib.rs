//! pinlab-model: an executable model of Linux DMA page pinning.
//!
//! One [`Machine`] value holds the whole simulated system: folios with exact
//! `_refcount`/`_pincount`/mapcounts ([`mem`]), processes with VMAs and page
//! tables, faults, COW and fork ([`vm`]), get_user_pages/pin_user_pages with their
//! fast and slow paths ([`gup`]), the GUP users — io_uring fixed buffers, RDMA
//! MRs, vmsplice ([`dev`]) — and the ghost state that records the provenance of
//! every write and judges outcomes ([`ghost`]). Behaviour that changed across
//! kernel versions or was only proposed is selected by a [`Policy`] of feature
//! switches ([`policy`]); the model never looks outcomes up from a policy.
//! Deterministic, single-threaded, no I/O.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Kernel functions take many arguments; keeping their shape beats bundling them.
#![allow(clippy::too_many_arguments)]

pub mod check;
pub mod dev;
pub mod errno;
pub mod fs;
pub mod ghost;
pub mod gup;
pub mod machine;
pub mod mem;
pub mod notifier;
pub mod policy;
pub mod vm;

pub use errno::{Errno, KResult};
pub use ghost::{Outcome, Target, Ver, WriteId};
pub use machine::{Machine, MachineConfig, Pid, ShmemHuge, Thp};
pub use policy::{Mechanism, Policy, Switch};
