//! Info.plist rules (spec section 6).

use super::kmod::KmodInfo;
use crate::kpi::{parse_version, PlistInfo, PRIVATE_BUNDLE, PUBLIC_BUNDLES};
use crate::{check_all, Result};
use std::collections::BTreeSet;

/// Info.plist rules (spec section 6). `exe_present`: whether Contents/MacOS/<exe> exists.
pub fn check_plist(
    plist: &PlistInfo,
    kmod: Option<&KmodInfo>,
    import_bundles: Option<&BTreeSet<String>>,
    exe_present: bool,
) -> Result<()> {
    let d = &plist.dict;
    let mut errors = Vec::new();
    let s = |k: &str| d.get(k).and_then(|v| v.as_string());
    if plist.identifier.len() >= 64 {
        errors.push(format!(
            "CFBundleIdentifier \"{}\" is 64 bytes or longer",
            plist.identifier
        ));
    }
    let version = parse_version(&plist.version);
    if version.is_none() {
        errors.push(format!(
            "CFBundleVersion \"{}\" is not a kext version",
            plist.version
        ));
    }
    if let Some(c) = s("OSBundleCompatibleVersion") {
        match (parse_version(c), version) {
            (Some(c), Some(v)) if c <= v => {}
            _ => errors.push(format!(
                "OSBundleCompatibleVersion \"{c}\" is invalid or above CFBundleVersion"
            )),
        }
    }
    for (key, want) in [
        ("CFBundlePackageType", Some("KEXT")),
        ("CFBundleInfoDictionaryVersion", Some("6.0")),
        ("CFBundleName", None),
        ("CFBundleSignature", Some("????")),
    ] {
        match (s(key), want) {
            (None, _) => errors.push(format!("{key} missing")),
            (Some(v), Some(w)) if v != w => {
                errors.push(format!("{key} is \"{v}\", expected \"{w}\""))
            }
            _ => {}
        }
    }
    if !exe_present {
        errors.push(format!(
            "Contents/MacOS/{} (CFBundleExecutable) missing",
            plist.executable
        ));
    }
    for key in ["OSBundleRequired", "IOKitPersonalities"] {
        if d.contains_key(key) {
            errors.push(format!(
                "{key} present; the kext neither loads at boot nor is an IOKit driver"
            ));
        }
    }
    if plist.libraries.is_empty() {
        errors.push("OSBundleLibraries is empty".into());
    }
    for (b, v) in &plist.libraries {
        if b == PRIVATE_BUNDLE {
            errors.push(format!(
                "OSBundleLibraries declares {PRIVATE_BUNDLE}, which third-party kexts cannot use"
            ));
        } else if !PUBLIC_BUNDLES.contains(&b.as_str()) {
            errors.push(format!("OSBundleLibraries declares unknown bundle {b}"));
        }
        match parse_version(v) {
            Some(pv) if pv >= parse_version("8.0.0").unwrap() || b == "com.apple.kpi.iokit" && pv >= parse_version("7.0").unwrap() => {}
            _ => errors.push(format!("OSBundleLibraries {b} version \"{v}\" is not an explicit version the kernel accepts")),
        }
    }
    if let Some(k) = kmod {
        if k.name != plist.identifier {
            errors.push(format!(
                "kmod_info name \"{}\" differs from CFBundleIdentifier \"{}\"",
                k.name, plist.identifier
            ));
        }
        if k.version != plist.version {
            errors.push(format!(
                "kmod_info version \"{}\" differs from CFBundleVersion \"{}\"",
                k.version, plist.version
            ));
        }
    }
    if let Some(used) = import_bundles {
        let declared = plist.declared();
        for b in used.difference(&declared) {
            errors.push(format!(
                "the kext imports from {b}, which OSBundleLibraries does not declare"
            ));
        }
        for b in declared.difference(used) {
            errors.push(format!(
                "OSBundleLibraries declares {b}, but the kext imports nothing from it"
            ));
        }
    }
    check_all(errors)
}
