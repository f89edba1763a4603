//! The project's KPI table (`shim/kpi-symbols.txt`), Apple's KPI export lists
//! (`../shared/xnu-exports`), and the parts of Info.plist the linker and verifier use.

use crate::{err, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// Bundle a third-party kext may never link against.
pub const PRIVATE_BUNDLE: &str = "com.apple.kpi.private";

/// `symbol -> bundle id`, from the project's table.
#[derive(Clone, Debug, Default)]
pub struct KpiTable {
    pub symbols: BTreeMap<String, String>,
    /// Where it was read from, for messages.
    pub source: String,
}

impl KpiTable {
    pub fn parse(source: &str, text: &str) -> Result<KpiTable> {
        let mut symbols = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(sym), Some(bundle), None) = (words.next(), words.next(), words.next()) else {
                return Err(err!(
                    "{source}:{}: expected `<symbol> <bundle id>`, got `{line}`",
                    n + 1
                ));
            };
            if !sym.starts_with('_') {
                return Err(err!(
                    "{source}:{}: symbol `{sym}` lacks the Mach-O leading underscore",
                    n + 1
                ));
            }
            if let Some(old) = symbols.insert(sym.to_string(), bundle.to_string()) {
                if old != bundle {
                    return Err(err!(
                        "{source}:{}: {sym} listed under both {old} and {bundle}",
                        n + 1
                    ));
                }
            }
        }
        Ok(KpiTable {
            symbols,
            source: source.to_string(),
        })
    }

    pub fn load(path: &Path) -> Result<KpiTable> {
        let text = std::fs::read_to_string(path).map_err(|e| err!("{}: {e}", path.display()))?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn bundle_of(&self, symbol: &str) -> Option<&str> {
        self.symbols.get(symbol).map(|s| s.as_str())
    }
}

/// Symbols Apple does not offer third-party kexts, with what to use instead (spec section 5).
pub fn private_hint(symbol: &str) -> Option<&'static str> {
    Some(match symbol {
        "_ifnet_allocate_extended" | "_ifnet_enqueue" | "_ifnet_disable_output" | "_ifnet_clone_attach"
        | "_kalloc_data" => "it is private KPI (Private.exports); use ifnet_allocate and a queue owned by the driver",
        "_cdevsw_setkqueueok" => "it is private KPI (Private.exports); poll() then returns POLLNVAL, select() works",
        "_suser" | "_proc_ucred" => "it is private KPI on x86_64; use proc_suser / kauth_cred_issuser",
        "_ifnet_ifaddr" | "_pgsignal" | "_if_clone_attach" | "_dlil_if_acquire" | "_selinfo_init"
        | "_klist_init" => "the kernel does not export it; signal with proc_signal per pid and zero storage yourself",
        "___udivti3" | "___umodti3" | "___divti3" | "___modti3" => {
            "the kernel does not export 128-bit helpers; they must come from compiler_builtins"
        }
        _ => return None,
    })
}

/// Export-list file prefix of a KPI bundle.
pub fn export_component(bundle: &str) -> Option<&'static str> {
    Some(match bundle {
        "com.apple.kpi.bsd" => "BSDKernel",
        "com.apple.kpi.libkern" => "Libkern",
        "com.apple.kpi.mach" => "Mach",
        "com.apple.kpi.unsupported" => "Unsupported",
        "com.apple.kpi.iokit" => "IOKit",
        "com.apple.kpi.private" => "Private",
        _ => return None,
    })
}

pub const PUBLIC_BUNDLES: [&str; 5] = [
    "com.apple.kpi.bsd",
    "com.apple.kpi.libkern",
    "com.apple.kpi.mach",
    "com.apple.kpi.unsupported",
    "com.apple.kpi.iokit",
];

/// The x86_64 export set of one bundle: symbol the kext links against -> kernel symbol it
/// aliases (itself when not an alias).
pub type ExportSet = BTreeMap<String, String>;

/// Reads `C.exports`, `C.x86_64.exports` and `C.x86_64.MacOSX.exports` (each if present).
pub fn load_exports(dir: &Path, bundle: &str) -> Result<ExportSet> {
    load_arch_exports(dir, bundle, "x86_64")
}

/// Reads `C.exports`, `C.<arch>.exports` and `C.<arch>.MacOSX.exports` (each if present);
/// `arch` is `x86_64` or `arm64` (xnu config/Makefile).
pub fn load_arch_exports(dir: &Path, bundle: &str, arch: &str) -> Result<ExportSet> {
    let comp = export_component(bundle).ok_or_else(|| err!("unknown KPI bundle {bundle}"))?;
    let mut set = ExportSet::new();
    let mut found = false;
    for file in [
        format!("{comp}.exports"),
        format!("{comp}.{arch}.exports"),
        format!("{comp}.{arch}.MacOSX.exports"),
    ] {
        let path = dir.join(&file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        found = true;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.contains('*') {
                continue;
            }
            let (name, target) = match line.split_once(':') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (line, line),
            };
            set.insert(name.to_string(), target.to_string());
        }
    }
    if !found {
        return Err(err!("{}: no {comp}*.exports file", dir.display()));
    }
    Ok(set)
}

/// Export sets of several bundles.
pub fn load_export_sets(dir: &Path, bundles: &[String]) -> Result<HashMap<String, ExportSet>> {
    bundles
        .iter()
        .map(|b| Ok((b.clone(), load_exports(dir, b)?)))
        .collect()
}

