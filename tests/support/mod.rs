//! Shared helpers for the cross-crate tests. Each test binary uses a part of them, so unused
//! items in one binary are expected.
#![allow(dead_code)]

pub mod cases;
pub mod oracle;
