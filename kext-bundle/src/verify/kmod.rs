//! kmod_info (spec sections 4 rule 5 and 6), read from a linked image.

use super::{cstr, u32_at, u64_at};
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
        let v = u64_at(b, off);
        let reloc = img.local_relocs.iter().find(|r| r.address as u64 == site);
        if reloc.is_none() {
            errors.push(format!("_kmod_info.{field}: no local relocation at {site:#x}; the loader would not slide it"));
        }
        let in_text = img.section_at(v).is_some_and(|(_, s)| {
            s.segname == "__TEXT" && s.flags & macho::S_ATTR_SOME_INSTRUCTIONS != 0
        });
        if !in_text {
            errors.push(format!(
                "_kmod_info.{field} = {v:#x} does not point into __TEXT code"
            ));
        }
        if let Some(r) = reloc {
            if img.section(r.symbolnum).is_none_or(|s| !s.contains(v)) {
                errors.push(format!(
                    "_kmod_info.{field}: relocation names section {}, which does not hold {v:#x}",
                    r.symbolnum
                ));
            }
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
