//! Telling the loader about fixups: classic relocations (x86_64); chained fixups and
//! split-seg info (arm64e).

pub mod chained;
pub mod classic;
pub mod splitseg;
