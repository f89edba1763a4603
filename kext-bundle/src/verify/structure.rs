//! Structural checks of an x86_64 kext (spec section 10.1): header, load commands,
//! segments, sections, symbol table, relocation forms.

use crate::consts::*;
use crate::image::Image;
use object::macho;
use std::collections::{BTreeMap, BTreeSet};

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

/// relocation forms. Returns the list of problems (empty when the image is well-formed).
/// Structural checks (section 10.1): header, load commands, segments, sections, symbol table,
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
        } else if !s.is_undefined() || s.n_desc != DYNAMIC_LOOKUP_DESC || s.n_value != 0 {
            e.push(format!(
                "symbol {} in the undefined range: expected N_UNDF|N_EXT, value 0, desc {DYNAMIC_LOOKUP_DESC:#x} (dynamic lookup, as ld64 writes)",
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
