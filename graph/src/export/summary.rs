//! [`SummaryWriter`]: `tf.summary.create_file_writer` for graphs and scalars.

use super::events::{file_version_event, frame_record, graph_event, scalar_event};
use crate::ir::Graph;
use crate::ConcreteFunction;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Writes a TensorBoard event file into a log directory: the Graphs dashboard reads
/// [`SummaryWriter::graph`], the Scalars dashboard [`SummaryWriter::scalar`].
///
/// ```no_run
/// use ferroflow_graph::export::SummaryWriter;
/// let mut w = SummaryWriter::create("logs/run1")?;
/// for step in 0..10 {
///     w.scalar("loss", 1.0 / (1.0 + step as f32), step)?;
/// }
/// w.flush()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct SummaryWriter {
    path: PathBuf,
    file: File,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl SummaryWriter {
    /// Creates `logdir` if needed and a new event file in it
    /// (`events.out.tfevents.<secs>.<host>.<pid>.<n>.v2`), starting with the file-version
    /// event.
    pub fn create(logdir: impl AsRef<Path>) -> io::Result<Self> {
        std::fs::create_dir_all(&logdir)?;
        let secs = now() as u64;
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("events.out.tfevents.{secs:010}.{host}.{}.{n}.v2", std::process::id());
        let path = logdir.as_ref().join(name);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut w = SummaryWriter { path, file };
        w.write(&file_version_event(now()))?;
        Ok(w)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, payload: &[u8]) -> io::Result<()> {
        // Whole records only: a reader never sees half a record we meant to write.
        self.file.write_all(&frame_record(payload))
    }

    /// Writes a concrete function's traced graph for the Graphs dashboard.
    pub fn graph(&mut self, f: &ConcreteFunction) -> io::Result<()> {
        self.graph_of(f.graph())
    }

    /// Writes any graph (for example an optimised one).
    pub fn graph_of(&mut self, g: &Graph) -> io::Result<()> {
        self.write(&graph_event(now(), g))
    }

    /// Writes one point of the curve `tag` (`tf.summary.scalar`).
    pub fn scalar(&mut self, tag: &str, value: f32, step: i64) -> io::Result<()> {
        self.write(&scalar_event(now(), step, tag, value))
    }

    /// Flushes to disk so TensorBoard sees the events.
    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.sync_data()
    }
}
