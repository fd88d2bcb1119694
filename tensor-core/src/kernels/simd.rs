//! Runtime CPU dispatch for the elementwise loops: the same Rust loop compiled again with
//! AVX2+FMA enabled and chosen at run time when the CPU has them, so one binary runs on any
//! x86-64 and uses 8-wide vectors where it can.

/// Runs `f` compiled with AVX2+FMA when the CPU supports them (x86-64), as is otherwise.
/// `f` should be a closure marked `#[inline(always)]` around a loop whose body inlines
/// (`#[inline(always)]` element functions): only code inlined into the AVX2+FMA build gets
/// the wider instructions. An unmarked closure may stay a call of its own, compiled for the
/// baseline (measured: W6's fused multiply-add loop 3% slower that way), and a call to a
/// function that is not inlined turns the element function's fused multiply-adds into
/// library calls.
#[inline(always)]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        match level() {
            // SAFETY: AVX-512 implies AVX2 and FMA here (checked by `level`).
            // AVX-512 measured slower than AVX2 on W6 here (frequency and wider-mask costs), so
            // it runs the AVX2 build too.
            Level::Avx512 => return unsafe { with_avx2_fma(f) },
            // SAFETY: the CPU supports AVX2 and FMA (checked by `level`).
            Level::Avx2 => return unsafe { with_avx2_fma(f) },
            Level::Baseline => {}
        }
    }
    f()
}

/// Whether [`vectorized`] runs code with fused multiply-add instructions on this CPU: its
/// AVX2+FMA build on x86-64, always on aarch64 (FMA is part of the base ISA).
#[inline(always)]
pub fn fma_enabled() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        !matches!(level(), Level::Baseline)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        cfg!(target_arch = "aarch64")
    }
}

/// Binds `$fma` to a `const bool`, [`fma_enabled`], for the loops that `$body` runs through
/// [`vectorized`]: math that can use fused multiply-adds (`exp`) then uses them exactly where they are one instruction, and never a slow library call.
/// Both forms are compiled; the body should fix its op first (match outside the loop).
macro_rules! with_fma {
    ($fma:ident => $body:expr) => {{
        if crate::kernels::simd::fma_enabled() {
            #[allow(non_upper_case_globals)]
            const $fma: bool = true;
            $body
        } else {
            #[allow(non_upper_case_globals)]
            const $fma: bool = false;
            $body
        }
    }};
}
pub(crate) use with_fma;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2_fma<R>(f: impl FnOnce() -> R) -> R {
    let r = f();
    // Clear the upper vector halves explicitly: LLVM did not always do it here (seen after
    // the f64 -> f32 cast loop), and legacy-SSE code running with dirty upper state pays a
    // transition penalty on every instruction. The scalar libm `expf` calls of a softmax
    // after such a cast ran 25x slower (305 µs instead of 12 µs for [128, 10]).
    std::arch::x86_64::_mm256_zeroupper();
    r
}

/// The widest vector extension available.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// AVX-512 F and VL (with AVX2 and FMA).
    Avx512,
    /// AVX2 and FMA.
    Avx2,
    /// Neither: SSE2 only.
    Baseline,
}

/// The widest vector extension of this CPU, detected once.
#[cfg(target_arch = "x86_64")]
pub(crate) fn level() -> Level {
    use std::sync::atomic::{AtomicU8, Ordering};
    static CACHED: AtomicU8 = AtomicU8::new(0);
    match CACHED.load(Ordering::Relaxed) {
        1 => Level::Avx512,
        2 => Level::Avx2,
        3 => Level::Baseline,
        _ => {
            let avx2 = std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
            let avx512 = avx2
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl");
            let (code, l) = match (avx512, avx2) {
                (true, _) => (1, Level::Avx512),
                (false, true) => (2, Level::Avx2),
                _ => (3, Level::Baseline),
            };
            CACHED.store(code, Ordering::Relaxed);
            l
        }
    }
}
