//! Tiny float products (at most `TINY_MACS` multiply-adds, see `super::matmul`): one dot
//! product per output element, summed in the order TensorFlow's CPU kernels use for the same
//! call, so that a small product agrees with TensorFlow's bits wherever that order is known.
//!
//! What TensorFlow 2.21 does (x86-64 with AVX-512, oneDNN on), found by probing it with
//! random products of every layout (each order below matched every element probed: over
//! 70 000 for the chain, a few thousand for the lanes):
//!
//! * **float32** sums each dot product as one chain of fused multiply-adds from `p = 0`:
//!   every batched product, and the 2-D ones but those below;
//! * a 2-D float32 `matmul(a, b, transpose_b=True)` with 2 to 15 rows (oneDNN's small kernel
//!   for that layout) accumulates element `p` into lane `p % 16` of sixteen fused
//!   multiply-add accumulators, then halves the lanes (8, 4, 2, 1), as an AVX-512 horizontal
//!   sum does: [`DotOrder::Lanes16`];
//! * two 2-D float32 layouts follow no order found so far (one row with `transpose_b`, and
//!   one column without any transpose: a matrix-vector kernel); they take the fused chain,
//!   which is at least as accurate;
//! * **float64** products are a chain of separate multiplies and adds (Eigen's kernel) for
//!   the lengths probed (5, 24, 33, 70), though not for all (20 and 37 sum otherwise).
//!
//! The fused chain is one instruction per step where the CPU has FMA and the correctly
//! rounded library `fmaf` elsewhere, so the bits are the same on every machine.

use std::mem::MaybeUninit;

use super::matmul::MatRef;
use super::simd;

/// The order in which a tiny product sums each dot product (see the module docs): what the
/// matmul op asks for, from its transposes and rank, so that it sums as TensorFlow's kernel
/// for the same call does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DotOrder {
    /// One chain from `p = 0`: fused multiply-adds in float32, a multiply and an add in
    /// float64.
    #[default]
    Chain,
    /// Sixteen float32 lanes, halved at the end: TensorFlow's 2-D `transpose_b` product with
    /// 2 to 15 rows. Other shapes and float64 take [`DotOrder::Chain`].
    Lanes16,
}

impl DotOrder {
    /// TensorFlow's order for `matmul(a, b, transpose_a, transpose_b)`, `both_2d` when
    /// neither operand has batch dimensions.
    pub fn of_matmul(transpose_a: bool, transpose_b: bool, both_2d: bool) -> Self {
        if both_2d && transpose_b && !transpose_a {
            DotOrder::Lanes16
        } else {
            DotOrder::Chain
        }
    }
}

/// Writes `dot(i, j)` to element `(i, j)` of the row-major `m × n` block `c` and returns it,
/// initialised.
#[inline(always)]
fn each_dot<T>(m: usize, n: usize, c: &mut [MaybeUninit<T>], dot: impl Fn(usize, usize) -> T) -> &mut [T] {
    let c = &mut c[..m * n];
    for (i, row) in c.chunks_exact_mut(n).enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            v.write(dot(i, j));
        }
    }
    // SAFETY: the `m` rows of `n` just written are all of `c`.
    unsafe { assume_init(c) }
}

/// `c` as the initialised values it holds.
///
/// # Safety
///
/// Every element of `c` has been written.
unsafe fn assume_init<T>(c: &mut [MaybeUninit<T>]) -> &mut [T] {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and the caller promises initialised values.
    unsafe { std::slice::from_raw_parts_mut(c.as_mut_ptr().cast::<T>(), c.len()) }
}

