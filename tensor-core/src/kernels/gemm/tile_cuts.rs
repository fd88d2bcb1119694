//! How one block of `C` is cut into micro-tiles, down its rows and across its columns.
//!
//! Packed panels of `A` are the kernel's `mr` rows tall, and packed panels of `B` are `nr`
//! columns wide, so tiles over them are full size with the last one clipped
//! ([`TileCut::clipped`]). An operand read in place has no panels, so a tile can start
//! anywhere. Then the block is cut with no more tiles than the clipped cut, but so that no
//! tile computes padding:
//! - rows ([`TileCut::exact`]): full tiles, then tiles of the kernel's *short* height (a
//!   build a little less than `mr` tall), where the rows add up exactly;
//! - columns ([`TileCut::even`]): whole registers, shared out as evenly as they go.
//!
//! Why: under the 9 × 48 AVX-512 `f32` tile, one 64³ product ends its rows in a 1-row tile
//! run by the 4-row build, and each 32-row band of it on two threads in a 5-row tile run
//! by the 8-row build. Its columns end in a 16-wide tile, whose 9 multiply-adds a step wait
//! on 10 loads: on one thread those tiles took a third of the kernel's time for a quarter
//! of its multiply-adds (`perf`). Cut 8 × 8 rows by 32 + 32 columns, the same product
//! runs no padding and no one-register tile.
//!
//! Each element's sum is the same whatever tile computes it (see the micro-kernel), so the
//! cut never changes a result.

/// The tiles of one block along one dimension, in order, as `(first index, length)` within
/// the block: some tiles of a first length, then tiles of a second, the last one clipped
/// to the block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TileCut {
    /// Start of the next tile.
    at: usize,
    /// Length of the block.
    end: usize,
    /// Length of the first tiles.
    first: usize,
    /// How many of the first tiles are still to come (`None`: all of them).
    first_left: Option<usize>,
    /// Length of the tiles after them.
    then: usize,
}

impl TileCut {
    /// Tiles of `tile` over `len`, the last one clipped: the cut over packed panels.
    pub fn clipped(len: usize, tile: usize) -> Self {
        TileCut {
            at: 0,
            end: len,
            first: tile,
            first_left: None,
            then: tile,
        }
    }

    /// Rows of `A` read in place: full `mr`-row tiles, then `short`-row ones, where `len`
    /// adds up exactly from that many tiles of the two heights; else
    /// [`TileCut::clipped`]. `short` is a build's exact height below `mr` (`None` where the
    /// kernel has none).
    pub fn exact(len: usize, mr: usize, short: Option<usize>) -> Self {
        let clipped = Self::clipped(len, mr);
        let Some(short) = short.filter(|&s| s > 0 && s < mr) else {
            return clipped;
        };
        // `full · mr + (tiles − full) · short = len`, with `0 ≤ full ≤ tiles`.
        let tiles = len.div_ceil(mr);
        let Some(over) = len.checked_sub(tiles * short) else {
            return clipped;
        };
        if !over.is_multiple_of(mr - short) {
            return clipped;
        }
        TileCut {
            first_left: Some(over / (mr - short)),
            then: short,
            ..clipped
        }
    }

    /// Columns of `B` read in place: the `len / lane` registers shared out over as many
    /// tiles as [`TileCut::clipped`] cuts at `nr`, as evenly as they go, the wider first;
    /// the clipped cut where `len` (or `nr`) is not a whole number of registers.
    pub fn even(len: usize, nr: usize, lane: usize) -> Self {
        let clipped = Self::clipped(len, nr);
        // With `nr` whole registers, no tile is wider than `nr`: `tiles ≥ regs / (nr / lane)`.
        if lane == 0 || nr < lane || !len.is_multiple_of(lane) || !nr.is_multiple_of(lane) {
            return clipped;
        }
        let (regs, tiles) = (len / lane, len.div_ceil(nr));
        let Some(each) = regs.checked_div(tiles) else {
            return clipped;
        };
        TileCut {
            first: (each + 1) * lane,
            first_left: Some(regs % tiles),
            then: each * lane,
            ..clipped
        }
    }
}

impl Iterator for TileCut {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        if self.at >= self.end {
            return None;
        }
        let length = match &mut self.first_left {
            None => self.first,
            Some(0) => self.then,
            Some(left) => {
                *left -= 1;
                self.first
            }
        };
        let start = self.at;
        let length = length.min(self.end - start);
        self.at = start + length;
        Some((start, length))
    }
}

