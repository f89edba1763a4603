//! Per-architecture relocation lowering and instruction encoding.

pub mod x86_64;
