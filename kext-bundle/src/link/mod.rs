//! The linker: inputs -> `MH_KEXT_BUNDLE` image (spec sections 3, 4 and 9).
//!
//! The phases, one module each: [`resolve`] (roots, archive pull-in, KPI checks),
//! [`layout`] (segments and sections from an architecture's [`layout::Plan`]),
//! [`arch`] (relocation lowering to abstract [`fixup`]s, instruction encoding),
//! [`emit`] (classic relocations for x86_64; chained fixups and split-seg info for arm64e),
//! [`symtab`] and [`write`] (the Mach-O file). This file composes them per architecture.

pub mod address;
pub mod arch;
pub mod emit;
pub mod fixup;
pub mod layout;
pub mod resolve;
pub mod symtab;
pub mod write;

use crate::consts::*;
use crate::input::Input;
use crate::kpi::{ExportSet, KpiTable, PlistInfo};
use crate::{check_all, Result};
use address::Addresses;
use object::macho;
use object::{LittleEndian as LE, U32, U64};
use resolve::Resolved;
use std::collections::{BTreeMap, HashMap};
use write::{Dysymtab, Linkedit, Writer};

pub struct LinkOptions {
    pub plist: PlistInfo,
    pub kpi: KpiTable,
    /// Symbols treated as referenced before any input (default `_kmod_info`), so that a
    /// link from archives alone pulls in the member that defines them.
    pub roots: Vec<String>,
    /// Apple's export sets of the declared bundles, when available: used only to warn
    /// about kext globals that share a name with a kernel export.
    pub exports: Option<HashMap<String, ExportSet>>,
    /// Apple's export lists (`../shared/xnu-exports`), when available: an arm64e link
    /// checks every import against the arm64 lists of today and of macOS 11.
    pub exports_dir: Option<std::path::PathBuf>,
}

impl LinkOptions {
    pub fn new(plist: PlistInfo, kpi: KpiTable) -> Self {
        LinkOptions {
            plist,
            kpi,
            roots: vec!["_kmod_info".to_string()],
            exports: None,
            exports_dir: None,
        }
    }
}

#[derive(Debug)]
pub struct LinkOutput {
    pub image: Vec<u8>,
    pub warnings: Vec<String>,
    /// Imported symbol -> bundle (from the KPI table).
    pub imports: BTreeMap<String, String>,
    /// Names of the linked objects, in link order.
    pub objects: Vec<String>,
}

#[derive(Clone, Copy, Debug)]
pub struct GlobalDef {
    pub obj: usize,
    pub sym: usize,
    pub weak: bool,
}

/// `/long/path/libtunnel.a(member.o)` -> `libtunnel.a(member.o)`: how messages name objects.
pub fn short(name: &str) -> &str {
    let cut = match name.find('(') {
        Some(p) => name[..p].rfind('/').map(|i| i + 1).unwrap_or(0),
        None => name.rfind('/').map(|i| i + 1).unwrap_or(0),
    };
    &name[cut..]
}

/// Links `inputs` (objects always, archive members on demand) into a kext image.
pub fn link(inputs: Vec<Input>, opts: &LinkOptions) -> Result<LinkOutput> {
    let r = resolve::resolve(inputs, opts)?;
    let image = if r.cputype == macho::CPU_TYPE_ARM64 {
        link_arm64e(&r, opts)?
    } else {
        link_x86_64(&r, opts)?
    };
    let parsed = crate::image::Image::parse(&image)?;
    crate::verify::check_kmod_info(&parsed, &opts.plist.identifier, &opts.plist.version)?;
    Ok(LinkOutput {
        image,
        warnings: r.warnings,
        imports: r.imports,
        objects: r.objs.iter().map(|o| short(&o.name).to_string()).collect(),
    })
}

