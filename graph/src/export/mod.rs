//! Looking at graphs: Graphviz DOT and TensorBoard event files (the text dump is the
//! graph's `Display`).

mod dot;
pub mod events;
mod summary;

pub use dot::to_dot;
pub use summary::SummaryWriter;
