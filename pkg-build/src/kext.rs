//! What the package needs to know about the kext it installs: its identifier and version
//! (Info.plist) and which Macs its executable runs on (the slices of the universal file, read
//! with the linker's own reader).

use crate::{err, Result};
use kext_bundle::fat;
use object::macho;
use std::path::Path;

/// The architectures a kext slice can be for, as the Distribution names the Macs they fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Intel Macs.
    X86_64,
    /// Apple silicon: arm64 with the kernel's pointer-authentication ABI.
    Arm64e,
}

/// `CPU_SUBTYPE_ARM64E` with the kernel ABI bit (0x80000000 | PTRAUTH_ABI version 0x40...),
/// as `docs/kext-format.md` describes the arm64e slice.
const ARM64E_KERNEL_SUBTYPE: u32 = 0xC000_0002;

#[derive(Clone, Debug)]
pub struct KextInfo {
    /// `CFBundleIdentifier`.
    pub identifier: String,
    /// `CFBundleVersion`.
    pub version: String,
    /// The bundle's directory name, e.g. `tunnel.kext`.
    pub name: String,
    pub archs: Vec<Arch>,
}

/// Reads `bundle/Contents/Info.plist` and the executable it names.
pub fn read(bundle: &Path) -> Result<KextInfo> {
    let plist_path = bundle.join("Contents").join("Info.plist");
    let value =
        plist::Value::from_file(&plist_path).map_err(|e| err!("{}: {e}", plist_path.display()))?;
    let dict = value
        .as_dictionary()
        .ok_or_else(|| err!("{}: not a dictionary", plist_path.display()))?;
    let string = |key: &str| {
        dict.get(key)
            .and_then(|v| v.as_string())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| err!("{}: no {key}", plist_path.display()))
    };
    let identifier = string("CFBundleIdentifier")?;
    let version = string("CFBundleVersion")?;
    let executable = string("CFBundleExecutable")?;
    let exe_path = bundle.join("Contents").join("MacOS").join(&executable);
    let image = std::fs::read(&exe_path).map_err(|e| err!("{}: {e}", exe_path.display()))?;
    let archs = archs(&image).map_err(|e| err!("{}: {e}", exe_path.display()))?;
    let name = bundle
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| n.ends_with(".kext"))
        .ok_or_else(|| err!("{}: a kext bundle's name ends in .kext", bundle.display()))?
        .to_string();
    Ok(KextInfo {
        identifier,
        version,
        name,
        archs,
    })
}

/// The kext architectures of a thin or universal Mach-O executable.
pub fn archs(image: &[u8]) -> Result<Vec<Arch>> {
    let pairs = match fat::slices(image).map_err(|e| err!("{e}"))? {
        Some(slices) => slices.iter().map(|s| (s.cputype, s.cpusubtype)).collect(),
        None => vec![fat::thin_arch(image).map_err(|e| err!("{e}"))?],
    };
    let mut out = Vec::new();
    for (cputype, subtype) in pairs {
        let arch = match (cputype, subtype) {
            (macho::CPU_TYPE_X86_64, _) => Arch::X86_64,
            (macho::CPU_TYPE_ARM64, ARM64E_KERNEL_SUBTYPE) => Arch::Arm64e,
            _ => {
                return Err(err!(
                    "a slice of cputype {cputype:#x} subtype {subtype:#x} is neither an x86_64 nor an arm64e kext"
                ))
            }
        };
        if !out.contains(&arch) {
            out.push(arch);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(cputype: u32, subtype: u32) -> Vec<u8> {
        let mut h = macho::MH_MAGIC_64.to_le_bytes().to_vec();
        h.extend(cputype.to_le_bytes());
        h.extend(subtype.to_le_bytes());
        h.extend(0xbu32.to_le_bytes());
        h
    }

    #[test]
    fn thin_and_universal_executables_name_their_kext_slices() {
        let x86 = header(macho::CPU_TYPE_X86_64, 3);
        let arm = header(macho::CPU_TYPE_ARM64, ARM64E_KERNEL_SUBTYPE);
        assert_eq!(archs(&x86).unwrap(), [Arch::X86_64]);
        let both = fat::write(&[
            fat::Slice {
                cputype: macho::CPU_TYPE_X86_64,
                cpusubtype: 3,
                data: &x86,
            },
            fat::Slice {
                cputype: macho::CPU_TYPE_ARM64,
                cpusubtype: ARM64E_KERNEL_SUBTYPE,
                data: &arm,
            },
        ]);
        assert_eq!(archs(&both).unwrap(), [Arch::X86_64, Arch::Arm64e]);
        // Plain arm64 (user-space ABI) is not a kext slice.
        assert!(archs(&header(macho::CPU_TYPE_ARM64, 0)).is_err());
        assert!(archs(b"#!/bin/sh").is_err());
    }
}
