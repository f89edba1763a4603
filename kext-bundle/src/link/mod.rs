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
use crate::Result;
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
}

impl LinkOptions {
    pub fn new(plist: PlistInfo, kpi: KpiTable) -> Self {
        LinkOptions {
            plist,
            kpi,
            roots: vec!["_kmod_info".to_string()],
            exports: None,
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
    let image = link_x86_64(&r, opts)?;
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
