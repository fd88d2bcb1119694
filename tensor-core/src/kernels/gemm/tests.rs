//! The packed kernels against a float64 reference, over every layout, partial tiles and
//! several blocks along each dimension; and bit-identity where the sums are the same.

use super::microkernel::{Build, TileFn};
use super::*;
use crate::kernels::matmul::tests::{data, operand};

/// Runs one product through `kernel` with `blk`, `C` starting as `init`; `A` and `B` are
/// read in place where their rows are contiguous and `direct`.
#[allow(clippy::too_many_arguments)]
fn run<T: PackedFloat>(
    (kernel, blk, direct): (MicroKernel<T>, Blocking, bool),
    (m, k, n): (usize, usize, usize),
    (a, rsa, csa): (&[T], usize, usize),
    (b, rsb, csb): (&[T], usize, usize),
    init: Vec<T>,
    accumulate: bool,
) -> Vec<T> {
    let mut c = init;
    assert_eq!(c.len(), m * n);
    // SAFETY: the operands hold `m × k` and `k × n` elements with these strides; `c` is
    // `m × n` row-major; the caller only passes kernels this CPU runs.
    unsafe {
        run_blocked(
            (kernel, blk, direct && csa == 1, direct && csb == 1),
            (m, k, n),
            (a.as_ptr(), rsa as isize, csa as isize),
            (b.as_ptr(), rsb as isize, csb as isize),
            (c.as_mut_ptr(), n as isize, 1),
            accumulate,
        )
    };
    c
}

/// Kernels this CPU runs.
fn kernels<T: PackedFloat>() -> Vec<(Isa, MicroKernel<T>)> {
    [Isa::Avx512, Isa::Avx2]
        .into_iter()
        .filter(|isa| isa.supported())
        .filter_map(|isa| T::kernel(isa).map(|k| (isa, k)))
        .collect()
}

/// Small blocks, so that modest shapes cross several `kc`, `mc` and `nc` blocks.
fn small_blocks(mr: usize, nr: usize) -> Blocking {
    Blocking {
        kc: 64,
        mc: 2 * mr,
        nc: 3 * nr,
        next_panel_hints: Some(0),
    }
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (1, 7, 1),
    (5, 3, 17),
    (6, 64, 16),
    (13, 65, 33),
    // Last tiles of 4 and 2 rows under the 6-row kernels, of 7 and 2 under the 9-row ones.
    (16, 9, 40),
    (20, 31, 64),
    // Under the 9 × 48 (`f32`) and 9 × 24 (`f64`) kernels: a last tile of 8 rows and a last
    // panel of 5 columns.
    (17, 40, 53),
    (40, 130, 70),
    (97, 200, 101),
    // Read in place: rows cut 8 × 8 and columns 32 + 32 under the 9 × 48 `f32` kernel.
    (64, 64, 64),
];

