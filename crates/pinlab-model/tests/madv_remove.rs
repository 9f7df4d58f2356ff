//! `madvise(MADV_REMOVE)` (vm/madvise.rs `madvise_remove`), each case
//! measured first on Linux 6.18 (crates/pinlab/tests/data/madv-remove.scn
//! replays them).

mod common;

use common::*;
use pinlab_model::errno::Errno;
use pinlab_model::fs::oflags::*;
use pinlab_model::machine::Pid;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;

const P: u64 = PAGE_SIZE;

fn remove(s: &mut Sim, p: Pid, a: u64, len: u64) -> Result<(), Errno> {
    let pol = s.pol.clone();
    let r = s.m.sys_madvise(&pol, p, a, len, MADV_REMOVE);
    s.check();
    r
}

#[test]
fn madv_remove_punches_the_file_a_shared_mapping_maps() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    // Shared anonymous memory: its shmem file loses the page.
    let a = s.mmap_shared(p, 4 * P);
    s.store(p, a, 4 * P, 'A');
    assert_eq!(remove(&mut s, p, a + P, P), Ok(()));
    assert_eq!(s.pfn(p, a + P), None);
    let v = s.load(p, a, 4 * P);
    assert_eq!(v[1], 0);
    assert_ne!(v[0], 0);
    // An ext4 file through a read-only shared mapping of a descriptor open
    // for writing (VM_MAYWRITE): the blocks go.
    let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
    s.pwrite(p, fd, 0, 4 * P, 'F');
    let ino = s.ino(p, fd);
    let e = s.mmap_file(p, 4 * P, PROT_READ, MAP_SHARED, fd, 0);
    assert_eq!(remove(&mut s, p, e + 2 * P, 2 * P), Ok(()));
    assert_eq!(s.cached(ino, 2), None);
    assert!(!s.m.fs.inodes[ino as usize].blocks.contains_key(&2));
    assert!(s.cached(ino, 0).is_some());
}

#[test]
fn madv_remove_errors_are_the_kernels() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let a = s.mmap(p, 2 * P);
    assert_eq!(remove(&mut s, p, a, 2 * P), Err(Errno::EINVAL));
    let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
    s.pwrite(p, fd, 0, 2 * P, 'F');
    let pr = s.mmap_file(p, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    assert_eq!(remove(&mut s, p, pr, 2 * P), Err(Errno::EACCES));
    let ro = s.open(p, "/data/f", O_RDONLY);
    let r = s.mmap_file(p, 2 * P, PROT_READ, MAP_SHARED, ro, 0);
    assert_eq!(remove(&mut s, p, r, 2 * P), Err(Errno::EACCES));
    let m = s.mmap_shared(p, 2 * P);
    let pol = s.pol.clone();
    s.m.sys_mlock2(&pol, p, m, P, 0).unwrap();
    assert_eq!(remove(&mut s, p, m, 2 * P), Err(Errno::EINVAL));
    let sec = s.memfd_secret(p);
    s.ftruncate(p, sec, 2 * P);
    let x = s.mmap_file(p, 2 * P, PROT_READ | PROT_WRITE, MAP_SHARED, sec, 0);
    assert_eq!(remove(&mut s, p, x, 2 * P), Err(Errno::EOPNOTSUPP));
}