/// The Info.plist facts the linker and verifier need.
#[derive(Clone, Debug)]
pub struct PlistInfo {
    pub identifier: String,
    pub version: String,
    pub executable: String,
    /// OSBundleLibraries in file order: bundle id -> version.
    pub libraries: Vec<(String, String)>,
    pub dict: plist::Dictionary,
}

impl PlistInfo {
    pub fn declared(&self) -> BTreeSet<String> {
        self.libraries.iter().map(|(b, _)| b.clone()).collect()
    }

    pub fn load(path: &Path) -> Result<PlistInfo> {
        let value = plist::Value::from_file(path).map_err(|e| err!("{}: {e}", path.display()))?;
        Self::from_value(&path.display().to_string(), value)
    }

    pub fn from_value(source: &str, value: plist::Value) -> Result<PlistInfo> {
        let dict = value
            .into_dictionary()
            .ok_or_else(|| err!("{source}: top level is not a dictionary"))?;
        let string = |key: &str| -> Result<String> {
            dict.get(key)
                .and_then(|v| v.as_string())
                .map(|s| s.to_string())
                .ok_or_else(|| err!("{source}: {key} missing or not a string"))
        };
        let identifier = string("CFBundleIdentifier")?;
        let version = string("CFBundleVersion")?;
        let executable = string("CFBundleExecutable")?;
        let libs = dict
            .get("OSBundleLibraries")
            .and_then(|v| v.as_dictionary())
            .ok_or_else(|| err!("{source}: OSBundleLibraries missing or not a dictionary"))?;
        let mut libraries = Vec::new();
        for (k, v) in libs {
            let v = v
                .as_string()
                .ok_or_else(|| err!("{source}: OSBundleLibraries.{k} is not a version string"))?;
            libraries.push((k.clone(), v.to_string()));
        }
        Ok(PlistInfo {
            identifier,
            version,
            executable,
            libraries,
            dict,
        })
    }
}

/// Parses a kext version (`1.0.0`, `8.0.0b1`, `17.0`) into a comparable tuple, as OSKext
/// does: up to three numbers and an optional development/alpha/beta/candidate stage.
pub fn parse_version(s: &str) -> Option<(u32, u32, u32, u32, u32)> {
    let (nums, stage, stage_num) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => {
            let (stage_str, rest) = s[i..].split_at(
                s[i..]
                    .find(|c: char| c.is_ascii_digit())
                    .unwrap_or(s.len() - i),
            );
            let stage = match stage_str {
                "d" => 1,
                "a" => 2,
                "b" => 3,
                "f" | "fc" => 4,
                _ => return None,
            };
            (
                &s[..i],
                stage,
                if rest.is_empty() {
                    0
                } else {
                    rest.parse().ok()?
                },
            )
        }
        None => (s, 5, 0),
    };
    let parts: Vec<&str> = nums.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut v = [0u32; 3];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        v[i] = p.parse().ok()?;
    }
    if v[0] > 9999 || v[1] > 99 || v[2] > 99 || stage_num > 255 {
        return None;
    }
    Some((v[0], v[1], v[2], stage, stage_num))
}

/// `LC_SOURCE_VERSION` packing (A.B.C.D.E, 24.10.10.10.10 bits) of a dotted version.
pub fn pack_source_version(s: &str) -> u64 {
    let mut packed = 0u64;
    let parts: Vec<u64> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .take(5)
        .filter_map(|p| p.parse().ok())
        .collect();
    let widths = [24u32, 10, 10, 10, 10];
    for (i, w) in widths.iter().enumerate() {
        let v = parts.get(i).copied().unwrap_or(0) & ((1u64 << w) - 1);
        packed = (packed << w) | v;
    }
    packed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_comments_and_rejects_junk() {
        let t = KpiTable::parse(
            "t",
            "# c\n_printf com.apple.kpi.libkern # x\n\n_msleep com.apple.kpi.bsd\n",
        )
        .unwrap();
        assert_eq!(t.bundle_of("_printf"), Some("com.apple.kpi.libkern"));
        assert_eq!(t.bundle_of("_msleep"), Some("com.apple.kpi.bsd"));
        assert_eq!(t.symbols.len(), 2);
        let e = KpiTable::parse("t", "printf com.apple.kpi.libkern\n").unwrap_err();
        assert!(e.to_string().contains("leading underscore"), "{e}");
        let e = KpiTable::parse("t", "_a b c\n").unwrap_err();
        assert!(e.to_string().contains("t:1"), "{e}");
    }

    #[test]
    fn versions() {
        assert!(parse_version("8.0.0b1").unwrap() < parse_version("8.0.0").unwrap());
        assert!(parse_version("8.0.0d0").unwrap() < parse_version("8.0.0b1").unwrap());
        assert!(parse_version("17.0").unwrap() > parse_version("8.0.0").unwrap());
        assert_eq!(parse_version("1.0.0"), Some((1, 0, 0, 5, 0)));
        assert_eq!(parse_version("1.x"), None);
        assert_eq!(parse_version(""), None);
        assert_eq!(
            pack_source_version("1.2.3"),
            (1 << 40) | (2 << 30) | (3 << 20)
        );
    }
}
