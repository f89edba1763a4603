//! Telling the loader about fixups: classic relocations (x86_64).

pub mod classic;
