//! KSM: `MADV_MERGEABLE` and one full scan of ksmd (mm/ksm.c, v6.14).
//!
//! `MADV_MERGEABLE` sets `VM_MERGEABLE` on private VMAs (`ksm_madvise`; shared
//! and hugetlb VMAs ignore the advice). [`Machine::ksm_scan`] is one full scan:
//! every live process in pid order (`[model assumption]`: ksmd's mm list is in
//! registration order), its mergeable VMAs and their present, small,
//! anonymous pages in address order, each through `cmp_and_merge_page`:
//!
//! 1. a page already in the stable tree is left alone;
//! 2. a page whose content (its [`crate::ghost::Ver`]: "identical" means the
//!    same content version) differs from the previous scan is volatile: its
//!    checksum is recorded and nothing else happens — so nothing merges before
//!    the second scan;
//! 3. if the stable tree holds a KSM page with that content, the page is merged
//!    into it (`try_to_merge_with_ksm_page`) or, if that fails, left alone;
//! 4. otherwise the unstable tree (rebuilt every scan) is searched: the first
//!    page of a content class is inserted; a later one tries
//!    `try_to_merge_two_pages` — it becomes a KSM page itself, then the tree page
//!    is merged into it, and the pair becomes a stable-tree node; if the tree
//!    page cannot be merged the new KSM page is broken again (`break_cow`: an
//!    unshare fault copies it, `cow_ksm` +1).
//!
//! A merge needs `write_protect_page` to succeed: a page mapped writable, dirty
//! or `PageAnonExclusive` must have `mapcount + 1 + swapped == refcount` (with
//! the scanner's own reference) — any pin or FOLL_GET reference fails it — and
//! must not be maybe-DMA-pinned (`folio_try_share_anon_rmap_pte`); the PTE is
//! then write-protected and cleaned and the page loses `PageAnonExclusive`.
//! This gives host-probe Exp. 5a: pinned pages never merge; a pinned page that
//! reaches the unstable tree first makes every later merge of its class fail,
//! unpinned ones included; unpinned pages that met first form a stable node that
//! later pinned pages cannot join. A KSM page is mapped read-only and never
//! `PageAnonExclusive`; any write or unshare fault copies it (`cow_ksm`).
//!
//! Not modelled: large folios (KSM splits them first; folio splitting is not
//! modelled, so they are skipped), the zero-page option (`use_zero_pages`),
//! `max_page_sharing` chains, smart-scan skipping (it only delays), and the
//! sysfs counters beyond `pages_shared`/`pages_sharing`.

use super::vmflags::*;
use super::{Pte, Vma};
use crate::ghost::Ver;
use crate::machine::{Machine, Pid};
use crate::policy::Policy;
use crate::vm::fault::FaultKind;
use std::collections::BTreeMap;

/// ksmd's state that outlives a full scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Ksm {
    /// `ksm_rmap_item.oldchecksum` per scanned page (pid, page number): the
    /// content the page had at the last scan. Items whose page was not seen in
    /// a scan are dropped (`remove_trailing_rmap_items`).
    pub rmap_items: BTreeMap<(Pid, u64), Ver>,
    /// `full_scans`.
    pub full_scans: u64,
}

/// `vma_ksm_compatible` (mm/ksm.c, v6.14) for the VMA kinds the model has:
/// not shared, not hugetlb.
pub fn vma_ksm_compatible(v: &Vma) -> bool {
    v.flags & (VM_SHARED | VM_MAYSHARE | VM_HUGETLB) == 0
}

impl Machine {
    /// One full scan of ksmd (`ksm_do_scan` until `ksm_scan.seqnr` advances;
    /// mm/ksm.c, v6.14). See the module documentation.
    pub fn ksm_scan(&mut self, policy: &Policy) {
        let mut unstable: BTreeMap<Ver, (Pid, u64)> = BTreeMap::new();
        let mut seen: BTreeMap<(Pid, u64), Ver> = BTreeMap::new();
        for pid in 0..self.procs.len() as Pid {
            let Some(mm) = self.mm(pid) else { continue };
            let ranges: Vec<(u64, u64)> = mm
                .vmas
                .values()
                .filter(|v| v.flags & VM_MERGEABLE != 0)
                .map(|v| (v.start, v.end))
                .collect();
            for (s, e) in ranges {
                let vpns: Vec<u64> = self
                    .mm(pid)
                    .expect("mm")
                    .ptes
                    .range(s..e)
                    .map(|(k, _)| *k)
                    .collect();
                for vpn in vpns {
                    // scan_get_next_rmap_item: a present, small, anonymous page.
                    let Some(page) = self.ksm_page_at(pid, vpn) else {
                        continue;
                    };
                    let checksum = self.page_data(page);
                    seen.insert((pid, vpn), checksum);
                    self.cmp_and_merge_page(policy, pid, vpn, checksum, &mut unstable);
                }
            }
        }
        self.ksm.rmap_items = seen;
        self.ksm.full_scans += 1;
    }

