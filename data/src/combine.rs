//! Datasets made of other datasets: [`Dataset::zip`], [`Dataset::concatenate`],
//! [`Dataset::flat_map`] and [`Dataset::interleave`], as `tf.data`'s.

use crate::components::Element;
use crate::dataset::{Cardinality, Dataset};
use crate::rng::derive_seed;
use crate::stages::BoxIter;
use ferroflow_tensor_core::{DType, Error, Result};
use std::sync::Arc;

/// How [`Dataset::interleave`] draws from the datasets it opens: `cycle_length` of them at
/// once, `block_length` consecutive elements from each in turn (`interleave(map_func,
/// cycle_length, block_length)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interleave {
    cycle_length: usize,
    block_length: usize,
}

impl Interleave {
    /// `cycle_length` datasets open at once, one element from each in turn.
    pub fn new(cycle_length: usize) -> Self {
        Interleave {
            cycle_length,
            block_length: 1,
        }
    }

    /// Consecutive elements taken from one dataset before moving to the next (default 1).
    pub fn block_length(mut self, block_length: usize) -> Self {
        self.block_length = block_length;
        self
    }
}

impl From<usize> for Interleave {
    fn from(cycle_length: usize) -> Self {
        Interleave::new(cycle_length)
    }
}

impl Dataset {
    /// Elements of `datasets` side by side (`tf.data.Dataset.zip`): element `i` is the
    /// components of every dataset's element `i`, in order, so zipping `[x]` and `[y]` gives
    /// `[x, y]`. Stops with the shortest. Every dataset runs the same iteration number, so two
    /// datasets shuffled with one seed stay aligned, as two TensorFlow datasets built with one
    /// seed do.
    ///
    /// ```
    /// use ferroflow_data::{Cardinality, Dataset};
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Dataset::from_tensor_slices(Tensor::new([1.0f32, 2.0, 3.0]))?;
    /// let y = Dataset::range(0..2);
    /// let xy = Dataset::zip(&[x, y]);
    /// assert_eq!(xy.cardinality(), Cardinality::Finite(2));
    /// let last = xy.iter().last().unwrap()?;
    /// assert_eq!((last[0].to_scalar::<f32>()?, last[1].to_scalar::<i64>()?), (2.0, 1));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn zip(datasets: &[Dataset]) -> Dataset {
        if datasets.is_empty() {
            return Dataset::failing("zip", "needs at least one dataset");
        }
        // TensorFlow's: unknown if any is unknown, else the shortest finite, else infinite.
        let mut cardinality = Cardinality::Infinite;
        for d in datasets {
            cardinality = match (cardinality, d.cardinality()) {
                (_, Cardinality::Unknown) | (Cardinality::Unknown, _) => Cardinality::Unknown,
                (c, Cardinality::Infinite) => c,
                (Cardinality::Finite(a), Cardinality::Finite(b)) => Cardinality::Finite(a.min(b)),
                (Cardinality::Infinite, c) => c,
            };
        }
        let makers: Vec<_> = datasets.iter().map(Dataset::element_maker).collect();
        Dataset::from_elements(
            Arc::new(move |n| {
                let mut its: Vec<BoxIter<Result<Element>>> = makers.iter().map(|m| m(n)).collect();
                Box::new(std::iter::from_fn(move || {
                    let mut element = Vec::new();
                    let mut error = None;
                    for it in &mut its {
                        match it.next() {
                            Some(Ok(e)) => element.extend(e),
                            Some(Err(err)) => error = error.or(Some(err)),
                            // One input ended: the zip ends (after an error met on the way,
                            // as TensorFlow returns it) and asks no input again.
                            None => {
                                its.clear();
                                return error.map(Err);
                            }
                        }
                    }
                    if its.is_empty() {
                        return None;
                    }
                    Some(match error {
                        Some(err) => Err(err),
                        None => Ok(element),
                    })
                }))
            }),
            cardinality,
        )
    }

    /// This dataset's elements followed by `other`'s (`concatenate`). The two must have
    /// elements of the same components and dtypes; an element of `other` that differs from
    /// this dataset's first is an error naming both. Both run the same iteration number, so
    /// a shuffled dataset concatenated with itself repeats one order (`repeat_n(2)` gives two
    /// shuffles).
    ///
    /// ```
    /// use ferroflow_data::{Cardinality, Dataset};
    /// let ds = Dataset::range(0..2).concatenate(&Dataset::range(5..7));
    /// assert_eq!(ds.cardinality(), Cardinality::Finite(4));
    /// let v: Vec<i64> = ds.iter().map(|e| e?[0].to_scalar::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![0, 1, 5, 6]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn concatenate(&self, other: &Dataset) -> Dataset {
        let cardinality = match (self.cardinality(), other.cardinality()) {
            (Cardinality::Infinite, _) | (_, Cardinality::Infinite) => Cardinality::Infinite,
            (Cardinality::Unknown, _) | (_, Cardinality::Unknown) => Cardinality::Unknown,
            (Cardinality::Finite(a), Cardinality::Finite(b)) => Cardinality::Finite(a.saturating_add(b)),
        };
        let (first, second) = (self.element_maker(), other.element_maker());
        Dataset::from_elements(
            Arc::new(move |n| {
                // The head's first element sets the dtypes the tail must have; a shared cell
                // carries them from the head's closure to the tail's.
                let seen = Arc::new(std::sync::Mutex::new(None::<Vec<DType>>));
                let record = seen.clone();
                let head = first(n).inspect(move |e| {
                    if let Ok(e) = e {
                        record
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert_with(|| e.iter().map(|t| t.dtype()).collect());
                    }
                });
                let tail = second(n).map(move |e| {
                    let e = e?;
                    let expected = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    match expected {
                        Some(want) if want.len() != e.len() || want.iter().zip(&e).any(|(d, t)| *d != t.dtype()) => {
                            Err(Error::invalid(
                                "concatenate",
                                format!(
                                    "the datasets' elements differ: ({}) then ({})",
                                    names(want.iter().copied()),
                                    names(e.iter().map(|t| t.dtype()))
                                ),
                            ))
                        }
                        _ => Ok(e),
                    }
                });
                Box::new(head.chain(tail))
            }),
            cardinality,
        )
    }

    /// Maps every element to a dataset and yields their elements one dataset after another
    /// (`flat_map`). The dataset made from element `k` of iteration `n` runs its own
    /// iteration `derive_seed(n, k)`, so shuffles inside differ per element and an epoch
    /// repeats exactly. The cardinality becomes unknown.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// // Each n becomes n copies of itself.
    /// let ds = Dataset::range(1..4).flat_map(|e| {
    ///     let n = e[0].to_scalar::<i64>()?;
    ///     Ok(Dataset::from_tensors(e).repeat_n(n as usize))
    /// });
    /// let v: Vec<i64> = ds.iter().map(|e| e?[0].to_scalar::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![1, 2, 2, 3, 3, 3]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn flat_map<F>(&self, f: F) -> Dataset
    where
        F: Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
    {
        self.interleave(Interleave::new(1), f)
    }

    /// Maps elements to datasets and draws from `options`' `cycle_length` of them at a time,
    /// `block_length` elements from each in turn, opening the next element's dataset where
    /// one ends (`interleave(map_func, cycle_length, block_length)`, deterministic order).
    /// Reading several files at once is the common use. The dataset made from element `k`
    /// of iteration `n` runs its iteration `derive_seed(n, k)`. The cardinality becomes
    /// unknown. A cycle or block length of 0 is an error when iterating.
    ///
    /// ```
    /// use ferroflow_data::{Dataset, Interleave};
    /// // Three "files" of four records each, read two at a time, two records at a time.
    /// let ds = Dataset::range(0..3).interleave(Interleave::new(2).block_length(2), |e| {
    ///     let file = e[0].to_scalar::<i64>()?;
    ///     Ok(Dataset::range(10 * file..10 * file + 4))
    /// });
    /// let v: Vec<i64> = ds.iter().map(|e| e?[0].to_scalar::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![0, 1, 10, 11, 2, 3, 12, 13, 20, 21, 22, 23]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn interleave<F>(&self, options: impl Into<Interleave>, f: F) -> Dataset
    where
        F: Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
    {
        let Interleave {
            cycle_length,
            block_length,
        } = options.into();
        if cycle_length == 0 || block_length == 0 {
            return Dataset::failing("interleave", "cycle_length and block_length must be at least 1");
        }
        let upstream = self.element_maker();
        let f = Arc::new(f);
        Dataset::from_elements(
            Arc::new(move |n| {
                Box::new(Cycle {
                    input: upstream(n),
                    open: Vec::new(),
                    cycle_length,
                    open_count: 0,
                    slot: 0,
                    taken_in_block: 0,
                    block_length,
                    input_done: false,
                    opened: 0,
                    epoch: n,
                    f: f.clone(),
                })
            }),
            // TensorFlow's interleave and flat_map do not know theirs.
            Cardinality::Unknown,
        )
    }
}

