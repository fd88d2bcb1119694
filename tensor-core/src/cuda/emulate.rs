//! A CPU emulator for the generated kernels (tests only): every kernel source is compiled
//! by the host's C++ compiler against a small CUDA shim, and a [`Launch`] is performed
//! block by block, each block's threads as fibers that switch at `__syncthreads()`, with
//! `__shared__` memory shared by the block. The same plans the GPU runs, with the same
//! arguments and grid, are so checked against the CPU kernels without a GPU; NVRTC's
//! acceptance of the same sources is checked separately (`kernel_tests`).

use super::kernel::Kernel;
use super::launch::{Arg, Launch};
use crate::{DType, Data, Tensor, TensorSpec};
use ndarray::{ArrayD, IxDyn};
use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// What the kernels need of CUDA, for a C++17 compiler: thread and block indices, the
/// qualifiers, the bit casts the prelude uses, and `__syncthreads` as a fiber switch.
const SHIM: &str = r#"
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>
#include <ucontext.h>
using std::isnan;
using std::isinf;
struct ffemu_dim3 { unsigned x, y, z; };
static ffemu_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __shared__ static
static inline double __longlong_as_double(long long v) { double d; std::memcpy(&d, &v, 8); return d; }
static ucontext_t ffemu_sched;
static std::vector<ucontext_t> ffemu_fibers;
static std::vector<char> ffemu_stacks;
static std::vector<char> ffemu_done;
static unsigned ffemu_current;
static const std::function<void()>* ffemu_body;
static void __syncthreads() { swapcontext(&ffemu_fibers[ffemu_current], &ffemu_sched); }
static void ffemu_entry() { (*ffemu_body)(); ffemu_done[ffemu_current] = 1; }
static void ffemu_run(unsigned grid, unsigned block, const std::function<void()>& body) {
    const size_t stack = 64 * 1024;
    ffemu_fibers.resize(block);
    ffemu_stacks.resize(block * stack);
    ffemu_done.assign(block, 0);
    ffemu_body = &body;
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    for (unsigned b = 0; b < grid; ++b) {
        blockIdx = {b, 0, 0};
        for (unsigned t = 0; t < block; ++t) {
            ffemu_done[t] = 0;
            getcontext(&ffemu_fibers[t]);
            ffemu_fibers[t].uc_stack.ss_sp = &ffemu_stacks[t * stack];
            ffemu_fibers[t].uc_stack.ss_size = stack;
            ffemu_fibers[t].uc_link = &ffemu_sched;
            makecontext(&ffemu_fibers[t], ffemu_entry, 0);
        }
        // Round robin: each round runs every live thread up to its next barrier (or end),
        // so no thread passes a barrier before all have reached it.
        for (bool live = true; live;) {
            live = false;
            for (unsigned t = 0; t < block; ++t) {
                if (ffemu_done[t]) continue;
                ffemu_current = t;
                threadIdx = {t, 0, 0};
                swapcontext(&ffemu_sched, &ffemu_fibers[t]);
                live = live || !ffemu_done[t];
            }
        }
    }
}
"#;

/// The parameter types of the kernel `name` in `source`, in order.
fn parameter_types(source: &str, name: &str) -> Vec<String> {
    let head = format!("void {name}(");
    let start = source.find(&head).unwrap_or_else(|| panic!("{name}: no entry point")) + head.len();
    let end = start + source[start..].find(')').expect("parameter list ends");
    source[start..end]
        .split(',')
        .map(|p| {
            let p = p.trim();
            let cut = p.rfind(|c: char| c.is_whitespace()).expect("typed parameter");
            p[..cut].trim().to_string()
        })
        .collect()
}

/// Kernels compiled into one shared library.
struct Library {
    lib: libloading::Library,
    _dir: PathBuf,
}

