//! Global switches, as `tf.config`.

use std::sync::atomic::{AtomicBool, Ordering};

static RUN_EAGERLY: AtomicBool = AtomicBool::new(false);

/// `tf.config.run_functions_eagerly`: with `true`, every [`crate::Function`] call runs its
/// closure eagerly (for debugging: prints, breakpoints and errors happen at each call);
/// `false` restores graph execution.
pub fn run_functions_eagerly(enable: bool) {
    RUN_EAGERLY.store(enable, Ordering::SeqCst);
}

/// Whether functions currently run eagerly (`tf.config.functions_run_eagerly`).
pub fn functions_run_eagerly() -> bool {
    RUN_EAGERLY.load(Ordering::SeqCst)
}
