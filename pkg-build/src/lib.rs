//! `pkg-build`: the macOS installer package of tunnel.kext, written on any OS.
//!
//! A product archive (what `productbuild` writes and Installer opens on a double-click) is a XAR
//! file holding a `Distribution` (the installer's script: checks, choices, texts) and one
//! component package directory `<name>.pkg/` with `PackageInfo`, `Bom` (the bill of materials
//! the receipt keeps), `Payload` (a gzipped odc cpio of the files to install, relative to `/`)
//! and `Scripts` (the same format, holding `preinstall` and `postinstall`).
//!
//! One model of the installed files ([`tree::Tree`]) feeds both the Payload and the Bom, so
//! the two cannot disagree; every byte is a function of the inputs and one timestamp
//! (reproducible builds: no clock, no host owner, no directory order).
//!
//! Formats and the crates behind them (README, "Installer package"): XAR through `apple-xar`'s
//! table of contents and header types, cpio through `cpio-archive`, gzip/zlib through `flate2`,
//! the Bom written here ([`bom`]) because no maintained crate writes a correct one.

pub mod bom;
pub mod distribution;
pub mod kext;
pub mod product;
pub mod tree;
pub mod xar;

use std::fmt;

/// An error: what went wrong, in words.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => { $crate::Error(format!($($arg)*)) };
}

/// The five characters XML gives meaning to, in text and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn xml_escape_replaces_the_five_special_characters_only() {
        assert_eq!(
            super::xml_escape(r#"a<b>&"c"'d' é"#),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos; é"
        );
    }
}