    /// The page KSM would consider at `vpn` (`folio_walk_start` + the checks of
    /// `scan_get_next_rmap_item`, mm/ksm.c, v6.14): present, not the zero page, small, anonymous.
    fn ksm_page_at(&self, pid: Pid, vpn: u64) -> Option<u64> {
        let pte = self.mm(pid)?.ptes.get(&vpn)?;
        if pte.pfn == crate::mem::ZERO_PFN {
            return None;
        }
        let (head, _) = self.frames.page_folio(pte.pfn)?;
        let f = self.frames.get(head)?;
        (f.is_anon() && !f.is_large()).then_some(pte.pfn)
    }

    /// `cmp_and_merge_page` (mm/ksm.c, v6.14).
    fn cmp_and_merge_page(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vpn: u64,
        checksum: Ver,
        unstable: &mut BTreeMap<Ver, (Pid, u64)>,
    ) {
        let page = self.mm(pid).expect("mm").ptes[&vpn].pfn;
        let f = self.frames.get(page).expect("small folio");
        if f.ksm && f.stable_node {
            // rmap_item->head == stable_node (or a KSM fork, appended silently).
            return;
        }
        if self.ksm.rmap_items.get(&(pid, vpn)) != Some(&checksum) {
            // The checksum changed since the last scan (or this is the first):
            // too volatile for the unstable tree.
            return;
        }
        if let Some(kpage) = self.stable_tree_search(checksum) {
            if kpage != page {
                // try_to_merge_with_ksm_page; on failure nothing else is tried.
                self.try_to_merge_one_page(policy, pid, vpn, Some(kpage));
            }
            return;
        }
        // unstable_tree_search_insert
        let Some(&(tpid, tvpn)) = unstable.get(&checksum) else {
            unstable.insert(checksum, (pid, vpn));
            return;
        };
        // get_mergeable_page(tree_rmap_item)
        let Some(tpage) = self.ksm_page_at(tpid, tvpn) else {
            return;
        };
        if self.page_data(tpage) != checksum {
            return;
        }
        self.try_to_merge_two_pages(policy, (pid, vpn), (tpid, tvpn));
    }

    /// `stable_tree_search` (mm/ksm.c, v6.14): the stable-tree KSM page with this content, if any
    /// (the lowest pfn; the model has no `max_page_sharing` chains).
    fn stable_tree_search(&self, content: Ver) -> Option<u64> {
        self.frames
            .iter()
            .find(|(_, f)| f.ksm && f.stable_node && f.data[0] == content)
            .map(|(p, _)| p)
    }

    /// `try_to_merge_two_pages` (mm/ksm.c, v6.14): make the page at `item` a KSM page, merge the
    /// tree page into it and insert it into the stable tree; if the tree page
    /// cannot be merged, `break_cow` the new KSM page.
    fn try_to_merge_two_pages(&mut self, policy: &Policy, item: (Pid, u64), tree: (Pid, u64)) {
        if !self.try_to_merge_one_page(policy, item.0, item.1, None) {
            return;
        }
        let kpage = self.mm(item.0).expect("mm").ptes[&item.1].pfn;
        if self.try_to_merge_one_page(policy, tree.0, tree.1, Some(kpage)) {
            // stable_tree_insert
            self.frames.get_mut(kpage).expect("KSM page").stable_node = true;
        } else {
            self.break_cow(policy, item.0, item.1);
        }
    }