/// Batch entry `bi` of `C = A·B`, each element `mul_add(acc, a, b)` in `p` order from zero:
/// the integer kernel, and the float chain.
///
/// Why dot products: the sum stays in a register. Accumulating into `C` row by row (i-k-j
/// order) sent every step through a store and a reload of the same element, and for the
/// narrow products of a small model's gradients (`n` of 1 or 3, `k` the batch) that chain
/// was most of the product's time.
///
/// Why several at a time: each element is its own chain from `p = 0` (the same bits as one
/// at a time), and four independent chains keep the multiply-add unit busy where one would
/// wait out each step's latency (W5's gradient products are 32 long: 7 % of its graph step
/// on 2 cores).
///
/// # Safety
///
/// Every element of the entry's `A` (`m × k`) and `B` (`k × n`) lies inside `a.data` and
/// `b.data` (what `contract_ok` checks); `n > 0` and `c` holds at least `m·n` elements.
#[inline(always)]
pub(super) unsafe fn chain_entry<'c, T: Copy + Default>(
    (m, k, n): (usize, usize, usize),
    bi: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &'c mut [MaybeUninit<T>],
    mul_add: impl Fn(T, T, T) -> T + Copy,
) -> &'c mut [T] {
    debug_assert!(
        n > 0 && c.len() >= m * n,
        "chain_entry: {m}x{n} entry, {} slots",
        c.len()
    );
    let (ao, bo) = (a.offsets[bi], b.offsets[bi]);
    // The next element's starts in `a` and `b`, in row-major order (no division per element).
    let (mut i, mut j) = (0, 0);
    let mut next = || {
        let start = (ao + i * a.rs, bo + j * b.cs);
        j += 1;
        if j == n {
            (i, j) = (i + 1, 0);
        }
        start
    };
    let c = &mut c[..m * n];
    let mut fours = c.chunks_exact_mut(4);
    for group in &mut fours {
        // SAFETY: `next` gives the starts of this group's elements; this function's contract.
        unsafe { chain_group::<T, 4>(k, a, b, group, &mut next, mul_add) };
    }
    let mut rest = fours.into_remainder().chunks_exact_mut(2);
    for group in &mut rest {
        // SAFETY: as above.
        unsafe { chain_group::<T, 2>(k, a, b, group, &mut next, mul_add) };
    }
    for group in rest.into_remainder().chunks_exact_mut(1) {
        // SAFETY: as above.
        unsafe { chain_group::<T, 1>(k, a, b, group, &mut next, mul_add) };
    }
    // SAFETY: the groups above wrote every element of `c`.
    unsafe { assume_init(c) }
}

/// The `L` elements of `group`, side by side, each a chain of `k` steps from the row of `A`
/// and column of `B` that `next` gives in turn.
///
/// # Safety
///
/// Each start `next` gives is that of a row of `A` and a column of `B` whose `k` elements lie
/// inside `a.data` and `b.data`; `group` holds `L` elements.
#[inline(always)]
unsafe fn chain_group<T: Copy + Default, const L: usize>(
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    group: &mut [MaybeUninit<T>],
    mut next: impl FnMut() -> (usize, usize),
    mul_add: impl Fn(T, T, T) -> T,
) {
    // Filled by a loop: `std::array::from_fn` was left a call (7 % of W5).
    let mut starts = [(0, 0); L];
    for s in &mut starts {
        *s = next();
    }
    let mut acc = [T::default(); L];
    for p in 0..k {
        for (acc, &(ar, bc)) in acc.iter_mut().zip(&starts) {
            // SAFETY: `(ar, bc)` start a row of `A` and a column of `B` whose `k` elements lie
            // inside the slices (this function's contract). Unchecked: the bounds checks cost
            // W5's graph step 1–3 % (2 cores).
            let (x, y) = unsafe {
                (
                    *a.data.get_unchecked(ar + p * a.cs),
                    *b.data.get_unchecked(bc + p * b.rs),
                )
            };
            *acc = mul_add(*acc, x, y);
        }
    }
    for (v, acc) in group.iter_mut().zip(acc) {
        v.write(acc);
    }
}

