//! The tile grid of one product shared by many threads ([`super::parallel_gemm`]): where
//! `C` is cut, and in which order the threads claim the tiles.
//!
//! Tiles are cut in whole micro-tiles (`mr` rows, `nr` columns) and *balanced*: the row
//! (column) spans differ by at most one micro-tile, the longer ones first. Threads claim
//! tiles as they finish the last one, largest first, and among the grids with near-square
//! tiles the one whose greedy schedule ends first on `threads` equal threads is chosen.
//!
//! Why: cutting `C` into equal tiles of whole micro-tiles plus a remainder left the last
//! row and column of tiles thin. With the 9 × 48 `f32` kernel a 1024² product on 16
//! threads became an 8 × 8 grid of 144-column tiles whose last column was 16 wide, so 8 of
//! the 64 tiles held a third of the others' micro-tiles (and a ninth of their columns). By
//! [`Grid::makespan`]'s schedule 16 threads were 87 % busy (2048²: 88 %; weighting the
//! clipped edge by the vectors its build runs, 84 % and 87 %), while the former 12 × 32
//! kernel's panels divided both sizes evenly. That is the likeliest cause of the 9 × 48
//! kernel's 919 and 1212 GFLOP/s at n = 1024 and 2048 on the device machine's 16 cores
//! against 1138 and 1503 for the 12 × 32 one. The balanced grid claimed largest first
//! keeps them 99.8 % and 98.5 % busy (weighted as above, 95 % and 97 %); no product the
//! tests try falls under 95 %.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Multiply-adds below which a tile is not worth its own `A` packing and claim.
const MIN_TILE_MACS: usize = 1 << 18;

/// Tiles of `C` per thread. Threads claim tiles as they come, so with several each, a
/// thread that starts late (a helper takes 30–60 µs to wake: 3 % of a 512³ `f64` product on
/// two cores) or runs slower simply takes fewer, and tiles rounded to whole `MR` rows no
/// longer leave one thread 6 % more rows than the other. One tile per thread measured 2–6 %
/// slower at n = 512 and 1024 on two cores (f32 and f64); the cost, `A` packed once per
/// column of tiles, stays under 1 % of the multiply-adds. Only for products large enough
/// that each of the smaller tiles keeps [`MIN_SHARED_TILE_MACS`]. (Measured with this driver
/// on two cores, before two threads moved to bands; the device script re-measures it.)
const TILES_PER_THREAD: usize = 4;

/// Multiply-adds each of the [`TILES_PER_THREAD`] tiles must keep (about 0.2 ms on one
/// core, several wake-ups' worth); smaller products get one tile per thread. Eight tiles of
/// a 256³ product on two cores (2 M each) ran W3 and W4's layers 7–12 % slower than two.
const MIN_SHARED_TILE_MACS: usize = 1 << 23;

/// Most a tile may be taller than wide (or wider than tall) for its grid to be considered:
/// square tiles reuse most of what they pack. (Allowing 4:1 tiles shortened the modelled
/// schedule by at most 1.5 % for square products of 768–4096 on 3–16 threads; the squarer
/// tiles keep to the shapes measured on the device.)
const MAX_SKEW: f64 = 2.0;

/// What a tile's schedule charges for packing one row of `A` (over the tile's whole `k`), in
/// columns of multiply-adds: a packed element is a load, a shuffle and a store, against a
/// multiply-add's sixteenth (`f32`) or eighth (`f64`) of a fused vector instruction.
/// A modelling weight, not a measurement: it counts grids with more columns of tiles
/// (packing `A` more times) as longer.
const PACK_A_COLUMNS: usize = 4;

/// Where `C` is cut: `rows × cols` tiles whose row and column spans are runs of whole
/// micro-tiles (the last clipped to `C`), the longer runs first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grid {
    m: usize,
    n: usize,
    mr: usize,
    nr: usize,
    /// Row spans (tiles down `C`).
    pub rows: usize,
    /// Column spans (tiles across `C`).
    pub cols: usize,
}

/// One tile of `C`: rows `r0..r0 + rows`, columns `c0..c0 + cols`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tile {
    pub r0: usize,
    pub rows: usize,
    pub c0: usize,
    pub cols: usize,
}

