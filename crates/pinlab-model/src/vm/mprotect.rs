//! `mprotect(2)` (mm/mprotect.c, v6.14): VMA flags change on split VMAs,
//! then the page-table entries follow: removing write permission
//! write-protects PTEs and PMDs; adding it makes only pages that may be
//! written without a fault writable (`can_change_pte_writable`), and a
//! private `VM_LOCKED` VMA that becomes writable is populated with write
//! faults at once ([`super::mlock`]).

use super::vmflags::*;
use super::{calc_vm_prot_bits, page_range, Pte, Vma, PAGE_SIZE};
use crate::errno::{Errno, KResult};
use crate::machine::{Machine, Pid};
use crate::mem::ZERO_PFN;
use crate::policy::Policy;

impl Machine {
    /// `mprotect` (`mprotect_fixup` + `change_protection`). Removing write
    /// permission write-protects PTEs and PMDs; adding it to a private anonymous
    /// VMA makes `PageAnonExclusive` pages writable at once under `anon_exclusive`
    /// (`can_change_pte_writable`, the cow.c "mprotect() optimization"); a shared
    /// shmem VMA has no dirty tracking, so its PTEs become writable too.
    /// A zero length is a no-op (`do_mprotect_pkey`: `if (!len) return 0`).
    pub fn mprotect(
        &mut self,
        policy: &Policy,
        pid: Pid,
        addr: u64,
        len: u64,
        prot: u64,
    ) -> KResult<()> {
        self.mm_or_efault(pid)?;
        if addr % PAGE_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let (start, end) = page_range(addr, len).ok_or(Errno::ENOMEM)?;
        let newbits = calc_vm_prot_bits(prot);
        // do_mprotect_pkey: a bit without its VM_MAY* bit (a write-sealed
        // memfd's shared mapping lost VM_MAYWRITE) is -EACCES.
        let denied = self
            .mm(pid)
            .expect("mm")
            .vmas
            .range(..end)
            .any(|(_, v)| v.end > start && newbits & VM_WRITE != 0 && !v.has(VM_MAYWRITE));
        if denied {
            return Err(Errno::EACCES);
        }
        // mprotect_fixup: a private VM_LOCKED VMA becoming writable is
        // populated afterwards (populate_vma_page_range), to break COW now.
        let cow_locked: Vec<(u64, u64)> = self
            .mm(pid)
            .expect("mm")
            .vmas_overlapping(start, end)
            .into_iter()
            .filter(|v| {
                v.flags & (VM_WRITE | VM_SHARED | VM_LOCKED) == VM_LOCKED && newbits & VM_WRITE != 0
            })
            .map(|v| (v.start.max(start), v.end.min(end)))
            .collect();
        self.for_vmas_in(pid, start, end, |v| {
            v.flags = (v.flags & !(VM_READ | VM_WRITE | VM_EXEC)) | newbits;
        })?;
        let anon_excl = policy.page_anon_exclusive();
        let vmas: Vec<Vma> = self
            .mm(pid)
            .expect("mm")
            .vmas
            .range(start..end)
            .map(|(_, v)| v.clone())
            .collect();
        for v in vmas {
            let writable = v.has(VM_WRITE);
            let shared = v.has(VM_SHARED);
            let pmd_idxs: Vec<u64> = self
                .mm(pid)
                .expect("mm")
                .pmds
                .range(v.start >> 9..=(v.end - 1) >> 9)
                .map(|(k, _)| *k)
                .collect();
            for idx in pmd_idxs {
                let excl = {
                    let pmd = self.mm(pid).expect("mm").pmds[&idx];
                    self.frames
                        .get(pmd.pfn)
                        .is_some_and(|f| f.anon_exclusive[0])
                };
                let mm = self.mm_mut(pid).expect("mm");
                let pmd = mm.pmds.get_mut(&idx).expect("pmd");
                pmd.write = writable && (shared || (anon_excl && excl));
            }
            let vpns: Vec<(u64, Pte)> = self
                .mm(pid)
                .expect("mm")
                .ptes
                .range(v.start..v.end)
                .map(|(k, p)| (*k, *p))
                .collect();
            for (vpn, pte) in vpns {
                let can_write = writable
                    && pte.pfn != ZERO_PFN
                    && (shared
                        || (anon_excl
                            && self.frames.page_folio(pte.pfn).is_some_and(|(h, i)| {
                                let f = self.frames.get(h).expect("folio");
                                f.is_anon() && f.anon_exclusive[i]
                            })));
                let mm = self.mm_mut(pid).expect("mm");
                let p = mm.ptes.get_mut(&vpn).expect("pte");
                // A non-exclusive private page stays write-protected: the next
                // write faults and goes through do_wp_page.
                p.write = writable && (p.write || can_write);
            }
        }
        for (s, e) in cow_locked {
            if let Some(v) = self.mm(pid).and_then(|mm| mm.vma_lookup(s)).cloned() {
                // Errors are ignored, as mprotect_fixup ignores them.
                let _ = self.populate_vma_page_range(policy, pid, &v, s, e.min(v.end));
            }
        }
        Ok(())
    }
}
