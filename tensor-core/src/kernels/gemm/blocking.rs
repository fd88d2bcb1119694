//! Block sizes from the running CPU's caches.
//!
//! The loop nest is BLIS's: a `kc × nc` block of `B` is packed to live in the last-level
//! cache, an `mc × kc` block of `A` in L2, and one `kc × NR` panel of `B` stays near the
//! core (in L1, or for the wide AVX-512 tiles streamed from L2: see [`streamed_kc`]) while the
//! kernel walks down the `A` panels. Sizes are a pure function of the CPU and the kernel,
//! never of the thread count, so the order of every sum (and so every result) is the same
//! on any number of threads.

use std::sync::OnceLock;

/// Data cache sizes in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Caches {
    /// Per-core L1 data cache.
    pub l1: usize,
    /// Per-core (or per-pair) L2.
    pub l2: usize,
    /// Last level, shared.
    pub l3: usize,
}

impl Caches {
    /// Sizes assumed where the system does not say: a common x86-64 server core.
    pub const DEFAULT: Caches = Caches {
        l1: 32 << 10,
        l2: 1 << 20,
        l3: 16 << 20,
    };

    /// This CPU's caches, read once (Linux sysfs), [`Caches::DEFAULT`] for anything missing.
    pub fn detect() -> Caches {
        static CACHES: OnceLock<Caches> = OnceLock::new();
        *CACHES.get_or_init(|| {
            let mut found = Caches::DEFAULT;
            for index in 0..8 {
                let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
                let read = |name: &str| std::fs::read_to_string(format!("{dir}/{name}")).ok();
                let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size")) else {
                    continue;
                };
                let Some(bytes) = parse_size(size.trim()) else { continue };
                match (level.trim(), kind.trim()) {
                    ("1", "Data") => found.l1 = bytes,
                    ("2", "Unified" | "Data") => found.l2 = bytes,
                    ("3", "Unified") => found.l3 = bytes,
                    _ => {}
                }
            }
            found
        })
    }
}

/// `"32K"`, `"1024K"`, `"32M"` or plain bytes; `None` for anything else or a zero size.
fn parse_size(text: &str) -> Option<usize> {
    let (digits, scale) = match text.as_bytes().last()? {
        b'K' | b'k' => (&text[..text.len() - 1], 1 << 10),
        b'M' | b'm' => (&text[..text.len() - 1], 1 << 20),
        b'G' | b'g' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    digits.parse::<usize>().ok()?.checked_mul(scale).filter(|&b| b > 0)
}

/// The three block sizes of one kernel on one CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Blocking {
    /// Depth of one packed slice (`k` step).
    pub kc: usize,
    /// Rows of a packed `A` block (a multiple of `MR`).
    pub mc: usize,
    /// Columns of a packed `B` block (a multiple of `NR`).
    pub nc: usize,
    /// `Some(bytes)` for kernels whose `kc × nr` panel overflows half of L1, and so streams
    /// from L2 (the AVX-512 tiles): their tiles ask for the next panel in packed slices
    /// larger than `bytes` (half of L2); see [`Blocking::asks_next_panel`].
    pub next_panel_hints: Option<usize>,
}

impl Blocking {
    /// Block sizes for a `mr × nr` kernel over `elem`-byte values: the `kc × nr` panel of `B`
    /// fills half of L1 (at most [`MAX_KC`] deep; where that is shallower than [`MIN_KC`],
    /// the panel streams from L2 and `kc` is [`streamed_kc`]'s), the `mc × kc` block of `A`
    /// half of L2 (but at most [`MAX_MC_ROWS`] rows) and the `kc × nc` block of `B` a quarter
    /// of the last level (the rest is left to `C` and the other cores).
    pub fn new(caches: Caches, mr: usize, nr: usize, elem: usize) -> Blocking {
        let in_l1 = caches.l1 / 2 / (nr * elem);
        // `MIN_KC` and `MAX_KC` are multiples of 8, so only the L1 rule's depth needs rounding.
        let kc = if in_l1 >= MIN_KC {
            (in_l1 / 8 * 8).min(MAX_KC)
        } else {
            streamed_kc(caches.l2)
        };
        let mc = ((caches.l2 / 2 / (kc * elem)) / mr * mr).clamp(mr, (MAX_MC_ROWS / mr).max(1) * mr);
        let nc = ((caches.l3 / 4 / (kc * elem)) / nr * nr).clamp(4 * nr, 512 * nr);
        let (kc, mc, nc) = match overrides() {
            Some((kc, mc, nc)) => (kc.max(1), (mc / mr).max(1) * mr, (nc / nr).max(1) * nr),
            None => (kc, mc, nc),
        };
        Blocking {
            kc,
            mc,
            nc,
            next_panel_hints: (kc * nr * elem > caches.l1 / 2).then_some(caches.l2 / 2),
        }
    }