/// Dtypes as TensorFlow writes them, comma-separated.
fn names(dtypes: impl Iterator<Item = DType>) -> String {
    dtypes.map(|d| d.name()).collect::<Vec<_>>().join(", ")
}

type OpenFn = Arc<dyn Fn(Element) -> Result<Dataset> + Send + Sync>;

/// TensorFlow's interleave loop: a ring of `cycle_length` slots, each holding an open
/// dataset's iterator; an empty slot is filled from the next input element before it is
/// read, and a slot whose dataset ends is emptied and the ring moves on. The slots are made
/// as they are first filled (a huge `cycle_length` allocates nothing up front), and once the
/// input ends the ring is as long as the slots made.
struct Cycle {
    input: BoxIter<Result<Element>>,
    open: Vec<Option<BoxIter<Result<Element>>>>,
    cycle_length: usize,
    open_count: usize,
    slot: usize,
    taken_in_block: usize,
    block_length: usize,
    input_done: bool,
    /// Input elements opened so far (the `k` of their iteration number).
    opened: u64,
    epoch: u64,
    f: OpenFn,
}

impl Cycle {
    fn advance(&mut self) {
        let ring = if self.input_done {
            self.open.len()
        } else {
            self.cycle_length
        };
        self.slot = (self.slot + 1) % ring.max(1);
        self.taken_in_block = 0;
    }
}

