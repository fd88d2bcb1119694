//! Seeded random tensors in TensorFlow's spirit: a global seed (`set_seed`) plus optional
//! per-op seeds, drawn from the counter-based Philox-4x32-10 generator.
//!
//! Every element is a pure function of (global seed, op seed, call count, element index), so
//! the same seeds give the same numbers on any thread count. As in TensorFlow: with a global
//! seed and no op seed, each call takes the next op seed from a counter that `set_seed`
//! resets; with an op seed, repeated calls with the same seeds continue the sequence; with
//! neither, numbers are seeded from the clock. The `stateless_*` draws depend on their seed
//! alone and repeat at every call (`tf.random.stateless_*`, and how Keras 3's seeded
//! initializers draw).

use crate::{DType, Error, Result, Tensor};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// TensorFlow's default graph-level seed when only an op seed is given.
const DEFAULT_GLOBAL_SEED: u64 = 87_654_321;

struct SeedState {
    global: Option<u64>,
    next_op_seed: u64,
    calls: BTreeMap<(u64, u64), u64>,
}

static STATE: Mutex<SeedState> = Mutex::new(SeedState {
    global: None,
    next_op_seed: 0,
    calls: BTreeMap::new(),
});

fn state() -> std::sync::MutexGuard<'static, SeedState> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// `tf.random.set_seed`: sets the global seed and restarts the op-seed counter and the
/// per-seed call counts, so a program replays the same numbers.
pub fn set_seed(seed: u64) {
    let mut s = state();
    s.global = Some(seed);
    s.next_op_seed = 0;
    s.calls.clear();
}

/// The generator's whole state: the global seed, the op-seed counter and the call count of
/// every (global, op) seed pair. Saving it and restoring it later makes the following random
/// numbers exactly those the saved program would have drawn next (how a resumed training run
/// repeats an uninterrupted one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RandomState {
    /// The global seed, if one was set.
    pub global: Option<u64>,
    /// The last op seed handed out under the global seed.
    pub next_op_seed: u64,
    /// Calls made so far per `(global seed, op seed)`.
    pub calls: Vec<(u64, u64, u64)>,
}

/// A snapshot of the generator's state.
///
/// ```
/// use ferroflow_tensor_core::random::{self, Normal};
/// random::set_seed(3);
/// let saved = random::get_state();
/// let a = random::normal(&[2], Normal::default())?;
/// random::set_state(&saved);
/// let b = random::normal(&[2], Normal::default())?;
/// assert_eq!(a.to_vec::<f32>()?, b.to_vec::<f32>()?);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn get_state() -> RandomState {
    let s = state();
    RandomState {
        global: s.global,
        next_op_seed: s.next_op_seed,
        calls: s.calls.iter().map(|(&(g, o), &c)| (g, o, c)).collect(),
    }
}

/// Restores a state from [`get_state`].
pub fn set_state(saved: &RandomState) {
    let mut s = state();
    s.global = saved.global;
    s.next_op_seed = saved.next_op_seed;
    s.calls = saved.calls.iter().map(|&(g, o, c)| ((g, o), c)).collect();
}

/// Resolves (global seed, op seed) and the call count for one random op.
fn resolve(op_seed: Option<u64>) -> (u64, u64, u64) {
    let mut s = state();
    let (g, o) = match (s.global, op_seed) {
        (Some(g), Some(o)) => (g, o),
        (Some(g), None) => {
            s.next_op_seed += 1;
            (g, s.next_op_seed)
        }
        (None, Some(o)) => (DEFAULT_GLOBAL_SEED, o),
        (None, None) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            (t, t.rotate_left(17) ^ 0x9E37_79B9_7F4A_7C15)
        }
    };
    let c = s.calls.entry((g, o)).or_insert(0);
    let call = *c;
    *c += 1;
    (g, o, call)
}

