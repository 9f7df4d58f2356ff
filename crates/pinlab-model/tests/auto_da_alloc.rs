//! ext4's auto_da_alloc (`ext4_truncate` sets `EXT4_STATE_DA_ALLOC_CLOSE` on a
//! file left empty; `ext4_release_file` then writes the new data back at the
//! last close): the "truncate and rewrite" pattern reaches the disk at close,
//! which the replay of explored interleavings on Linux 6.18 showed the model
//! had missed.

mod common;

use common::*;
use pinlab_model::fs::oflags::*;

/// `pwrite(fd, 'A')`, `fsync`, `ftruncate(fd, to)`, `pwrite(fd, 'B')`: the
/// file, its inode and the version of 'B'.
fn rewritten(s: &mut Sim, to: u64) -> (pinlab_model::Pid, usize, u32, u64) {
    let p = s.spawn("p");
    let f = s.open(p, "data", O_RDWR | O_CREAT);
    let ino = s.ino(p, f);
    s.pwrite(p, f, 0, 4096, 'A');
    s.m.sync_fs(&s.pol, Some(ino));
    s.ftruncate(p, f, to);
    let b = s.pwrite(p, f, 0, 4096, 'B').ver(0);
    (p, f, ino, b)
}

#[test]
fn closing_a_file_truncated_to_zero_writes_its_new_data_back() {
    let mut s = Sim::new("upstream");
    let (p, f, ino, b) = rewritten(&mut s, 0);
    assert_ne!(
        s.m.stored_page_data(ino, 0),
        Some(b),
        "not on disk before close"
    );
    s.m.close(p, f).unwrap();
    s.m.ext4_release_file(&s.pol, f);
    assert_eq!(s.m.stored_page_data(ino, 0), Some(b), "on disk after close");
}

#[test]
fn a_file_truncated_to_a_nonzero_size_is_not_written_back_at_close() {
    let mut s = Sim::new("upstream");
    let (p, f, ino, b) = rewritten(&mut s, 4096);
    s.m.close(p, f).unwrap();
    s.m.ext4_release_file(&s.pol, f);
    assert_ne!(s.m.stored_page_data(ino, 0), Some(b));
}

#[test]
fn another_holder_of_the_open_file_defers_the_write_back() {
    // A forked child shares the open file: the parent's close is not the last.
    let mut s = Sim::new("upstream");
    let (p, f, ino, b) = rewritten(&mut s, 0);
    let c = s.fork(p);
    s.m.close(p, f).unwrap();
    s.m.ext4_release_file(&s.pol, f);
    assert_ne!(s.m.stored_page_data(ino, 0), Some(b));
    s.m.close(c, f).unwrap();
    s.m.ext4_release_file(&s.pol, f);
    assert_eq!(s.m.stored_page_data(ino, 0), Some(b));
}

#[test]
fn a_mapping_through_the_file_defers_the_write_back_to_its_unmap() {
    // The VMA holds its vm_file: the close is not the last reference; the
    // munmap's fput is, and releases the file then.
    use pinlab_model::vm::uapi::*;
    let mut s = Sim::new("upstream");
    let (p, f, ino, b) = rewritten(&mut s, 0);
    let a = s.mmap_file(p, 4096, PROT_READ, MAP_SHARED, f, 0);
    s.m.close(p, f).unwrap();
    s.m.ext4_release_file(&s.pol, f);
    assert_ne!(s.m.stored_page_data(ino, 0), Some(b), "still mapped");
    let vm_files = s.m.mapped_files(p);
    assert_eq!(vm_files, vec![f]);
    s.munmap(p, a, 4096);
    s.m.fput_unmapped(&s.pol, vm_files);
    assert_eq!(s.m.stored_page_data(ino, 0), Some(b), "released at munmap");
}

#[test]
fn a_mapping_through_another_open_file_does_not_defer_it() {
    // Only the open file's own mappings reference it: a mapping of the
    // inode through a second open file leaves the first one's close the
    // last reference to it.
    use pinlab_model::fs::oflags::*;
    use pinlab_model::vm::uapi::*;
    let mut s = Sim::new("upstream");
    let (p, f, ino, b) = rewritten(&mut s, 0);
    let g = s.open(p, "data", O_RDONLY);
    s.mmap_file(p, 4096, PROT_READ, MAP_SHARED, g, 0);
    s.m.close(p, f).unwrap();
    s.m.ext4_release_file(&s.pol, f);
    assert_eq!(s.m.stored_page_data(ino, 0), Some(b));
}

#[test]
fn an_o_trunc_open_that_creates_the_file_does_not_mark_it() {
    // do_open: FMODE_CREATED clears O_TRUNC; an existing empty file is
    // truncated (ext4_truncate marks it even though nothing changes).
    use pinlab_model::fs::oflags::*;
    let mut s = Sim::new("upstream");
    let p = s.spawn("p");
    let f = s.open(p, "new", O_RDWR | O_CREAT | O_TRUNC);
    let ino = s.ino(p, f);
    assert!(!s.m.fs.inodes[ino as usize].da_alloc_close);
    s.m.close(p, f).unwrap();
    let g = s.open(p, "new", O_RDWR | O_TRUNC);
    assert!(s.m.fs.inodes[ino as usize].da_alloc_close);
    s.m.close(p, g).unwrap();
}