/// Batch entry `bi` of a float32 `C = A·B` in [`DotOrder::Lanes16`]'s order.
#[inline(always)]
fn lanes16_entry<'c>(
    (m, k, n): (usize, usize, usize),
    bi: usize,
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    c: &'c mut [MaybeUninit<f32>],
) -> &'c mut [f32] {
    let (ao, bo) = (a.offsets[bi], b.offsets[bi]);
    each_dot(m, n, c, |i, j| {
        let (arow, bcol) = (ao + i * a.rs, bo + j * b.cs);
        let mut lanes = [0f32; 16];
        for p in 0..k {
            let lane = &mut lanes[p % 16];
            *lane = a.data[arow + p * a.cs].mul_add(b.data[bcol + p * b.rs], *lane);
        }
        let mut half = 8;
        while half > 0 {
            for l in 0..half {
                lanes[l] += lanes[l + half];
            }
            half /= 2;
        }
        lanes[0]
    })
}

/// Batch entry `bi` of a tiny float32 product in TensorFlow's `order`: the lanes where
/// TensorFlow sums in lanes, else the chain.
///
/// # Safety
///
/// As [`chain_entry`].
pub(super) unsafe fn f32_entry<'c>(
    dims: (usize, usize, usize),
    bi: usize,
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    c: &'c mut [MaybeUninit<f32>],
    order: DotOrder,
) -> &'c mut [f32] {
    #[cfg(target_arch = "x86_64")]
    if simd::fma_enabled() {
        // SAFETY: the CPU has FMA (`fma_enabled`); the rest is this function's contract.
        return unsafe {
            with_fma(
                #[inline(always)]
                move || f32_entry_any(dims, bi, a, b, c, order),
            )
        };
    }
    // SAFETY: this function's contract.
    unsafe { f32_entry_any(dims, bi, a, b, c, order) }
}

/// [`f32_entry`]'s body, inlined into its FMA build and its plain one.
///
/// # Safety
///
/// As [`chain_entry`].
#[inline(always)]
unsafe fn f32_entry_any<'c>(
    dims: (usize, usize, usize),
    bi: usize,
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    c: &'c mut [MaybeUninit<f32>],
    order: DotOrder,
) -> &'c mut [f32] {
    if order == DotOrder::Lanes16 && (2..16).contains(&dims.0) {
        lanes16_entry(dims, bi, a, b, c)
    } else {
        // SAFETY: this function's contract.
        unsafe { chain_entry(dims, bi, a, b, c, |acc, x: f32, y| x.mul_add(y, acc)) }
    }
}

