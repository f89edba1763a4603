//! What the kernel-collection builder refuses in an arm64e kext (docs/kext-build.md 9.1, 9.2),
//! checked on the image read back: header, the 10 load commands, 16 KiB segments, the
//! chains (format, pages, alignment, binds), imports against the arm64 export lists, and
//! pointer authentication of everything the kernel calls.

use crate::chains::{Chained, PtrAuth};
use crate::consts::*;
use crate::image::Image;
use crate::kpi::ExportSet;
use object::macho;
use std::collections::HashMap;

pub const IA0: PtrAuth = PtrAuth {
    key: 0,
    addr_div: false,
    diversity: 0,
};

/// Structural problems; empty when the image is what the builder takes.
pub fn structural(img: &Image) -> Vec<String> {
    let mut e = Vec::new();
    if img.cputype != macho::CPU_TYPE_ARM64 || img.cpusubtype != ARM64E_KERNEL_SUBTYPE {
        e.push(format!(
            "cputype/subtype {:#x}/{:#x}, expected ARM64/{ARM64E_KERNEL_SUBTYPE:#x} (arm64e, versioned kernel ABI)",
            img.cputype, img.cpusubtype
        ));
    }
    if img.filetype != macho::MH_KEXT_BUNDLE || img.flags != KEXT_HEADER_FLAGS {
        e.push(format!(
            "file type {:#x} / flags {:#x}, expected MH_KEXT_BUNDLE / 0x85",
            img.filetype, img.flags
        ));
    }
    let want = [
        macho::LC_SEGMENT_64,
        macho::LC_SEGMENT_64,
        macho::LC_SEGMENT_64,
        macho::LC_SEGMENT_64,
        macho::LC_SEGMENT_64,
        macho::LC_DYLD_CHAINED_FIXUPS,
        macho::LC_SYMTAB,
        macho::LC_DYSYMTAB,
        macho::LC_UUID,
        macho::LC_SEGMENT_SPLIT_INFO,
    ];
    let got: Vec<u32> = img.commands.iter().map(|c| c.0).collect();
    if got != want {
        e.push(format!(
            "load commands {got:x?}, expected the 10 of docs/kext-build.md 9.1 ({want:x?})"
        ));
    }
    let names: Vec<&str> = img.segments.iter().map(|s| s.name.as_str()).collect();
    let want_segs = [
        "__TEXT",
        "__TEXT_EXEC",
        "__DATA",
        "__DATA_CONST",
        "__LINKEDIT",
    ];
    if names != want_segs {
        e.push(format!("segments {names:?}, expected {want_segs:?}"));
    }
    for (i, s) in img.segments.iter().enumerate() {
        let prot = match s.name.as_str() {
            "__TEXT" | "__LINKEDIT" => 1,
            "__TEXT_EXEC" => 5,
            _ => 3,
        };
        if s.maxprot != prot || s.initprot != prot {
            e.push(format!(
                "segment {}: protection {}/{}, expected {prot}",
                s.name, s.maxprot, s.initprot
            ));
        }
        if s.initprot & 6 == 6 {
            e.push(format!("segment {} is writable and executable", s.name));
        }
        if s.vmaddr % PAGE_ARM64 != 0 || s.fileoff % PAGE_ARM64 != 0 {
            e.push(format!("segment {} is not on a 16 KiB boundary", s.name));
        }
        if i == 0 && s.vmaddr != 0 {
            e.push("the first segment must be at address 0".into());
        }
    }
    if let Some(d) = &img.dysymtab {
        if d.nlocrel != 0 || d.nextrel != 0 {
            e.push("classic relocations in an arm64e kext (fixups must be chained)".into());
        }
    }
    for s in &img.sections {
        if s.segname == "__LLVM" || s.sectname == "__bitcode" || s.sectname == "__cmdline" {
            e.push(format!(
                "section {},{}: bitcode in the image",
                s.segname, s.sectname
            ));
        }
        if s.nreloc != 0 {
            e.push(format!(
                "section {},{} has relocations",
                s.segname, s.sectname
            ));
        }
    }
    let Some(chains) = &img.chains else {
        e.push("no LC_DYLD_CHAINED_FIXUPS".into());
        return e;
    };
    if img.split_seg_cmd.is_none() {
        e.push("no LC_SEGMENT_SPLIT_INFO: the builder cannot move the segments apart".into());
    }
    for (i, seg) in chains.segments.iter().enumerate() {
        if let Some(seg) = seg {
            if seg.page_size != CHAIN_PAGE as u16 || seg.pointer_format != CHAINED_PTR_ARM64E_KERNEL
            {
                e.push(format!(
                    "segment {i}: chain page size {:#x}, pointer format {}; expected 0x1000 and 7",
                    seg.page_size, seg.pointer_format
                ));
            }
            if img
                .segments
                .get(i)
                .is_none_or(|s| s.vmaddr != seg.segment_offset)
            {
                e.push(format!(
                    "segment {i}: chain segment_offset {:#x} is not the segment's",
                    seg.segment_offset
                ));
            }
        }
    }
    for (&site, f) in &chains.fixups {
        if site % 4 != 0 || site % CHAIN_PAGE + 8 > CHAIN_PAGE || site >= 1 << 30 {
            e.push(format!(
                "fixup at {site:#x}: not 4-byte aligned, straddling a 4 KiB page, or beyond 1 GiB"
            ));
        }
        match f {
            Chained::Bind {
                ordinal, addend, ..
            } => {
                match chains.imports.get(*ordinal as usize) {
                    Some(imp) if imp.lib_ordinal == 0xFE && !imp.weak => {}
                    Some(imp) => e.push(format!("bind of {} at {site:#x}: library ordinal {:#x}, expected flat lookup (0xfe)", imp.name, imp.lib_ordinal)),
                    None => e.push(format!("bind at {site:#x}: import ordinal {ordinal} out of range")),
                }
                if *addend != 0 {
                    e.push(format!("bind at {site:#x}: addend {addend} (chained bind addends are not supported)"));
                }
            }
            Chained::Rebase { target, high8, .. } => {
                if *high8 != 0
                    || img.section_at(*target).is_none()
                        && !img.sections.iter().any(|s| s.addr + s.size == *target)
                {
                    e.push(format!(
                        "rebase at {site:#x} to {target:#x}: outside every section"
                    ));
                }
            }
        }
    }
    e
}

