//! Verification of a linked kext on Linux (spec section 10): structural checks, a relocation
//! simulator that loads the image against a synthetic kernel, kmod_info and Info.plist checks.

use crate::consts::*;
use crate::image::Image;
use crate::kpi::{
    export_component, parse_version, ExportSet, KpiTable, PlistInfo, PRIVATE_BUNDLE, PUBLIC_BUNDLES,
};
use crate::{check_all, err, Result};
use object::macho;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Load commands kxld accepts in an MH_KEXT_BUNDLE besides the ones the linker writes.
const TOLERATED_COMMANDS: [u32; 8] = [
    macho::LC_SEGMENT_SPLIT_INFO,
    macho::LC_NOTE,
    macho::LC_CODE_SIGNATURE,
    macho::LC_DYLD_INFO,
    macho::LC_DYLD_INFO_ONLY,
    macho::LC_FUNCTION_STARTS,
    macho::LC_DATA_IN_CODE,
    macho::LC_DYLIB_CODE_SIGN_DRS,
];

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
fn cstr(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&b[..end]).into_owned())
}

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

/// Structural checks (section 10.1): header, load commands, segments, sections, symbol table,
/// relocation forms. Returns the list of problems (empty when the image is well-formed).
pub fn structural(img: &Image) -> Vec<String> {
    let mut e = Vec::new();
    if img.cputype != macho::CPU_TYPE_X86_64 || img.cpusubtype != macho::CPU_SUBTYPE_X86_64_ALL {
        e.push(format!(
            "cputype/subtype {:#x}/{:#x}, expected X86_64/ALL",
            img.cputype, img.cpusubtype
        ));
    }
    if img.filetype != macho::MH_KEXT_BUNDLE {
        e.push(format!(
            "file type {:#x}, expected MH_KEXT_BUNDLE (0xb)",
            img.filetype
        ));
    }
    if img.flags != KEXT_HEADER_FLAGS {
        e.push(format!(
            "header flags {:#x}, expected 0x85 (NOUNDEFS|DYLDLINK|TWOLEVEL)",
            img.flags
        ));
    }
    // load commands
    let emitted = [
        macho::LC_SEGMENT_64,
        macho::LC_SYMTAB,
        macho::LC_DYSYMTAB,
        macho::LC_UUID,
        macho::LC_VERSION_MIN_MACOSX,
        macho::LC_BUILD_VERSION,
        macho::LC_SOURCE_VERSION,
    ];
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for &(cmd, _) in &img.commands {
        *counts.entry(cmd).or_default() += 1;
        if !emitted.contains(&cmd) && !TOLERATED_COMMANDS.contains(&cmd) {
            e.push(format!("load command {cmd:#x} is fatal in an MH_KEXT_BUNDLE (kxld: invalid load command type)"));
        }
    }
    for (cmd, want, name) in [
        (macho::LC_SEGMENT_64, 3, "LC_SEGMENT_64"),
        (macho::LC_SYMTAB, 1, "LC_SYMTAB"),
        (macho::LC_DYSYMTAB, 1, "LC_DYSYMTAB"),
        (macho::LC_UUID, 1, "LC_UUID"),
        (macho::LC_SOURCE_VERSION, 1, "LC_SOURCE_VERSION"),
    ] {
        let n = counts.get(&cmd).copied().unwrap_or(0);
        if n != want {
            e.push(format!("{name} appears {n} times, expected {want}"));
        }
    }
    let vmins = counts
        .get(&macho::LC_VERSION_MIN_MACOSX)
        .copied()
        .unwrap_or(0)
        + counts.get(&macho::LC_BUILD_VERSION).copied().unwrap_or(0);
    if vmins != 1 {
        e.push(format!("{vmins} minimum-version commands, expected one"));
    }
    match img.min_version {
        Some(v) if v >= MIN_MACOS => {}
        v => e.push(format!("minimum macOS {v:?} is below 10.13")),
    }
    // segments
    let names: Vec<&str> = img.segments.iter().map(|s| s.name.as_str()).collect();
    if names != ["__TEXT", "__DATA", "__LINKEDIT"] {
        e.push(format!(
            "segments {names:?}, expected [__TEXT, __DATA, __LINKEDIT]"
        ));
    }
    let mut prev_end = 0u64;
    for (i, s) in img.segments.iter().enumerate() {
        let want = match s.name.as_str() {
            "__TEXT" => 5,
            "__DATA" => 3,
            "__LINKEDIT" => 1,
            _ => 0,
        };
        if s.maxprot != want || s.initprot != want {
            e.push(format!(
                "segment {}: protection {}/{}, expected {want}",
                s.name, s.maxprot, s.initprot
            ));
        }
        if s.initprot & 2 != 0 && s.initprot & 4 != 0 || s.maxprot & 6 == 6 {
            e.push(format!("segment {} is writable and executable", s.name));
        }
        if s.vmaddr % PAGE != 0 || s.fileoff % PAGE != 0 {
            e.push(format!("segment {} is not 4 KiB aligned", s.name));
        }
        if s.name != "__LINKEDIT" && s.vmsize % PAGE != 0 {
            e.push(format!(
                "segment {} size {:#x} is not a multiple of 4 KiB",
                s.name, s.vmsize
            ));
        }
        if i == 0 && (s.vmaddr != 0 || s.fileoff != 0) {
            e.push(format!(
                "first segment {} at {:#x}/{:#x}, the kext base address must be 0",
                s.name, s.vmaddr, s.fileoff
            ));
        }
        if s.vmaddr < prev_end {
            e.push(format!("segment {} overlaps the previous one", s.name));
        }
        prev_end = s.vmaddr + s.vmsize;
        if s.filesize > s.vmsize && s.name != "__LINKEDIT" {
            e.push(format!("segment {} filesize exceeds vmsize", s.name));
        }
        if s.fileoff + s.filesize > img.data.len() as u64 {
            e.push(format!(
                "segment {} extends past the end of the file",
                s.name
            ));
        }
    }
    // sections
    let header_end = 32 + img.sizeofcmds as u64;
    for s in &img.sections {
        let t = s.flags & macho::SECTION_TYPE;
        let full = format!("{},{}", s.segname, s.sectname);
        if (macho::S_THREAD_LOCAL_REGULAR..=macho::S_THREAD_LOCAL_INIT_FUNCTION_POINTERS)
            .contains(&t)
        {
            e.push(format!("section {full} is thread-local"));
        }
        if t == macho::S_MOD_INIT_FUNC_POINTERS || t == macho::S_MOD_TERM_FUNC_POINTERS {
            e.push(format!(
                "section {full} holds static constructors/destructors"
            ));
        }
        if s.segname == "__LLVM"
            || s.segname == "__DWARF"
            || s.sectname == "__eh_frame"
            || s.sectname == "__compact_unwind"
            || s.sectname == "__unwind_info"
            || s.flags & macho::S_ATTR_DEBUG != 0
        {
            e.push(format!(
                "section {full}: unwind, bitcode or debug data in the image"
            ));
        }
        if s.nreloc != 0 || s.reloff != 0 {
            e.push(format!(
                "section {full} has section relocations; a kext has only LC_DYSYMTAB ones"
            ));
        }
        let seg = img.segments.iter().find(|g| g.name == s.segname);
        match seg {
            None => e.push(format!("section {full} belongs to no segment")),
            Some(g) => {
                if s.addr < g.vmaddr || s.addr + s.size > g.vmaddr + g.vmsize {
                    e.push(format!("section {full} lies outside its segment"));
                }
                if !s.zerofill() && (s.offset as u64) != g.fileoff + (s.addr - g.vmaddr) {
                    e.push(format!(
                        "section {full}: file offset does not match its address"
                    ));
                }
                if !s.zerofill() && s.addr + s.size > g.vmaddr + g.filesize {
                    e.push(format!(
                        "section {full}: contents beyond the segment's file size"
                    ));
                }
            }
        }
        if s.align > 0 && s.addr % (1u64 << s.align) != 0 {
            e.push(format!("section {full} misaligned"));
        }
        if s.segname == "__TEXT" && s.addr < header_end + 16 {
            e.push(format!(
                "section {full} leaves fewer than 16 bytes of header padding"
            ));
        }
    }
    // symbol table
    let Some(dy) = &img.dysymtab else {
        e.push("no LC_DYSYMTAB".into());
        return e;
    };
    let nsyms = img.symbols.len() as u32;
    if dy.ilocalsym != 0
        || dy.iextdefsym != dy.nlocalsym
        || dy.iundefsym != dy.iextdefsym + dy.nextdefsym
        || dy.iundefsym + dy.nundefsym != nsyms
    {
        e.push(
            "LC_DYSYMTAB symbol ranges do not cover the symbol table as locals, extdefs, undefs"
                .into(),
        );
    }
    if dy.nindirectsyms != 0 || dy.ntoc != 0 || dy.nmodtab != 0 || dy.nextrefsyms != 0 {
        e.push(
            "LC_DYSYMTAB has indirect symbols, a TOC, a module table or external references".into(),
        );
    }
    for (i, s) in img.symbols.iter().enumerate() {
        let i = i as u32;
        if s.is_stab() {
            e.push(format!("symbol {}: debugging (STABS) entry", s.name));
            continue;
        }
        if s.is_common() {
            e.push(format!("symbol {}: common symbol", s.name));
        }
        if i < dy.iextdefsym {
            if s.is_ext() || !s.is_defined() {
                e.push(format!(
                    "symbol {} in the local range is not a local definition",
                    s.name
                ));
            }
        } else if i < dy.iundefsym {
            if !s.is_ext() || !s.is_defined() {
                e.push(format!(
                    "symbol {} in the extdef range is not an external definition",
                    s.name
                ));
            }
            if s.name != "_kmod_info" {
                e.push(format!(
                    "symbol {} is exported; the only export must be _kmod_info",
                    s.name
                ));
            }
        } else if !s.is_undefined() || s.n_desc != 0 || s.n_value != 0 {
            e.push(format!(
                "symbol {} in the undefined range: expected N_UNDF|N_EXT, value 0, desc 0",
                s.name
            ));
        }
        if s.is_defined() {
            match img.section(s.n_sect as u32) {
                Some(sec) if s.n_value >= sec.addr && s.n_value <= sec.addr + sec.size => {}
                _ => e.push(format!(
                    "symbol {} lies outside its section {}",
                    s.name, s.n_sect
                )),
            }
        }
    }
    if !img
        .symbols
        .iter()
        .any(|s| s.name == "_kmod_info" && s.is_ext() && s.is_defined())
    {
        e.push("_kmod_info is not an exported definition".into());
    }
    // relocations
    let mut seen = BTreeSet::new();
    for r in &img.local_relocs {
        if r.kind != 0 || r.is_extern || r.pcrel || r.length != 3 {
            e.push(format!(
                "local relocation at {:#x}: type {} extern {} pcrel {} length {}; only type 0, length 3 is allowed",
                r.address, r.kind, r.is_extern, r.pcrel, r.length
            ));
        }
        if img.section(r.symbolnum).is_none() {
            e.push(format!(
                "local relocation at {:#x}: section ordinal {} does not exist",
                r.address, r.symbolnum
            ));
        }
        if !seen.insert(r.address) {
            e.push(format!("two relocations at {:#x}", r.address));
        }
        let width = 8;
        match img.section_at(r.address as u64) {
            Some((_, s)) if !s.zerofill() && r.address as u64 + width <= s.addr + s.size => {}
            _ => e.push(format!(
                "local relocation at {:#x} is not inside a section with contents",
                r.address
            )),
        }
    }
    let mut last_ext = (0u32, 0u32);
    for (n, r) in img.extern_relocs.iter().enumerate() {
        let ok_form = r.is_extern
            && ((r.kind == 2 && r.pcrel && r.length == 2)
                || (r.kind == 0 && !r.pcrel && r.length == 3));
        if !ok_form {
            e.push(format!(
                "external relocation at {:#x}: type {} pcrel {} length {}; only BRANCH (pcrel, 4) and UNSIGNED (8) are allowed",
                r.address, r.kind, r.pcrel, r.length
            ));
        }
        if r.symbolnum < dy.iundefsym || r.symbolnum >= dy.iundefsym + dy.nundefsym {
            e.push(format!(
                "external relocation at {:#x}: symbol {} is not an undefined symbol",
                r.address, r.symbolnum
            ));
        }
        if !seen.insert(r.address) {
            e.push(format!("two relocations at {:#x}", r.address));
        }
        let width = if r.length == 3 { 8 } else { 4 };
        match img.section_at(r.address as u64) {
            Some((_, s)) if !s.zerofill() && r.address as u64 + width <= s.addr + s.size => {
                let site = img.read(r.address as u64, width as usize).unwrap_or(&[1]);
                if site.iter().any(|&b| b != 0) {
                    e.push(format!(
                        "external relocation at {:#x}: the site holds a non-zero addend",
                        r.address
                    ));
                }
            }
            _ => e.push(format!(
                "external relocation at {:#x} is not inside a section with contents",
                r.address
            )),
        }
        let key = (r.symbolnum, r.address);
        if n > 0 && key < last_ext {
            e.push("external relocations are not sorted by symbol, then address".into());
        }
        last_ext = key;
    }
    if img.extern_relocs.len() != dy.nextrel as usize
        || img.local_relocs.len() != dy.nlocrel as usize
    {
        e.push("relocation counts differ from LC_DYSYMTAB".into());
    }
    e
}

