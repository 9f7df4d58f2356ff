//! `posix_fadvise(2)` and `readahead(2)` (`generic_fadvise`, mm/fadvise.c;
//! `ksys_readahead`, mm/readahead.c; v6.12–v6.18; fs/fadvise.rs), each case
//! measured first on Linux 6.18 (ext4 on a loop device, mincore after the
//! reads completed).

mod common;

use common::*;
use pinlab_model::errno::Errno;
use pinlab_model::fs::fadvise::*;
use pinlab_model::fs::oflags::*;
use pinlab_model::machine::Pid;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;

const N: u64 = 160;

fn cached(s: &Sim, ino: u32, n: u64) -> String {
    s.cached_map(ino, n)
}

/// `n` pages of `c` followed by `N - n` of `d`.
fn runs(parts: &[(u64, char)]) -> String {
    parts
        .iter()
        .map(|&(n, c)| c.to_string().repeat(n as usize))
        .collect()
}

/// A 160-page ext4 file written, written back and evicted (as the
/// measurement made it): (sim, pid, fd, ino).
fn written_evicted(pol: &str) -> (Sim, Pid, usize, u32) {
    let mut s = Sim::new(pol);
    let p = s.spawn("t");
    let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
    let ino = s.ino(p, fd);
    s.pwrite(p, fd, 0, N * PAGE_SIZE, 'x');
    s.m.sync_fs(&s.pol.clone(), Some(ino));
    fadvise(&mut s, fd, 0, 0, POSIX_FADV_DONTNEED).unwrap();
    assert_eq!(cached(&s, ino, N), "0".repeat(N as usize));
    (s, p, fd, ino)
}

fn fadvise(s: &mut Sim, fd: usize, off: u64, len: u64, advice: u64) -> Result<(), Errno> {
    let pol = s.pol.clone();
    let r = s.m.vfs_fadvise(&pol, fd, off, len, advice).map(|_| ());
    s.check();
    r
}

/// A buffered read of `[off, off + len)`: readahead, then the copy.
fn read(s: &mut Sim, p: Pid, fd: usize, off: u64, len: u64) {
    let pol = s.pol.clone();
    s.m.filemap_read_ahead(&pol, fd, off, len);
    s.pread(p, fd, off, len);
}

#[test]
fn dontneed_drops_the_whole_pages_of_the_range() {
    // (offset, len) → what stays cached of a fully cached 160-page file.
    let cases: [(u64, u64, String); 8] = [
        (0, 0, runs(&[(N, '0')])),
        (100, 8192, runs(&[(1, '1'), (1, '0'), (N - 2, '1')])),
        (4096, 8192, runs(&[(1, '1'), (2, '0'), (N - 3, '1')])),
        (4096, 8191, runs(&[(1, '1'), (1, '0'), (N - 2, '1')])),
        (4096, 8193, runs(&[(1, '1'), (2, '0'), (N - 3, '1')])),
        (0, 4095, runs(&[(N, '1')])),
        (N * PAGE_SIZE - 10, 0, runs(&[(N, '1')])),
        (8192, 100_000_000, runs(&[(2, '1'), (N - 2, '0')])),
    ];
    for (off, len, want) in cases {
        let (mut s, p, fd, ino) = written_evicted("v6.18");
        read(&mut s, p, fd, 0, N * PAGE_SIZE);
        assert_eq!(cached(&s, ino, N), "1".repeat(N as usize));
        fadvise(&mut s, fd, off, len, POSIX_FADV_DONTNEED).unwrap();
        assert_eq!(cached(&s, ino, N), want, "({off}, {len})");
    }
}

