//! A direct read first writes the dirty page cache of its range back
//! (`kiocb_write_and_wait`): what the cache held is on disk afterwards, the
//! folio is clean, and pages outside the range stay dirty. Found by
//! `pinlab probe --replay` comparing the files' on-disk contents
//! (gupexcl-two-pinners: `disk src` was 0 in the model, 'S' on 6.18).

use pinlab_model::fs::oflags::*;
use pinlab_model::{Machine, MachineConfig, Policy, WriteId};

#[test]
fn direct_read_writes_the_dirty_range_back_first() {
    let mut m = Machine::new(MachineConfig::default());
    let p = Policy::parse("upstream").unwrap();
    let pid = m.spawn("p");
    let f = m.open(&p, pid, "src", O_RDWR | O_CREAT).unwrap();
    let w = WriteId {
        actor: 0,
        pc: 1,
        tag: 'S',
    };
    m.file_write(pid, f, Some(0), 2 * 4096, w).unwrap();
    let ino = m.file(pid, f).unwrap().ino;
    let disk = |m: &Machine, i: u64| {
        m.fs.inodes[ino as usize]
            .blocks
            .get(&i)
            .and_then(|b| m.fs.bdev.data.get(b).copied())
            .unwrap_or(0)
    };
    let dirty = |m: &Machine, i: u64| {
        let pfn = m.fs.inodes[ino as usize].cache[&i];
        m.frames.get(pfn).unwrap().dirty
    };
    assert_eq!(disk(&m, 0), 0, "nothing written back yet");
    assert!(dirty(&m, 0) && dirty(&m, 1));
    m.kiocb_write_and_wait(&p, ino, 0, 1);
    assert_ne!(disk(&m, 0), 0, "page 0 is on disk");
    assert!(!dirty(&m, 0));
    assert_eq!(disk(&m, 1), 0, "page 1 is outside the range");
    assert!(dirty(&m, 1));
    m.check_invariants(&p).unwrap();
}