impl Iterator for Cycle {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        while !self.input_done || self.open_count > 0 {
            if self.slot >= self.open.len() {
                if self.input_done {
                    self.slot = 0;
                    continue;
                }
                self.open.push(None);
                continue;
            }
            if let Some(it) = self.open[self.slot].as_mut() {
                match it.next() {
                    // An error is passed on without using up the block (TensorFlow returns it
                    // before advancing its position).
                    Some(Err(err)) => return Some(Err(err)),
                    Some(Ok(item)) => {
                        self.taken_in_block += 1;
                        if self.taken_in_block == self.block_length {
                            self.advance();
                        }
                        return Some(Ok(item));
                    }
                    None => {
                        self.open[self.slot] = None;
                        self.open_count -= 1;
                        self.advance();
                    }
                }
            } else if !self.input_done {
                match self.input.next() {
                    None => self.input_done = true,
                    Some(Err(err)) => return Some(Err(err)),
                    Some(Ok(e)) => {
                        let k = self.opened;
                        self.opened += 1;
                        match (self.f)(e) {
                            Ok(ds) => {
                                self.open[self.slot] = Some(Box::new(ds.iter_epoch(derive_seed(self.epoch, k))));
                                self.open_count += 1;
                            }
                            Err(err) => return Some(Err(err)),
                        }
                    }
                }
            } else {
                self.advance();
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_tensor_core::Tensor;

    fn ints(ds: &Dataset) -> Vec<i64> {
        ds.iter().map(|e| e.unwrap()[0].to_scalar::<i64>().unwrap()).collect()
    }

    #[test]
    fn interleave_refills_slots_in_place_as_tensorflow() {
        // The example of TensorFlow's `interleave` documentation:
        // Dataset.range(1, 6).interleave(lambda x: Dataset.from_tensors(x).repeat(6),
        //     cycle_length=2, block_length=4)
        let ds = Dataset::range(1..6).interleave(Interleave::new(2).block_length(4), |e| {
            Ok(Dataset::from_tensors(e).repeat_n(6))
        });
        let tensorflow = [
            1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 3, 3, 4, 4, 5, 5, 5, 5, 5, 5,
        ];
        assert_eq!(ints(&ds), tensorflow);
        assert_eq!(ds.cardinality(), Cardinality::Unknown);
        // A dataset that ends inside its block hands the turn on at once.
        let uneven = Dataset::range(1..6).interleave(Interleave::new(2).block_length(2), |e| {
            let n = e[0].to_scalar::<i64>()?;
            Ok(Dataset::from_tensors(e).repeat_n(n as usize))
        });
        assert_eq!(ints(&uneven), vec![1, 2, 2, 3, 3, 3, 4, 4, 5, 5, 4, 4, 5, 5, 5]);
    }

    #[test]
    fn interleave_passes_errors_on_and_rejects_zero_lengths() {
        let ds = Dataset::range(0..3).flat_map(|e| {
            if e[0].to_scalar::<i64>()? == 1 {
                Err(Error::invalid("f", "bad file"))
            } else {
                Ok(Dataset::from_tensors(e))
            }
        });
        let out: Vec<_> = ds.iter().collect();
        assert_eq!(out.len(), 3);
        assert!(out[1].is_err());
        assert_eq!(out[2].as_ref().unwrap()[0].to_scalar::<i64>().unwrap(), 2);
        assert!(Dataset::range(0..3)
            .interleave(0, |e| Ok(Dataset::from_tensors(e)))
            .iter()
            .next()
            .unwrap()
            .is_err());
        // A huge cycle allocates nothing up front and is a plain concatenation here.
        let huge = Dataset::range(0..3).interleave(usize::MAX, |e| Ok(Dataset::from_tensors(e).repeat_n(2)));
        assert_eq!(ints(&huge), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn an_inner_error_does_not_use_up_a_block() {
        // Cycle 2, block 2, A = [error, 2, 3], B = [11, 12, 13]: TensorFlow gives
        // error, 2, 3, 11, 12, 13.
        let ds = Dataset::range(0..2).interleave(Interleave::new(2).block_length(2), |e| {
            let first = e[0].to_scalar::<i64>()? == 0;
            let base = if first { 0 } else { 10 };
            Ok(Dataset::range(base..base + 4).skip(1).map(move |x| {
                if first && x[0].to_scalar::<i64>()? == 1 {
                    Err(Error::invalid("read", "bad record"))
                } else {
                    Ok(x)
                }
            }))
        });
        let out: Vec<Result<i64>> = ds.iter().map(|e| e.and_then(|e| e[0].to_scalar::<i64>())).collect();
        assert!(out[0].is_err());
        let rest: Vec<i64> = out[1..].iter().map(|v| *v.as_ref().unwrap()).collect();
        assert_eq!(rest, vec![2, 3, 11, 12, 13]);
    }

    #[test]
    fn zip_ends_once_and_keeps_an_error_met_on_the_last_step() {
        let failing = Dataset::range(0..2).map(|e| {
            if e[0].to_scalar::<i64>()? == 1 {
                Err(Error::invalid("map", "bad"))
            } else {
                Ok(e)
            }
        });
        let z = Dataset::zip(&[failing, Dataset::range(0..1)]);
        let mut it = z.iter();
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err(), "the error, then the end");
        assert!(it.next().is_none());
        assert!(it.next().is_none());
    }

    #[test]
    fn zip_stops_with_the_shortest_and_follows_tensorflow_cardinality() {
        let a = Dataset::range(0..5);
        let b = Dataset::range(10..13);
        let z = Dataset::zip(&[a.clone(), b.clone()]);
        assert_eq!(z.cardinality(), Cardinality::Finite(3));
        let pairs: Vec<(i64, i64)> = z
            .iter()
            .map(|e| {
                let e = e.unwrap();
                (e[0].to_scalar().unwrap(), e[1].to_scalar().unwrap())
            })
            .collect();
        assert_eq!(pairs, vec![(0, 10), (1, 11), (2, 12)]);
        assert_eq!(
            Dataset::zip(&[a.repeat(), b.clone()]).cardinality(),
            Cardinality::Finite(3)
        );
        assert_eq!(
            Dataset::zip(&[a.repeat(), a.repeat()]).cardinality(),
            Cardinality::Infinite
        );
        assert_eq!(
            Dataset::zip(&[a.filter(|_| Ok(true)), b.repeat()]).cardinality(),
            Cardinality::Unknown
        );
    }

    #[test]
    fn zipped_shuffles_with_one_seed_stay_aligned() {
        let x = Dataset::range(0..20).shuffle(20, 3);
        let y = Dataset::range(0..20).map(|e| Ok(vec![e[0].neg()?])).shuffle(20, 3);
        for e in &Dataset::zip(&[x, y]).repeat_n(2) {
            let e = e.unwrap();
            assert_eq!(e[0].to_scalar::<i64>().unwrap(), -e[1].to_scalar::<i64>().unwrap());
        }
    }

    #[test]
    fn concatenate_checks_the_elements_and_sums_cardinality() {
        let a = Dataset::range(0..2);
        let floats = Dataset::from_tensor_slices(Tensor::new([1.0f32])).unwrap();
        let mixed: Vec<_> = a.concatenate(&floats).iter().collect();
        assert!(mixed[..2].iter().all(|e| e.is_ok()));
        let err = mixed[2].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("concatenate") && err.contains("(int64) then (float32)"),
            "{err}"
        );
        assert_eq!(a.concatenate(&a.repeat()).cardinality(), Cardinality::Infinite);
        assert_eq!(
            a.filter(|_| Ok(true)).concatenate(&a).cardinality(),
            Cardinality::Unknown
        );
        assert_eq!(ints(&a.concatenate(&a)), vec![0, 1, 0, 1]);
    }
}
