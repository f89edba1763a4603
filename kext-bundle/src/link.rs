//! The linker: inputs -> `MH_KEXT_BUNDLE` image (spec sections 3 and 4).

use crate::consts::*;
use crate::input::{InObject, InSymbol, Input};
use crate::kpi::{private_hint, ExportSet, KpiTable, PlistInfo, PRIVATE_BUNDLE};
use crate::{align_up, check_all, err, Result};
use object::macho;
use object::pod::bytes_of;
use object::{LittleEndian as LE, U32, U64};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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

/// x86_64 relocation types.
mod rt {
    pub const UNSIGNED: u8 = 0;
    pub const SIGNED: u8 = 1;
    pub const BRANCH: u8 = 2;
    pub const GOT_LOAD: u8 = 3;
    pub const GOT: u8 = 4;
    pub const SUBTRACTOR: u8 = 5;
    pub const SIGNED_1: u8 = 6;
    pub const SIGNED_2: u8 = 7;
    pub const SIGNED_4: u8 = 8;
    pub const TLV: u8 = 9;
}

pub fn reloc_type_name(t: u8) -> &'static str {
    match t {
        rt::UNSIGNED => "UNSIGNED",
        rt::SIGNED => "SIGNED",
        rt::BRANCH => "BRANCH",
        rt::GOT_LOAD => "GOT_LOAD",
        rt::GOT => "GOT",
        rt::SUBTRACTOR => "SUBTRACTOR",
        rt::SIGNED_1 => "SIGNED_1",
        rt::SIGNED_2 => "SIGNED_2",
        rt::SIGNED_4 => "SIGNED_4",
        rt::TLV => "TLV",
        _ => "unknown",
    }
}

#[derive(Clone, Copy, Debug)]
struct GlobalDef {
    obj: usize,
    sym: usize,
    weak: bool,
}

/// Whether an input section is left out of the image.
fn is_dropped(seg: &str, sect: &str, flags: u32) -> bool {
    seg == "__LLVM"
        || seg == "__DWARF"
        || (seg == "__LD" && sect == "__compact_unwind")
        || (seg == "__TEXT" && sect == "__eh_frame")
        || flags & macho::S_ATTR_DEBUG != 0
}

fn is_tls_type(t: u32) -> bool {
    (macho::S_THREAD_LOCAL_REGULAR..=macho::S_THREAD_LOCAL_INIT_FUNCTION_POINTERS).contains(&t)
}

/// Output segment of a kept input section, or an error message.
fn output_segment(seg: &str) -> Option<&'static str> {
    match seg {
        "__TEXT" => Some("__TEXT"),
        "__DATA" | "__DATA_CONST" => Some("__DATA"),
        _ => None,
    }
}

struct OutSection {
    segname: &'static str,
    sectname: String,
    flags: u32,
    align: u32,
    addr: u64,
    size: u64,
    data: Vec<u8>,
}

impl OutSection {
    fn zerofill(&self) -> bool {
        matches!(
            self.flags & macho::SECTION_TYPE,
            macho::S_ZEROFILL | macho::S_GB_ZEROFILL
        )
    }
}

/// Where a relocation points.
#[derive(Clone, Debug, PartialEq)]
enum Target {
    /// Address in the image (unslid).
    Kext(u64),
    Import(String),
}

/// Output relocation before the symbol table is final.
struct ExtReloc {
    name: String,
    address: u64,
    kind: u8,
}

fn short(name: &str) -> &str {
    // `/long/path/libtunnel.a(member.o)` -> `libtunnel.a(member.o)`
    let cut = match name.find('(') {
        Some(p) => name[..p].rfind('/').map(|i| i + 1).unwrap_or(0),
        None => name.rfind('/').map(|i| i + 1).unwrap_or(0),
    };
    &name[cut..]
}