/// A kernel made up from export lists: every kext-visible name -> address, aliases sharing
/// their target's address.
pub struct SyntheticKernel {
    pub symbols: HashMap<String, u64>,
    pub by_address: HashMap<u64, Vec<String>>,
}

impl SyntheticKernel {
    /// `sets`: bundle -> (kext name -> kernel name). Kernel names get distinct addresses in
    /// the kernel's range, 16 bytes apart, in sorted order.
    pub fn from_sets<'a>(sets: impl IntoIterator<Item = &'a ExportSet>) -> SyntheticKernel {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for set in sets {
            for (k, v) in set {
                names.insert(k.clone(), v.clone());
            }
        }
        let targets: BTreeSet<&String> = names.values().collect();
        let addr_of: HashMap<&String, u64> = targets
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t, 0xffff_ff80_0020_0000 + 16 * i as u64))
            .collect();
        let mut symbols = HashMap::new();
        let mut by_address: HashMap<u64, Vec<String>> = HashMap::new();
        for (k, v) in &names {
            let a = addr_of[v];
            symbols.insert(k.clone(), a);
            by_address.entry(a).or_default().push(k.clone());
        }
        SyntheticKernel {
            symbols,
            by_address,
        }
    }

    /// From the project's KPI table alone (when Apple's lists are absent).
    pub fn from_table(kpi: &KpiTable, bundles: &BTreeSet<String>) -> SyntheticKernel {
        let set: ExportSet = kpi
            .symbols
            .iter()
            .filter(|(_, b)| bundles.contains(*b))
            .map(|(s, _)| (s.clone(), s.clone()))
            .collect();
        Self::from_sets([&set])
    }
}