impl Grid {
    /// About [`TILES_PER_THREAD`] tiles per thread (fewer when tiles would get too small),
    /// cut so the threads stay busy to the end: among the factorisations `r × c` of the tile
    /// count whose tiles are at most [`MAX_SKEW`] from square (or the squarest, when none
    /// is), the one whose greedy schedule ([`Grid::makespan`]) ends first; on a tie the
    /// squarer, then the one with more rows (every column of tiles packs all of `A` again).
    /// When no factorisation of the tile count fits in the micro-tiles of `C` (a product
    /// only a few micro-tiles high and wide), the largest count below it that has one.
    pub fn new((m, k, n): (usize, usize, usize), mr: usize, nr: usize, threads: usize) -> Grid {
        debug_assert!(m > 0 && n > 0 && mr > 0 && nr > 0, "callers have an output to cut");
        let (row_tiles, col_tiles) = (m.div_ceil(mr).max(1), n.div_ceil(nr).max(1));
        let macs = m.saturating_mul(k).saturating_mul(n);
        let want = Grid::tile_count(macs, threads, row_tiles, col_tiles);
        let grid = |rows, cols| Grid {
            m,
            n,
            mr,
            nr,
            rows,
            cols,
        };
        let skew = |r: usize, c: usize| ((m as f64 / r as f64) / (n as f64 / c as f64)).ln().abs();
        // A count of 1 always fits (1 × 1), so this finds one.
        let fits: Vec<(usize, usize)> = (1..=want)
            .rev()
            .map(|count| factorisations(count, row_tiles, col_tiles))
            .find(|fits| !fits.is_empty())
            .unwrap_or_default();
        let squarest = fits
            .iter()
            .copied()
            .min_by(|a, b| skew(a.0, a.1).total_cmp(&skew(b.0, b.1)))
            .unwrap_or((1, 1));
        let mut best = (grid(squarest.0, squarest.1), usize::MAX, f64::INFINITY);
        for (r, c) in fits {
            let s = skew(r, c);
            if s > MAX_SKEW.ln() + 1e-9 && (r, c) != squarest {
                continue;
            }
            let g = grid(r, c);
            let span = g.makespan(threads);
            if span < best.1 || (span == best.1 && s < best.2 - 1e-9) {
                best = (g, span, s);
            }
        }
        best.0
    }

    /// The tiles wanted: [`Grid::tiles_per_thread`] per thread, no more than tiles of
    /// [`MIN_TILE_MACS`] or than the micro-tiles of `C`, and at least one.
    fn tile_count(macs: usize, threads: usize, row_tiles: usize, col_tiles: usize) -> usize {
        threads
            .saturating_mul(Grid::tiles_per_thread(macs, threads))
            .min((macs / MIN_TILE_MACS).max(1))
            .min(row_tiles.saturating_mul(col_tiles))
            .max(1)
    }

    /// [`TILES_PER_THREAD`] when each of that many tiles keeps [`MIN_SHARED_TILE_MACS`] of
    /// the product's `macs`, else one.
    pub fn tiles_per_thread(macs: usize, threads: usize) -> usize {
        if macs / threads.max(1) / TILES_PER_THREAD >= MIN_SHARED_TILE_MACS {
            TILES_PER_THREAD
        } else {
            1
        }
    }

    /// How many tiles there are.
    pub fn tiles(&self) -> usize {
        self.rows * self.cols
    }

    /// Tile `t` (`t < tiles()`), counted along the rows of tiles.
    pub fn tile(&self, t: usize) -> Tile {
        let (r0, rows) = span(self.m, self.mr, self.rows, t / self.cols);
        let (c0, cols) = span(self.n, self.nr, self.cols, t % self.cols);
        Tile { r0, rows, c0, cols }
    }

    /// Every tile index, the most work first (ties in index order): the order threads claim
    /// them in, so the small tiles fill the gaps at the end.
    pub fn claim_order(&self) -> Box<[usize]> {
        let mut costed: Vec<(Reverse<usize>, usize)> = (0..self.tiles()).map(|t| (Reverse(self.cost(t)), t)).collect();
        costed.sort_unstable();
        costed.into_iter().map(|(_, t)| t).collect()
    }

    /// The modelled work of tile `t`: its micro-tiles' elements of `C`, clipped ones counted
    /// whole, plus [`PACK_A_COLUMNS`] per row for packing its rows of `A`.
    ///
    /// Clipped micro-tiles run narrower builds that cost less, but counting them whole makes
    /// tiles that differ only by a clipped edge tie, and ties are claimed along the rows of
    /// tiles, so threads running at the same time read the same rows of `A`. Claimed down
    /// the columns instead (the tiles' exact areas), a 1024² product on two threads with the
    /// shared `B` forced ran 4 % slower (`f32` and `f64`, the same binary either way).
    fn cost(&self, t: usize) -> usize {
        let tile = self.tile(t);
        let whole = |len: usize, tile: usize| len.div_ceil(tile) * tile;
        whole(tile.rows, self.mr) * (whole(tile.cols, self.nr) + PACK_A_COLUMNS)
    }

