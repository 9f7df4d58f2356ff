//! The model's address-space layout, made in an executor before its first step.
//!
//! The model places `mmap(NULL)` top-down below a fixed `mmap_base` whose
//! address is 4 KiB past a 2 MiB boundary (a process's first 4 KiB mapping is
//! at `0x7f0000000000`), with nothing mapped below it but the scenario's own
//! mappings and nothing free above it. An executor is a fork of the probe:
//! its libraries, vDSO and heap are mapped where the kernel put them, with
//! free holes between them, and the top of its largest free area is wherever
//! the lowest of them starts. So a small scenario mapping could land in a
//! hole among the libraries (the model has no such hole), and a 2 MiB-aligned
//! one leaves a different gap above it (the model's is 4 KiB) — and every
//! later placement that depends on those differs (fourteenth session,
//! replay_fuzz: a huge=always tmpfs mapping landed below, not in, the range a
//! `munmap` had freed).
//!
//! [`model_layout`] makes the executor's layout the model's: every free hole
//! between the top of the largest free area and the highest mapping below the
//! stack is held by a `PROT_NONE` placeholder, and so is the part of the top
//! of the largest free area that lies above the highest address 4 KiB past a
//! 2 MiB boundary. The kernel's top-down search then starts where the
//! model's does, relative to a 2 MiB boundary. Placeholders are private,
//! anonymous and `PROT_NONE`: nothing can be read or written through them,
//! they take no memory, and children inherit them as they inherit the rest
//! of the layout.
//!
//! Memory the executor maps for itself during a trace — an io_uring ring,
//! a thread's stack and allocator state — would otherwise land where the
//! scenario's next mapping goes (the top of the free area) or in a range the
//! scenario unmapped: [`hold_executor_window`] holds all of the largest free
//! area but its lowest [`EXECUTOR_WINDOW`] while such memory is made, so it
//! lands far below the scenario's mappings, and [`release`] gives the room
//! back.

use super::mapped_ranges;

const PAGE: u64 = 4096;
const PMD: u64 = 2 << 20;

/// The placeholders (start, length) that give the sorted `mapped` ranges the
/// model's layout (see the module docs); `stack` is the start of the
/// `[stack]` mapping, above which nothing is held.
pub(super) fn placeholders(mapped: &[(u64, u64)], stack: u64) -> Vec<(u64, u64)> {
    let gaps = gaps_below(mapped, stack);
    let Some(&(_, top)) = gaps.iter().max_by_key(|&&(s, e)| (e - s, e)) else {
        return Vec::new();
    };
    // The holes above the largest free area, below the highest mapping.
    let mut out: Vec<(u64, u64)> = gaps
        .iter()
        .filter(|&&(s, _)| s >= top)
        .map(|&(s, e)| (s, e - s))
        .collect();
    // The model's mmap_base is 4 KiB past a 2 MiB boundary.
    let base = (top - PAGE) / PMD * PMD + PAGE;
    if base < top {
        out.push((base, top - base));
    }
    out
}

/// The free gaps (start, end) between this process's mappings below its
/// stack, in address order.
fn gaps_below(mapped: &[(u64, u64)], stack: u64) -> Vec<(u64, u64)> {
    let below: Vec<(u64, u64)> = mapped.iter().copied().filter(|&(s, _)| s < stack).collect();
    below
        .windows(2)
        .filter(|w| w[1].0 > w[0].1)
        .map(|w| (w[0].1, w[1].0))
        .collect()
}

/// The start of this process's `[stack]` mapping.
fn stack_start() -> Result<u64, String> {
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| format!("maps: {e}"))?;
    maps.lines()
        .find(|l| l.ends_with("[stack]"))
        .and_then(|l| u64::from_str_radix(l.split('-').next()?, 16).ok())
        .ok_or_else(|| "no [stack] in /proc/self/maps".to_string())
}

/// A held range, and why holding the next one failed.
type Partial = (Vec<(u64, u64)>, String);

