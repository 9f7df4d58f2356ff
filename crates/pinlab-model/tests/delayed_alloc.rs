//! ext4's delayed allocation as a direct read sees it, and the write that
//! leaves one behind. A buffered write reserves a delayed-allocation block
//! (`ext4_da_get_block_prep`) that write-back turns into a written one; since
//! v6.14 (`write_begin_before_prefault`, 665575cff098) `generic_perform_write`
//! runs `write_begin` before it faults its source in, so a write from memory
//! it cannot read still leaves the folio and the delayed block, which nothing
//! writes back. A direct read reaching it fails `-EIO` (`IOMAP_DELALLOC`).
//! Found by replay_fuzz (seed 1614000000, mutant 0x6033b995); measured on
//! 6.18 (a direct read of 4 KiB at 0 succeeds, 8 KiB fails).

mod common;

use common::Sim;
use pinlab_model::fs::oflags::*;
use pinlab_model::fs::write::UserWrite;
use pinlab_model::vm::uapi::PROT_NONE;
use pinlab_model::vm::PAGE_SIZE;
use pinlab_model::Errno;

/// An empty ext4 file: the sim, the pid, a buffered and an O_DIRECT
/// descriptor, the inode.
fn files(pol: &str) -> (Sim, u32, usize, usize, u32) {
    let mut s = Sim::new(pol);
    let p = s.spawn("p");
    let f = s.open(p, "f", O_RDWR | O_CREAT);
    let d = s.open(p, "f", O_RDWR | O_DIRECT);
    let ino = s.ino(p, f);
    (s, p, f, d, ino)
}

/// A 4 KiB write at `off` of `file` from a fresh PROT_NONE page.
fn prot_none_write(s: &mut Sim, p: u32, file: usize, off: u64) -> UserWrite {
    let pn = s.mmap(p, PAGE_SIZE);
    s.mprotect(p, pn, PAGE_SIZE, PROT_NONE);
    UserWrite {
        pid: p,
        file,
        off: Some(off),
        len: PAGE_SIZE,
        buf: pn,
        wid: s.wid(p, 'X'),
    }
}

/// A 4 KiB ext4 file written back, then a 4 KiB write at 4 KiB from a
/// PROT_NONE buffer; returns the sim, the pid, the buffered and O_DIRECT
/// descriptors and the inode.
fn failed_write(pol: &str) -> (Sim, u32, usize, usize, u32) {
    let (mut s, p, f, d, ino) = files(pol);
    s.pwrite(p, f, 0, PAGE_SIZE, 'A');
    let pol2 = s.pol.clone();
    s.m.sync_fs(&pol2, Some(ino));
    let w = prot_none_write(&mut s, p, f, PAGE_SIZE);
    assert_eq!(s.m.file_write_user(&pol2, &w), Err(Errno::EFAULT));
    s.check();
    (s, p, f, d, ino)
}

#[test]
fn a_write_that_copied_nothing_leaves_a_delayed_block_from_v6_14() {
    let (mut s, _, _, _, ino) = failed_write("v6.18");
    let i = &s.m.fs.inodes[ino as usize];
    assert_eq!(i.i_size, PAGE_SIZE, "nothing was written");
    let b = *i.blocks.get(&1).expect("a block reserved for page 1");
    let b0 = i.blocks[&0];
    assert!(s.m.fs.bdev.delayed.contains(&b));
    assert!(
        !s.m.fs.bdev.delayed.contains(&b0),
        "page 0 was written back"
    );
    let (h, _) = s.m.cached_folio(ino, 1).expect("the folio stays cached");
    // page_zero_new_buffers zeroes the new buffer and dirties the folio.
    assert!(s.m.frames.get(h).expect("folio").dirty);
    // Past EOF write-back maps nothing: the folio is cleaned, the block
    // stays delayed.
    let pol = s.pol.clone();
    s.m.sync_fs(&pol, Some(ino));
    assert!(!s.m.frames.get(h).expect("folio").dirty);
    assert!(s.m.fs.bdev.delayed.contains(&b));
}

#[test]
fn a_direct_read_reaching_the_delayed_block_fails_eio() {
    let (mut s, p, _, d, _) = failed_write("v6.18");
    let pol = s.pol.clone();
    assert_eq!(
        s.m.file_read(&pol, p, d, 0, PAGE_SIZE).map(|v| v.len()),
        Ok(1)
    );
    let base = s.pins();
    assert_eq!(s.m.file_read(&pol, p, d, 0, 2 * PAGE_SIZE), Err(Errno::EIO));
    // Page 0's bio pinned the caller's buffer and completed first.
    assert_eq!(s.pins_since(base), (1, 1));
}

#[test]
fn write_back_of_new_data_ends_the_delayed_extent() {
    let (mut s, p, f, d, ino) = failed_write("v6.18");
    s.pwrite(p, f, PAGE_SIZE, PAGE_SIZE, 'B');
    let pol = s.pol.clone();
    let got = s.m.file_read(&pol, p, d, 0, 2 * PAGE_SIZE).expect("read");
    let tags: Vec<char> = got.iter().map(|v| s.m.tag_of(*v)).collect();
    assert_eq!(tags, ['A', 'B']);
    let b = s.m.fs.inodes[ino as usize].blocks[&1];
    assert!(!s.m.fs.bdev.delayed.contains(&b));
}