/// Every import resolves in the arm64 export lists of the declared bundles (flat lookup).
pub fn check_binds(img: &Image, sets: &HashMap<String, ExportSet>) -> Vec<String> {
    let mut e = Vec::new();
    let Some(chains) = &img.chains else {
        return vec!["no chained fixups".into()];
    };
    for imp in &chains.imports {
        if !sets.values().any(|s| s.contains_key(&imp.name)) {
            e.push(format!(
                "import {}: not in the arm64 export lists of the declared bundles",
                imp.name
            ));
        }
    }
    e
}

/// Pointer authentication: every signed pointer is IA/0 into `__TEXT_EXEC` (the kernel calls
/// them as plain C function pointers), and so is every non-null pointer inside each of the
/// `tables` symbols (e.g. the cdevsw). Returns the number of signed pointers.
pub fn check_auth(img: &Image, tables: &[String]) -> Result<usize, Vec<String>> {
    let mut e = Vec::new();
    let Some(chains) = &img.chains else {
        return Err(vec!["no chained fixups".into()]);
    };
    let in_exec = |t: u64| {
        img.section_at(t)
            .is_some_and(|(_, s)| s.segname == "__TEXT_EXEC")
    };
    let mut n = 0;
    for (&site, f) in &chains.fixups {
        let (auth, target) = match f {
            Chained::Rebase {
                auth: Some(a),
                target,
                ..
            } => (a, Some(*target)),
            Chained::Bind { auth: Some(a), .. } => (a, None),
            _ => continue,
        };
        n += 1;
        if *auth != IA0 {
            e.push(format!("signed pointer at {site:#x}: {auth:?}, the kernel authenticates IA with discriminator 0"));
        }
        if target.is_some_and(|t| !in_exec(t)) {
            e.push(format!(
                "signed pointer at {site:#x} does not point into __TEXT_EXEC"
            ));
        }
    }
    for name in tables {
        let Some(sym) = img.symbol(name) else {
            e.push(format!("{name}: no such symbol"));
            continue;
        };
        let sect = img.section(sym.n_sect as u32).expect("defined");
        let end = img
            .symbols
            .iter()
            .filter(|s| s.is_defined() && s.n_sect == sym.n_sect && s.n_value > sym.n_value)
            .map(|s| s.n_value)
            .min()
            .unwrap_or(sect.addr + sect.size);
        let mut pointers = 0;
        for (&site, f) in chains.fixups.range(sym.n_value..end) {
            pointers += 1;
            match f {
                Chained::Rebase {
                    auth: Some(a),
                    target,
                    ..
                } if *a == IA0 && in_exec(*target) => {}
                other => e.push(format!(
                    "{name}+{:#x}: {other:?}, expected an IA/0 signed pointer into __TEXT_EXEC",
                    site - sym.n_value
                )),
            }
        }
        if pointers == 0 {
            e.push(format!("{name}: holds no pointer"));
        }
    }
    if e.is_empty() {
        Ok(n)
    } else {
        Err(e)
    }
}