/// x86_64 (spec section 3): `__TEXT`, `__DATA` (GOT first), `__LINKEDIT` on 4 KiB pages;
/// classic relocations; 8 load commands.
fn link_x86_64(r: &Resolved, opts: &LinkOptions) -> Result<Vec<u8>> {
    use arch::x86_64;
    let got = x86_64::got_slots(r);
    let plan = layout::Plan {
        page: PAGE,
        segments: &[("__TEXT", 5), ("__DATA", 3)],
        segment_of: |seg, _, _| if seg == "__TEXT" { "__TEXT" } else { "__DATA" },
        synthesized: vec![layout::Synthesized {
            segname: "__DATA",
            sectname: "__got",
            flags: macho::S_REGULAR,
            align: 3,
            size: 8 * got.slots.len() as u64,
            reserved2: 0,
        }],
        // LC_SYMTAB, LC_DYSYMTAB, LC_UUID, LC_VERSION_MIN_MACOSX, LC_SOURCE_VERSION
        other_commands_size: 24 + 80 + 24 + 16 + 16,
        code_fill: 0x90,
    };
    let mut layout = layout::lay_out(&r.objs, &plan)?;
    let got_out = layout.out_index("__got");
    let a = Addresses::new(r, &layout);
    let lowered = x86_64::lower(&a, &got, got_out)?;
    let symtab = symtab::build(&a, DYNAMIC_LOOKUP_DESC)?;
    let relocs = emit::classic::encode(&lowered.fixups, &symtab)?;
    for (o, off, bytes) in lowered.writes {
        layout.outs[o].data[off..off + bytes.len()].copy_from_slice(&bytes);
    }

    let mut linkedit = Linkedit::new(layout.linkedit_fileoff);
    let locreloff = linkedit.add(&relocs.local);
    let extreloff = linkedit.add(&relocs.external);
    let symoff = linkedit.add(
        &symtab
            .nlists
            .iter()
            .flat_map(|n| object::pod::bytes_of(n).to_vec())
            .collect::<Vec<u8>>(),
    );
    let stroff = linkedit.add(&symtab.strtab);

    let min_version = r
        .objs
        .iter()
        .map(|o| o.min_version)
        .max()
        .unwrap_or(0)
        .max(MIN_MACOS);
    let mut w = Writer::new(
        macho::CPU_TYPE_X86_64,
        macho::CPU_SUBTYPE_X86_64_ALL,
        8,
        layout.sizeofcmds,
    );
    w.segments(&layout, &linkedit, PAGE);
    w.symtab(symoff, symtab.nlists.len(), stroff, symtab.strtab.len());
    w.dysymtab(&Dysymtab {
        nlocal: symtab.nlocal,
        nextdef: symtab.nextdef,
        nundef: symtab.undefs.len(),
        extreloff,
        nextrel: relocs.nextern,
        locreloff,
        nlocrel: relocs.nlocal,
        ..Dysymtab::default()
    });
    w.uuid();
    w.command(&macho::VersionMinCommand::<LE> {
        cmd: U32::new(LE, macho::LC_VERSION_MIN_MACOSX),
        cmdsize: U32::new(LE, 16),
        version: U32::new(LE, min_version),
        sdk: U32::new(LE, min_version),
    });
    w.command(&macho::SourceVersionCommand::<LE> {
        cmd: U32::new(LE, macho::LC_SOURCE_VERSION),
        cmdsize: U32::new(LE, 16),
        version: U64::new(LE, crate::kpi::pack_source_version(&opts.plist.version)),
    });
    Ok(w.finish(&layout, &linkedit))
}

/// The export lists of macOS 11.0 (xnu-7195.50.7.100.1), the oldest release with arm64e.
pub const ARM64_MIN_OS_EXPORTS: &str = "xnu-7195.50.7.100.1";

/// Every import is exported on arm64 by its bundle, today and on the minimum OS.
fn check_arm64_imports(r: &Resolved, dir: &std::path::Path) -> Result<()> {
    let mut errors = Vec::new();
    for (release, label) in [
        (dir.to_path_buf(), "today's"),
        (dir.join(ARM64_MIN_OS_EXPORTS), "macOS 11.0's"),
    ] {
        if !release.is_dir() {
            continue;
        }
        let mut sets: HashMap<&str, ExportSet> = HashMap::new();
        for (name, bundle) in &r.imports {
            if !sets.contains_key(bundle.as_str()) {
                sets.insert(
                    bundle,
                    crate::kpi::load_arch_exports(&release, bundle, "arm64")?,
                );
            }
            if !sets[bundle.as_str()].contains_key(name) {
                errors.push(format!(
                    "undefined symbol {name}: not in {label} arm64 export lists of {bundle} ({})",
                    release.display()
                ));
            }
        }
    }
    check_all(errors)
}