    /// When the last of `threads` equal threads finishes, each taking the next tile in
    /// [`Grid::claim_order`] as soon as it is free, in units of [`Grid::cost`].
    pub fn makespan(&self, threads: usize) -> usize {
        let mut free_at: BinaryHeap<Reverse<usize>> = (0..threads.max(1)).map(|_| Reverse(0)).collect();
        for t in self.claim_order().iter() {
            if let Some(Reverse(at)) = free_at.pop() {
                free_at.push(Reverse(at + self.cost(*t)));
            }
        }
        free_at.into_iter().map(|Reverse(at)| at).max().unwrap_or(0)
    }
}

/// The ways to cut `C` into `count` tiles, `r × c` with `r` and `c` no more than the micro-
/// tiles down and across `C`; more rows first.
fn factorisations(count: usize, row_tiles: usize, col_tiles: usize) -> Vec<(usize, usize)> {
    (1..=count.min(row_tiles))
        .rev()
        .filter(|r| count.is_multiple_of(*r))
        .map(|r| (r, count / r))
        .filter(|&(_, c)| c <= col_tiles)
        .collect()
}

/// Span `i` of `parts` over `len` elements cut in whole micro-tiles of `tile`: the
/// `⌈len / tile⌉` micro-tiles are shared out as evenly as they go, the longer runs first, and
/// the last span is clipped to `len`. Returns `(start, length)`.
fn span(len: usize, tile: usize, parts: usize, i: usize) -> (usize, usize) {
    let tiles = len.div_ceil(tile);
    let (each, extra) = (tiles / parts, tiles % parts);
    let start_tile = |i: usize| i * each + i.min(extra);
    let start = (start_tile(i) * tile).min(len);
    let end = (start_tile(i + 1) * tile).min(len);
    (start, end - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernels' tiles: AVX-512 `f32` and `f64`, AVX2, and the former 12 × 32.
    const KERNELS: [(usize, usize); 4] = [(9, 48), (9, 24), (6, 16), (12, 32)];

    #[test]
    fn tiles_partition_the_output_in_balanced_runs_of_whole_micro_tiles() {
        for &(m, k, n, threads) in &[
            (512usize, 512usize, 512usize, 16usize),
            (1024, 1024, 1024, 16),
            (2048, 2048, 2048, 16),
            (512, 512, 512, 2),
            (100, 1000, 3000, 4),
            (3000, 100, 7, 8),
            (7, 7, 7, 16),
            (1, 4096, 4096, 3),
            (1000, 1000, 1000, 12),
        ] {
            for (mr, nr) in KERNELS {
                let g = Grid::new((m, k, n), mr, nr, threads);
                let want = Grid::tile_count(m * k * n, threads, m.div_ceil(mr), n.div_ceil(nr));
                assert!(g.tiles() <= want, "{g:?}: more than the {want} tiles wanted");
                let mut covered = vec![0u8; m * n];
                for t in 0..g.tiles() {
                    let tile = g.tile(t);
                    assert!(tile.rows > 0 && tile.cols > 0, "{g:?} {tile:?}");
                    assert!(
                        tile.r0.is_multiple_of(mr) && tile.c0.is_multiple_of(nr),
                        "{g:?} {tile:?}"
                    );
                    for r in tile.r0..tile.r0 + tile.rows {
                        for c in tile.c0..tile.c0 + tile.cols {
                            covered[r * n + c] += 1;
                        }
                    }
                }
                assert!(
                    covered.iter().all(|&c| c == 1),
                    "{g:?}: every element in exactly one tile"
                );
                // Balanced: spans differ by at most one micro-tile (a clipped one counting whole).
                for (len, tile, parts) in [(m, mr, g.rows), (n, nr, g.cols)] {
                    let counts: Vec<usize> = (0..parts).map(|i| span(len, tile, parts, i).1.div_ceil(tile)).collect();
                    let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                    assert!(hi - lo <= 1, "{g:?} {counts:?}");
                    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "longer runs first: {counts:?}");
                }
            }
        }
        // Square products on 16 threads: 64 tiles in a square grid, not 64 thin bands.
        let g = Grid::new((2048, 2048, 2048), 9, 48, 16);
        assert_eq!((g.rows, g.cols), (8, 8));
        // A 256³ product: one tile per thread (each of eight would be too small).
        let g = Grid::new((256, 256, 256), 12, 32, 2);
        assert_eq!(g.tiles(), 2);
        // Work for only one tile of `MIN_TILE_MACS`: one tile, on any thread count.
        let g = Grid::new((64, 64, 64), 6, 16, 16);
        assert_eq!(g.tiles(), 1);
        // 7 × 3 micro-tiles, 16 tiles wanted (4 threads) and no 16 = r × c that fits: the
        // largest count that does, 15 (5 × 3), rather than one row of three tiles.
        let g = Grid::new((59, 100_000, 55), 9, 24, 4);
        assert_eq!((g.rows, g.cols), (5, 3));
        // Five threads: 20 wanted, neither 20 nor 19 fits, 18 = 6 × 3 does.
        let g = Grid::new((59, 100_000, 55), 9, 24, 5);
        assert_eq!((g.rows, g.cols), (6, 3));
    }

    #[test]
    fn makespan_is_the_greedy_schedule_of_the_tiles() {
        // 20 rows of one-row micro-tiles in 3 row spans (7, 7, 6) of 10 columns: costs
        // 7·14 = 98, 98 and 6·14 = 84. Two threads take 98 each, then one of them the 84.
        let g = Grid {
            m: 20,
            n: 10,
            mr: 1,
            nr: 1,
            rows: 3,
            cols: 1,
        };
        assert_eq!((0..3).map(|t| g.cost(t)).collect::<Vec<_>>(), [98, 98, 84]);
        assert_eq!(g.makespan(2), 98 + 84);
        assert_eq!(g.makespan(3), 98);
        assert_eq!(g.makespan(1), 98 + 98 + 84);
        // Largest first, ties in index order: 2 × 30 in 10-wide panels, 2 × 2 tiles of one
        // row by 20 and 10 columns cost 24, 14, 24, 14.
        let g = Grid {
            m: 2,
            n: 30,
            mr: 1,
            nr: 10,
            rows: 2,
            cols: 2,
        };
        assert_eq!((0..4).map(|t| g.cost(t)).collect::<Vec<_>>(), [24, 14, 24, 14]);
        assert_eq!(&*g.claim_order(), [0, 2, 1, 3]);
        assert_eq!(g.makespan(2), 38);
    }

    #[test]
    fn tiles_are_claimed_largest_first() {
        let g = Grid::new((1024, 1024, 1000), 9, 48, 16);
        let order = g.claim_order();
        let mut sorted = order.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..g.tiles()).collect::<Vec<_>>(), "a permutation of the tiles");
        assert!(order.windows(2).all(|w| g.cost(w[0]) >= g.cost(w[1])));
        assert!(g.cost(order[0]) > g.cost(order[g.tiles() - 1]), "the sizes differ here");
    }

    /// The reason for the balanced grid: the former one kept 16 threads 87 % busy at
    /// n = 1024 with the 9 × 48 kernel.
    #[test]
    fn many_threads_stay_busy_to_the_end() {
        for (mr, nr) in KERNELS {
            for n in [1000, 1024, 1536, 2048, 3000, 4096] {
                for threads in [3, 4, 8, 16] {
                    let g = Grid::new((n, n, n), mr, nr, threads);
                    let work: usize = (0..g.tiles()).map(|t| g.cost(t)).sum();
                    let busy = work as f64 / (threads * g.makespan(threads)) as f64;
                    assert!(
                        busy >= 0.95,
                        "{mr}×{nr}, n = {n}, {threads} threads: {g:?} busy {busy:.3}"
                    );
                }
            }
        }
    }

    #[test]
    fn spans_share_micro_tiles_evenly_and_clip_the_last() {
        // 1024 columns in 48-wide panels: 22 panels (the last 16 wide) over 8 spans.
        let spans: Vec<_> = (0..8).map(|i| span(1024, 48, 8, i)).collect();
        assert_eq!(spans[0], (0, 144));
        assert_eq!(spans[5], (5 * 144, 144));
        assert_eq!(spans[6], (6 * 144, 96));
        assert_eq!(spans[7], (6 * 144 + 96, 1024 - 6 * 144 - 96));
        assert_eq!(spans[7].1, 64, "one whole panel and the clipped 16 columns");
        assert_eq!(span(10, 4, 1, 0), (0, 10));
    }
}