#[test]
fn f32_and_f64_match_the_reference() {
    for (isa, kernel) in kernels::<f32>() {
        let blocks = [
            small_blocks(kernel.mr(), kernel.nr()),
            Blocking::new(Caches::DEFAULT, kernel.mr(), kernel.nr(), 4),
        ];
        for blk in blocks {
            for &(m, k, n) in SHAPES {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let (a, rsa, csa) = operand(m, k, ta, 1 + m as u64);
                    let (b, rsb, csb) = operand(k, n, tb, 2 + n as u64);
                    let (a32, b32): (Vec<f32>, Vec<f32>) = (
                        a.iter().map(|&x| x as f32).collect(),
                        b.iter().map(|&x| x as f32).collect(),
                    );
                    let init = data(m * n, 3);
                    for (accumulate, direct) in [(false, false), (true, false), (false, true), (true, true)] {
                        let init32 = init.iter().map(|&x| x as f32).collect();
                        let got = run(
                            (kernel, blk, direct),
                            (m, k, n),
                            (&a32, rsa, csa),
                            (&b32, rsb, csb),
                            init32,
                            accumulate,
                        );
                        for i in 0..m {
                            for j in 0..n {
                                let mut want = if accumulate { init[i * n + j] as f32 as f64 } else { 0.0 };
                                for p in 0..k {
                                    want += a32[i * rsa + p * csa] as f64 * b32[p * rsb + j * csb] as f64;
                                }
                                let tol = 2e-6 * (k as f64 + 1.0);
                                let g = got[i * n + j] as f64;
                                assert!(
                                    (g - want).abs() <= tol,
                                    "{isa:?} {blk:?} {m}x{k}x{n} ta={ta} tb={tb} acc={accumulate} direct={direct} ({i},{j}): {g} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    for (isa, kernel) in kernels::<f64>() {
        for blk in [
            small_blocks(kernel.mr(), kernel.nr()),
            Blocking::new(Caches::DEFAULT, kernel.mr(), kernel.nr(), 8),
        ] {
            for &(m, k, n) in SHAPES {
                for (ta, tb, direct) in [(false, false, true), (false, false, false), (true, true, false)] {
                    let (a, rsa, csa) = operand(m, k, ta, 4);
                    let (b, rsb, csb) = operand(k, n, tb, 5);
                    let nan = vec![f64::NAN; m * n];
                    let got = run(
                        (kernel, blk, direct),
                        (m, k, n),
                        (&a, rsa, csa),
                        (&b, rsb, csb),
                        nan,
                        false,
                    );
                    for i in 0..m {
                        for j in 0..n {
                            let want: f64 = (0..k).map(|p| a[i * rsa + p * csa] * b[p * rsb + j * csb]).sum();
                            assert!(
                                (got[i * n + j] - want).abs() <= 1e-13 * (k as f64 + 1.0),
                                "{isa:?} {m}x{k}x{n} ({i},{j})"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The row and column blocking, and reading `A` and `B` in place or packed, never change a result:
/// only `kc` orders the sums.
#[test]
fn blocking_of_m_and_n_is_bit_identical() {
    let (m, k, n) = (97, 300, 131);
    let (a, _, _) = operand(m, k, false, 7);
    let (b, _, _) = operand(k, n, false, 8);
    let (a, b): (Vec<f32>, Vec<f32>) = (
        a.iter().map(|&x| x as f32).collect(),
        b.iter().map(|&x| x as f32).collect(),
    );
    for (_, kernel) in kernels::<f32>() {
        let base = small_blocks(kernel.mr(), kernel.nr());
        let zeros = || vec![0.0; m * n];
        let reference = run((kernel, base, false), (m, k, n), (&a, k, 1), (&b, n, 1), zeros(), false);
        for (mc, nc) in [
            (kernel.mr(), kernel.nr()),
            (10 * kernel.mr(), 2 * kernel.nr()),
            (99 * kernel.mr(), 99 * kernel.nr()),
        ] {
            let blk = Blocking { mc, nc, ..base };
            for direct in [false, true] {
                let got = run((kernel, blk, direct), (m, k, n), (&a, k, 1), (&b, n, 1), zeros(), false);
                assert!(
                    got.iter().zip(&reference).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{blk:?} direct={direct}"
                );
            }
        }
    }
}

/// The AVX-512 build computes exactly what the AVX2 build computes (same body, same sums),
/// so results do not depend on which of the two a CPU has.
#[test]
fn avx512_and_avx2_agree_bit_for_bit() {
    let (Some(wide), Some(narrow)) = (
        Isa::Avx512.supported().then(|| f32::kernel(Isa::Avx512)).flatten(),
        f32::kernel(Isa::Avx2).filter(|_| Isa::Avx2.supported()),
    ) else {
        eprintln!("skipped: this CPU has no AVX-512");
        return;
    };
    // Last tiles of 5, 4 and 8 rows (AVX-512: the 8-row build clipped, the 4- and 8-row
    // builds; AVX2: 5, 4 and 2 rows), by n = 90, 104 and 112 (AVX-512's last panel: 42, 8
    // and 16 columns, i.e. 3 registers clipped, 1 clipped, 1 whole; AVX2's: 10, 8 and 16,
    // i.e. 2 clipped, 1 whole, a whole panel).
    for (m, n) in [77, 76, 80].into_iter().flat_map(|m| [(m, 90), (m, 104), (m, 112)]) {
        let k = 700;
        let (a, _, _) = operand(m, k, false, 9);
        let (b, _, _) = operand(k, n, true, 10);
        let (a, b): (Vec<f32>, Vec<f32>) = (
            a.iter().map(|&x| x as f32).collect(),
            b.iter().map(|&x| x as f32).collect(),
        );
        let blk = |kernel: MicroKernel<f32>| Blocking {
            kc: 256,
            ..Blocking::new(Caches::DEFAULT, kernel.mr(), kernel.nr(), 4)
        };
        let product = |kernel: MicroKernel<f32>, direct: bool| {
            run(
                (kernel, blk(kernel), direct),
                (m, k, n),
                (&a, k, 1),
                (&b, 1, k),
                vec![0.0; m * n],
                false,
            )
        };
        let (x, y) = (product(wide, false), product(narrow, true));
        assert!(
            x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()),
            "m = {m}, n = {n}"
        );
    }
}

#[test]
fn portable_level_has_no_packed_kernel() {
    assert!(f32::kernel(Isa::Portable).is_none());
    let mut c = [1.0f32];
    // SAFETY: 1×1 operands; the portable level runs nothing and reports it.
    let ran = unsafe {
        packed_gemm(
            Isa::Portable,
            (1, 1, 1),
            ([2.0f32].as_ptr(), 1, 1),
            ([3.0f32].as_ptr(), 1, 1),
            (c.as_mut_ptr(), 1, 1),
            false,
        )
    };
    assert!(!ran);
    assert_eq!(c, [1.0]);
}

#[test]
fn packing_space_starts_on_a_cache_line() {
    // Vectors start anywhere 8-byte aligned: offset one by a word to cover a misaligned start.
    for offset in 0..2 {
        let mut space = vec![0u64; offset];
        for words in [1usize, 8, 100, 4096] {
            let start = space.as_ptr() as usize;
            let got = aligned_words(&mut space, words);
            assert_eq!(got.len(), words);
            assert_eq!(got.as_ptr() as usize % 64, 0, "{words} words after {start:#x}");
        }
    }
    with_pack_space::<f32, _>(3, 5, |a, b| {
        assert_eq!((a.len(), b.len()), (3, 5));
        assert_eq!(a.as_ptr() as usize % 64, 0);
        assert_eq!(b.as_ptr() as usize % 64, 0);
    });
}

#[test]
fn rows_in_place_spread_over_l1_sets() {
    // f64 at k = 512: rows 4 KiB apart all land in one set.
    assert_eq!(rows_per_l1_set(4096, 12), 12);
    assert_eq!(rows_per_l1_set(8192, 6), 6);
    // Just off 4 KiB, rows creep through one set a few bytes at a time.
    assert_eq!(rows_per_l1_set(4104, 12), 8);
    assert_eq!(rows_per_l1_set(4100, 12), 12);
    assert_eq!(rows_per_l1_set(4092, 12), 11);
    // f32 at k = 512 (2 KiB): two sets, six rows each; k = 256 (1 KiB): four.
    assert_eq!(rows_per_l1_set(2048, 12), 6);
    assert_eq!(rows_per_l1_set(2052, 12), 6);
    assert_eq!(rows_per_l1_set(1024, 12), 3);
    // W4's 784 f32 columns (3136 bytes) spread over twelve sets.
    assert_eq!(rows_per_l1_set(3136, 12), 1);
    // One row broadcast to every row of the tile.
    assert_eq!(rows_per_l1_set(0, 12), 1);
    // An L1's ways but two: 6 rows of an 8-way 32 KiB L1, 10 of a 12-way 48 KiB one.
    assert_eq!(max_rows_per_l1_set(32 << 10), 6);
    assert_eq!(max_rows_per_l1_set(48 << 10), 10);
    assert_eq!(max_rows_per_l1_set(1), 1);
    let most = max_rows_per_l1_set(Caches::detect().l1);
    assert!(!reads_a_in_place(1, 512, 8, (128, 12), 512));
    assert_eq!(reads_a_in_place(1, 513, 8, (128, 12), 512), 8 <= most);
    assert_eq!(reads_a_in_place(1, 512, 8, (128, 9), 512), 9 <= most);
    assert!(reads_a_in_place(1, 512, 4, (128, 12), 512));
    assert!(reads_a_in_place(1, 784, 4, (128, 12), 256));
    assert!(reads_a_in_place(1, 512, 8, (128, 6), 512));
    // Few rows cannot crowd a set; a single row may have any stride.
    assert!(reads_a_in_place(1, 512, 8, (4, 12), 512));
    assert!(reads_a_in_place(1, 0, 4, (1, 12), 256));
    // Wide products and strided rows pack whatever the stride.
    assert!(!reads_a_in_place(1, 784, 4, (128, 12), 1024));
    assert!(!reads_a_in_place(2, 784, 4, (128, 12), 256));
}

#[test]
fn edge_builds_compute_what_the_full_tile_computes() {
    fn check<T: PackedFloat + std::fmt::Debug>(to_t: fn(f64) -> T, bits: fn(T) -> u64) {
        for (isa, kernel) in kernels::<T>() {
            let (mr, nr, kc) = (kernel.mr(), kernel.nr(), 37);
            // Builds: smallest first, the full tile last, each edge build inside it and
            // smaller than it.
            let area = |e: &Build<T>| e.rows * e.cols;
            assert!(kernel.builds.windows(2).all(|w| area(&w[0]) <= area(&w[1])), "{isa:?}");
            let edges = &kernel.builds[..kernel.builds.len() - 1];
            for e in edges {
                assert!((1..=mr).contains(&e.rows) && (1..=nr).contains(&e.cols), "{isa:?}");
                assert!(area(e) < mr * nr, "{isa:?}");
            }
            // Every tile gets the smallest build that covers it.
            for rows in 1..=mr {
                for cols in 1..=nr {
                    let want = kernel.builds.iter().filter(|b| rows <= b.rows && cols <= b.cols);
                    let want = want.min_by_key(|b| area(b)).expect("the full tile covers all");
                    for (direct, want) in [(false, want.tile), (true, want.tile_direct)] {
                        let got = kernel.tile_for(rows, cols, direct);
                        assert!(
                            std::ptr::fn_addr_eq(got, want),
                            "{isa:?} {rows} × {cols} direct={direct}"
                        );
                    }
                }
            }
            // A packed panel (rows past `rows` zero, as `pack_a` leaves them), the same rows
            // of `A` in place (row stride `kc + 3`), and a packed `B` panel.
            let a = data(mr * (kc + 3), 5);
            let bp: Vec<T> = data(kc * nr, 6).into_iter().map(to_t).collect();
            for rows in 1..=mr {
                let mut ap = vec![T::ZERO; kc * mr];
                for p in 0..kc {
                    for i in 0..rows {
                        ap[p * mr + i] = to_t(a[i * (kc + 3) + p]);
                    }
                }
                let a_rows: Vec<T> = a.iter().map(|&x| to_t(x)).collect();
                // Every build's own width (its whole-tile store) and one less (its clipped
                // store), and a strided `C`.
                let widths = kernel.builds.iter().flat_map(|e| [e.cols, e.cols - 1]);
                let cols_list: Vec<(usize, isize)> = [(nr, 1), (nr - 3, 1), (nr / 2, 2), (1, 1)]
                    .into_iter()
                    .chain(widths.filter(|&c| c > 0).map(|c| (c, 1)))
                    .collect();
                for (cols, csc) in cols_list {
                    for direct in [false, true] {
                        for overwrite in [true, false] {
                            let (rsc, len) = (nr as isize * csc, mr * nr * csc as usize);
                            let init: Vec<T> = data(len, 7).into_iter().map(to_t).collect();
                            let tile = |f: TileFn<T>| {
                                let mut c = init.clone();
                                let (a_ptr, rsa) = if direct {
                                    (a_rows.as_ptr(), (kc + 3) as isize)
                                } else {
                                    (ap.as_ptr(), 0)
                                };
                                // SAFETY: the panels hold `kc·mr` and `kc·nr` values, `A` in
                                // place `mr` rows of `kc + 3`; `c` holds the clipped tile at
                                // its strides; `kernels` lists only what this CPU runs.
                                unsafe {
                                    f(
                                        kc,
                                        a_ptr,
                                        rsa,
                                        bp.as_ptr(),
                                        nr as isize,
                                        c.as_mut_ptr(),
                                        rsc,
                                        csc,
                                        rows,
                                        cols,
                                        overwrite,
                                        std::ptr::null(),
                                    )
                                };
                                c.into_iter().map(bits).collect::<Vec<u64>>()
                            };
                            let full = kernel.full();
                            let full = if direct { full.tile_direct } else { full.tile };
                            assert_eq!(
                                tile(kernel.tile_for(rows, cols, direct)),
                                tile(full),
                                "{isa:?} rows={rows} cols={cols} csc={csc} direct={direct} overwrite={overwrite}"
                            );
                        }
                    }
                }
            }
        }
    }
    check::<f32>(|x| x as f32, |x| x.to_bits() as u64);
    check::<f64>(|x| x, f64::to_bits);
}

/// `B` is read in place when it is one contiguous row-major block that fits in L1, or when
/// `C` is one row of tiles short, or two over a `B` that fits in L2; never column-major.
#[test]
fn b_is_read_in_place_when_small_or_c_is_short() {
    let Caches { l1, l2, .. } = Caches::detect();
    let (mr, n) = (9, 64);
    let k = l1 * 2 / 3 / (4 * n);
    let tall = 3 * mr;
    assert!(reads_b_in_place(1, n as isize, 4, (tall, k, n), mr));
    assert!(
        !reads_b_in_place(1, n as isize, 4, (tall, k + 1, n), mr),
        "larger than two thirds of L1"
    );
    assert!(
        !reads_b_in_place(1, n as isize + 1, 4, (tall, k, n), mr),
        "rows with a gap"
    );
    assert!(!reads_b_in_place(k as isize, 1, 4, (tall, k, n), mr), "column-major");
    // One row of tiles: in place at any size, rows with a gap too.
    let huge = (4 * l2 / (4 * n)).max(k + 1);
    for m in 1..=mr {
        assert!(reads_b_in_place(1, n as isize + 1, 4, (m, huge, n), mr), "{m} rows");
        assert!(
            !reads_b_in_place(huge as isize, 1, 4, (m, huge, n), mr),
            "{m} rows, column-major"
        );
    }
    // Two rows of tiles: in place while `B` fits in L2.
    let in_l2 = l2 / (4 * n);
    assert!(reads_b_in_place(1, n as isize, 4, (2 * mr, in_l2, n), mr));
    assert!(
        !reads_b_in_place(1, n as isize, 4, (2 * mr, in_l2 + 1, n), mr),
        "past L2"
    );
    assert!(
        !reads_b_in_place(1, n as isize, 4, (2 * mr + 1, in_l2, n), mr),
        "three rows of tiles"
    );
    assert!(
        reads_b_in_place(1, n as isize + 1, 4, (2 * mr, in_l2, n), mr),
        "two rows of tiles, a row gap"
    );
}

/// `B` read in place from rows with a gap (a column block of a wider matrix, as a column
/// band reads it) over several `kc` slices and `nc` blocks, `A` packed and in place: the
/// product the packed `B` gives, bit for bit, and the reference's. The widths end the last
/// block in a panel that is packed (5 columns), read in place (whole registers) and cut
/// evenly (`nr` and a register).
#[test]
fn b_read_in_place_with_a_row_gap_matches_the_packed_product() {
    fn check<T: PackedFloat + Into<f64>>(to_t: fn(f64) -> T, bits: fn(T) -> u64, tol: f64) {
        for (isa, kernel) in kernels::<T>() {
            let blk = small_blocks(kernel.mr(), kernel.nr());
            let (k, gap) = (150, 7);
            let lane = (64 / std::mem::size_of::<T>()).min(kernel.nr());
            for n in [3 * kernel.nr() + 5, 3 * kernel.nr() + 2 * lane, 4 * kernel.nr() + lane] {
                let rsb = n + gap;
                // Exactly as long as the contract needs: the last row ends at column `n`.
                let b: Vec<T> = data((k - 1) * rsb + n, 11).into_iter().map(to_t).collect();
                for m in [1, kernel.mr() - 1, kernel.mr() + 3, 2 * kernel.mr()] {
                    let a: Vec<T> = data(m * k, 12).into_iter().map(to_t).collect();
                    let product = |direct_a: bool, direct_b: bool| {
                        let mut c = vec![to_t(f64::NAN); m * n];
                        // SAFETY: `A` is `m × k` row-major, `B` `k × n` with rows `rsb` apart
                        // inside `b`, `C` `m × n`; the kernel runs on this CPU.
                        unsafe {
                            run_blocked(
                                (kernel, blk, direct_a, direct_b),
                                (m, k, n),
                                (a.as_ptr(), k as isize, 1),
                                (b.as_ptr(), rsb as isize, 1),
                                (c.as_mut_ptr(), n as isize, 1),
                                false,
                            )
                        };
                        c
                    };
                    let packed = product(false, false);
                    for direct_a in [false, true] {
                        let in_place = product(direct_a, true);
                        for i in 0..m {
                            for j in 0..n {
                                let want: f64 = (0..k).map(|p| a[i * k + p].into() * b[p * rsb + j].into()).sum();
                                let got = in_place[i * n + j];
                                let at = format!("{isa:?} {m}x{k}x{n} direct_a={direct_a} ({i},{j})");
                                assert_eq!(bits(got), bits(packed[i * n + j]), "{at}");
                                assert!((got.into() - want).abs() <= tol * k as f64, "{at}");
                            }
                        }
                    }
                }
            }
        }
    }
    check::<f32>(|x| x as f32, |x| x.to_bits() as u64, 1e-6);
    check::<f64>(|x| x, f64::to_bits, 1e-14);
}

/// Through [`packed_gemm`], which chooses for itself: short products over a `B` too large
/// for L1, contiguous or with a row gap (read in place), give the fully packed product bit
/// for bit.
#[test]
fn short_products_give_the_packed_result() {
    for (isa, kernel) in kernels::<f32>() {
        let (k, n) = (300, 2 * kernel.nr() + 3);
        for rsb in [n, n + 5] {
            let b: Vec<f32> = data((k - 1) * rsb + n, 13).into_iter().map(|x| x as f32).collect();
            for m in [1, kernel.mr(), 2 * kernel.mr()] {
                let a: Vec<f32> = data(m * k, 14).into_iter().map(|x| x as f32).collect();
                assert!(reads_b_in_place(1, rsb as isize, 4, (m, k, n), kernel.mr()));
                let mut chosen = vec![f32::NAN; m * n];
                // SAFETY: row-major `m × k` and `m × n` operands, `k × n` with rows `rsb`
                // apart inside `b`; `isa` runs here.
                let ran = unsafe {
                    packed_gemm(
                        isa,
                        (m, k, n),
                        (a.as_ptr(), k as isize, 1),
                        (b.as_ptr(), rsb as isize, 1),
                        (chosen.as_mut_ptr(), n as isize, 1),
                        false,
                    )
                };
                assert!(ran);
                let blk = Blocking::new(Caches::detect(), kernel.mr(), kernel.nr(), 4);
                let zeros = vec![0.0; m * n];
                let packed = run((kernel, blk, false), (m, k, n), (&a, k, 1), (&b, rsb, 1), zeros, false);
                assert!(
                    chosen.iter().zip(&packed).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{isa:?} {m} rows, rows of B {rsb} apart"
                );
            }
        }
    }
}

/// The tiles down one column take consecutive stretches of the next panel, one line per
/// `NEXT_PANEL_STEPS` of their steps before the `C` hints, until the panel is covered.
#[test]
fn next_panel_stretches_cover_the_panel_in_turn() {
    use super::microkernel::{next_panel_stretch, NEXT_PANEL_STEPS};
    let panel = vec![0f32; 48 * 512];
    let base = panel.as_ptr();
    let lines = (512 - 48) / NEXT_PANEL_STEPS;
    let per_tile = lines * 64 / 4;
    let starts: Vec<*const f32> = (0..30).map(|t| next_panel_stretch(base, panel.len(), 512, t)).collect();
    let covering = panel.len().div_ceil(per_tile);
    for (t, &at) in starts.iter().enumerate() {
        if t < covering {
            assert_eq!(at, base.wrapping_add(t * per_tile), "tile {t}");
        } else {
            assert!(at.is_null(), "tile {t} is past the panel");
        }
    }
    // `f64`: the same lines hold half the values.
    let wide = vec![0f64; 24 * 512];
    assert_eq!(
        next_panel_stretch(wide.as_ptr(), wide.len(), 512, 1),
        wide.as_ptr().wrapping_add(per_tile / 2)
    );
    // No panel, or a slice too shallow to ask for anything before its `C` hints.
    assert!(next_panel_stretch(std::ptr::null::<f32>(), 100, 512, 0).is_null());
    assert!(next_panel_stretch(base, panel.len(), 48, 0).is_null());
}

#[test]
fn even_blocks_cover_the_rows_in_as_few_blocks_with_no_thin_last_one() {
    assert_eq!(even_blocks(512, 240, 12), 180); // 180 + 180 + 152
    assert_eq!(even_blocks(2048, 240, 12), 228); // 8 × 228 + 224
    assert_eq!(even_blocks(64, 240, 12), 72); // one block
    assert_eq!(even_blocks(1, 240, 12), 12);
    for rows in 1..=1500 {
        for (mc, mr) in [(240, 12), (240, 6), (96, 12), (12, 12)] {
            let b = even_blocks(rows, mc, mr);
            assert!(b.is_multiple_of(mr) && b <= mc.max(mr), "{rows} {mc} {mr}: {b}");
            let blocks = rows.div_ceil(b);
            // As few blocks as blocks of `mc` rows would take, the last at least as large as
            // the others less one block's worth of tiles spread over them.
            assert_eq!(blocks, rows.div_ceil(mr).div_ceil(mc / mr), "{rows} {mc} {mr}: {b}");
            let last = rows - (blocks - 1) * b;
            assert!(
                last > b.saturating_sub(blocks * mr),
                "{rows} {mc} {mr}: {b}, last {last}"
            );
        }
    }
}

/// A last, partial panel of `B` is read in place only when every tile of it runs a build
/// exactly as wide: a whole number of registers.
#[test]
fn only_whole_registers_of_a_last_panel_are_read_exactly() {
    fn check<T: PackedFloat>(what: &str) {
        for (isa, kernel) in kernels::<T>() {
            let lanes = kernel.builds[0].cols;
            for cols in 1..=kernel.nr() {
                assert_eq!(
                    kernel.reads_exactly(cols),
                    cols % lanes == 0,
                    "{what} {isa:?} cols={cols}"
                );
            }
        }
    }
    check::<f32>("f32");
    check::<f64>("f64");
}

/// Today's kernels cut operands read in place with no padding where the sizes allow: a
/// short height one row below the full tile (AVX-512) or two (AVX2), and column tiles of
/// whole registers shared out evenly.
#[test]
fn in_place_cuts_run_no_padding_under_todays_kernels() {
    fn lengths(cut: super::tile_cuts::TileCut) -> Vec<usize> {
        cut.map(|(_, len)| len).collect()
    }
    fn check<T: PackedFloat>(what: &str) {
        for (isa, kernel) in kernels::<T>() {
            let (mr, nr, lane) = (kernel.mr(), kernel.nr(), kernel.builds[0].cols);
            let short = match isa {
                Isa::Avx512 => mr - 1,
                _ => mr - 2,
            };
            // Full tiles then a short one, read in place; packed, a clipped one.
            let rows = 3 * mr + short;
            assert_eq!(
                lengths(kernel.row_tiles(rows, true)),
                [mr, mr, mr, short],
                "{what} {isa:?}"
            );
            assert_eq!(
                lengths(kernel.row_tiles(rows, false)),
                [mr, mr, mr, short],
                "{what} {isa:?}"
            );
            // 64 rows (W1's n = 64) under AVX-512: eight short tiles, not seven and one row.
            if isa == Isa::Avx512 {
                assert_eq!(lengths(kernel.row_tiles(64, true)), [8; 8], "{what}");
                assert_eq!(lengths(kernel.row_tiles(64, false)), [9, 9, 9, 9, 9, 9, 9, 1], "{what}");
            }
            // One register more than a full tile: two tiles as even as registers go.
            let cols = nr + lane;
            let regs = cols / lane;
            let want = [regs.div_ceil(2) * lane, regs / 2 * lane];
            assert_eq!(lengths(kernel.col_tiles(cols, true)), want, "{what} {isa:?}");
            assert_eq!(lengths(kernel.col_tiles(cols, false)), [nr, lane], "{what} {isa:?}");
            // Every such tile runs a build exactly its size.
            for rows in [mr, short] {
                for width in want {
                    let pick = kernel.tile_for(rows, width, true);
                    let exact = kernel.builds.iter().find(|b| b.rows == rows && b.cols == width);
                    let exact = exact.expect("a build of each height and width");
                    assert!(
                        std::ptr::fn_addr_eq(pick, exact.tile_direct),
                        "{what} {isa:?} {rows} × {width}"
                    );
                }
            }
        }
    }
    check::<f32>("f32");
    check::<f64>("f64");
}