/// Compiles `kernels` into a new shared library (its own directory, named by `tag`).
fn compile(kernels: &[Kernel], tag: usize) -> Library {
    let mut cpp = String::from(SHIM);
    for (i, kernel) in kernels.iter().enumerate() {
        let (name, source) = (kernel.name(), kernel.source());
        let call: Vec<String> = parameter_types(&source, &name)
            .iter()
            .enumerate()
            .map(|(k, t)| format!("*({t}*)p[{k}]"))
            .collect();
        cpp.push_str(&format!(
            "namespace k{i} {{\n{source}\nextern \"C\" void emu_{name}(unsigned grid, unsigned block, void** p) {{\n\
             ffemu_run(grid, block, [&]() {{ {name}({}); }});\n}}\n}}\n",
            call.join(", ")
        ));
    }
    let dir = std::env::temp_dir().join(format!("ferroflow-cuda-emulator-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("emulator directory");
    let (src, so) = (dir.join("kernels.cpp"), dir.join("kernels.so"));
    std::fs::write(&src, cpp).expect("write kernels.cpp");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    let status = std::process::Command::new(&cxx)
        .args(["-std=c++17", "-O1", "-shared", "-fPIC", "-w", "-o"])
        .arg(&so)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("the CUDA emulator needs a C++ compiler ({cxx}): {e}"));
    assert!(status.success(), "{cxx} failed on {}", src.display());
    // SAFETY: the library is ours, built just now; its initialisers only set up statics.
    let lib = unsafe { libloading::Library::new(&so) }.expect("load kernels.so");
    Library { lib, _dir: dir }
}

/// Every kernel of [`Kernel::all`], compiled once per test process.
fn library() -> &'static Library {
    static LIB: OnceLock<Library> = OnceLock::new();
    LIB.get_or_init(|| compile(&Kernel::all(), 0))
}