    /// Whether the tiles over a packed `kc` slice of `B` of `slice_bytes` ask L2 for the
    /// next panel as they run ([`super::microkernel::NEXT_PANEL_STEPS`]): only where the
    /// panels stream from L2 and the slice outgrows half of it (a smaller slice stays in
    /// L2, panels and all).
    pub fn asks_next_panel(&self, slice_bytes: usize) -> bool {
        self.next_panel_hints.is_some_and(|over| slice_bytes > over)
    }
}

/// Shallowest `k` slice. Every slice loads and stores the whole `C` tile once, so a shallow
/// slice spends more of the kernel's time on `C`. The half-of-L1 rule gives `kc = 128` for
/// the wide AVX-512 tiles, which measured 10–15 % slower at n = 1024 and 2048 than 256–384
/// (AMD Zen 4, one thread, 12 × 32 `f32` and 12 × 16 `f64` tiles), and with today's 9 × 48
/// and 9 × 24 tiles 10 % slower than 256 on an Ice Lake Xeon (`f64`, n = 2048, paired runs;
/// 192 and 384 were also slower): the deeper `B` panel streams from L2 ahead of the kernel,
/// while `C` rows a whole row of `C` apart do not. AVX2's tiles fit half of L1 at 256 or
/// deeper and keep the L1 rule.
const MIN_KC: usize = 256;

/// Deepest `k` slice.
const MAX_KC: usize = 512;

/// Smallest L2 with which a kernel whose `B` panel streams from L2 takes the deepest slice,
/// [`MAX_KC`], instead of [`MIN_KC`].
const DEEP_KC_MIN_L2: usize = 2 << 20;

/// Depth of a slice whose `kc × nr` panel of `B` overflows half of L1 even at [`MIN_KC`]
/// (the AVX-512 tiles), by the size of L2: [`MAX_KC`] from [`DEEP_KC_MIN_L2`] up, otherwise
/// [`MIN_KC`].
///
/// Why by L2: each slice is one more pass of loads and stores over all of `C`, and a deeper
/// slice needs a larger `A` block in L2 for the same rows. On a Sapphire Rapids Xeon (48 KiB
/// L1, 2 MiB L2, 2 cores) 512 against 256, paired: one thread, 2048² `f32`, 150–157 GFLOP/s
/// against 139–146 (alternating runs); `bench W1` on two threads, 3 rounds, n = 2048 `f32`
/// 1.058x and `f64` 1.046x, n = 64 … 1024 0.98–1.02x (noise); beside numpy (OpenBLAS) that
/// took n = 2048 `f64` from 0.89–0.93x to 0.96x. 384 and 640 ran between 256 and 512;
/// 1024 was no faster (with 117-row blocks) or slower (234). Where L2 is smaller the
/// shallow slice stays: on an Ice Lake Xeon (1.25 MiB) 384 lost to 256 (see [`MIN_KC`]).
fn streamed_kc(l2: usize) -> usize {
    if l2 >= DEEP_KC_MIN_L2 {
        MAX_KC
    } else {
        MIN_KC
    }
}

/// Most rows of `A` in one packed block, whatever L2 could hold. Each `B` panel is run down
/// all `mc` rows before the next, and every micro-tile reads and writes `MR` rows of `C`; when
/// a row of `C` is 4 KiB or longer, each row is its own page, so a sweep touches `mc` pages
/// of `C` on top of the packed blocks. On an Intel Xeon (AVX-512, 48 KiB L1, 2 MiB L2, one
/// and two threads) the half-of-L2 rule's 504 rows (`f64`) and the former cap's 768 (`f32`,
/// where the rule gives 1020) ran 8–20 % slower than 240 at n = 1024 and 2048, while at
/// n = 1000, and with `C` on 2 MiB pages, the row count made no difference: address
/// translation, not cache capacity. 120–240 rows measured alike; 240 keeps the most reuse
/// of each packed `B` panel.
const MAX_MC_ROWS: usize = 240;

