//! Progress output as Keras prints it: a live bar per epoch (verbose 1, drawn with
//! `indicatif`), or one line per epoch (verbose 2).

use super::Callback;
use crate::model::{FitParams, Logs, Model};
use ferroflow_tensor_core::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How much `fit`, `evaluate` and `predict` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbose {
    /// Nothing (0).
    Silent,
    /// A progress bar per epoch (1).
    Bar,
    /// One line per epoch (2).
    Line,
    /// A bar when standard output is a terminal, else one line per epoch without control
    /// characters.
    #[default]
    Auto,
}

impl From<u8> for Verbose {
    /// Keras' numbers: 0 silent, 1 a bar, 2 (or more) a line per epoch.
    fn from(v: u8) -> Self {
        match v {
            0 => Verbose::Silent,
            1 => Verbose::Bar,
            _ => Verbose::Line,
        }
    }
}

impl Verbose {
    /// 0, 1 or 2, resolving `Auto` by whether standard output is a terminal.
    pub fn resolve(self) -> u8 {
        match self {
            Verbose::Silent => 0,
            Verbose::Bar => 1,
            Verbose::Line => 2,
            Verbose::Auto => {
                if std::io::stdout().is_terminal() {
                    1
                } else {
                    2
                }
            }
        }
    }
}