/// Libraries of kernels made at run time (fused programs), compiled by [`prepare`].
static EXTRA: Mutex<Vec<(Vec<String>, &'static Library)>> = Mutex::new(Vec::new());

/// Compiles those of `kernels` that no library holds yet into one more library (one
/// compiler run for many generated kernels; [`run`] compiles a missing kernel alone).
pub(crate) fn prepare(kernels: &[Kernel]) {
    let mut extra = EXTRA.lock().unwrap_or_else(|p| p.into_inner());
    let all = Kernel::all();
    let mut missing: Vec<Kernel> = Vec::new();
    for k in kernels {
        let name = k.name();
        let known = all.iter().any(|a| a.name() == name)
            || extra.iter().any(|(names, _)| names.contains(&name))
            || missing.iter().any(|m| m.name() == name);
        if !known {
            missing.push(*k);
        }
    }
    if !missing.is_empty() {
        let lib: &'static Library = Box::leak(Box::new(compile(&missing, extra.len() + 1)));
        extra.push((missing.iter().map(|k| k.name()).collect(), lib));
    }
}

/// The library holding `kernel`, compiled now if none does.
fn library_of(kernel: Kernel) -> &'static Library {
    let name = kernel.name();
    let found = |extra: &[(Vec<String>, &'static Library)]| {
        extra
            .iter()
            .find(|(names, _)| names.contains(&name))
            .map(|(_, lib)| *lib)
    };
    if let Some(lib) = found(&EXTRA.lock().unwrap_or_else(|p| p.into_inner())) {
        return lib;
    }
    if !matches!(kernel, Kernel::Fused(..)) {
        return library();
    }
    prepare(&[kernel]);
    found(&EXTRA.lock().unwrap_or_else(|p| p.into_inner())).expect("just compiled")
}

/// The elements of a host tensor as the bytes a device buffer would hold.
fn bytes(data: &Data) -> Vec<u8> {
    match data {
        Data::F32(a) => a.iter().flat_map(|v| v.to_ne_bytes()).collect(),
        Data::F64(a) => a.iter().flat_map(|v| v.to_ne_bytes()).collect(),
        Data::I32(a) => a.iter().flat_map(|v| v.to_ne_bytes()).collect(),
        Data::I64(a) => a.iter().flat_map(|v| v.to_ne_bytes()).collect(),
        Data::Bool(a) => a.iter().map(|&v| v as u8).collect(),
    }
}

/// Device bytes back as host data of `spec`.
fn data(spec: &TensorSpec, b: &[u8]) -> Data {
    let dims = IxDyn(spec.shape.dims());
    let n: usize = spec.shape.dims().iter().product();
    fn arr<T: crate::Element, const W: usize>(b: &[u8], n: usize, dims: IxDyn, f: fn([u8; W]) -> T) -> Data {
        let v: Vec<T> = b
            .chunks_exact(W)
            .take(n)
            .map(|c| f(c.try_into().expect("width")))
            .collect();
        Data::from_owned(ArrayD::from_shape_vec(dims, v).expect("size"))
    }
    match spec.dtype {
        DType::F32 => arr(b, n, dims, f32::from_ne_bytes),
        DType::F64 => arr(b, n, dims, f64::from_ne_bytes),
        DType::I32 => arr(b, n, dims, i32::from_ne_bytes),
        DType::I64 => arr(b, n, dims, i64::from_ne_bytes),
        DType::Bool => arr(b, n, dims, |[v]: [u8; 1]| v != 0),
    }
}

/// Performs `launch` on the CPU with host `inputs`; the outputs as host data of `out`.
pub(crate) fn run(launch: &Launch, inputs: &[&Tensor], out: &[TensorSpec]) -> Vec<Data> {
    static SERIAL: Mutex<()> = Mutex::new(()); // the shim's scheduler is global
    let lib = library_of(launch.kernel);
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let input_bytes: Vec<Vec<u8>> = inputs.iter().map(|t| bytes(t.data().expect("host input"))).collect();
    let mut outputs: Vec<Vec<u8>> = launch
        .outputs
        .iter()
        // Unwritten elements show up as garbage, not as plausible zeros.
        .map(|&(dtype, len)| vec![0xCD; len.max(1) * dtype.size_of()])
        .collect();
    let input_ptrs: Vec<*const u8> = input_bytes.iter().map(|b| b.as_ptr()).collect();
    let output_ptrs: Vec<*mut u8> = outputs.iter_mut().map(|b| b.as_mut_ptr()).collect();
    let mut params: Vec<*mut c_void> = Vec::new();
    for arg in &launch.args {
        let p: *const c_void = match arg {
            Arg::Input(i) => (&input_ptrs[*i] as *const *const u8).cast(),
            Arg::Output(j) => (&output_ptrs[*j] as *const *mut u8).cast(),
            Arg::U64(v) => (v as *const u64).cast(),
            Arg::F32(v) => (v as *const f32).cast(),
            Arg::F64(v) => (v as *const f64).cast(),
            Arg::I32(v) => (v as *const i32).cast(),
            Arg::I64(v) => (v as *const i64).cast(),
            Arg::U8(v) => (v as *const u8).cast(),
            Arg::Geometry(v) => (v as *const _ as *const c_void).cast(),
            Arg::Reduction(v) => (v as *const _ as *const c_void).cast(),
            Arg::Lines(v) => (v as *const _ as *const c_void).cast(),
            Arg::Layout(v) => (v as *const _ as *const c_void).cast(),
            Arg::Concat(v) => (v as *const _ as *const c_void).cast(),
            Arg::Window(v) => (v as *const _ as *const c_void).cast(),
        };
        params.push(p.cast_mut());
    }
    if launch.grid > 0 {
        let symbol = format!("emu_{}\0", launch.kernel.name());
        // SAFETY: `emu_<name>` has this signature; each parameter pointer points at a value
        // of the type the kernel declares (the plan's contract), alive for the call.
        unsafe {
            let f: libloading::Symbol<unsafe extern "C" fn(u32, u32, *mut *mut c_void)> =
                lib.lib.get(symbol.as_bytes()).expect("emulated kernel");
            f(launch.grid, launch.block, params.as_mut_ptr());
        }
    }
    outputs.iter().zip(out).map(|(b, spec)| data(spec, b)).collect()
}
