//! Per-architecture relocation lowering and instruction encoding.

pub mod arm64_insn;
pub mod arm64e;
pub mod x86_64;
