//! Verification of a linked kext on Linux (spec section 10): structural checks, a relocation
//! simulator that loads the image against a synthetic kernel, kmod_info and Info.plist checks.

pub mod arm64e;
pub mod collection;
mod kmod;
mod kxld;
mod plist;
pub mod splitseg;
mod structure;

pub use kmod::{check_kmod_info, KmodInfo};
pub use kxld::{load_address, simulate, SimReport, SyntheticKernel};
pub use plist::check_plist;
pub use structure::structural;

use crate::image::Image;
use crate::kpi::{
    export_component, ExportSet, KpiTable, PlistInfo, PRIVATE_BUNDLE, PUBLIC_BUNDLES,
};
use crate::{check_all, Result};
use std::collections::HashMap;

pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}
pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
pub(crate) fn cstr(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&b[..end]).into_owned())
}

/// Names of the image's undefined symbols.
pub fn imports(img: &Image) -> Vec<String> {
    img.symbols
        .iter()
        .filter(|s| s.is_undefined())
        .map(|s| s.name.clone())
        .collect()
}

/// Every import is in the KPI table under a declared bundle; with Apple's lists, also in the
/// x86_64 export set of that bundle.
pub fn check_imports(
    img: &Image,
    kpi: &KpiTable,
    plist: &PlistInfo,
    exports: Option<&HashMap<String, ExportSet>>,
) -> Result<()> {
    let declared = plist.declared();
    let mut errors = Vec::new();
    for name in imports(img) {
        match kpi.bundle_of(&name) {
            None => errors.push(format!(
                "import {name}: not in the KPI table {}",
                kpi.source
            )),
            Some(b) if !declared.contains(b) => errors.push(format!(
                "import {name}: its bundle {b} is not in OSBundleLibraries"
            )),
            Some(b) => {
                if let Some(ex) = exports {
                    if !ex.get(b).is_some_and(|set| set.contains_key(&name)) {
                        errors.push(format!(
                            "import {name}: not in the x86_64 export lists of {b}"
                        ));
                    }
                }
            }
        }
    }
    check_all(errors)
}

/// The KPI table against Apple's lists (spec section 5): each symbol is in its bundle's
/// x86_64 set, and no symbol belongs to the private bundle.
pub fn check_kpi_table(kpi: &KpiTable, dir: &std::path::Path) -> Result<()> {
    let mut sets: HashMap<String, ExportSet> = HashMap::new();
    let mut errors = Vec::new();
    for (sym, bundle) in &kpi.symbols {
        if bundle == PRIVATE_BUNDLE || export_component(bundle).is_none() {
            errors.push(format!("{sym}: bundle {bundle} is not a public KPI bundle"));
            continue;
        }
        if !sets.contains_key(bundle) {
            sets.insert(bundle.clone(), crate::kpi::load_exports(dir, bundle)?);
        }
        if !sets[bundle].contains_key(sym) {
            let elsewhere: Vec<&str> = PUBLIC_BUNDLES
                .iter()
                .chain([PRIVATE_BUNDLE].iter())
                .copied()
                .filter(|b| crate::kpi::load_exports(dir, b).is_ok_and(|s| s.contains_key(sym)))
                .collect();
            errors.push(format!(
                "{sym}: the table says {bundle}, but its x86_64 export lists do not have it{}",
                if elsewhere.is_empty() {
                    String::new()
                } else {
                    format!(" (exported by {})", elsewhere.join(", "))
                }
            ));
        }
    }
    check_all(errors)
}