#[test]
fn before_v6_14_the_fault_in_comes_first_and_nothing_is_left() {
    let (mut s, p, _, d, ino) = failed_write("v6.12");
    assert!(!s.m.fs.inodes[ino as usize].blocks.contains_key(&1));
    assert_eq!(s.m.cached_folio(ino, 1), None);
    let pol = s.pol.clone();
    assert_eq!(
        s.m.file_read(&pol, p, d, 0, 2 * PAGE_SIZE).map(|v| v.len()),
        Ok(1)
    );
}

/// An extending direct write that fails is cleaned up
/// (`ext4_inode_extension_cleanup`): every block from EOF on goes — the
/// delayed block a failed buffered write left, and a `KEEP_SIZE`
/// preallocation (measured on 6.18: `st_blocks` 24 → 8 after a direct write
/// from a PROT_NONE buffer at EOF; the same write inside EOF keeps them).
#[test]
fn a_failed_extending_direct_write_frees_every_block_past_eof() {
    let (mut s, p, f, d, ino) = failed_write("v6.18");
    s.fallocate(p, f, FALLOC_FL_KEEP_SIZE, 2 * PAGE_SIZE, 2 * PAGE_SIZE);
    assert_eq!(s.m.fs.inodes[ino as usize].blocks.len(), 4);
    let w = prot_none_write(&mut s, p, d, PAGE_SIZE);
    let pol = s.pol.clone();
    let mut held = None;
    assert_eq!(
        s.m.dio_write_step(&pol, &w, 0, &mut held).err(),
        Some(Errno::EFAULT)
    );
    let blocks: Vec<u64> = s.m.fs.inodes[ino as usize].blocks.keys().copied().collect();
    assert_eq!(blocks, [0]);
    assert!(s.m.fs.bdev.delayed.is_empty());
    let got = s.m.file_read(&pol, p, d, 0, 2 * PAGE_SIZE).expect("read");
    assert_eq!(got.len(), 1);
    s.check();
}

/// `write_end` sets `i_size` to `pos + copied` even when nothing was
/// copied: a failed write at 4 KiB into an empty file leaves it 4 KiB long
/// (measured on 6.18), and a direct read of it then meets the delayed block.
#[test]
fn a_write_that_copied_nothing_past_eof_moves_eof_to_its_position() {
    let (mut s, p, f, d, ino) = files("v6.18");
    let w = prot_none_write(&mut s, p, f, PAGE_SIZE);
    let pol = s.pol.clone();
    assert_eq!(s.m.file_write_user(&pol, &w), Err(Errno::EFAULT));
    assert_eq!(s.m.fs.inodes[ino as usize].i_size, PAGE_SIZE);
    assert_eq!(s.m.file_read(&pol, p, d, 0, 2 * PAGE_SIZE), Err(Errno::EIO));
    s.check();
}

/// `__iomap_dio_rw` returns 0 for a read at or past EOF before
/// `kiocb_write_and_wait`: the dirty page cache stays dirty.
#[test]
fn a_direct_read_past_eof_writes_nothing_back() {
    let (mut s, p, f, d, ino) = files("v6.18");
    s.pwrite(p, f, 0, PAGE_SIZE, 'B');
    let pol = s.pol.clone();
    assert_eq!(s.m.file_read(&pol, p, d, PAGE_SIZE, PAGE_SIZE), Ok(vec![]));
    let (h, _) = s.m.cached_folio(ino, 0).expect("cached");
    assert!(s.m.frames.get(h).expect("folio").dirty, "not written back");
    assert_eq!(
        s.m.file_read(&pol, p, d, 0, PAGE_SIZE).map(|v| v.len()),
        Ok(1)
    );
    assert!(!s.m.frames.get(h).expect("folio").dirty);
}

#[test]
fn ftruncate_to_the_same_size_drops_the_folio_and_the_delayed_block() {
    // ext4_setattr truncates the page cache from i_size on and calls
    // ext4_truncate even when the size does not change (replay_fuzz seed
    // 1629000000; 6.18: the direct read then stops at EOF).
    let (mut s, p, f, d, ino) = failed_write("v6.18");
    let b = s.m.fs.inodes[ino as usize].blocks[&1];
    s.ftruncate(p, f, PAGE_SIZE);
    assert!(s.m.cached_folio(ino, 1).is_none());
    assert!(!s.m.fs.inodes[ino as usize].blocks.contains_key(&1));
    assert!(!s.m.fs.bdev.delayed.contains(&b));
    let pol = s.pol.clone();
    assert_eq!(
        s.m.file_read(&pol, p, d, 0, 2 * PAGE_SIZE).map(|v| v.len()),
        Ok(1)
    );
    s.check();
}