#[derive(Debug)]
pub struct SimReport {
    pub load_address: u64,
    pub local_applied: usize,
    pub extern_applied: usize,
    pub start: u64,
    pub stop: u64,
    pub start_symbol: String,
    pub stop_symbol: String,
}

/// Loads the kext at `load` as kxld would and checks every relocated site independently.
pub fn simulate(
    img: &Image,
    kernel: &SyntheticKernel,
    load: u64,
    identifier: &str,
    version: &str,
) -> Result<SimReport> {
    let kmod = check_kmod_info(img, identifier, version)?;
    let mut mem = img.memory();
    let mut written = vec![false; mem.len()];
    let mut errors = Vec::new();
    let mut unresolved = BTreeSet::new();
    let mut mark = |addr: u64, len: usize, errors: &mut Vec<String>| -> bool {
        let a = addr as usize;
        if a + len > written.len() {
            errors.push(format!("relocation site {addr:#x} beyond the image"));
            return false;
        }
        if written[a..a + len].iter().any(|&w| w) {
            errors.push(format!("relocation site {addr:#x} written twice"));
            return false;
        }
        written[a..a + len].iter_mut().for_each(|w| *w = true);
        true
    };
    for r in &img.local_relocs {
        if !mark(r.address as u64, 8, &mut errors) {
            continue;
        }
        let a = r.address as usize;
        let v = u64_at(&mem, a);
        mem[a..a + 8].copy_from_slice(&v.wrapping_add(load).to_le_bytes());
    }
    let symbol_name = |n: u32| {
        img.symbols
            .get(n as usize)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    };
    for r in &img.extern_relocs {
        let name = symbol_name(r.symbolnum);
        let Some(&s) = kernel.symbols.get(&name) else {
            unresolved.insert(name);
            continue;
        };
        let a = r.address as usize;
        if r.kind == 2 {
            if !mark(r.address as u64, 4, &mut errors) {
                continue;
            }
            let addend = u32_at(&mem, a) as i32 as i64;
            let v = s as i64 - (load as i64 + r.address as i64 + 4) + addend;
            if v < i32::MIN as i64 || v > i32::MAX as i64 {
                errors.push(format!(
                    "call to {name} at {:#x}: relocation entry has overflowed (beyond ±2 GiB)",
                    r.address
                ));
                continue;
            }
            mem[a..a + 4].copy_from_slice(&(v as i32).to_le_bytes());
        } else {
            if !mark(r.address as u64, 8, &mut errors) {
                continue;
            }
            let v = u64_at(&mem, a).wrapping_add(s);
            mem[a..a + 8].copy_from_slice(&v.to_le_bytes());
        }
    }
    if !unresolved.is_empty() {
        errors.push(format!(
            "unresolved symbols: {}",
            unresolved.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    check_all(errors)?;

    // Independent checks of the loaded image.
    let mut errors = Vec::new();
    for r in &img.extern_relocs {
        let name = symbol_name(r.symbolnum);
        let a = r.address as usize;
        let landed = if r.kind == 2 {
            // the site is the rel32 of a call/jmp (E8/E9) or a conditional jump (0F 8x)
            let op = mem[a - 1];
            let is_branch = op == 0xe8
                || op == 0xe9
                || (a >= 2 && mem[a - 2] == 0x0f && (0x80..=0x8f).contains(&op));
            if !is_branch {
                errors.push(format!(
                    "BRANCH to {name} at {:#x} is not the operand of a call or jump",
                    r.address
                ));
            }
            (load + r.address as u64 + 4).wrapping_add(u32_at(&mem, a) as i32 as i64 as u64)
        } else {
            u64_at(&mem, a)
        };
        if !kernel
            .by_address
            .get(&landed)
            .is_some_and(|n| n.contains(&name))
        {
            errors.push(format!(
                "reference to {name} at {:#x} lands on {landed:#x} ({:?}), not on {name}",
                r.address,
                kernel.by_address.get(&landed)
            ));
        }
    }
    for r in &img.local_relocs {
        let v = u64_at(&mem, r.address as usize);
        let original = img.read(r.address as u64, 8).map(|b| u64_at(b, 0));
        let target = v.wrapping_sub(load);
        if original != Some(target) {
            errors.push(format!(
                "pointer at {:#x}: {v:#x} is not its unslid value plus the load address",
                r.address
            ));
        }
        match img.section(r.symbolnum) {
            Some(s) if target >= s.addr && target <= s.addr + s.size => {}
            _ => errors.push(format!(
                "pointer at {:#x} lands on {target:#x}, outside the section its relocation names ({})",
                r.address, r.symbolnum
            )),
        }
    }
    let ka = kmod.address as usize;
    let start = u64_at(&mem, ka + KMOD_START_OFFSET);
    let stop = u64_at(&mem, ka + KMOD_STOP_OFFSET);
    for (v, unslid, sym, field) in [
        (start, kmod.start, &kmod.start_symbol, "start"),
        (stop, kmod.stop, &kmod.stop_symbol, "stop"),
    ] {
        if v != load + unslid {
            errors.push(format!(
                "kmod_info.{field} after loading is {v:#x}, expected {:#x} ({sym})",
                load + unslid
            ));
        }
        let in_text = img
            .segments
            .first()
            .is_some_and(|t| v >= load + t.vmaddr && v < load + t.vmaddr + t.vmsize);
        if !in_text {
            errors.push(format!(
                "kmod_info.{field} after loading ({v:#x}) is not in the loaded __TEXT"
            ));
        }
    }
    check_all(errors)?;
    Ok(SimReport {
        load_address: load,
        local_applied: img.local_relocs.len(),
        extern_applied: img.extern_relocs.len(),
        start,
        stop,
        start_symbol: kmod.start_symbol,
        stop_symbol: kmod.stop_symbol,
    })
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

/// A small xorshift generator: the simulator's load address is random per run, printed, and
/// reproducible with a seed.
pub fn load_address(seed: u64) -> u64 {
    let mut x = seed | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    // in the kext range below the kernel, 16 MiB of choice, within ±2 GiB of the kernel
    0xffff_ff7f_80a0_0000 + (x % 0x1000) * PAGE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_kernel_gives_aliases_their_targets_address() {
        let set: ExportSet = [
            ("_OSMalloc", "_OSMalloc_external"),
            ("_OSMalloc_external", "_OSMalloc_external"),
            ("_printf", "_printf"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let k = SyntheticKernel::from_sets([&set]);
        assert_eq!(k.symbols["_OSMalloc"], k.symbols["_OSMalloc_external"]);
        assert_ne!(k.symbols["_OSMalloc"], k.symbols["_printf"]);
        let mut at = k.by_address[&k.symbols["_OSMalloc"]].clone();
        at.sort();
        assert_eq!(at, ["_OSMalloc", "_OSMalloc_external"]);
        assert!(k.symbols.values().all(|&a| a >= 0xffff_ff80_0000_0000));
    }

    #[test]
    fn load_addresses_are_page_aligned_and_within_branch_range_of_the_kernel() {
        for seed in 0..1000u64 {
            let a = load_address(seed);
            assert_eq!(a % PAGE, 0);
            assert!(a >= 0xffff_ff7f_8000_0000);
            // a call from anywhere in a 16 MiB kext to the synthetic kernel fits a rel32
            assert!(0xffff_ff80_0020_0000u64 + 0x10_0000 - a < i32::MAX as u64);
        }
        assert_ne!(load_address(1), load_address(2));
    }
}
