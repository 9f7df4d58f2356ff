//! Observations behind STALE and LEAK_OTHER, kept as data.
//!
//! A device read of older data than the owner sees (STALE) or a read of data
//! meant for someone else (LEAK_OTHER) is recorded in the ghost when it
//! happens, and the judge lists the recorded observations to explain the
//! outcome. They used to be recorded as their rendered sentences; formatting
//! two descriptions and a sentence on every such read was a tenth of a
//! peer-heavy search. An [`Observation`] holds what its sentence shows — the
//! access (`how`), each version's [`Desc`] (tag, path, and whom it was meant
//! for) — and is rendered by [`Machine::observation_text`] only for
//! explanations and traces.
//!
//! Invariant: two observations are equal exactly when their sentences are,
//! as long as processes have distinct names and files distinct names (the
//! sentences name processes and files; the data names pids and inodes). With
//! two files of one name (two memfds called alike) the data is finer than the
//! text: states the text would have merged stay apart, which changes state
//! counts and nothing else. Renderers sort and deduplicate the sentences, so
//! explanations read exactly as the sentences did.

use super::{Target, Ver, VerInfo, WritePath};
use crate::machine::{Machine, Pid};
use std::borrow::Cow;

/// Whom a version was meant for, as its description names it: a process (a
/// private page: the text names the process, not the address) or a page of a
/// file.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Meant {
    /// A private page of this process.
    Proc(Pid),
    /// Page `index` of inode `ino`.
    File {
        /// Inode.
        ino: u32,
        /// Page index.
        index: u64,
    },
}

/// What a version's description says: its content tag, how it was written
/// and whom it was meant for; `None` for zeroes (no version).
pub type Desc = Option<(char, WritePath, Meant)>;

/// One observation (see the module docs); `how` is the access, e.g.
/// `"RDMA READ"` or `"load"`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Observation {
    /// STALE: `{how} returns {read} but the owner sees {sees}`.
    Stale {
        /// The device access.
        how: Cow<'static, str>,
        /// What the device read.
        read: Desc,
        /// What the owner sees there.
        sees: Desc,
    },
    /// LEAK_OTHER: `{reader} sees {what} via {how}`.
    Sees {
        /// The process that saw it.
        reader: Pid,
        /// What it saw.
        what: Desc,
        /// The access.
        how: Cow<'static, str>,
    },
    /// LEAK_OTHER: `{reader} reads {what} from page {index} of {file}`.
    ReadsFile {
        /// The process that read it.
        reader: Pid,
        /// What it read.
        what: Desc,
        /// The page of the file read.
        index: u64,
        /// The file read.
        ino: u32,
    },
    /// LEAK_OTHER: `{how} returns {what} from a block that now belongs to
    /// another file`.
    OtherFileBlock {
        /// The device access.
        how: Cow<'static, str>,
        /// What the device read.
        what: Desc,
    },
}

impl Machine {
    /// The description of version `v` as data (see [`Machine::describe`]).
    pub fn desc(&self, v: Ver) -> Desc {
        self.ghost.versions.get(&v).map(|i: &VerInfo| {
            let meant = match i.target {
                Target::Private { pid, .. } => Meant::Proc(pid),
                Target::File { ino, index } => Meant::File { ino, index },
            };
            (i.tag, i.path, meant)
        })
    }

    /// Renders a description: `zeroes`, `'D' (DMA meant for app)`, `'W' (CPU
    /// store meant for data page 1)`.
    pub fn desc_text(&self, d: &Desc) -> String {
        let Some((tag, path, meant)) = d else {
            return "zeroes".to_string();
        };
        let who = match *meant {
            Meant::Proc(pid) => self.proc_name(pid).to_string(),
            Meant::File { ino, index } => format!("{} page {index}", self.inode_name(ino)),
        };
        let path = match path {
            WritePath::Cpu => "CPU store",
            WritePath::Dma => "DMA",
        };
        format!("'{tag}' ({path} meant for {who})")
    }

    /// The sentence of an observation, as explanations and traces show it.
    pub fn observation_text(&self, o: &Observation) -> String {
        match o {
            Observation::Stale { how, read, sees } => format!(
                "{how} returns {} but the owner sees {}",
                self.desc_text(read),
                self.desc_text(sees)
            ),
            Observation::Sees { reader, what, how } => format!(
                "{} sees {} via {how}",
                self.proc_name(*reader),
                self.desc_text(what)
            ),
            Observation::ReadsFile {
                reader,
                what,
                index,
                ino,
            } => format!(
                "{} reads {} from page {index} of {}",
                self.proc_name(*reader),
                self.desc_text(what),
                self.inode_name(*ino)
            ),
            Observation::OtherFileBlock { how, what } => format!(
                "{how} returns {} from a block that now belongs to another file",
                self.desc_text(what)
            ),
        }
    }

    /// The sentences of `obs`, sorted and without duplicates.
    pub fn observation_texts<'a>(
        &self,
        obs: impl IntoIterator<Item = &'a Observation>,
    ) -> Vec<String> {
        let mut v: Vec<String> = obs.into_iter().map(|o| self.observation_text(o)).collect();
        v.sort();
        v.dedup();
        v
    }

    fn proc_name(&self, pid: Pid) -> &str {
        self.procs
            .get(pid as usize)
            .map_or("?", |p| p.name.as_str())
    }

    fn inode_name(&self, ino: u32) -> &str {
        self.fs
            .inodes
            .get(ino as usize)
            .map_or("?", |i| i.name.as_str())
    }
}
