//! The vector registers the micro-kernel is written over: a handful of intrinsics behind one
//! trait, so one kernel body serves AVX2 (`__m256`, `__m256d`) and AVX-512 (`__m512`,
//! `__m512d`).
//!
//! Why not plain arrays and auto-vectorisation: a 12 × 32 tile was 384 scalar multiply-adds
//! per step (today's 9 × 48 is 432), past LLVM's full-unroll limit, and the AVX-512 build
//! came out as gathers and scatters through the stack. Written over whole vectors the tile
//! is 27 operations and stays in registers.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// One SIMD register of `LANES` values of `Elem`.
///
/// # Safety
///
/// Every method needs the CPU features of its implementation (the kernels only run where
/// they were detected); pointers must be valid for `LANES` unaligned elements.
pub(crate) unsafe trait Lanes: Copy {
    /// The element type.
    type Elem: Copy;
    /// Values per register.
    const LANES: usize;
    /// All zeros.
    unsafe fn zero() -> Self;
    /// `x` in every lane.
    unsafe fn splat(x: Self::Elem) -> Self;
    /// Loads `LANES` values from `p`.
    unsafe fn load(p: *const Self::Elem) -> Self;
    /// Stores `LANES` values to `p`.
    unsafe fn store(self, p: *mut Self::Elem);
    /// `self · b + c`, one rounding per lane.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    /// `self + b`.
    unsafe fn add(self, b: Self) -> Self;
}

/// Implements [`Lanes`] for one register type.
macro_rules! lanes {
    ($v:ty, $t:ty, $n:literal, $feat:literal, $zero:ident, $splat:ident, $load:ident, $store:ident, $fma:ident, $add:ident) => {
        // SAFETY: each method is the matching intrinsic under the named features.
        unsafe impl Lanes for $v {
            type Elem = $t;
            const LANES: usize = $n;
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn zero() -> Self {
                $zero()
            }
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn splat(x: $t) -> Self {
                $splat(x)
            }
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn load(p: *const $t) -> Self {
                // SAFETY: caller contract (`LANES` readable values).
                unsafe { $load(p) }
            }
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn store(self, p: *mut $t) {
                // SAFETY: caller contract (`LANES` writable values).
                unsafe { $store(p, self) }
            }
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn mul_add(self, b: Self, c: Self) -> Self {
                $fma(self, b, c)
            }
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn add(self, b: Self) -> Self {
                $add(self, b)
            }
        }
    };
}

lanes!(
    __m256,
    f32,
    8,
    "avx2,fma",
    _mm256_setzero_ps,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps
);
lanes!(
    __m256d,
    f64,
    4,
    "avx2,fma",
    _mm256_setzero_pd,
    _mm256_set1_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_fmadd_pd,
    _mm256_add_pd
);
lanes!(
    __m512,
    f32,
    16,
    "avx512f",
    _mm512_setzero_ps,
    _mm512_set1_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps
);
lanes!(
    __m512d,
    f64,
    8,
    "avx512f",
    _mm512_setzero_pd,
    _mm512_set1_pd,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_fmadd_pd,
    _mm512_add_pd
);