/// One Philox-4x32-10 block: four 32-bit outputs for a 128-bit counter and 64-bit key.
pub fn philox4x32(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    const M0: u64 = 0xD251_1F53;
    const M1: u64 = 0xCD9E_8D57;
    const W0: u32 = 0x9E37_79B9;
    const W1: u32 = 0xBB67_AE85;
    let (mut c, mut k) = (counter, key);
    for _ in 0..10 {
        let p0 = M0 * c[0] as u64;
        let p1 = M1 * c[2] as u64;
        c = [
            ((p1 >> 32) as u32) ^ c[1] ^ k[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ c[3] ^ k[1],
            p0 as u32,
        ];
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    c
}

/// A stream of random words for one op call: element `i`, attempt `j` → four words.
struct Stream {
    key: [u32; 2],
    hi: [u32; 2],
}

impl Stream {
    fn new(global: u64, op: u64, call: u64) -> Self {
        // Mix the op seed and call count into the counter's high words; the global seed is
        // the key.
        let mixed = op.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ call;
        Stream {
            key: [global as u32, (global >> 32) as u32],
            hi: [mixed as u32, (mixed >> 32) as u32],
        }
    }

    fn block(&self, i: u64, attempt: u32) -> [u32; 4] {
        let lo = (i as u32) ^ attempt.rotate_left(24);
        let mid = (i >> 32) as u32 ^ attempt;
        philox4x32([lo, mid, self.hi[0], self.hi[1]], self.key)
    }
}

/// A uniform f64 in [0, 1) from two words (53 random bits).
fn unit_f64(a: u32, b: u32) -> f64 {
    let bits = ((a as u64) << 21) ^ (b as u64 >> 11);
    (bits & ((1u64 << 53) - 1)) as f64 / (1u64 << 53) as f64
}

/// A standard normal from one block (Box–Muller).
fn normal_from(w: [u32; 4]) -> f64 {
    let u1 = unit_f64(w[0], w[1]).max(f64::MIN_POSITIVE);
    let u2 = unit_f64(w[2], w[3]);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The parameters of [`normal`] and [`truncated_normal`] (`tf.random.normal(shape, mean,
/// stddev, dtype, seed)`): a standard normal in float32 drawn from the global seed by
/// default.
///
/// ```
/// use ferroflow_tensor_core::{random::{self, Normal}, DType};
/// let a = random::normal(&[2, 3], Normal::default().seed(7))?;
/// let b = random::normal(&[2, 3], Normal::new(1.0, 0.5).dtype(DType::F64).seed(7))?;
/// assert_eq!((a.dtype(), b.dtype()), (DType::F32, DType::F64));
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normal {
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stddev: f64,
    /// Output dtype (a float dtype).
    pub dtype: DType,
    /// The op seed (`None`: take the next one from the global seed, as TensorFlow).
    pub seed: Option<u64>,
}

impl Normal {
    /// A normal distribution of this mean and standard deviation, float32, unseeded.
    pub fn new(mean: f64, stddev: f64) -> Self {
        Normal {
            mean,
            stddev,
            dtype: DType::F32,
            seed: None,
        }
    }

    /// The output dtype.
    pub fn dtype(self, dtype: DType) -> Self {
        Normal { dtype, ..self }
    }

    /// The op seed: the same global and op seeds replay the same numbers.
    pub fn seed(self, seed: u64) -> Self {
        Normal {
            seed: Some(seed),
            ..self
        }
    }

    fn check(&self, op: &'static str) -> Result<()> {
        if !self.dtype.is_float() {
            return Err(Error::dtypes(op, &[self.dtype], "needs a float dtype"));
        }
        if !(self.mean.is_finite() && self.stddev >= 0.0 && self.stddev.is_finite()) {
            return Err(Error::invalid(
                op,
                format!(
                    "needs a finite mean and a finite, non-negative stddev, got mean={} stddev={}",
                    self.mean, self.stddev
                ),
            ));
        }
        Ok(())
    }
}

impl Default for Normal {
    fn default() -> Self {
        Normal::new(0.0, 1.0)
    }
}

/// The parameters of [`uniform`] (`tf.random.uniform(shape, minval, maxval, dtype, seed)`):
/// `[0, 1)` in float32 drawn from the global seed by default.
///
/// ```
/// use ferroflow_tensor_core::{random::{self, Uniform}, DType};
/// let u = random::uniform(&[100], Uniform::new(-1.0, 1.0).seed(3))?;
/// assert!(u.to_vec::<f32>()?.iter().all(|v| (-1.0..1.0).contains(v)));
/// let dice = random::uniform(&[10], Uniform::new(1.0, 7.0).dtype(DType::I32))?;
/// assert!(dice.to_vec::<i32>()?.iter().all(|v| (1..7).contains(v)));
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uniform {
    /// Lower bound (inclusive).
    pub minval: f64,
    /// Upper bound (exclusive).
    pub maxval: f64,
    /// Output dtype (numeric).
    pub dtype: DType,
    /// The op seed (`None`: take the next one from the global seed, as TensorFlow).
    pub seed: Option<u64>,
}

impl Uniform {
    /// Values in `[minval, maxval)`, float32, unseeded.
    pub fn new(minval: f64, maxval: f64) -> Self {
        Uniform {
            minval,
            maxval,
            dtype: DType::F32,
            seed: None,
        }
    }

    /// The output dtype (integers draw whole numbers in the range).
    pub fn dtype(self, dtype: DType) -> Self {
        Uniform { dtype, ..self }
    }

    /// The op seed: the same global and op seeds replay the same numbers.
    pub fn seed(self, seed: u64) -> Self {
        Uniform {
            seed: Some(seed),
            ..self
        }
    }
}

impl Default for Uniform {
    fn default() -> Self {
        Uniform::new(0.0, 1.0)
    }
}

/// The element count of `shape`, checked against memory for the f64 values drawn first.
fn check_shape(op: &'static str, shape: &[usize]) -> Result<usize> {
    crate::alloc::checked_elements(op, shape, DType::F64)
}

/// `tf.random.uniform`: floats in `[minval, maxval)`, or whole numbers in `[minval, maxval)`
/// for integer dtypes.
///
/// ```
/// use ferroflow_tensor_core::random::{self, Uniform};
/// random::set_seed(1);
/// let a = random::uniform(&[3], Uniform::default())?;
/// random::set_seed(1);
/// assert_eq!(a.to_vec::<f32>()?, random::uniform(&[3], Uniform::default())?.to_vec::<f32>()?);
/// assert!(random::uniform(&[2], Uniform::new(1.0, 1.0)).is_err());
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn uniform(shape: &[usize], params: Uniform) -> Result<Tensor> {
    uniform_with(shape, params, resolve)
}

/// [`uniform`] that depends on `seed` alone: the same numbers at every call, whatever the
/// global seed (`params.seed` is not used).
///
/// ```
/// use ferroflow_tensor_core::random::{self, Uniform};
/// let a = random::stateless_uniform(&[3], 7, Uniform::default())?;
/// let b = random::stateless_uniform(&[3], 7, Uniform::default())?;
/// assert_eq!(a.to_vec::<f32>()?, b.to_vec::<f32>()?);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn stateless_uniform(shape: &[usize], seed: u64, params: Uniform) -> Result<Tensor> {
    uniform_with(shape, params, |_| stateless(seed))
}

/// The (global seed, op seed, call) of a stateless draw: fixed by its seed, as the first
/// call of a seeded op under no global seed.
fn stateless(seed: u64) -> (u64, u64, u64) {
    (DEFAULT_GLOBAL_SEED, seed, 0)
}

fn uniform_with(
    shape: &[usize],
    params: Uniform,
    seeds: impl FnOnce(Option<u64>) -> (u64, u64, u64),
) -> Result<Tensor> {
    let Uniform {
        minval,
        maxval,
        dtype,
        seed,
    } = params;
    let n = check_shape("random_uniform", shape)?;
    if minval.partial_cmp(&maxval) != Some(std::cmp::Ordering::Less)
        || !minval.is_finite()
        || !maxval.is_finite()
        || dtype == DType::Bool
    {
        return Err(Error::invalid(
            "random_uniform",
            format!("needs finite minval < maxval and a numeric dtype, got [{minval}, {maxval}) {dtype}"),
        ));
    }
    let (g, o, c) = seeds(seed);
    let st = Stream::new(g, o, c);
    let v: Vec<f64> = (0..n as u64)
        .map(|i| {
            let w = st.block(i, 0);
            if dtype.is_int() {
                let range = (maxval.floor() - minval.ceil()).max(1.0) as u64;
                minval.ceil() + ((((w[0] as u64) << 32) | w[1] as u64) % range) as f64
            } else {
                let u = unit_f64(w[0], w[1]);
                let x = minval + (maxval - minval) * u;
                if dtype == DType::F32 && x as f32 >= maxval as f32 {
                    minval
                } else {
                    x
                }
            }
        })
        .collect();
    Tensor::from_vec(v, shape)?.cast(dtype)
}

/// `tf.random.normal`.
///
/// ```
/// use ferroflow_tensor_core::random::{self, Normal};
/// let x = random::normal(&[1000], Normal::new(5.0, 2.0).seed(1))?.to_vec::<f32>()?;
/// let mean = x.iter().sum::<f32>() / 1000.0;
/// assert!((mean - 5.0).abs() < 0.3);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn normal(shape: &[usize], params: Normal) -> Result<Tensor> {
    normal_with(shape, params, resolve)
}

/// [`normal`] that depends on `seed` alone (see [`stateless_uniform`]).
pub fn stateless_normal(shape: &[usize], seed: u64, params: Normal) -> Result<Tensor> {
    normal_with(shape, params, |_| stateless(seed))
}

fn normal_with(shape: &[usize], params: Normal, seeds: impl FnOnce(Option<u64>) -> (u64, u64, u64)) -> Result<Tensor> {
    let n = check_shape("random_normal", shape)?;
    params.check("random_normal")?;
    let (g, o, c) = seeds(params.seed);
    let st = Stream::new(g, o, c);
    let v: Vec<f64> = (0..n as u64)
        .map(|i| params.mean + params.stddev * normal_from(st.block(i, 0)))
        .collect();
    Tensor::from_vec(v, shape)?.cast(params.dtype)
}

/// `tf.random.truncated_normal`: normal values, redrawn while more than two standard
/// deviations from the mean.
///
/// ```
/// use ferroflow_tensor_core::random::{self, Normal};
/// let x = random::truncated_normal(&[500], Normal::default().seed(2))?.to_vec::<f32>()?;
/// assert!(x.iter().all(|v| v.abs() <= 2.0));
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn truncated_normal(shape: &[usize], params: Normal) -> Result<Tensor> {
    truncated_normal_with(shape, params, resolve)
}

/// [`truncated_normal`] that depends on `seed` alone (see [`stateless_uniform`]).
pub fn stateless_truncated_normal(shape: &[usize], seed: u64, params: Normal) -> Result<Tensor> {
    truncated_normal_with(shape, params, |_| stateless(seed))
}

fn truncated_normal_with(
    shape: &[usize],
    params: Normal,
    seeds: impl FnOnce(Option<u64>) -> (u64, u64, u64),
) -> Result<Tensor> {
    let n = check_shape("truncated_normal", shape)?;
    params.check("truncated_normal")?;
    let (g, o, c) = seeds(params.seed);
    let st = Stream::new(g, o, c);
    let v: Vec<f64> = (0..n as u64)
        .map(|i| {
            let mut attempt = 0u32;
            loop {
                let z = normal_from(st.block(i, attempt));
                // P(|z| > 2) ≈ 4.6%: a hundred tries never all fail in practice; clamp then.
                if z.abs() <= 2.0 || attempt == 100 {
                    return params.mean + params.stddev * z.clamp(-2.0, 2.0);
                }
                attempt += 1;
            }
        })
        .collect();
    Tensor::from_vec(v, shape)?.cast(params.dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The seed state is process-global; keep every assertion that depends on it in one test.
    #[test]
    fn seeds_replay_and_distributions_look_right() {
        set_seed(42);
        let a = uniform(&[1000], Uniform::default()).unwrap().to_vec::<f32>().unwrap();
        let b = normal(&[4000], Normal::new(1.0, 2.0).dtype(DType::F64).seed(7))
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        let b2 = normal(&[4000], Normal::new(1.0, 2.0).dtype(DType::F64).seed(7))
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        set_seed(42);
        let a2 = uniform(&[1000], Uniform::default()).unwrap().to_vec::<f32>().unwrap();
        let b3 = normal(&[4000], Normal::new(1.0, 2.0).dtype(DType::F64).seed(7))
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        assert_eq!(a, a2);
        assert_eq!(b, b3);
        assert_ne!(b, b2, "a second call with the same seeds continues the sequence");
        assert!(a.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = b.iter().sum::<f64>() / b.len() as f64;
        let var = b.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / b.len() as f64;
        assert!(
            (mean - 1.0).abs() < 0.1 && (var.sqrt() - 2.0).abs() < 0.1,
            "{mean} {var}"
        );
        let t = truncated_normal(&[2000], Normal::default().seed(1))
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert!(t.iter().all(|x| x.abs() <= 2.0));
        let ints = uniform(&[500], Uniform::new(0.0, 10.0).dtype(DType::I32).seed(3))
            .unwrap()
            .to_vec::<i32>()
            .unwrap();
        assert!(ints.iter().all(|&x| (0..10).contains(&x)) && ints.contains(&9));
        assert!(uniform(&[2], Uniform::new(1.0, 1.0)).is_err());
        assert!(normal(&[2], Normal::default().dtype(DType::I32)).is_err());
        assert!(normal(&[2], Normal::new(0.0, f64::NAN)).is_err());
        assert!(normal(&[1 << 40], Normal::default()).is_err());
    }

    #[test]
    fn philox_known_answer() {
        // Random123's published known-answer test for philox4x32_10 with zero counter and key.
        assert_eq!(
            philox4x32([0, 0, 0, 0], [0, 0]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
    }
}
