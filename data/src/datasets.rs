//! Small real datasets shipped inside the crate (see `assets/README.md` for their sources),
//! and a seeded, stratified train/test split.

use crate::csv::{parse_csv, CsvOptions};
use crate::rng::SplitMix64;
use crate::rows::take_rows;
use ferroflow_tensor_core::{DType, Error, Result, Tensor};
use std::collections::BTreeMap;
use std::io::Read;

static DIGITS_CSV_GZ: &[u8] = include_bytes!("../assets/digits.csv.gz");
static IRIS_CSV: &str = include_str!("../assets/iris.csv");

/// A labelled dataset: features, integer class labels and the class names.
#[derive(Debug, Clone)]
pub struct Labeled {
    /// Features, float32 `[examples, features]`.
    pub x: Tensor,
    /// Class ids, int32 `[examples]`.
    pub y: Tensor,
    /// The name of each class id.
    pub class_names: Vec<String>,
}

/// How [`Labeled::split`] divides a dataset: `Split::test_fraction(0.2).seed(0)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    test_fraction: f64,
    seed: u64,
}

impl Split {
    /// Puts `fraction` (in `(0, 1)`) of every class in the test set (seed 0).
    pub fn test_fraction(fraction: f64) -> Self {
        Split {
            test_fraction: fraction,
            seed: 0,
        }
    }

    /// The seed of the draw: the same seed gives the same split.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Labeled {
    /// The number of examples.
    pub fn len(&self) -> usize {
        self.x.dims()[0]
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// A stratified train/test split: each class contributes the same fraction of its
    /// examples to the test set (rounded), drawn with the seed; both parts come shuffled.
    ///
    /// ```
    /// use ferroflow_data::{datasets, Split};
    /// let iris = datasets::iris()?;
    /// let (train, test) = iris.split(Split::test_fraction(0.2).seed(1))?;
    /// assert_eq!((train.len(), test.len()), (120, 30));
    /// let per_class = |d: &ferroflow_data::Labeled, c: i32| d.y.to_vec::<i32>().unwrap().iter().filter(|&&y| y == c).count();
    /// assert_eq!((per_class(&test, 0), per_class(&test, 1), per_class(&test, 2)), (10, 10, 10));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn split(&self, split: Split) -> Result<(Labeled, Labeled)> {
        let labels = self.y.cast(DType::I64)?.to_vec::<i64>()?;
        let (train, test) = stratified_split(&labels, split)?;
        let part = |idx: &[usize]| -> Result<Labeled> {
            Ok(Labeled {
                x: take_rows(&self.x, idx)?,
                y: take_rows(&self.y, idx)?,
                class_names: self.class_names.clone(),
            })
        };
        Ok((part(&train)?, part(&test)?))
    }
}

/// Indices of a stratified split of `labels`: `(train, test)`, each shuffled.
pub fn stratified_split(labels: &[i64], split: Split) -> Result<(Vec<usize>, Vec<usize>)> {
    let f = split.test_fraction;
    if !(f > 0.0 && f < 1.0) {
        return Err(Error::invalid(
            "split",
            format!("test_fraction must be in (0, 1), got {f}"),
        ));
    }
    let mut by_class: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &y) in labels.iter().enumerate() {
        by_class.entry(y).or_default().push(i);
    }
    let mut rng = SplitMix64::new(split.seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for members in by_class.values_mut() {
        rng.shuffle(members);
        let k = (members.len() as f64 * f).round() as usize;
        test.extend_from_slice(&members[..k]);
        train.extend_from_slice(&members[k..]);
    }
    rng.shuffle(&mut train);
    rng.shuffle(&mut test);
    Ok((train, test))
}

/// The handwritten digits (1797 8×8 images, pixel values 0..16 as float32 `[1797, 64]`;
/// labels 0..9). Alpaydin & Kaynak, UCI ML Repository (1998), CC BY 4.0.
///
/// ```
/// let d = ferroflow_data::datasets::digits()?;
/// assert_eq!(d.x.dims(), &[1797, 64]);
/// assert_eq!(d.num_classes(), 10);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn digits() -> Result<Labeled> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .map_err(|e| Error::external("digits", e))?;
    let table = parse_csv(&text, &CsvOptions::new())?;
    Ok(Labeled {
        x: table.columns(0..64)?,
        y: table.column(64)?.cast(DType::I32)?,
        class_names: (0..10).map(|d| d.to_string()).collect(),
    })
}

/// Fisher's iris flowers (150 examples of 4 measurements in cm, float32 `[150, 4]`; labels
/// 0..2 for setosa, versicolor, virginica). Fisher (1936), UCI ML Repository, CC BY 4.0.
pub fn iris() -> Result<Labeled> {
    let meta: Vec<&str> = IRIS_CSV.lines().next().unwrap_or_default().split(',').collect();
    let table = parse_csv(IRIS_CSV, &CsvOptions::new().skip_lines(1))?;
    Ok(Labeled {
        x: table.columns(0..4)?,
        y: table.column(4)?.cast(DType::I32)?,
        class_names: meta.iter().skip(2).map(|s| s.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_iris_load_with_their_documented_shapes() -> Result<()> {
        let d = digits()?;
        assert_eq!(d.y.dims(), &[1797]);
        let pixels = d.x.to_vec::<f32>()?;
        assert!(pixels.iter().all(|&p| (0.0..=16.0).contains(&p)));
        let iris = iris()?;
        assert_eq!(iris.x.dims(), &[150, 4]);
        assert_eq!(iris.class_names, ["setosa", "versicolor", "virginica"]);
        assert_eq!(iris.x.to_vec::<f32>()?[..4], [5.1, 3.5, 1.4, 0.2]);
        Ok(())
    }

    #[test]
    fn splits_are_stratified_disjoint_and_seeded() -> Result<()> {
        let labels: Vec<i64> = (0..100).map(|i| if i < 80 { 0 } else { 1 }).collect();
        let (train, test) = stratified_split(&labels, Split::test_fraction(0.25).seed(3))?;
        assert_eq!(test.iter().filter(|&&i| labels[i] == 1).count(), 5);
        assert_eq!(test.len(), 25);
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(stratified_split(&labels, Split::test_fraction(0.25).seed(3))?.1, test);
        assert_ne!(stratified_split(&labels, Split::test_fraction(0.25).seed(4))?.1, test);
        assert!(stratified_split(&labels, Split::test_fraction(1.0)).is_err());
        Ok(())
    }
}