/// arm64e (docs/kext-build.md 9.1): `__TEXT`, `__TEXT_EXEC`, `__DATA`, `__DATA_CONST`,
/// `__LINKEDIT` on 16 KiB pages; chained fixups (format 7) and split-seg v2; 10 load commands.
fn link_arm64e(r: &Resolved, opts: &LinkOptions) -> Result<Vec<u8>> {
    use arch::arm64e;
    if let Some(dir) = opts.exports_dir.as_ref().filter(|d| d.is_dir()) {
        check_arm64_imports(r, dir)?;
    }
    let ind = arm64e::indirect(r);
    let plan = layout::Plan {
        page: PAGE_ARM64,
        segments: &[
            ("__TEXT", 1),
            ("__TEXT_EXEC", 5),
            ("__DATA", 3),
            ("__DATA_CONST", 3),
        ],
        segment_of: |seg, sect, flags| {
            if flags & (macho::S_ATTR_SOME_INSTRUCTIONS | macho::S_ATTR_PURE_INSTRUCTIONS) != 0 {
                "__TEXT_EXEC"
            } else if seg == "__TEXT" {
                "__TEXT"
            } else if seg == "__DATA_CONST" || sect == "__const" {
                "__DATA_CONST"
            } else {
                "__DATA"
            }
        },
        synthesized: vec![
            layout::Synthesized {
                segname: "__TEXT_EXEC",
                sectname: "__stubs",
                flags: macho::S_SYMBOL_STUBS
                    | macho::S_ATTR_PURE_INSTRUCTIONS
                    | macho::S_ATTR_SOME_INSTRUCTIONS,
                align: 2,
                size: arm64e::STUB_SIZE * ind.stubs.len() as u64,
                reserved2: arm64e::STUB_SIZE as u32,
            },
            layout::Synthesized {
                segname: "__DATA_CONST",
                sectname: "__got",
                flags: macho::S_NON_LAZY_SYMBOL_POINTERS,
                align: 3,
                size: 8 * ind.got.len() as u64,
                reserved2: 0,
            },
        ],
        // LC_DYLD_CHAINED_FIXUPS, LC_SYMTAB, LC_DYSYMTAB, LC_UUID, LC_SEGMENT_SPLIT_INFO
        other_commands_size: 16 + 24 + 80 + 24 + 16,
        code_fill: 0,
    };
    let mut layout = layout::lay_out(&r.objs, &plan)?;
    let stubs_out = layout.out_index("__stubs");
    let got_out = layout.out_index("__got");
    let a = Addresses::new(r, &layout);
    let lowered = arm64e::lower(&a, &ind, stubs_out, got_out)?;
    let symtab = symtab::build(&a, DYNAMIC_LOOKUP_DESC)?;
    let split = emit::splitseg::encode(&layout, &lowered.refs)?;
    // Indirect symbols: one per stub, then one per GOT slot (ld64's order).
    let mut indirect: Vec<u32> = ind
        .stubs
        .iter()
        .map(|n| symtab.undef_index[n] as u32)
        .collect();
    for (key, _, _) in &ind.got {
        indirect.push(match symtab.undef_index.get(key) {
            Some(&i) if r.imports.contains_key(key) => i as u32,
            _ => macho::INDIRECT_SYMBOL_LOCAL,
        });
    }
    if let Some(o) = got_out {
        layout.outs[o].reserved1 = ind.stubs.len() as u32;
    }
    for (o, off, bytes) in lowered.writes {
        layout.outs[o].data[off..off + bytes.len()].copy_from_slice(&bytes);
    }
    let segments = layout.segments.clone();
    let outs = &mut layout.outs;
    let chains = emit::chained::encode(&segments, &lowered.fixups, &symtab.undefs, |site, v| {
        let s = outs
            .iter_mut()
            .find(|s| site >= s.addr && site + 8 <= s.addr + s.size)
            .expect("fixup sites lie in sections");
        let at = (site - s.addr) as usize;
        s.data[at..at + 8].copy_from_slice(&v.to_le_bytes());
    })?;

    let mut linkedit = Linkedit::new(layout.linkedit_fileoff);
    let chains_off = linkedit.add(&chains);
    let split_off = linkedit.add(&split);
    let symoff = linkedit.add(
        &symtab
            .nlists
            .iter()
            .flat_map(|n| object::pod::bytes_of(n).to_vec())
            .collect::<Vec<u8>>(),
    );
    let indirectsymoff = linkedit.add(
        &indirect
            .iter()
            .flat_map(|i| i.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let stroff = linkedit.add(&symtab.strtab);

    let mut w = Writer::new(
        macho::CPU_TYPE_ARM64,
        ARM64E_KERNEL_SUBTYPE,
        10,
        layout.sizeofcmds,
    );
    w.segments(&layout, &linkedit, PAGE_ARM64);
    w.linkedit_data(macho::LC_DYLD_CHAINED_FIXUPS, chains_off, chains.len());
    w.symtab(symoff, symtab.nlists.len(), stroff, symtab.strtab.len());
    w.dysymtab(&Dysymtab {
        nlocal: symtab.nlocal,
        nextdef: symtab.nextdef,
        nundef: symtab.undefs.len(),
        indirectsymoff,
        nindirect: indirect.len(),
        ..Dysymtab::default()
    });
    w.uuid();
    w.linkedit_data(macho::LC_SEGMENT_SPLIT_INFO, split_off, split.len());
    Ok(w.finish(&layout, &linkedit))
}