/// A metric value as Keras prints it (see [`ProgbarLogger::format_value`]); verbose 2 tests
/// the value itself rather than its magnitude, as Keras does (`by_magnitude` false).
fn format_value(v: f64, by_magnitude: bool) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let large = if by_magnitude { v.abs() > 1e-3 } else { v > 1e-3 };
    if large {
        return format!("{v:.4}");
    }
    let s = format!("{v:.4e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// Keras' per-step time: `2s/step`, `35ms/step`, `528us/step`.
fn format_step_time(seconds: f64) -> String {
    if seconds >= 1.0 || seconds == 0.0 {
        format!("{seconds:.0}s/step")
    } else if seconds >= 1e-3 {
        format!("{:.0}ms/step", seconds * 1e3)
    } else {
        format!("{:.0}us/step", seconds * 1e6)
    }
}

/// Keras' time left: `14s`, `2:04`, `13:53:19`.
fn format_eta(seconds: f64) -> String {
    let s = seconds as u64;
    if seconds > 3600.0 {
        format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
    } else if seconds > 60.0 {
        format!("{}:{:02}", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn count(current: usize, target: usize) -> String {
    let width = target.to_string().len();
    format!("{current:>width$}/{target}")
}

/// The progress callback `fit`, `evaluate` and `predict` add when verbose is 1 or 2
/// (`keras.callbacks.ProgbarLogger`). Output goes to standard output, or to any writer
/// (`to_writer`); the live bar is drawn only on a terminal, so text written elsewhere has no
/// control characters.
pub struct ProgbarLogger {
    verbose: u8,
    out: Box<dyn Write>,
    terminal: bool,
    params: FitParams,
    in_fit: bool,
    bar: Option<ProgressBar>,
    start: Instant,
    after_first: Option<Instant>,
    seen: usize,
    last_draw: Option<Instant>,
    /// Steps of the first epoch, when the data did not say (used for later epochs).
    learned_steps: Option<usize>,
}

impl std::fmt::Debug for ProgbarLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgbarLogger")
            .field("verbose", &self.verbose)
            .field("terminal", &self.terminal)
            .finish_non_exhaustive()
    }
}

impl ProgbarLogger {
    /// Progress on standard output at `verbose` 1 (bar) or 2 (line per epoch).
    pub fn new(verbose: u8) -> Self {
        let terminal = std::io::stdout().is_terminal();
        ProgbarLogger::build(verbose, Box::new(std::io::stdout()), terminal)
    }

    /// Progress written to `out` as plain text (no control characters): the final line of
    /// every epoch.
    pub fn to_writer(verbose: u8, out: impl Write + 'static) -> Self {
        ProgbarLogger::build(verbose, Box::new(out), false)
    }

    fn build(verbose: u8, out: Box<dyn Write>, terminal: bool) -> Self {
        ProgbarLogger {
            verbose,
            out,
            terminal,
            params: FitParams::default(),
            in_fit: false,
            bar: None,
            start: Instant::now(),
            after_first: None,
            seen: 0,
            last_draw: None,
            learned_steps: None,
        }
    }

    /// A metric value as Keras prints it: `{:.4f}` above 1e-3 in magnitude, else `{:.4e}`
    /// with a signed two-digit exponent (`5.0000e-04`, `0.0000e+00`).
    ///
    /// ```
    /// use ferroflow_nn::callbacks::ProgbarLogger;
    /// assert_eq!(ProgbarLogger::format_value(0.123456), "0.1235");
    /// assert_eq!(ProgbarLogger::format_value(5e-4), "5.0000e-04");
    /// assert_eq!(ProgbarLogger::format_value(0.0), "0.0000e+00");
    /// assert_eq!(ProgbarLogger::format_value(-0.5), "-0.5000");
    /// ```
    pub fn format_value(v: f64) -> String {
        format_value(v, true)
    }

    fn target(&self) -> Option<usize> {
        self.params.steps.or(self.learned_steps)
    }

    fn start_bar(&mut self) {
        self.start = Instant::now();
        self.after_first = None;
        self.seen = 0;
        self.last_draw = None;
        if self.verbose == 1 && self.terminal {
            let bar = match self.target() {
                Some(n) => {
                    let pb = ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stdout());
                    if let Ok(style) = ProgressStyle::with_template("{prefix}{bar:20.green/white}{msg}") {
                        pb.set_style(style.progress_chars("━━━"));
                    }
                    pb
                }
                None => {
                    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
                    if let Ok(style) = ProgressStyle::with_template("{prefix}{msg}") {
                        pb.set_style(style);
                    }
                    pb
                }
            };
            self.bar = Some(bar);
        }
    }

    /// Seconds per step, leaving out the first step (which includes tracing).
    fn step_time(&self, now: Instant) -> f64 {
        match self.after_first {
            Some(t) if self.seen > 1 => (now - t).as_secs_f64() / (self.seen - 1) as f64,
            _ if self.seen > 0 => (now - self.start).as_secs_f64() / self.seen as f64,
            _ => 0.0,
        }
    }

    fn values(logs: &Logs, by_magnitude: bool) -> String {
        logs.iter()
            .map(|(k, v)| format!(" - {k}: {}", format_value(v, by_magnitude)))
            .collect()
    }

    fn update(&mut self, current: usize, logs: &Logs) {
        self.seen = current;
        let now = Instant::now();
        if current == 1 {
            self.after_first = Some(now);
        }
        let Some(bar) = &self.bar else { return };
        if self.last_draw.is_some_and(|t| now - t < Duration::from_millis(50)) {
            return;
        }
        self.last_draw = Some(now);
        let per_step = self.step_time(now);
        let (prefix, time) = match self.target() {
            Some(n) => (
                format!("{} ", count(current, n)),
                format_eta(per_step * n.saturating_sub(current) as f64),
            ),
            None => (
                format!("{current:>7}/Unknown"),
                format!("{:.0}s", (now - self.start).as_secs_f64()),
            ),
        };
        bar.set_prefix(prefix);
        bar.set_position(current as u64);
        bar.set_message(format!(
            " {time} {}{}",
            format_step_time(per_step),
            Self::values(logs, true)
        ));
    }

    fn finish(&mut self, logs: &Logs) -> Result<()> {
        let now = Instant::now();
        let target = self.target().unwrap_or(self.seen);
        if self.params.steps.is_none() {
            self.learned_steps = Some(self.seen);
        }
        self.seen = self.seen.max(1);
        let per_step = format_step_time(self.step_time(now));
        let elapsed = format!("{:.0}s", (now - self.start).as_secs_f64());
        let line = if self.verbose == 1 {
            format!(
                "{} {} {elapsed} {per_step}{}",
                count(target, target),
                "━".repeat(20),
                Self::values(logs, true)
            )
        } else {
            format!(
                "{} - {elapsed} - {per_step}{}",
                count(target, target),
                Self::values(logs, false)
            )
        };
        if let Some(bar) = self.bar.take() {
            // The live bar gives way to the epoch's final line.
            bar.finish_and_clear();
        }
        writeln!(self.out, "{line}")?;
        self.out.flush()?;
        Ok(())
    }
}

impl Callback for ProgbarLogger {
    fn chief_only(&self) -> bool {
        true
    }

    fn set_params(&mut self, params: &FitParams) {
        self.params = *params;
    }

    fn on_train_begin(&mut self, _: &Model, _: &Logs) -> Result<()> {
        self.in_fit = true;
        Ok(())
    }

    fn on_train_end(&mut self, _: &Model, _: &Logs) -> Result<()> {
        self.in_fit = false;
        Ok(())
    }

    fn on_epoch_begin(&mut self, _: &Model, epoch: usize, _: &Logs) -> Result<()> {
        if self.params.epochs > 1 {
            writeln!(self.out, "Epoch {}/{}", epoch + 1, self.params.epochs)?;
        }
        self.start_bar();
        Ok(())
    }

    fn on_train_batch_end(&mut self, _: &Model, batch: usize, logs: &Logs) -> Result<()> {
        self.update(batch + 1, logs);
        Ok(())
    }

    fn on_epoch_end(&mut self, _: &Model, _: usize, logs: &mut Logs) -> Result<()> {
        self.finish(logs)
    }

    fn on_test_begin(&mut self, _: &Model, _: &Logs) -> Result<()> {
        if !self.in_fit {
            self.start_bar();
        }
        Ok(())
    }

    fn on_test_batch_end(&mut self, _: &Model, batch: usize, logs: &Logs) -> Result<()> {
        if !self.in_fit {
            self.update(batch + 1, logs);
        }
        Ok(())
    }

    fn on_test_end(&mut self, _: &Model, logs: &Logs) -> Result<()> {
        if self.in_fit {
            return Ok(());
        }
        self.finish(logs)
    }

    fn on_predict_begin(&mut self, _: &Model, _: &Logs) -> Result<()> {
        self.start_bar();
        Ok(())
    }

    fn on_predict_batch_end(&mut self, _: &Model, batch: usize, logs: &Logs) -> Result<()> {
        self.update(batch + 1, logs);
        Ok(())
    }

    fn on_predict_end(&mut self, _: &Model, _: &Logs) -> Result<()> {
        self.finish(&Logs::new())
    }

    fn is_progress(&self) -> bool {
        true
    }

    fn wants_batch_logs(&self) -> bool {
        // Batch values are only drawn by a live bar.
        self.verbose == 1 && self.terminal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_number_and_time_formats() {
        assert_eq!(format_value(0.5, true), "0.5000");
        assert_eq!(format_value(12345.678, true), "12345.6780");
        assert_eq!(format_value(1e-3, true), "1.0000e-03");
        assert_eq!(format_value(-0.5, false), "-5.0000e-01");
        assert_eq!(format_value(f64::NAN, true), "nan");
        assert_eq!(format_value(3e-12, true), "3.0000e-12");
        assert_eq!(format_step_time(0.000528), "528us/step");
        assert_eq!(format_step_time(0.051), "51ms/step");
        assert_eq!(format_step_time(2.0), "2s/step");
        assert_eq!(format_eta(14.7), "14s");
        assert_eq!(format_eta(124.0), "2:04");
        assert_eq!(format_eta(50000.0), "13:53:20");
        assert_eq!(count(2, 25), " 2/25");
    }
}