/// `FERROFLOW_GEMM_BLOCKS=kc,mc,nc`: block sizes for tuning on a new machine (rounded to
/// whole tiles); read once. Changing `kc` changes the order of sums, so results can differ
/// in the last bits from the default.
fn overrides() -> Option<(usize, usize, usize)> {
    static OVERRIDES: OnceLock<Option<(usize, usize, usize)>> = OnceLock::new();
    *OVERRIDES.get_or_init(|| {
        let text = std::env::var("FERROFLOW_GEMM_BLOCKS").ok()?;
        let parts: Vec<usize> = text.split(',').map(|p| p.trim().parse().ok()).collect::<Option<_>>()?;
        match parts[..] {
            [kc, mc, nc] => Some((kc, mc, nc)),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("32K"), Some(32 << 10));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("0K"), None);
        assert_eq!(parse_size("K"), None);
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn blocks_are_whole_tiles_and_fit() {
        for caches in [
            Caches::DEFAULT,
            Caches {
                l1: 48 << 10,
                l2: 2 << 20,
                l3: 105 << 20,
            },
            Caches { l1: 1, l2: 1, l3: 1 },
        ] {
            for (mr, nr, elem) in [(6, 16, 4), (6, 8, 8), (12, 32, 4), (12, 16, 8), (9, 48, 4), (9, 24, 8)] {
                let b = Blocking::new(caches, mr, nr, elem);
                assert!((MIN_KC..=MAX_KC).contains(&b.kc) && b.kc.is_multiple_of(8), "{b:?}");
                assert!(b.mc >= mr && b.mc.is_multiple_of(mr), "{b:?}");
                assert!(b.nc >= nr && b.nc.is_multiple_of(nr), "{b:?}");
            }
        }
        let b = Blocking::new(Caches::DEFAULT, 6, 16, 4);
        assert_eq!(b.kc, 256);
        assert!(b.mc * b.kc * 4 <= Caches::DEFAULT.l2 / 2);
        // By the half-of-L2 rule a 2 MiB L2 would take 1020 rows of `f32` and 504 of `f64`;
        // the row cap holds both to 240.
        let big_l2 = Caches {
            l1: 48 << 10,
            l2: 2 << 20,
            l3: 105 << 20,
        };
        assert_eq!(Blocking::new(big_l2, 12, 32, 4).mc, MAX_MC_ROWS);
        assert_eq!(Blocking::new(big_l2, 6, 16, 4).mc, MAX_MC_ROWS);
        assert_eq!(Blocking::new(big_l2, 12, 16, 8).mc, MAX_MC_ROWS);
        // Rounded down to whole tiles of 9 rows.
        assert_eq!(Blocking::new(big_l2, 9, 48, 4).mc, 234);
        assert_eq!(Blocking::new(big_l2, 9, 24, 8).mc, 234);
        // The AVX-512 tiles' panels stream from L2: the deep slice where L2 is 2 MiB, the
        // shallow one where it is smaller; AVX2's fit half of L1 and keep that rule.
        assert_eq!(Blocking::new(big_l2, 9, 48, 4).kc, MAX_KC);
        assert_eq!(Blocking::new(big_l2, 9, 24, 8).kc, MAX_KC);
        let ice_lake = Caches {
            l2: 1280 << 10,
            ..big_l2
        };
        assert_eq!(Blocking::new(ice_lake, 9, 48, 4).kc, MIN_KC);
        assert_eq!(Blocking::new(ice_lake, 9, 24, 8).kc, MIN_KC);
        assert_eq!(Blocking::new(big_l2, 6, 16, 4).kc, 384);
        assert_eq!(Blocking::new(Caches::DEFAULT, 9, 48, 4).kc, MIN_KC);
        // Only the panels that stream from L2 ask for the next one.
        assert_eq!(Blocking::new(big_l2, 9, 48, 4).next_panel_hints, Some(1 << 20));
        assert_eq!(Blocking::new(big_l2, 9, 24, 8).next_panel_hints, Some(1 << 20));
        assert_eq!(
            Blocking::new(Caches::DEFAULT, 9, 24, 8).next_panel_hints,
            Some(512 << 10)
        );
        assert_eq!(Blocking::new(big_l2, 6, 16, 4).next_panel_hints, None);
        assert_eq!(Blocking::new(Caches::DEFAULT, 6, 8, 8).next_panel_hints, None);
        // And those only over slices larger than half of L2.
        let wide = Blocking::new(big_l2, 9, 48, 4);
        assert!(wide.asks_next_panel((1 << 20) + 1) && !wide.asks_next_panel(1 << 20));
        assert!(!Blocking::new(big_l2, 6, 16, 4).asks_next_panel(usize::MAX));
    }
}