#[test]
fn dontneed_writes_dirty_pages_back_and_keeps_them() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
    let ino = s.ino(p, fd);
    let w = s.pwrite(p, fd, 0, 16 * PAGE_SIZE, 'y');
    fadvise(&mut s, fd, 0, 0, POSIX_FADV_DONTNEED).unwrap();
    // Under writeback while invalidated: still cached, now clean and on disk.
    assert_eq!(cached(&s, ino, 16), "1".repeat(16));
    let (head, _) = s.m.cached_folio(ino, 0).unwrap();
    assert!(!s.folio(head).dirty && !s.folio(head).writeback);
    assert_eq!(s.m.stored_page_data(ino, 0), Some(w.ver(0)));
    assert!(s.m.fs.inflight.is_empty());
    // A second call finds them clean and evicts them.
    fadvise(&mut s, fd, 0, 0, POSIX_FADV_DONTNEED).unwrap();
    assert_eq!(cached(&s, ino, 16), "0".repeat(16));
}

#[test]
fn dontneed_keeps_mapped_and_referenced_folios() {
    let (mut s, p, fd, ino) = written_evicted("v6.18");
    read(&mut s, p, fd, 0, N * PAGE_SIZE);
    // A pipe holds page 40 of a mapping unmapped since; a load of page 3
    // of another maps a fault-around window of pages around it.
    let a = s.mmap_file(p, N * PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    let pipe = s.pipe(p);
    s.vmsplice(p, pipe, a + 40 * PAGE_SIZE, PAGE_SIZE);
    s.munmap(p, a, N * PAGE_SIZE);
    let b = s.mmap_file(p, N * PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    s.load(p, b + 3 * PAGE_SIZE, 1);
    let mapped: Vec<bool> = (0..N)
        .map(|i| s.pfn(p, b + i * PAGE_SIZE).is_some())
        .collect();
    assert!(mapped[3] && mapped.iter().filter(|m| **m).count() > 1);
    fadvise(&mut s, fd, 0, 0, POSIX_FADV_DONTNEED).unwrap();
    let want: String = (0..N)
        .map(|i| {
            if mapped[i as usize] || i == 40 {
                '1'
            } else {
                '0'
            }
        })
        .collect();
    assert_eq!(cached(&s, ino, N), want);
}

#[test]
fn random_reads_only_the_request_and_normal_undoes_it() {
    for (advice, want) in [
        (POSIX_FADV_RANDOM, runs(&[(1, '1'), (N - 1, '0')])),
        (POSIX_FADV_NORMAL, runs(&[(4, '1'), (N - 4, '0')])),
        (POSIX_FADV_SEQUENTIAL, runs(&[(4, '1'), (N - 4, '0')])),
        (POSIX_FADV_NOREUSE, runs(&[(4, '1'), (N - 4, '0')])),
    ] {
        let (mut s, p, fd, ino) = written_evicted("v6.18");
        fadvise(&mut s, fd, 0, 0, advice).unwrap();
        read(&mut s, p, fd, 0, PAGE_SIZE);
        assert_eq!(cached(&s, ino, N), want, "advice {advice}");
    }
    // 256 KiB at 0: the request alone under RANDOM, two windows otherwise.
    for (advice, n) in [(POSIX_FADV_RANDOM, 64), (POSIX_FADV_NORMAL, 128)] {
        let (mut s, p, fd, ino) = written_evicted("v6.18");
        fadvise(&mut s, fd, 0, 0, advice).unwrap();
        read(&mut s, p, fd, 0, 64 * PAGE_SIZE);
        assert_eq!(cached(&s, ino, N), runs(&[(n, '1'), (N - n, '0')]));
    }
    // RANDOM, then NORMAL or SEQUENTIAL: FMODE_RANDOM is cleared.
    for undo in [POSIX_FADV_NORMAL, POSIX_FADV_SEQUENTIAL] {
        let (mut s, p, fd, ino) = written_evicted("v6.18");
        fadvise(&mut s, fd, 0, 0, POSIX_FADV_RANDOM).unwrap();
        fadvise(&mut s, fd, 0, 0, undo).unwrap();
        read(&mut s, p, fd, 0, PAGE_SIZE);
        assert_eq!(cached(&s, ino, N), runs(&[(4, '1'), (N - 4, '0')]));
    }
}

#[test]
fn a_fault_reads_around_the_files_ra_pages() {
    // A load of page 80: read-around of ra_pages; with MADV_SEQUENTIAL
    // ra_pages from the page on (FMODE_RANDOM: the same pages, forced).
    for (advice, seq, from, to) in [
        (POSIX_FADV_NORMAL, false, 64, 96),
        (POSIX_FADV_RANDOM, false, 64, 96),
        (POSIX_FADV_SEQUENTIAL, false, 48, 112),
        (POSIX_FADV_NORMAL, true, 80, 112),
        (POSIX_FADV_RANDOM, true, 80, 112),
        (POSIX_FADV_SEQUENTIAL, true, 80, 144),
    ] {
        let (mut s, p, fd, ino) = written_evicted("v6.18");
        fadvise(&mut s, fd, 0, 0, advice).unwrap();
        let a = s.mmap_file(p, N * PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
        if seq {
            s.madvise(p, a, N * PAGE_SIZE, MADV_SEQUENTIAL).unwrap();
        }
        s.load(p, a + 80 * PAGE_SIZE, 1);
        assert_eq!(
            cached(&s, ino, N),
            runs(&[(from, '0'), (to - from, '1'), (N - to, '0')]),
            "advice {advice}, MADV_SEQUENTIAL {seq}"
        );
    }
}

#[test]
fn willneed_and_readahead_read_the_pages_the_range_touches() {
    for (off, len, from, to) in [
        (0, 0, 0, N),
        (100, 4096, 0, 2),
        (10 * PAGE_SIZE, 1, 10, 11),
        (150 * PAGE_SIZE, 0, 150, N),
        (0, 400 * PAGE_SIZE, 0, N),
    ] {
        let (mut s, p, fd, ino) = written_evicted("v6.18");
        fadvise(&mut s, fd, off, len, POSIX_FADV_WILLNEED).unwrap();
        let want = runs(&[(from, '0'), (to - from, '1'), (N - to, '0')]);
        assert_eq!(cached(&s, ino, N), want, "({off}, {len})");
        // Nothing marked: read(2) of them later reads nothing more ahead.
        assert!((0..N).all(|i| s
            .m
            .cached_folio(ino, i)
            .is_none_or(|(h, _)| !s.folio(h).readahead)));
        let (mut s, _, fd, ino) = written_evicted("v6.18");
        let pol = s.pol.clone();
        s.m.ksys_readahead(&pol, p, fd, off, len).unwrap();
        assert_eq!(cached(&s, ino, N), want, "readahead({off}, {len})");
    }
}

#[test]
fn errors_and_ignored_advice() {
    let (mut s, p, fd, _) = written_evicted("v6.18");
    assert_eq!(fadvise(&mut s, fd, 0, 0, 99), Err(Errno::EINVAL));
    assert_eq!(
        fadvise(&mut s, fd, 0, 1 << 63, POSIX_FADV_WILLNEED),
        Err(Errno::EINVAL)
    );
    // tmpfs (noop_backing_dev_info) accepts and ignores the six advices.
    let m = s.memfd(p, "x");
    let mino = s.ino(p, m);
    s.pwrite(p, m, 0, 2 * PAGE_SIZE, 'm');
    for advice in 0..=5 {
        assert_eq!(fadvise(&mut s, m, 0, 0, advice), Ok(()));
    }
    assert_eq!(cached(&s, mino, 2), "11");
    assert_eq!(fadvise(&mut s, m, 0, 0, 6), Err(Errno::EINVAL));
    // readahead(2) wants FMODE_READ; fadvise does not.
    let w = s.open(p, "/data/f", O_WRONLY);
    let pol = s.pol.clone();
    assert_eq!(
        s.m.ksys_readahead(&pol, p, w, 0, PAGE_SIZE).map(|_| ()),
        Err(Errno::EBADF)
    );
    assert_eq!(fadvise(&mut s, w, 0, 0, POSIX_FADV_WILLNEED), Ok(()));
    assert_eq!(
        s.m.ksys_readahead(&pol, p, fd, 0, 1 << 63).map(|_| ()),
        Err(Errno::EINVAL)
    );
}