/// Maps `PROT_NONE` placeholders over `ranges` (start, length), where nothing
/// is mapped; returns those it mapped, or also the first that failed.
fn hold(ranges: Vec<(u64, u64)>) -> Result<Vec<(u64, u64)>, Partial> {
    let mut held = Vec::new();
    for (a, l) in ranges {
        // SAFETY: maps only where nothing is mapped (MAP_FIXED_NOREPLACE), a
        // PROT_NONE placeholder nothing reads or writes.
        let p = unsafe {
            libc::mmap(
                a as *mut _,
                l as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE
                    | libc::MAP_ANONYMOUS
                    | libc::MAP_NORESERVE
                    | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if p as u64 == a {
            held.push((a, l));
        } else {
            let e = std::io::Error::last_os_error();
            if p != libc::MAP_FAILED {
                // An old kernel without MAP_FIXED_NOREPLACE placed it
                // elsewhere: give it back.
                // SAFETY: unmapping what this call just mapped.
                unsafe { libc::munmap(p, l as usize) };
            }
            return Err((held, format!("a placeholder at {a:#x} ({l:#x} bytes): {e}")));
        }
    }
    Ok(held)
}

/// Maps the [`placeholders`] of this process's layout; the error names what
/// failed (the executor then cannot stand for the model's process).
pub(super) fn model_layout() -> Result<(), String> {
    hold(placeholders(&mapped_ranges(), stack_start()?))
        .map(|_| ())
        .map_err(|(_, e)| e)
}

/// The executor's own memory goes to the bottom of the largest free area,
/// below this much of it; the scenario's mappings are placed from its top.
const EXECUTOR_WINDOW: u64 = 1 << 30;

/// The ranges that hold everything free above the bottom [`EXECUTOR_WINDOW`]
/// of the largest free area (and below the highest mapping under the stack),
/// so that a mapping the executor makes for itself meanwhile — a ring's
/// memory, a thread's stack and allocator state — lands in that window, far
/// below the scenario's mappings, and takes no room the model's address
/// space has free.
pub(super) fn executor_window(mapped: &[(u64, u64)], stack: u64) -> Vec<(u64, u64)> {
    let gaps = gaps_below(mapped, stack);
    let Some(&(bottom, _)) = gaps.iter().max_by_key(|&&(s, e)| (e - s, e)) else {
        return Vec::new();
    };
    let floor = bottom.saturating_add(EXECUTOR_WINDOW);
    gaps.iter()
        .filter_map(|&(s, e)| {
            let lo = s.max(floor);
            (lo < e).then(|| (lo, e - lo))
        })
        .collect()
}

/// Holds the [`executor_window`] placeholders of this process now; give them
/// back with [`release`]. Best effort: what could not be held is not.
pub(super) fn hold_executor_window() -> Vec<(u64, u64)> {
    let Ok(stack) = stack_start() else {
        return Vec::new();
    };
    match hold(executor_window(&mapped_ranges(), stack)) {
        Ok(h) | Err((h, _)) => h,
    }
}

/// Unmaps placeholders [`hold_executor_window`] mapped.
pub(super) fn release(held: Vec<(u64, u64)>) {
    for (a, l) in held {
        // SAFETY: unmapping placeholders this module mapped.
        unsafe { libc::munmap(a as *mut _, l as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executor_window_is_the_bottom_of_the_largest_free_area() {
        let g = 1u64 << 30;
        let mapped = [
            (0x5555_0000_0000, 0x5555_0010_0000),
            (0x7fff_0000_0000, 0x7fff_0000_2000),
            (0x7fff_0000_4000, 0x7fff_0000_8000),
            (0x7fff_fffd_e000, 0x7fff_ffff_f000),
        ];
        let w = executor_window(&mapped, 0x7fff_fffd_e000);
        assert_eq!(
            w,
            vec![
                (
                    0x5555_0010_0000 + g,
                    0x7fff_0000_0000 - 0x5555_0010_0000 - g
                ),
                (0x7fff_0000_2000, 0x2000),
            ]
        );
        // A hole below the window's floor is left alone, and its length is
        // not computed (a debug build checks the subtraction).
        let low = [
            (0x1000, 0x2000),
            (0x3000, 0x4000),
            (0x5555_0000_0000, 0x5555_0010_0000),
            (0x7fff_fffd_e000, 0x7fff_ffff_f000),
        ];
        assert_eq!(
            executor_window(&low, 0x7fff_fffd_e000),
            vec![(0x4000 + g, 0x5555_0000_0000 - 0x4000 - g)]
        );
    }

    #[test]
    fn holes_above_the_largest_free_area_are_held_and_its_top_aligned() {
        let m = 1 << 20;
        // heap, a big free area, a library with a hole, the vDSO, the stack.
        let mapped = [
            (0x5555_0000_0000, 0x5555_0010_0000),
            (0x7fff_f7dd_1000, 0x7fff_f7de_0000),
            (0x7fff_f7fb_e000, 0x7fff_f7fc_2000),
            (0x7fff_f7fc_8000, 0x7fff_f7ff_f000),
            (0x7fff_fffd_e000, 0x7fff_ffff_f000),
        ];
        let p = placeholders(&mapped, 0x7fff_fffd_e000);
        // The two holes among the libraries, then the ceiling: the top of
        // the free area (0x7ffff7dd1000) down to 4 KiB past a 2 MiB boundary.
        assert_eq!(
            p,
            vec![
                (0x7fff_f7de_0000, 0x7fff_f7fb_e000 - 0x7fff_f7de_0000),
                (0x7fff_f7fc_2000, 0x7fff_f7fc_8000 - 0x7fff_f7fc_2000),
                (0x7fff_f7c0_1000, 0x7fff_f7dd_1000 - 0x7fff_f7c0_1000),
            ]
        );
        let base = p[2].0;
        assert_eq!(base % (2 * m), 4096);
    }

    #[test]
    fn a_top_already_in_place_needs_no_ceiling() {
        let mapped = [
            (0x1000_0000, 0x1000_1000),
            (0x7f00_0000_1000, 0x7f00_0001_0000),
        ];
        assert!(placeholders(&mapped, u64::MAX).is_empty());
    }
}
