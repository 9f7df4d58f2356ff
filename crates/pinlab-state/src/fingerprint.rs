//! Deterministic 64-bit state fingerprints.
//!
//! [`FpHasher`] is a fixed-key hasher: every integer is fed as its numeric value
//! (little-endian for byte slices, `usize`/`isize` widened to 64 bits), each word
//! is mixed with its position by a folded 64×64→128-bit multiply and added into
//! the running value, which is then rotated; the result goes through the murmur3
//! finaliser. The multiply does not depend on the running value, so consecutive
//! words' multiplies overlap in the CPU (the serial chain is one add and one
//! rotate per word). So a fingerprint is the same on every run, thread count,
//! platform and endianness, as long as the state's `Hash` impl is itself
//! deterministic (no `HashMap` iteration order, no pointers).
//!
//! Visited sets are keyed by fingerprints, which are already well mixed, so they
//! use [`IdHasher`] (identity) instead of hashing the key again.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

const SEED: u64 = 0x243F_6A88_85A3_08D3; // pi
const MUL: u64 = 0x9E37_79B9_7F4A_7C15; // golden ratio
const MUL2: u64 = 0xD6E8_FEB8_6659_FD93;
const KEY: u64 = 0x1319_8A2E_0370_7344; // pi, continued

#[inline]
fn folded_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

#[inline]
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^= h >> 33;
    h
}

/// Fixed-key, platform-independent hasher used by [`fingerprint`].
#[derive(Debug, Clone)]
pub struct FpHasher {
    h: u64,
    words: u64,
}

impl Default for FpHasher {
    fn default() -> Self {
        FpHasher { h: SEED, words: 0 }
    }
}

impl FpHasher {
    #[inline]
    fn absorb(&mut self, w: u64) {
        self.words = self.words.wrapping_add(1);
        let m = folded_mul(w ^ KEY, self.words.wrapping_mul(MUL2) ^ MUL);
        self.h = self.h.wrapping_add(m).rotate_left(23);
    }
}

impl Hasher for FpHasher {
    #[inline]
    fn finish(&self) -> u64 {
        fmix64(self.h ^ self.words.rotate_left(32))
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.absorb(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        // Tag the tail with its length so that trailing zero bytes matter.
        self.absorb(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.absorb(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.absorb(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.absorb(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.absorb(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.absorb(i as u64);
        self.absorb((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.absorb(i as u64);
    }
    #[inline]
    fn write_i8(&mut self, i: i8) {
        self.absorb(i as u8 as u64);
    }
    #[inline]
    fn write_i16(&mut self, i: i16) {
        self.absorb(i as u16 as u64);
    }
    #[inline]
    fn write_i32(&mut self, i: i32) {
        self.absorb(i as u32 as u64);
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.absorb(i as u64);
    }
    #[inline]
    fn write_i128(&mut self, i: i128) {
        self.write_u128(i as u128);
    }
    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.absorb(i as i64 as u64);
    }
}

/// Deterministic 64-bit fingerprint of `s` (same value on every run and machine).
pub fn fingerprint<S: Hash + ?Sized>(s: &S) -> u64 {
    let mut h = FpHasher::default();
    s.hash(&mut h);
    h.finish()
}

/// Identity hasher for maps keyed by fingerprints (already uniformly mixed).
#[derive(Debug, Clone, Copy, Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached for non-u64 keys; fold bytes in so it stays correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

/// Map keyed by fingerprint.
pub type FpMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;
/// Set of fingerprints.
pub type FpSet = HashSet<u64, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable() {
        // Pinned values: the fingerprint must not depend on run, machine or
        // endianness. A change here changes every fingerprint ever printed.
        assert_eq!(fingerprint(&()), 0x7acd_bb98_b134_4213);
        assert_eq!(fingerprint(&0u64), 0xbf1c_1456_13aa_b7f6);
        assert_eq!(fingerprint(&(1u32, "ab")), 0x392a_9535_1be2_902c);
        assert_eq!(fingerprint(&vec![1u8, 2, 3]), 0x5b0c_85ba_3125_f110);
        assert_eq!(fingerprint(&7usize), fingerprint(&7u64));
        assert_eq!(fingerprint(&-7isize), fingerprint(&-7i64));
    }

    #[test]
    fn fingerprint_separates_small_inputs() {
        let mut seen = FpSet::default();
        for a in 0u16..64 {
            for b in 0u16..64 {
                assert!(seen.insert(fingerprint(&(a, b))));
                assert!(seen.insert(fingerprint(&[a, b, 0][..])));
            }
        }
        assert_ne!(fingerprint(&[0u8; 3][..]), fingerprint(&[0u8; 4][..]));
        assert_ne!(fingerprint(&vec![0u8; 0]), fingerprint(&vec![0u8; 1]));
        assert_ne!(
            fingerprint(&(Some(0u8), None::<u8>)),
            fingerprint(&(None::<u8>, Some(0u8)))
        );
    }
}
