//! kmod_info (spec sections 4 rule 5 and 6), read from a linked image.

use super::{cstr, u32_at, u64_at};
use crate::chains::{Chained, Chains, PtrAuth};
use crate::consts::*;
use crate::image::Image;
use crate::{check_all, err, Result};
use object::macho;

/// What kmod_info says before loading.
#[derive(Clone, Debug)]
pub struct KmodInfo {
    pub address: u64,
    pub name: String,
    pub version: String,
    /// Unslid start/stop routines and the symbols at them.
    pub start: u64,
    pub stop: u64,
    pub start_symbol: String,
    pub stop_symbol: String,
}

/// Section 4 rule 5 and section 6: `_kmod_info` in `__DATA`, 196 bytes, `info_version` 1,
/// name/version = the plist's, `start`/`stop` carried by local relocations into `__TEXT` code.
pub fn check_kmod_info(img: &Image, identifier: &str, version: &str) -> Result<KmodInfo> {
    let sym = img
        .symbols
        .iter()
        .find(|s| s.name == "_kmod_info" && s.is_defined())
        .ok_or_else(|| err!("_kmod_info: not defined in the image (the kext is missing its kmod_info structure)"))?;
    if !sym.is_ext() {
        return Err(err!("_kmod_info: defined but not exported (N_EXT missing)"));
    }
    let sect = img
        .section(sym.n_sect as u32)
        .ok_or_else(|| err!("_kmod_info: bad section ordinal {}", sym.n_sect))?;
    let a = sym.n_value;
    if sect.segname != "__DATA" || sect.zerofill() {
        return Err(err!(
            "_kmod_info: in {},{}; it must be initialised data in __DATA",
            sect.segname,
            sect.sectname
        ));
    }
    if a + KMOD_INFO_SIZE > sect.addr + sect.size {
        return Err(err!(
            "_kmod_info: fewer than {KMOD_INFO_SIZE} bytes before the end of {}",
            sect.sectname
        ));
    }
    if let Some(other) = img.symbols.iter().find(|s| {
        s.is_defined() && s.n_sect == sym.n_sect && s.n_value > a && s.n_value < a + KMOD_INFO_SIZE
    }) {
        return Err(err!(
            "_kmod_info: symbol {} starts {} bytes into it; kmod_info_t is {KMOD_INFO_SIZE} bytes",
            other.name,
            other.n_value - a
        ));
    }
    let b = img
        .read(a, KMOD_INFO_SIZE as usize)
        .ok_or_else(|| err!("_kmod_info: not in the file"))?;
    let mut errors = Vec::new();
    let next = u64_at(b, 0);
    let info_version = u32_at(b, 8);
    let id = u32_at(b, 12);
    let name = cstr(&b[16..80]);
    let ver = cstr(&b[80..144]);
    let refcount = u32_at(b, 144) as i32;
    if next != 0 {
        errors.push(format!("_kmod_info.next is {next:#x}, expected 0"));
    }
    if info_version != 1 {
        errors.push(format!(
            "_kmod_info.info_version is {info_version}, expected 1 (KMOD_INFO_VERSION)"
        ));
    }
    if id != 0xFFFF_FFFF {
        errors.push(format!("_kmod_info.id is {id:#x}, expected 0xffffffff"));
    }
    match &name {
        None => errors.push("_kmod_info.name is not NUL-terminated within 64 bytes".into()),
        Some(n) if n != identifier => errors.push(format!(
            "_kmod_info.name is \"{n}\", Info.plist CFBundleIdentifier is \"{identifier}\""
        )),
        _ => {}
    }
    match &ver {
        None => errors.push("_kmod_info.version is not NUL-terminated within 64 bytes".into()),
        Some(v) if v != version => errors.push(format!(
            "_kmod_info.version is \"{v}\", Info.plist CFBundleVersion is \"{version}\""
        )),
        _ => {}
    }
    if refcount != -1 {
        errors.push(format!(
            "_kmod_info.reference_count is {refcount}, expected -1"
        ));
    }
    for (off, field) in [
        (148, "reference_list"),
        (156, "address"),
        (164, "size"),
        (172, "hdr_size"),
    ] {
        let v = u64_at(b, off);
        if v != 0 {
            errors.push(format!(
                "_kmod_info.{field} is {v:#x}, expected 0 (the loader fills it in)"
            ));
        }
    }
    let mut routine = |off: usize, field: &str| -> (u64, String) {
        let site = a + off as u64;
        let v = match &img.chains {
            Some(chains) => routine_from_chain(chains, site, field, &mut errors),
            None => routine_from_reloc(img, site, u64_at(b, off), field, &mut errors),
        };
        let code_segment = if img.chains.is_some() {
            "__TEXT_EXEC"
        } else {
            "__TEXT"
        };
        let in_code = img.section_at(v).is_some_and(|(_, s)| {
            s.segname == code_segment && s.flags & macho::S_ATTR_SOME_INSTRUCTIONS != 0
        });
        if !in_code {
            errors.push(format!(
                "_kmod_info.{field} = {v:#x} does not point into {code_segment} code"
            ));
        }
        let syms = img.symbols_at(v);
        let s = syms.first().map(|s| s.to_string()).unwrap_or_default();
        if s.is_empty() {
            errors.push(format!(
                "_kmod_info.{field} = {v:#x} is not the address of any function symbol"
            ));
        }
        (v, s)
    };
    let (start, start_symbol) = routine(KMOD_START_OFFSET, "start");
    let (stop, stop_symbol) = routine(KMOD_STOP_OFFSET, "stop");
    check_all(errors)?;
    Ok(KmodInfo {
        address: a,
        name: name.unwrap_or_default(),
        version: ver.unwrap_or_default(),
        start,
        stop,
        start_symbol,
        stop_symbol,
    })
}

/// x86_64: the routine's unslid address, carried by a local relocation naming its section.
fn routine_from_reloc(
    img: &Image,
    site: u64,
    v: u64,
    field: &str,
    errors: &mut Vec<String>,
) -> u64 {
    match img.local_relocs.iter().find(|r| r.address as u64 == site) {
        None => errors.push(format!(
            "_kmod_info.{field}: no local relocation at {site:#x}; the loader would not slide it"
        )),
        Some(r) => {
            if img.section(r.symbolnum).is_none_or(|s| !s.contains(v)) {
                errors.push(format!(
                    "_kmod_info.{field}: relocation names section {}, which does not hold {v:#x}",
                    r.symbolnum
                ));
            }
        }
    }
    v
}

/// arm64e: the routine is a chained rebase signed IA with discriminator 0, no address
/// diversity: the kernel authenticates it with `ptrauth_key_function_pointer, 0` (OSKext.cpp).
fn routine_from_chain(chains: &Chains, site: u64, field: &str, errors: &mut Vec<String>) -> u64 {
    match chains.fixups.get(&site) {
        Some(Chained::Rebase {
            target,
            auth:
                Some(PtrAuth {
                    key: 0,
                    addr_div: false,
                    diversity: 0,
                }),
            ..
        }) => *target,
        Some(other) => {
            errors.push(format!(
                "_kmod_info.{field}: chained fixup {other:?} at {site:#x}; the kernel authenticates an IA auth rebase with discriminator 0"
            ));
            0
        }
        None => {
            errors.push(format!(
                "_kmod_info.{field}: no chained fixup at {site:#x}; the loader would neither slide nor sign it"
            ));
            0
        }
    }
}
