//! `mincore(2)` (mm/mincore.c, v6.12–v6.18): which pages of a range are
//! resident, as the kernel reports it — a page mapped by a present PTE or a
//! PMD leaf is; an unmapped page of a file mapping is if the file's page
//! cache holds it (`mincore_page`; an fs-dax file has no page-cache folios,
//! so only its mapped pages count); an unmapped page of anonymous memory is
//! not (nor is a swapped-out one: `[model assumption]`, the model has no swap
//! cache, where the kernel reports a page still in it); a hugetlb page is
//! only if mapped (`mincore_hugetlb`). The model's page-cache folios are
//! always uptodate (the kernel reports a page whose read is still in flight
//! as absent; the live replay waits for such reads before it compares).

use super::{Backing, PAGE_SIZE};
use crate::errno::{Errno, KResult};
use crate::machine::{Machine, Pid};

impl Machine {
    /// `mincore(addr, len, vec)`: one flag per page of `[addr, addr + len)`
    /// (`len` rounded up to pages). `EINVAL` for an unaligned `addr`,
    /// `ENOMEM` where the range leaves the mapped VMAs (the kernel has
    /// copied the flags before it out by then; the model returns only the
    /// error), or wraps.
    pub fn mincore(&self, pid: Pid, addr: u64, len: u64) -> KResult<Vec<bool>> {
        let mm = self.mm(pid).ok_or(Errno::EFAULT)?;
        if addr % PAGE_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        let first = addr / PAGE_SIZE;
        let n = len.div_ceil(PAGE_SIZE);
        let last = first.checked_add(n).ok_or(Errno::ENOMEM)?;
        let mut out = Vec::with_capacity(n as usize);
        for vpn in first..last {
            let v = mm.vma_lookup(vpn).ok_or(Errno::ENOMEM)?;
            let resident = if mm.lookup(vpn).is_some() {
                true
            } else if v.flags & super::vmflags::VM_HUGETLB != 0 {
                false
            } else {
                match v.backing {
                    Backing::File { .. } => v
                        .file_index(vpn)
                        .is_some_and(|(ino, index)| self.cached_folio(ino, index).is_some()),
                    Backing::Anon { .. } => false,
                }
            };
            out.push(resident);
        }
        Ok(out)
    }
}

/// The `vec` of a `mincore` call as a trace shows it: runs of `0` and `1`
/// (`1×3 0 1`).
pub fn describe_mincore(vec: &[bool]) -> String {
    if vec.is_empty() {
        return "-".to_string();
    }
    let mut runs: Vec<(bool, usize)> = Vec::new();
    for &b in vec {
        match runs.last_mut() {
            Some((c, n)) if *c == b => *n += 1,
            _ => runs.push((b, 1)),
        }
    }
    runs.iter()
        .map(|&(b, n)| {
            let c = if b { '1' } else { '0' };
            if n == 1 {
                c.to_string()
            } else {
                format!("{c}×{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