/// Links `inputs` (objects always, archive members on demand) into a kext image.
pub fn link(inputs: Vec<Input>, opts: &LinkOptions) -> Result<LinkOutput> {
    let mut errors: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();

    // ---- 1. resolution: which objects are linked, which definition wins -------------------
    let mut objs: Vec<InObject> = Vec::new();
    let mut globals: HashMap<String, GlobalDef> = HashMap::new();
    // referenced name -> first object that references it
    let mut referenced: BTreeMap<String, String> = BTreeMap::new();
    for r in &opts.roots {
        referenced.insert(r.clone(), "(link root)".to_string());
    }
    let mut archives: Vec<(String, Vec<Option<InObject>>)> = Vec::new();

    fn add_object(
        obj: InObject,
        objs: &mut Vec<InObject>,
        globals: &mut HashMap<String, GlobalDef>,
        referenced: &mut BTreeMap<String, String>,
        errors: &mut Vec<String>,
    ) {
        let oi = objs.len();
        for (si, s) in obj.symbols.iter().enumerate() {
            if s.is_common() {
                errors.push(format!(
                    "common symbol {} ({}): kxld refuses common symbols; compile with -fno-common",
                    s.name,
                    short(&obj.name)
                ));
            } else if s.is_defined() && s.is_ext() {
                let new = GlobalDef {
                    obj: oi,
                    sym: si,
                    weak: s.is_weak_def(),
                };
                match globals.get(&s.name) {
                    None => {
                        globals.insert(s.name.clone(), new);
                    }
                    Some(old) if old.weak && !new.weak => {
                        globals.insert(s.name.clone(), new);
                    }
                    Some(old) if !old.weak && !new.weak => errors.push(format!(
                        "duplicate symbol {}: defined in {} and in {}",
                        s.name,
                        short(&objs[old.obj].name),
                        short(&obj.name)
                    )),
                    Some(_) => {}
                }
            } else if s.is_undefined() {
                referenced
                    .entry(s.name.clone())
                    .or_insert_with(|| short(&obj.name).to_string());
            } else if !s.is_stab()
                && s.is_ext()
                && s.kind() != macho::N_SECT
                && s.kind() != macho::N_UNDF
            {
                errors.push(format!(
                    "symbol {} ({}): unsupported symbol type {:#x} (absolute or indirect)",
                    s.name,
                    short(&obj.name),
                    s.n_type
                ));
            }
        }
        objs.push(obj);
    }

    for input in inputs {
        match input {
            Input::Object(o) => {
                add_object(o, &mut objs, &mut globals, &mut referenced, &mut errors)
            }
            Input::Archive { name, members } => {
                archives.push((name, members.into_iter().map(Some).collect()))
            }
        }
    }
    loop {
        let mut changed = false;
        for (_, members) in archives.iter_mut() {
            for slot in members.iter_mut() {
                let wanted = slot.as_ref().is_some_and(|m| {
                    m.symbols.iter().any(|s| {
                        s.is_defined()
                            && s.is_ext()
                            && !globals.contains_key(&s.name)
                            && referenced.contains_key(&s.name)
                    })
                });
                if wanted {
                    let m = slot.take().expect("member present");
                    add_object(m, &mut objs, &mut globals, &mut referenced, &mut errors);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    if !globals.contains_key("_kmod_info") {
        errors.push(
            "missing _kmod_info: no input defines it (the kext is missing its kmod_info structure)"
                .to_string(),
        );
    }

    // ---- 2. imports --------------------------------------------------------------------------
    let declared = opts.plist.declared();
    let mut imports: BTreeMap<String, String> = BTreeMap::new();
    for (name, from) in &referenced {
        if globals.contains_key(name) || opts.roots.contains(name) {
            continue;
        }
        match opts.kpi.bundle_of(name) {
            None => {
                let hint = private_hint(name)
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                errors.push(format!(
                    "undefined symbol {name} ({from}): not in the project's KPI table {}{hint}",
                    opts.kpi.source
                ));
            }
            Some(PRIVATE_BUNDLE) => errors.push(format!(
                "undefined symbol {name} ({from}): exported only by {PRIVATE_BUNDLE}, which third-party kexts cannot link against"
            )),
            Some(bundle) if !declared.contains(bundle) => errors.push(format!(
                "undefined symbol {name} ({from}): exported by {bundle}, which Info.plist OSBundleLibraries does not declare; add {bundle}"
            )),
            Some(bundle) => {
                imports.insert(name.clone(), bundle.to_string());
            }
        }
    }
    let used: BTreeSet<String> = imports.values().cloned().collect();
    for b in declared.difference(&used) {
        warnings.push(format!(
            "Info.plist OSBundleLibraries declares {b}, but the kext imports nothing from it"
        ));
    }

    // ---- 3. per-object checks: symbols, sections --------------------------------------------
    for (oi, obj) in objs.iter().enumerate() {
        for (si, s) in obj.symbols.iter().enumerate() {
            if s.is_undefined() && s.is_weak_ref() {
                errors.push(format!(
                    "weak reference to {} ({}): kxld refuses weak imports",
                    s.name,
                    short(&obj.name)
                ));
            }
            let winner = globals
                .get(&s.name)
                .is_some_and(|g| g.obj == oi && g.sym == si);
            if s.is_defined()
                && s.is_ext()
                && !s.is_private_ext()
                && winner
                && s.name != "_kmod_info"
            {
                if MEM_FAMILY.contains(&s.name.as_str()) {
                    errors.push(format!(
                        "symbol {} ({}): the kext defines a kernel export of the mem* family; is compiler-builtins-mem enabled?",
                        s.name,
                        short(&obj.name)
                    ));
                } else if opts.kpi.bundle_of(&s.name).is_some()
                    || opts
                        .exports
                        .as_ref()
                        .is_some_and(|e| e.values().any(|set| set.contains_key(&s.name)))
                {
                    warnings.push(format!(
                        "symbol {} ({}): the kext defines a global with the name of a kernel export (demoted to local)",
                        s.name,
                        short(&obj.name)
                    ));
                }
            }
        }
        for (idx, sect) in obj.sections.iter().enumerate() {
            let t = sect.section_type();
            let syms_in = |o: &InObject| -> Vec<String> {
                o.symbols
                    .iter()
                    .filter(|s| s.is_defined() && s.n_sect as usize == idx + 1 && !s.is_temporary())
                    .map(|s| s.name.clone())
                    .collect()
            };
            if is_tls_type(t) {
                if t == macho::S_THREAD_LOCAL_VARIABLES {
                    let names = syms_in(obj);
                    for n in if names.is_empty() {
                        vec![sect.full_name()]
                    } else {
                        names
                    } {
                        errors.push(format!(
                            "thread-local variable {n} ({}): the kernel has no TLS",
                            short(&obj.name)
                        ));
                    }
                }
                continue;
            }
            if t == macho::S_MOD_INIT_FUNC_POINTERS || t == macho::S_MOD_TERM_FUNC_POINTERS {
                let what = if t == macho::S_MOD_INIT_FUNC_POINTERS {
                    "constructor"
                } else {
                    "destructor"
                };
                let mut names: Vec<String> = sect
                    .relocs
                    .iter()
                    .filter(|r| r.is_extern)
                    .filter_map(|r| {
                        obj.symbols
                            .get(r.symbolnum as usize)
                            .map(|s| s.name.clone())
                    })
                    .collect();
                if names.is_empty() {
                    names.push(sect.full_name());
                }
                for n in names {
                    errors.push(format!(
                        "static {what} {n} ({}, {}): a kext has no static constructors or destructors",
                        short(&obj.name),
                        sect.full_name()
                    ));
                }
                continue;
            }
            if is_dropped(&sect.segname, &sect.sectname, sect.flags) {
                continue;
            }
            if output_segment(&sect.segname).is_none() {
                errors.push(format!(
                    "section {} ({}): unsupported segment for a kext",
                    sect.full_name(),
                    short(&obj.name)
                ));
            }
            match t {
                macho::S_REGULAR
                | macho::S_ZEROFILL
                | macho::S_GB_ZEROFILL
                | macho::S_CSTRING_LITERALS
                | macho::S_4BYTE_LITERALS
                | macho::S_8BYTE_LITERALS
                | macho::S_16BYTE_LITERALS
                | macho::S_LITERAL_POINTERS
                | macho::S_COALESCED => {}
                _ => errors.push(format!(
                    "section {} ({}): unsupported section type {t:#x}",
                    sect.full_name(),
                    short(&obj.name)
                )),
            }
        }
    }
    check_all(errors.clone())?;

    // ---- 4. GOT slots ------------------------------------------------------------------------
    // Key: the global name, or `#obj#sym` for a symbol local to one object.
    let sym_key = |oi: usize, si: usize, s: &InSymbol| -> String {
        if s.is_ext() {
            s.name.clone()
        } else {
            format!("#{oi}#{si}")
        }
    };
    let mut got: Vec<(String, usize, usize)> = Vec::new(); // key, obj, sym of first use
    let mut got_index: HashMap<String, usize> = HashMap::new();
    for (oi, obj) in objs.iter().enumerate() {
        for sect in &obj.sections {
            if is_dropped(&sect.segname, &sect.sectname, sect.flags) {
                continue;
            }
            for r in &sect.relocs {
                if (r.kind == rt::GOT || r.kind == rt::GOT_LOAD) && r.is_extern {
                    if let Some(s) = obj.symbols.get(r.symbolnum as usize) {
                        let key = sym_key(oi, r.symbolnum as usize, s);
                        if !got_index.contains_key(&key) {
                            got_index.insert(key.clone(), got.len());
                            got.push((key, oi, r.symbolnum as usize));
                        }
                    }
                }
            }
        }
    }

    // ---- 5. layout ---------------------------------------------------------------------------
    let mut outs: Vec<OutSection> = Vec::new();
    let mut place: HashMap<(usize, usize), (usize, u64)> = HashMap::new();
    let find_or_add =
        |outs: &mut Vec<OutSection>, seg: &'static str, name: &str, flags: u32| -> usize {
            if let Some(i) = outs
                .iter()
                .position(|o| o.segname == seg && o.sectname == name)
            {
                outs[i].flags |= flags & macho::SECTION_ATTRIBUTES;
                return i;
            }
            outs.push(OutSection {
                segname: seg,
                sectname: name.to_string(),
                flags,
                align: 0,
                addr: 0,
                size: 0,
                data: Vec::new(),
            });
            outs.len() - 1
        };
    // Section order: __TEXT,__text first; __DATA,__got first, zerofill last.
    let mut text_secs = Vec::new();
    let mut data_secs = Vec::new();
    let mut zero_secs = Vec::new();
    for (oi, obj) in objs.iter().enumerate() {
        for (idx, sect) in obj.sections.iter().enumerate() {
            if is_dropped(&sect.segname, &sect.sectname, sect.flags) {
                continue;
            }
            let seg = output_segment(&sect.segname).expect("checked");
            let entry = (oi, idx);
            if seg == "__TEXT" {
                if sect.sectname == "__text" {
                    text_secs.insert(
                        text_secs
                            .iter()
                            .filter(|&&(o, i): &&(usize, usize)| {
                                objs[o].sections[i].sectname == "__text"
                            })
                            .count(),
                        entry,
                    );
                } else {
                    text_secs.push(entry);
                }
            } else if sect.is_zerofill() {
                zero_secs.push(entry);
            } else {
                data_secs.push(entry);
            }
        }
    }
    let mut order: Vec<usize> = Vec::new(); // out indices in creation order = address order
    for &(oi, idx) in &text_secs {
        let s = &objs[oi].sections[idx];
        let o = find_or_add(&mut outs, "__TEXT", &s.sectname, s.flags);
        if !order.contains(&o) {
            order.push(o);
        }
    }
    let got_out = if got.is_empty() {
        None
    } else {
        let o = find_or_add(&mut outs, "__DATA", "__got", macho::S_REGULAR);
        order.push(o);
        outs[o].align = 3;
        Some(o)
    };
    for &(oi, idx) in data_secs.iter().chain(zero_secs.iter()) {
        let s = &objs[oi].sections[idx];
        let o = find_or_add(&mut outs, "__DATA", &s.sectname, s.flags);
        if !order.contains(&o) {
            order.push(o);
        }
    }
    // A zerofill and a regular input section with the same name would end up in one output
    // section; refuse that rather than write zeros to file.
    for &(oi, idx) in data_secs.iter() {
        let s = &objs[oi].sections[idx];
        if zero_secs
            .iter()
            .any(|&(o2, i2)| objs[o2].sections[i2].sectname == s.sectname)
        {
            return Err(err!(
                "section {} ({}): both zerofill and regular inputs use this name",
                s.full_name(),
                short(&objs[oi].name)
            ));
        }
    }
    // Place input sections within their output sections.
    for &(oi, idx) in text_secs
        .iter()
        .chain(data_secs.iter())
        .chain(zero_secs.iter())
    {
        let s = &objs[oi].sections[idx];
        let seg = output_segment(&s.segname).expect("checked");
        let o = outs
            .iter()
            .position(|x| x.segname == seg && x.sectname == s.sectname)
            .expect("added");
        let out = &mut outs[o];
        if s.align > 15 {
            return Err(err!(
                "section {} ({}): alignment 2^{} too large",
                s.full_name(),
                short(&objs[oi].name),
                s.align
            ));
        }
        out.align = out.align.max(s.align);
        let off = align_up(out.size, 1 << s.align);
        let fill = if out.flags & macho::S_ATTR_PURE_INSTRUCTIONS != 0 {
            0x90
        } else {
            0
        };
        if !s.is_zerofill() {
            out.data.resize(off as usize, fill);
            out.data.extend_from_slice(&s.data);
        }
        out.size = off + s.size;
        place.insert((oi, idx), (o, off));
    }
    if let Some(g) = got_out {
        outs[g].size = 8 * got.len() as u64;
        outs[g].data = vec![0; outs[g].size as usize];
    }
    // Reorder outs by `order` so that section ordinals follow addresses.
    let mut remap = vec![0usize; outs.len()];
    for (new, &old) in order.iter().enumerate() {
        remap[old] = new;
    }
    let mut taken: Vec<Option<OutSection>> = outs.into_iter().map(Some).collect();
    let mut outs: Vec<OutSection> = order
        .iter()
        .map(|&i| taken[i].take().expect("once"))
        .collect();
    for v in place.values_mut() {
        v.0 = remap[v.0];
    }
    let got_out = got_out.map(|g| remap[g]);

    let text_n = outs.iter().filter(|o| o.segname == "__TEXT").count() as u64;
    let data_n = outs.iter().filter(|o| o.segname == "__DATA").count() as u64;
    let seg_cmd = |n: u64| 72 + 80 * n;
    let sizeofcmds = seg_cmd(text_n) + seg_cmd(data_n) + seg_cmd(0) + 24 + 80 + 24 + 16 + 16;
    let header_end = 32 + sizeofcmds;
    let mut cursor = header_end + HEADER_PAD;
    for o in outs.iter_mut().filter(|o| o.segname == "__TEXT") {
        cursor = align_up(cursor, 1 << o.align);
        o.addr = cursor;
        cursor += o.size;
    }
    let text_size = align_up(cursor, PAGE);
    let data_start = text_size;
    cursor = data_start;
    for o in outs
        .iter_mut()
        .filter(|o| o.segname == "__DATA" && !o.zerofill())
    {
        cursor = align_up(cursor, 1 << o.align);
        o.addr = cursor;
        cursor += o.size;
    }
    let data_file_end = cursor;
    for o in outs
        .iter_mut()
        .filter(|o| o.segname == "__DATA" && o.zerofill())
    {
        cursor = align_up(cursor, 1 << o.align);
        o.addr = cursor;
        cursor += o.size;
    }
    let data_vmsize = align_up(cursor - data_start, PAGE);
    let data_filesize = align_up(data_file_end - data_start, PAGE);

    // ---- 6. symbol addresses and relocation ----------------------------------------------------
    let spans: Vec<(u64, u64)> = outs.iter().map(|o| (o.addr, o.size)).collect();
    let section_addr = |oi: usize, ordinal: u32| -> Option<(u64, u64)> {
        // (output address of the input section's start, input address)
        let idx = (ordinal as usize).checked_sub(1)?;
        let (o, off) = place.get(&(oi, idx))?;
        Some((spans[*o].0 + off, objs[oi].sections[idx].addr))
    };
    let sym_addr = |oi: usize, si: usize| -> Option<u64> {
        let s = &objs[oi].symbols[si];
        let (out, inp) = section_addr(oi, s.n_sect as u32)?;
        Some(out.wrapping_add(s.n_value.wrapping_sub(inp)))
    };
    // Resolve an extern relocation's symbol.
    let resolve = |oi: usize, symnum: u32| -> std::result::Result<Target, String> {
        let obj = &objs[oi];
        let s = obj.symbols.get(symnum as usize).ok_or_else(|| {
            format!(
                "{}: relocation symbol index {symnum} out of range",
                short(&obj.name)
            )
        })?;
        if s.is_ext() {
            if let Some(g) = globals.get(&s.name) {
                return sym_addr(g.obj, g.sym).map(Target::Kext).ok_or_else(|| {
                    format!(
                        "reference to {} ({}): it lies in a section dropped from the image",
                        s.name,
                        short(&obj.name)
                    )
                });
            }
            if s.is_undefined() {
                return Ok(Target::Import(s.name.clone()));
            }
        }
        if s.is_defined() {
            return sym_addr(oi, symnum as usize)
                .map(Target::Kext)
                .ok_or_else(|| {
                    format!(
                        "reference to {} ({}): it lies in a section dropped from the image",
                        s.name,
                        short(&obj.name)
                    )
                });
        }
        Err(format!(
            "reference to {} ({}): unsupported symbol type",
            s.name,
            short(&obj.name)
        ))
    };

    let mut ext_relocs: Vec<ExtReloc> = Vec::new();
    let mut loc_relocs: Vec<(u64, u32)> = Vec::new(); // address, section ordinal (1-based)
    let ordinal_of = |addr: u64| -> Option<u32> {
        // The section containing addr, or ending exactly at it (one-past-the-end pointers).
        spans
            .iter()
            .position(|&(a, size)| addr >= a && addr < a + size.max(1))
            .or_else(|| spans.iter().position(|&(a, size)| addr == a + size))
            .map(|i| i as u32 + 1)
    };

    let mut writes: Vec<(usize, usize, Vec<u8>)> = Vec::new(); // out section, offset, bytes
                                                               // GOT contents
    if let Some(g) = got_out {
        for (i, (key, oi, si)) in got.iter().enumerate() {
            let slot = spans[g].0 + 8 * i as u64;
            match resolve(*oi, *si as u32) {
                Ok(Target::Import(name)) => ext_relocs.push(ExtReloc {
                    name,
                    address: slot,
                    kind: rt::UNSIGNED,
                }),
                Ok(Target::Kext(a)) => {
                    writes.push((g, 8 * i, a.to_le_bytes().to_vec()));
                    match ordinal_of(a) {
                        Some(ord) => loc_relocs.push((slot, ord)),
                        None => errors.push(format!(
                            "GOT entry for {key}: target {a:#x} outside every section"
                        )),
                    }
                }
                Err(e) => errors.push(e),
            }
        }
    }

    for (oi, obj) in objs.iter().enumerate() {
        let oname = short(&obj.name);
        for (idx, sect) in obj.sections.iter().enumerate() {
            let Some(&(o, base_off)) = place.get(&(oi, idx)) else {
                continue;
            };
            let site_sect_out = spans[o].0 + base_off;
            let delta_site = site_sect_out.wrapping_sub(sect.addr);
            let mut i = 0;
            while i < sect.relocs.len() {
                let r = sect.relocs[i];
                i += 1;
                let off = r.address as u64;
                let width = 1u64 << r.length;
                if off + width > sect.size || sect.is_zerofill() {
                    errors.push(format!(
                        "{oname}: relocation at {}+{off:#x} outside the section",
                        sect.full_name()
                    ));
                    continue;
                }
                let p_out = site_sect_out + off; // address of the fixup in the image
                let content: i64 = match r.length {
                    2 => i32::from_le_bytes(
                        sect.data[off as usize..off as usize + 4]
                            .try_into()
                            .unwrap(),
                    ) as i64,
                    3 => i64::from_le_bytes(
                        sect.data[off as usize..off as usize + 8]
                            .try_into()
                            .unwrap(),
                    ),
                    _ => 0,
                };
                let sym_name = |r: &crate::input::Reloc| -> String {
                    if r.is_extern {
                        obj.symbols
                            .get(r.symbolnum as usize)
                            .map(|s| s.name.clone())
                            .unwrap_or_default()
                    } else {
                        obj.section(r.symbolnum)
                            .map(|s| s.full_name())
                            .unwrap_or_default()
                    }
                };
                let here = format!("{} at {}+{off:#x}", oname, sect.full_name());
                let tname = reloc_type_name(r.kind);
                // Non-extern: the section whose move the content must follow.
                let sect_delta = |ordinal: u32| -> std::result::Result<i64, String> {
                    let (out, inp) = section_addr(oi, ordinal).ok_or_else(|| {
                        format!(
                            "{tname} reference to section {} ({here}): section missing or dropped from the image",
                            obj.section(ordinal).map(|s| s.full_name()).unwrap_or_else(|| format!("#{ordinal}"))
                        )
                    })?;
                    Ok(out.wrapping_sub(inp) as i64)
                };
                let mut put32 = |v: i64, what: &str, errors: &mut Vec<String>| {
                    if v < i32::MIN as i64 || v > i32::MAX as i64 {
                        errors.push(format!(
                            "{what} ({here}): 32-bit displacement {v:#x} out of range"
                        ));
                    } else {
                        writes.push((
                            o,
                            (base_off + off) as usize,
                            (v as i32).to_le_bytes().to_vec(),
                        ));
                    }
                };
                match r.kind {
                    rt::TLV => {
                        errors.push(format!("thread-local variable {} ({here}): TLV relocation; the kernel has no TLS", sym_name(&r)));
                    }
                    rt::BRANCH
                    | rt::SIGNED
                    | rt::SIGNED_1
                    | rt::SIGNED_2
                    | rt::SIGNED_4
                    | rt::GOT
                    | rt::GOT_LOAD => {
                        if !r.pcrel || r.length != 2 {
                            errors.push(format!(
                                "{tname} relocation to {} ({here}): must be pc-relative and 32-bit",
                                sym_name(&r)
                            ));
                            continue;
                        }
                        let is_got = r.kind == rt::GOT || r.kind == rt::GOT_LOAD;
                        if is_got {
                            if !r.is_extern {
                                errors.push(format!("{tname} relocation ({here}): non-extern GOT reference is unsupported"));
                                continue;
                            }
                            let s = &obj.symbols[r.symbolnum as usize];
                            let key = sym_key(oi, r.symbolnum as usize, s);
                            let slot = spans[got_out.expect("got")].0 + 8 * got_index[&key] as u64;
                            let v = (slot as i64) + content - (p_out as i64 + 4);
                            put32(v, &format!("GOT reference to {}", s.name), &mut errors);
                            continue;
                        }
                        if r.is_extern {
                            match resolve(oi, r.symbolnum) {
                                Err(e) => errors.push(e),
                                Ok(Target::Import(name)) => {
                                    if r.kind != rt::BRANCH {
                                        errors.push(format!(
                                            "{tname} data reference to kernel symbol {name} ({here}): only calls (BRANCH) and GOT loads may reach the kernel"
                                        ));
                                    } else if content != 0 {
                                        errors.push(format!("call to kernel symbol {name} ({here}): non-zero addend {content} on an import"));
                                    } else {
                                        writes.push((o, (base_off + off) as usize, vec![0; 4]));
                                        ext_relocs.push(ExtReloc {
                                            name,
                                            address: p_out,
                                            kind: rt::BRANCH,
                                        });
                                    }
                                }
                                Ok(Target::Kext(t)) => {
                                    let v = (t as i64) + content - (p_out as i64 + 4);
                                    put32(
                                        v,
                                        &format!("{tname} reference to {}", sym_name(&r)),
                                        &mut errors,
                                    );
                                }
                            }
                        } else {
                            match sect_delta(r.symbolnum) {
                                Err(e) => errors.push(e),
                                Ok(d) => {
                                    let v = content + d - delta_site as i64;
                                    put32(
                                        v,
                                        &format!("{tname} reference to {}", sym_name(&r)),
                                        &mut errors,
                                    );
                                }
                            }
                        }
                    }
                    rt::UNSIGNED => {
                        if r.pcrel {
                            errors.push(format!(
                                "UNSIGNED relocation to {} ({here}): pc-relative is invalid",
                                sym_name(&r)
                            ));
                            continue;
                        }
                        if r.length != 3 {
                            errors.push(format!(
                                "32-bit absolute pointer to {} ({here}): kexts load above 4 GiB, only 64-bit pointers can be relocated",
                                sym_name(&r)
                            ));
                            continue;
                        }
                        let target = if r.is_extern {
                            match resolve(oi, r.symbolnum) {
                                Err(e) => {
                                    errors.push(e);
                                    continue;
                                }
                                Ok(Target::Import(name)) => {
                                    if content != 0 {
                                        errors.push(format!("pointer to kernel symbol {name} ({here}): non-zero addend {content} on an import"));
                                    } else {
                                        writes.push((o, (base_off + off) as usize, vec![0; 8]));
                                        ext_relocs.push(ExtReloc {
                                            name,
                                            address: p_out,
                                            kind: rt::UNSIGNED,
                                        });
                                    }
                                    continue;
                                }
                                Ok(Target::Kext(t)) => (t as i64).wrapping_add(content) as u64,
                            }
                        } else {
                            match sect_delta(r.symbolnum) {
                                Err(e) => {
                                    errors.push(e);
                                    continue;
                                }
                                Ok(d) => content.wrapping_add(d) as u64,
                            }
                        };
                        writes.push((o, (base_off + off) as usize, target.to_le_bytes().to_vec()));
                        // The section the pointer lands in: for non-extern, the named section.
                        let ord = if r.is_extern {
                            ordinal_of(target)
                        } else {
                            place
                                .get(&(oi, r.symbolnum as usize - 1))
                                .map(|&(o2, _)| o2 as u32 + 1)
                        };
                        match ord {
                            Some(ord) => loc_relocs.push((p_out, ord)),
                            None => errors.push(format!(
                                "pointer to {} ({here}): target {target:#x} outside every section",
                                sym_name(&r)
                            )),
                        }
                    }
                    rt::SUBTRACTOR => {
                        let Some(&next) = sect.relocs.get(i) else {
                            errors.push(format!("SUBTRACTOR ({here}): not followed by UNSIGNED"));
                            continue;
                        };
                        i += 1;
                        if next.kind != rt::UNSIGNED
                            || next.address != r.address
                            || next.length != r.length
                            || r.pcrel
                            || next.pcrel
                        {
                            errors.push(format!("SUBTRACTOR ({here}): must pair with an UNSIGNED of the same site and length, not pc-relative"));
                            continue;
                        }
                        if r.length != 2 && r.length != 3 {
                            errors.push(format!(
                                "SUBTRACTOR ({here}): length {} unsupported",
                                1 << r.length
                            ));
                            continue;
                        }
                        let side = |rr: &crate::input::Reloc| -> std::result::Result<i64, String> {
                            if rr.is_extern {
                                match resolve(oi, rr.symbolnum)? {
                                    Target::Kext(t) => Ok(t as i64),
                                    Target::Import(name) => Err(format!(
                                        "difference with kernel symbol {name} ({here}): SUBTRACTOR with an import is unsupported"
                                    )),
                                }
                            } else {
                                sect_delta(rr.symbolnum)
                            }
                        };
                        match (side(&next), side(&r)) {
                            (Ok(a), Ok(b)) => {
                                let v = content.wrapping_add(a).wrapping_sub(b);
                                if r.length == 2 {
                                    put32(
                                        v,
                                        &format!(
                                            "difference {} - {}",
                                            sym_name(&next),
                                            sym_name(&r)
                                        ),
                                        &mut errors,
                                    );
                                } else {
                                    writes.push((
                                        o,
                                        (base_off + off) as usize,
                                        v.to_le_bytes().to_vec(),
                                    ));
                                }
                            }
                            (Err(e), _) | (_, Err(e)) => errors.push(e),
                        }
                    }
                    other => errors.push(format!(
                        "relocation type {other} to {} ({here}): unsupported relocation type",
                        sym_name(&r)
                    )),
                }
            }
        }
    }
    check_all(errors)?;
    for (o, off, bytes) in writes {
        outs[o].data[off..off + bytes.len()].copy_from_slice(&bytes);
    }

    // ---- 7. symbol table --------------------------------------------------------------------
    let mut locals: Vec<(String, u8, u64)> = Vec::new(); // name, n_sect, value
    let mut extdefs: Vec<(String, u8, u64)> = Vec::new();
    for (oi, obj) in objs.iter().enumerate() {
        for (si, s) in obj.symbols.iter().enumerate() {
            if !s.is_defined() || s.is_temporary() {
                continue;
            }
            if s.is_ext()
                && globals
                    .get(&s.name)
                    .is_none_or(|g| g.obj != oi || g.sym != si)
            {
                continue; // a weak definition that lost
            }
            let Some(a) = sym_addr(oi, si) else { continue }; // dropped section
            let Some(ord) = ordinal_of(a) else { continue };
            let ord = place
                .get(&(oi, s.n_sect as usize - 1))
                .map(|&(o, _)| o as u32 + 1)
                .unwrap_or(ord);
            if s.is_ext() && s.name == "_kmod_info" {
                if outs[ord as usize - 1].segname != "__DATA" {
                    return Err(err!(
                        "_kmod_info ({}): must be defined in __DATA, not {}",
                        short(&obj.name),
                        outs[ord as usize - 1].sectname
                    ));
                }
                extdefs.push((s.name.clone(), ord as u8, a));
            } else {
                locals.push((s.name.clone(), ord as u8, a));
            }
        }
    }
    if outs.len() > 255 {
        return Err(err!("too many output sections ({})", outs.len()));
    }
    let undefs: Vec<String> = imports.keys().cloned().collect();
    let nlocal = locals.len();
    let nextdef = extdefs.len();
    let undef_index: HashMap<&str, usize> = undefs
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), nlocal + nextdef + i))
        .collect();
    let mut strtab: Vec<u8> = b" \0".to_vec();
    let mut nlists: Vec<macho::Nlist64<LE>> = Vec::new();
    let mut add_sym = |name: &str, n_type: u8, n_sect: u8, value: u64| {
        let strx = strtab.len() as u32;
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
        nlists.push(macho::Nlist64 {
            n_strx: U32::new(LE, strx),
            n_type,
            n_sect,
            n_desc: object::U16::new(LE, 0),
            n_value: object::U64Bytes::new(LE, value),
        });
    };
    for (n, sect, v) in &locals {
        add_sym(n, macho::N_SECT, *sect, *v);
    }
    for (n, sect, v) in &extdefs {
        add_sym(n, macho::N_SECT | macho::N_EXT, *sect, *v);
    }
    for n in &undefs {
        add_sym(n, macho::N_UNDF | macho::N_EXT, 0, 0);
    }
    while !strtab.len().is_multiple_of(8) {
        strtab.push(0);
    }

    // ---- 8. relocations ----------------------------------------------------------------------
    ext_relocs.sort_by_key(|r| (undef_index[r.name.as_str()], r.address));
    loc_relocs.sort();
    for w in loc_relocs.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(err!("two relocations at image offset {:#x}", w[0].0));
        }
    }
    let reloc_bytes =
        |address: u64, symbolnum: u32, pcrel: bool, length: u8, is_extern: bool, kind: u8| {
            let info = macho::RelocationInfo {
                r_address: address as u32,
                r_symbolnum: symbolnum,
                r_pcrel: pcrel,
                r_length: length,
                r_extern: is_extern,
                r_type: kind,
            };
            bytes_of(&info.relocation(LE)).to_vec()
        };
    let mut linkedit: Vec<u8> = Vec::new();
    let linkedit_off = data_start + data_filesize;
    let locreloff = linkedit_off;
    for &(a, ord) in &loc_relocs {
        linkedit.extend(reloc_bytes(a, ord, false, 3, false, rt::UNSIGNED));
    }
    let extreloff = linkedit_off + linkedit.len() as u64;
    for r in &ext_relocs {
        let (pcrel, len) = if r.kind == rt::BRANCH {
            (true, 2)
        } else {
            (false, 3)
        };
        linkedit.extend(reloc_bytes(
            r.address,
            undef_index[r.name.as_str()] as u32,
            pcrel,
            len,
            true,
            r.kind,
        ));
    }
    let symoff = linkedit_off + linkedit.len() as u64;
    for nl in &nlists {
        linkedit.extend_from_slice(bytes_of(nl));
    }
    let stroff = linkedit_off + linkedit.len() as u64;
    linkedit.extend_from_slice(&strtab);

    // ---- 9. the image ------------------------------------------------------------------------
    let min_version = objs
        .iter()
        .map(|o| o.min_version)
        .max()
        .unwrap_or(0)
        .max(MIN_MACOS);
    let mut image: Vec<u8> = Vec::new();
    let header = macho::MachHeader64::<LE> {
        magic: U32::new(object::BigEndian, macho::MH_CIGAM_64), // MH_MAGIC_64, little-endian
        cputype: U32::new(LE, macho::CPU_TYPE_X86_64),
        cpusubtype: U32::new(LE, macho::CPU_SUBTYPE_X86_64_ALL),
        filetype: U32::new(LE, macho::MH_KEXT_BUNDLE),
        ncmds: U32::new(LE, 8),
        sizeofcmds: U32::new(LE, sizeofcmds as u32),
        flags: U32::new(LE, KEXT_HEADER_FLAGS),
        reserved: U32::new(LE, 0),
    };
    image.extend_from_slice(bytes_of(&header));
    let name16 = |s: &str| {
        let mut b = [0u8; 16];
        b[..s.len()].copy_from_slice(s.as_bytes());
        b
    };
    let segments: [(&str, u64, u64, u64, u64, u32); 3] = [
        ("__TEXT", 0, text_size, 0, text_size, 5),
        (
            "__DATA",
            data_start,
            data_vmsize,
            data_start,
            data_filesize,
            3,
        ),
        (
            "__LINKEDIT",
            data_start + data_vmsize,
            align_up(linkedit.len() as u64, PAGE),
            linkedit_off,
            linkedit.len() as u64,
            1,
        ),
    ];
    for (segname, vmaddr, vmsize, fileoff, filesize, prot) in segments {
        let secs: Vec<&OutSection> = outs.iter().filter(|o| o.segname == segname).collect();
        let cmd = macho::SegmentCommand64::<LE> {
            cmd: U32::new(LE, macho::LC_SEGMENT_64),
            cmdsize: U32::new(LE, seg_cmd(secs.len() as u64) as u32),
            segname: name16(segname),
            vmaddr: U64::new(LE, vmaddr),
            vmsize: U64::new(LE, vmsize),
            fileoff: U64::new(LE, fileoff),
            filesize: U64::new(LE, filesize),
            maxprot: U32::new(LE, prot),
            initprot: U32::new(LE, prot),
            nsects: U32::new(LE, secs.len() as u32),
            flags: U32::new(LE, 0),
        };
        image.extend_from_slice(bytes_of(&cmd));
        for s in secs {
            let sec = macho::Section64::<LE> {
                sectname: name16(&s.sectname),
                segname: name16(segname),
                addr: U64::new(LE, s.addr),
                size: U64::new(LE, s.size),
                offset: U32::new(LE, if s.zerofill() { 0 } else { s.addr as u32 }),
                align: U32::new(LE, s.align),
                reloff: U32::new(LE, 0),
                nreloc: U32::new(LE, 0),
                flags: U32::new(LE, s.flags),
                reserved1: U32::new(LE, 0),
                reserved2: U32::new(LE, 0),
                reserved3: U32::new(LE, 0),
            };
            image.extend_from_slice(bytes_of(&sec));
        }
    }
    let symtab = macho::SymtabCommand::<LE> {
        cmd: U32::new(LE, macho::LC_SYMTAB),
        cmdsize: U32::new(LE, 24),
        symoff: U32::new(LE, symoff as u32),
        nsyms: U32::new(LE, nlists.len() as u32),
        stroff: U32::new(LE, stroff as u32),
        strsize: U32::new(LE, strtab.len() as u32),
    };
    image.extend_from_slice(bytes_of(&symtab));
    let z = || U32::new(LE, 0);
    let dysymtab = macho::DysymtabCommand::<LE> {
        cmd: U32::new(LE, macho::LC_DYSYMTAB),
        cmdsize: U32::new(LE, 80),
        ilocalsym: z(),
        nlocalsym: U32::new(LE, nlocal as u32),
        iextdefsym: U32::new(LE, nlocal as u32),
        nextdefsym: U32::new(LE, nextdef as u32),
        iundefsym: U32::new(LE, (nlocal + nextdef) as u32),
        nundefsym: U32::new(LE, undefs.len() as u32),
        tocoff: z(),
        ntoc: z(),
        modtaboff: z(),
        nmodtab: z(),
        extrefsymoff: z(),
        nextrefsyms: z(),
        indirectsymoff: z(),
        nindirectsyms: z(),
        extreloff: U32::new(
            LE,
            if ext_relocs.is_empty() {
                0
            } else {
                extreloff as u32
            },
        ),
        nextrel: U32::new(LE, ext_relocs.len() as u32),
        locreloff: U32::new(
            LE,
            if loc_relocs.is_empty() {
                0
            } else {
                locreloff as u32
            },
        ),
        nlocrel: U32::new(LE, loc_relocs.len() as u32),
    };
    image.extend_from_slice(bytes_of(&dysymtab));
    let uuid_off = image.len() + 8;
    let uuid = macho::UuidCommand::<LE> {
        cmd: U32::new(LE, macho::LC_UUID),
        cmdsize: U32::new(LE, 24),
        uuid: [0; 16],
    };
    image.extend_from_slice(bytes_of(&uuid));
    let vmin = macho::VersionMinCommand::<LE> {
        cmd: U32::new(LE, macho::LC_VERSION_MIN_MACOSX),
        cmdsize: U32::new(LE, 16),
        version: U32::new(LE, min_version),
        sdk: U32::new(LE, min_version),
    };
    image.extend_from_slice(bytes_of(&vmin));
    let srcv = macho::SourceVersionCommand::<LE> {
        cmd: U32::new(LE, macho::LC_SOURCE_VERSION),
        cmdsize: U32::new(LE, 16),
        version: U64::new(LE, crate::kpi::pack_source_version(&opts.plist.version)),
    };
    image.extend_from_slice(bytes_of(&srcv));
    assert_eq!(image.len() as u64, header_end, "load command sizes");
    for s in outs.iter().filter(|s| !s.zerofill()) {
        image.resize(s.addr as usize, 0);
        image.extend_from_slice(&s.data);
    }
    image.resize(linkedit_off as usize, 0);
    image.extend_from_slice(&linkedit);
    let digest = fnv1a_128(&image).to_be_bytes();
    let mut u = [0u8; 16];
    u.copy_from_slice(&digest);
    u[6] = (u[6] & 0x0f) | 0x30; // name-based UUID layout, as ld64's
    u[8] = (u[8] & 0x3f) | 0x80;
    image[uuid_off..uuid_off + 16].copy_from_slice(&u);

    // ---- 10. kmod_info -----------------------------------------------------------------------
    let parsed = crate::image::Image::parse(&image)?;
    crate::verify::check_kmod_info(&parsed, &opts.plist.identifier, &opts.plist.version)?;

    Ok(LinkOutput {
        image,
        warnings,
        imports,
        objects: objs.iter().map(|o| short(&o.name).to_string()).collect(),
    })
}

/// FNV-1a, 128-bit: the deterministic content hash behind `LC_UUID`.
pub fn fnv1a_128(data: &[u8]) -> u128 {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    let prime: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013B;
    for &b in data {
        h ^= b as u128;
        h = h.wrapping_mul(prime);
    }
    h
}