/// Runs `f` compiled with FMA, where `mul_add` is one instruction (elsewhere it is the
/// library's `fmaf`, correct but a call). `f` must be an `#[inline(always)]` closure so that
/// its body is compiled here.
///
/// # Safety
///
/// The CPU has FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn with_fma<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Batch entry `bi` of a tiny float64 product: TensorFlow's chain of separate multiplies
/// and adds, whatever the order asked.
///
/// # Safety
///
/// As [`chain_entry`].
pub(super) unsafe fn f64_entry<'c>(
    dims: (usize, usize, usize),
    bi: usize,
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    c: &'c mut [MaybeUninit<f64>],
    _order: DotOrder,
) -> &'c mut [f64] {
    // SAFETY: this function's contract.
    unsafe { chain_entry(dims, bi, a, b, c, |acc, x, y| acc + x * y) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `C = A·B` of row-major `a` (`m × k`) and `b` given as `n × k` rows (`transpose_b`).
    fn nt(a: &[f32], bt: &[f32], (m, k, n): (usize, usize, usize), order: DotOrder) -> Vec<f32> {
        let mut c = vec![MaybeUninit::uninit(); m * n];
        let (ma, mb) = (MatRef::new(a, k, 1), MatRef::new(bt, 1, k));
        // SAFETY: `a` holds `m` rows of `k`, `bt` `n` rows of `k`.
        assert!(a.len() >= m * k && bt.len() >= n * k);
        unsafe { f32_entry((m, k, n), 0, ma, mb, &mut c, order) }.to_vec()
    }

    #[test]
    fn the_chain_fuses_each_multiply_add() {
        // -1·(1 + 2^-11) + (1 + 2^-12)^2 is exactly 2^-24. A fused multiply-add keeps the
        // square's 2^-24; a rounded square (1 + 2^-11, a tie to even) would give 0.
        let e = 2f32.powi(-12);
        let (a, b) = ([-1.0, 1.0 + e], [1.0 + 2.0 * e, 1.0 + e]);
        assert_eq!(nt(&a, &b, (1, 2, 1), DotOrder::Chain)[0], 2f32.powi(-24));
        assert_eq!(
            -(1.0 + 2.0 * e) + (1.0 + e) * (1.0 + e),
            0.0,
            "unfused, the term is lost"
        );
    }

    /// TensorFlow 2.21's `tf.linalg.matmul(a, b, transpose_b=True)` of these float32 inputs
    /// (3 × 20 by 4 × 20, rounded from float64 as numpy does; x86-64 with AVX-512), bit for bit: the lanes reproduce it, where
    /// the chain differs in 10 of the 12 elements.
    #[test]
    fn sixteen_lanes_give_tensorflows_bits() {
        let (m, k, n) = (3, 20, 4);
        let a: Vec<f32> = (0..m * k)
            .map(|i| (((i * 37) % 101) as f64 / 50.0 - 1.0) as f32)
            .collect();
        let bt: Vec<f32> = (0..n * k)
            .map(|i| (((i * 53) % 97) as f64 / 40.0 - 1.2) as f32)
            .collect();
        let tensorflow: [u32; 12] = [
            0x3fbe6666, 0xc0472b02, 0xbf089372, 0xbf12f1a8, 0x401b9db2, 0x3f581061, 0xc0573334, 0xbec83128, 0xbc031240,
            0x3fe28f5c, 0x3f6dd2f2, 0xc021fbe6,
        ];
        let bits = |order| {
            nt(&a, &bt, (m, k, n), order)
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(DotOrder::Lanes16), tensorflow);
        let chain = bits(DotOrder::Chain);
        assert_eq!(chain.iter().zip(&tensorflow).filter(|(x, y)| x != y).count(), 10);
        // One row is outside the lanes' range: the chain.
        let one = nt(&a[..k], &bt, (1, k, n), DotOrder::Lanes16);
        assert_eq!(one, nt(&a[..k], &bt, (1, k, n), DotOrder::Chain));
    }

    /// Elements summed four, two or one at a time give each element's own chain, whatever
    /// the count of elements, the layouts and the batch entry.
    #[test]
    fn side_by_side_chains_keep_each_elements_bits() {
        let data: Vec<f32> = (0..400).map(|i| ((i * 7919 % 211) as f32 - 105.0) / 37.0).collect();
        for (m, k, n) in [(1, 5, 1), (3, 32, 1), (3, 32, 3), (2, 7, 5), (5, 3, 7), (4, 1, 4)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (ars, acs) = if ta { (1, m) } else { (k, 1) };
                let (brs, bcs) = if tb { (1, k) } else { (n, 1) };
                let offsets = [0, 3];
                let a = MatRef::batched(&data[..200], &offsets, ars, acs);
                let b = MatRef::batched(&data[200..], &offsets, brs, bcs);
                let mut c = vec![MaybeUninit::uninit(); m * n];
                // SAFETY: an entry spans at most 3 + 32·5 elements of each 200.
                let got = unsafe { f32_entry((m, k, n), 1, a, b, &mut c, DotOrder::Chain) }.to_vec();
                for (e, got) in got.iter().enumerate() {
                    let (i, j) = (e / n, e % n);
                    let want = (0..k).fold(0f32, |acc, p| {
                        a.data[3 + i * ars + p * acs].mul_add(b.data[3 + p * brs + j * bcs], acc)
                    });
                    assert_eq!(got.to_bits(), want.to_bits(), "{m}x{k}x{n} {ta} {tb} element {e}");
                }
            }
        }
    }

    #[test]
    fn order_of_matmul_follows_the_transposes() {
        assert_eq!(DotOrder::of_matmul(false, true, true), DotOrder::Lanes16);
        for (ta, tb, two) in [
            (false, false, true),
            (true, true, true),
            (true, false, true),
            (false, true, false),
        ] {
            assert_eq!(DotOrder::of_matmul(ta, tb, two), DotOrder::Chain, "{ta} {tb} {two}");
        }
    }
}