    /// `try_to_merge_one_page(vma, page, kpage)` (mm/ksm.c, v6.14): write-protect the page, then
    /// either mark it KSM (`kpage` None: `folio_set_stable_node(folio, NULL)`,
    /// `folio_mark_dirty`) or replace it by `kpage`. True on success.
    fn try_to_merge_one_page(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vpn: u64,
        kpage: Option<u64>,
    ) -> bool {
        let page = self.mm(pid).expect("mm").ptes[&vpn].pfn;
        if Some(page) == kpage {
            return true; // "ksm page forked"
        }
        if !self.write_protect_page(policy, pid, vpn) {
            return false;
        }
        match kpage {
            None => {
                let f = self.frames.get_mut(page).expect("small folio");
                f.ksm = true;
                f.dirty = true;
                true
            }
            Some(k) if self.page_data(k) == self.page_data(page) => {
                self.replace_page(pid, vpn, k);
                true
            }
            Some(_) => false,
        }
    }

    /// `write_protect_page` (mm/ksm.c, v6.14): if the PTE is writable, dirty or
    /// the page `PageAnonExclusive`, the page must hold no reference beyond its
    /// mappings (`folio_mapcount + 1 + swapped != folio_ref_count` fails) and,
    /// under `anon_exclusive`, must not be maybe-DMA-pinned
    /// (`folio_try_share_anon_rmap_pte`: `-EBUSY`). Then the PTE is made clean
    /// and read-only and the page is no longer exclusive.
    fn write_protect_page(&mut self, policy: &Policy, pid: Pid, vpn: u64) -> bool {
        let pte = self.mm(pid).expect("mm").ptes[&vpn];
        let f = self.frames.get(pte.pfn).expect("small folio");
        let excl = policy.page_anon_exclusive() && f.anon_exclusive[0];
        if !(pte.write || pte.dirty || excl) {
            return true;
        }
        if f.mapcount() != f.refcount {
            return false;
        }
        if excl && f.maybe_dma_pinned() {
            return false;
        }
        let f = self.frames.get_mut(pte.pfn).expect("small folio");
        if excl {
            f.anon_exclusive[0] = false;
        }
        if pte.dirty {
            f.dirty = true;
        }
        let p = self
            .mm_mut(pid)
            .expect("mm")
            .ptes
            .get_mut(&vpn)
            .expect("pte");
        p.write = false;
        p.dirty = false;
        true
    }

    /// `replace_page` (mm/ksm.c, v6.14): the PTE now maps the KSM page read-only (`mk_pte(kpage,
    /// vm_page_prot)` of a private VMA), which gains a mapping and a reference;
    /// the old page loses both and is freed if nothing else holds it.
    fn replace_page(&mut self, pid: Pid, vpn: u64, kpage: u64) {
        let old = self.mm(pid).expect("mm").ptes[&vpn].pfn;
        let k = self.frames.get_mut(kpage).expect("KSM page");
        k.refcount += 1;
        k.page_mapcount[0] += 1;
        self.mm_mut(pid).expect("mm").ptes.insert(
            vpn,
            Pte {
                pfn: kpage,
                write: false,
                dirty: false,
            },
        );
        self.frames.get_mut(old).expect("old page").page_mapcount[0] -= 1;
        self.frames.put_refs(old, 1);
    }

    /// `break_cow` → `break_ksm` (mm/ksm.c, v6.14): while the page at `vpn` is a KSM page, an
    /// unshare fault (`FAULT_FLAG_UNSHARE`) copies it into an exclusive
    /// anonymous page (`cow_ksm` +1).
    fn break_cow(&mut self, policy: &Policy, pid: Pid, vpn: u64) {
        let is_ksm = self
            .ksm_page_at(pid, vpn)
            .and_then(|p| self.frames.get(p))
            .is_some_and(|f| f.ksm);
        if is_ksm {
            let _ = self.handle_mm_fault(policy, pid, vpn, FaultKind::Unshare, false);
        }
    }

    /// `/sys/kernel/mm/ksm/pages_shared`: stable-tree KSM pages still mapped.
    pub fn ksm_pages_shared(&self) -> u64 {
        self.frames
            .iter()
            .filter(|(_, f)| f.ksm && f.stable_node && f.mapcount() > 0)
            .count() as u64
    }

    /// `/sys/kernel/mm/ksm/pages_sharing`: mappings of stable-tree KSM pages
    /// beyond the first of each (every mapping counts, scanned or not).
    pub fn ksm_pages_sharing(&self) -> u64 {
        self.frames
            .iter()
            .filter(|(_, f)| f.ksm && f.stable_node && f.mapcount() > 0)
            .map(|(_, f)| f.mapcount() as u64 - 1)
            .sum()
    }
}