#[cfg(test)]
mod tests {
    use super::TileCut;

    fn lengths(cut: TileCut) -> Vec<usize> {
        cut.map(|(_, len)| len).collect()
    }

    /// Every index once, in order, in as many tiles as the clipped cut, none longer than
    /// `tile` and none empty.
    fn assert_partition(cut: TileCut, len: usize, tile: usize) {
        let tiles: Vec<_> = cut.collect();
        assert_eq!(tiles.len(), len.div_ceil(tile), "{len} / {tile}: {tiles:?}");
        let mut next = 0;
        for &(start, length) in &tiles {
            assert_eq!(start, next, "{tiles:?}");
            assert!((1..=tile).contains(&length), "{tiles:?}");
            next += length;
        }
        assert_eq!(next, len, "{tiles:?}");
    }

    #[test]
    fn clipped_tiles_are_full_but_the_last() {
        assert_eq!(TileCut::clipped(20, 9).collect::<Vec<_>>(), [(0, 9), (9, 9), (18, 2)]);
        assert_eq!(TileCut::clipped(0, 9).count(), 0);
        assert_eq!(TileCut::clipped(9, 9).collect::<Vec<_>>(), [(0, 9)]);
    }

    #[test]
    fn exact_rows_have_no_padding_where_they_add_up() {
        // W1's n = 64 on one thread, and each band of it on two.
        assert_eq!(lengths(TileCut::exact(64, 9, Some(8))), [8; 8]);
        assert_eq!(lengths(TileCut::exact(32, 9, Some(8))), [8; 4]);
        assert_eq!(TileCut::exact(17, 9, Some(8)).collect::<Vec<_>>(), [(0, 9), (9, 8)]);
        // The AVX2 kernel's 6-row tile with its 4-row build: 32 = 4 · 6 + 2 · 4.
        assert_eq!(lengths(TileCut::exact(32, 6, Some(4))), [6, 6, 6, 6, 4, 4]);
        // No exact cut in as many tiles: the clipped one.
        assert_eq!(lengths(TileCut::exact(10, 9, Some(8))), [9, 1]);
        assert_eq!(lengths(TileCut::exact(33, 6, Some(4))), [6, 6, 6, 6, 6, 3]);
        assert_eq!(lengths(TileCut::exact(5, 9, None)), [5]);

        for mr in [6, 9, 12] {
            for short in [None, Some(mr - 1), Some(mr - 2), Some(4)] {
                for len in 0..200 {
                    let cut = TileCut::exact(len, mr, short);
                    assert_partition(cut, len, mr);
                    // Only full and short tiles, or else the clipped cut.
                    let exact = lengths(cut).iter().all(|&l| l == mr || Some(l) == short);
                    assert!(
                        exact || lengths(cut) == lengths(TileCut::clipped(len, mr)),
                        "{len} {mr} {short:?}: {:?}",
                        lengths(cut)
                    );
                }
            }
        }
    }

    #[test]
    fn even_columns_share_whole_registers_out() {
        // 64 `f32` columns under 48-wide tiles of 16-lane registers: 32 + 32, not 48 + 16.
        assert_eq!(TileCut::even(64, 48, 16).collect::<Vec<_>>(), [(0, 32), (32, 32)]);
        assert_eq!(lengths(TileCut::even(256, 48, 16)), [48, 48, 48, 48, 32, 32]);
        assert_eq!(lengths(TileCut::even(96, 48, 16)), [48, 48]);
        assert_eq!(lengths(TileCut::even(16, 48, 16)), [16]);
        // Not whole registers: the clipped cut.
        assert_eq!(lengths(TileCut::even(70, 48, 16)), [48, 22]);
        assert_eq!(lengths(TileCut::even(64, 40, 16)), [40, 24]);

        for (nr, lane) in [(48, 16), (24, 8), (16, 8), (8, 4)] {
            for len in 0..300 {
                let cut = TileCut::even(len, nr, lane);
                assert_partition(cut, len, nr);
                if len % lane == 0 {
                    let widths = lengths(cut);
                    assert!(widths.iter().all(|w| w % lane == 0), "{widths:?}");
                    assert!(
                        widths.windows(2).all(|w| w[0] >= w[1] && w[0] - w[1] <= lane),
                        "{widths:?}"
                    );
                }
            }
        }
    }
}
