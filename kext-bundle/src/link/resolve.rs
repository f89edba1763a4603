//! Resolution (spec sections 3 and 4): which objects are linked (named objects always,
//! archive members on demand), which definition of each global wins, which undefined symbols
//! are kernel imports and from which bundle, and the per-object checks of section 4 (commons,
//! weak references, TLS, constructors, mem* definitions, unsupported sections).

use super::{short, GlobalDef, LinkOptions};
use crate::consts::MEM_FAMILY;
use crate::input::{InObject, Input};
use crate::kpi::{private_hint, PRIVATE_BUNDLE};
use crate::{check_all, Result};
use object::macho;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The outcome of resolution: the linked objects in link order and what their symbols mean.
pub struct Resolved {
    pub objs: Vec<InObject>,
    /// The one architecture of all linked objects (`CPU_TYPE_X86_64` or `CPU_TYPE_ARM64`).
    pub cputype: u32,
    /// Global name -> the definition that wins.
    pub globals: HashMap<String, GlobalDef>,
    /// Imported symbol -> bundle (from the KPI table).
    pub imports: BTreeMap<String, String>,
    pub warnings: Vec<String>,
}

/// Whether an input section is left out of the image: unwind tables, bitcode (`__LLVM`,
/// including arm64e's `__bitcode` and `__cmdline`), debug information.
pub fn is_dropped(seg: &str, sect: &str, flags: u32) -> bool {
    seg == "__LLVM"
        || seg == "__DWARF"
        || (seg == "__LD" && sect == "__compact_unwind")
        || (seg == "__TEXT" && sect == "__eh_frame")
        || flags & macho::S_ATTR_DEBUG != 0
}

pub fn arch_name(cputype: u32) -> &'static str {
    if cputype == macho::CPU_TYPE_ARM64 {
        "arm64e"
    } else {
        "x86_64"
    }
}

fn is_tls_type(t: u32) -> bool {
    (macho::S_THREAD_LOCAL_REGULAR..=macho::S_THREAD_LOCAL_INIT_FUNCTION_POINTERS).contains(&t)
}

/// Input segments a kext may have sections in (after the dropped ones).
fn is_kept_segment(seg: &str) -> bool {
    matches!(seg, "__TEXT" | "__DATA" | "__DATA_CONST")
}

/// Links `inputs` far enough to know what goes in: resolution, imports and per-object checks.
pub fn resolve(inputs: Vec<Input>, opts: &LinkOptions) -> Result<Resolved> {
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
            if !is_kept_segment(&sect.segname) {
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
    let cputype = objs
        .first()
        .map(|o| o.cputype)
        .unwrap_or(macho::CPU_TYPE_X86_64);
    for o in &objs {
        if o.cputype != cputype {
            errors.push(format!(
                "{} is {}, but {} is {}: one image has one architecture",
                short(&o.name),
                arch_name(o.cputype),
                short(&objs[0].name),
                arch_name(cputype)
            ));
        }
    }
    check_all(errors)?;
    Ok(Resolved {
        objs,
        cputype,
        globals,
        imports,
        warnings,
    })
}
