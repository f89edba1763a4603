//! `kext-bundle verify`: every check of an x86_64 or universal bundle, one PASS/FAIL/SKIP
//! line each. The x86_64 slice gets kxld's relocation simulator; the arm64e slice gets the
//! kernel-collection builder's checks and collections with per-segment slides.

use crate::Args;
use kext_bundle::bundle::plist_path;
use kext_bundle::fat;
use kext_bundle::image::Image;
use kext_bundle::kpi::{load_arch_exports, load_export_sets, KpiTable, PlistInfo};
use kext_bundle::verify;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Runs the checks of `verify`; prints one PASS/FAIL/SKIP line per check.
/// Prints one line per check and remembers whether any failed.
struct Reporter {
    failed: bool,
}

impl Reporter {
    fn report(&mut self, name: &str, r: Result<String, String>) {
        match r {
            Ok(detail) if detail.is_empty() => println!("PASS {name}"),
            Ok(detail) => println!("PASS {name}: {detail}"),
            Err(e) => {
                self.failed = true;
                println!("FAIL {name}:");
                for line in e.lines() {
                    println!("    {line}");
                }
            }
        }
    }
}

pub fn run(a: &Args) -> Result<bool, String> {
    let [bundle] = a.positional.as_slice() else {
        return Err("verify takes one bundle path".into());
    };
    let bundle = Path::new(bundle);
    let plist = PlistInfo::load(&plist_path(bundle)).map_err(|e| e.to_string())?;
    let exe = bundle
        .join("Contents")
        .join("MacOS")
        .join(&plist.executable);
    let data = std::fs::read(&exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    let mut rep = Reporter { failed: false };
    let slices: Vec<(u32, &[u8])> = match fat::slices(&data).map_err(|e| e.to_string())? {
        Some(s) => {
            rep.report(
                "universal executable",
                Ok(s.iter()
                    .map(|s| {
                        format!(
                            "{} ({:#x}) {} bytes",
                            arch_name(s.cputype),
                            s.cpusubtype,
                            s.data.len()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")),
            );
            s.iter().map(|s| (s.cputype, s.data)).collect()
        }
        None => vec![(
            fat::thin_arch(&data).map_err(|e| e.to_string())?.0,
            &data[..],
        )],
    };
    for (cputype, bytes) in slices {
        println!("== {} slice", arch_name(cputype));
        let img = Image::parse(bytes).map_err(|e| e.to_string())?;
        if cputype == object::macho::CPU_TYPE_ARM64 {
            arm64e_slice(&mut rep, &img, &plist, a)?;
        } else {
            x86_64_slice(&mut rep, &img, &plist, a, &exe)?;
        }
    }
    Ok(!rep.failed)
}

fn arch_name(cputype: u32) -> &'static str {
    if cputype == object::macho::CPU_TYPE_ARM64 {
        "arm64e"
    } else {
        "x86_64"
    }
}

/// kxld's view (spec section 10): structure, kmod_info, plist, imports, relocation simulator.
fn x86_64_slice(
    rep: &mut Reporter,
    img: &Image,
    plist: &PlistInfo,
    a: &Args,
    exe: &Path,
) -> Result<(), String> {
    let problems = verify::structural(img);
    rep.report(
        "structure (header, load commands, segments, sections, symbols, relocation forms)",
        if problems.is_empty() {
            Ok(format!(
                "{} sections, {} symbols, {} local + {} external relocations",
                img.sections.len(),
                img.symbols.len(),
                img.local_relocs.len(),
                img.extern_relocs.len()
            ))
        } else {
            Err(problems.join("\n"))
        },
    );
    let kmod = verify::check_kmod_info(img, &plist.identifier, &plist.version);
    rep.report(
        "kmod_info (layout, info_version, name/version = Info.plist, start/stop relocated into __TEXT)",
        match &kmod {
            Ok(k) => {
                let mut problems = Vec::new();
                if let Some(s) = &a.start {
                    if img.symbols_at(k.start).iter().all(|n| n != s) {
                        problems.push(format!("start is {}, expected {s}", k.start_symbol));
                    }
                }
                if let Some(s) = &a.stop {
                    if img.symbols_at(k.stop).iter().all(|n| n != s) {
                        problems.push(format!("stop is {}, expected {s}", k.stop_symbol));
                    }
                }
                if problems.is_empty() {
                    Ok(format!("{} {} start={} stop={}", k.name, k.version, k.start_symbol, k.stop_symbol))
                } else {
                    Err(problems.join("\n"))
                }
            }
            Err(e) => Err(e.to_string()),
        },
    );
    let kpi = match &a.kpi {
        Some(p) => Some(KpiTable::load(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let imports = verify::imports(img);
    let import_bundles: Option<BTreeSet<String>> = kpi.as_ref().map(|k| {
        imports
            .iter()
            .filter_map(|i| k.bundle_of(i).map(String::from))
            .collect()
    });
    rep.report(
        "Info.plist (keys, versions, OSBundleLibraries = bundles of the imports)",
        verify::check_plist(
            plist,
            kmod.as_ref().ok(),
            import_bundles.as_ref(),
            exe.is_file(),
        )
        .map(|_| format!("{} libraries", plist.libraries.len()))
        .map_err(|e| e.to_string()),
    );
    let exports_dir = a.exports.as_ref().filter(|d| d.is_dir());
    let declared: Vec<String> = plist.libraries.iter().map(|(b, _)| b.clone()).collect();
    let sets = match exports_dir {
        Some(d) => Some(load_export_sets(d, &declared).map_err(|e| e.to_string())?),
        None => None,
    };
    match &kpi {
        Some(k) => rep.report(
            "imports in the project's KPI table under declared bundles",
            verify::check_imports(img, k, plist, None)
                .map(|_| format!("{} imports", imports.len()))
                .map_err(|e| e.to_string()),
        ),
        None => println!("SKIP imports vs the KPI table: no --kpi given"),
    }
    match (&kpi, &sets) {
        (Some(k), Some(s)) => {
            rep.report(
                "imports in Apple's x86_64 export lists of their bundles",
                verify::check_imports(img, k, plist, Some(s))
                    .map(|_| String::new())
                    .map_err(|e| e.to_string()),
            );
            rep.report(
                "KPI table against Apple's export lists",
                verify::check_kpi_table(k, exports_dir.unwrap())
                    .map(|_| format!("{} symbols", k.symbols.len()))
                    .map_err(|e| e.to_string()),
            );
        }
        _ => println!(
            "SKIP imports and KPI table vs Apple's export lists: {}",
            match (&a.exports, &kpi) {
                (_, None) => "no --kpi given".to_string(),
                (Some(p), _) => format!("{} not found (../shared/xnu-exports)", p.display()),
                (None, _) => "no --exports directory given (../shared/xnu-exports)".to_string(),
            }
        ),
    }
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let load = verify::load_address(seed);
    let (kernel, source) = match (&sets, &kpi) {
        (Some(s), _) => (
            verify::SyntheticKernel::from_sets(s.values()),
            "Apple's export lists",
        ),
        (None, Some(k)) => (
            verify::SyntheticKernel::from_table(k, &plist.declared()),
            "the project's KPI table",
        ),
        (None, None) => {
            println!(
                "SKIP relocation simulator: needs --exports or --kpi for the synthetic kernel"
            );
            return Ok(());
        }
    };
    rep.report(
        "relocation simulator",
        verify::simulate(img, &kernel, load, &plist.identifier, &plist.version)
            .map(|r| {
                format!(
                    "loaded at {:#x} (seed {seed}) against {} symbols from {source}: {} local + {} external relocations; start={} ({:#x}) stop={} ({:#x})",
                    r.load_address,
                    kernel.symbols.len(),
                    r.local_applied,
                    r.extern_applied,
                    r.start_symbol,
                    r.start,
                    r.stop_symbol,
                    r.stop
                )
            })
            .map_err(|e| e.to_string()),
    );
    Ok(())
}

/// The kernel-collection builder's view (docs/kext-build.md 9.5).
fn arm64e_slice(
    rep: &mut Reporter,
    img: &Image,
    plist: &PlistInfo,
    a: &Args,
) -> Result<(), String> {
    let problems = verify::arm64e::structural(img);
    rep.report(
        "arm64e structure (subtype 0xc0000002, 10 load commands, 16 KiB segments, chains format 7 on 4 KiB pages, flat binds)",
        if problems.is_empty() {
            let c = img.chains.as_ref().expect("checked");
            Ok(format!("{} sections, {} chained fixups, {} imports", img.sections.len(), c.fixups.len(), c.imports.len()))
        } else {
            Err(problems.join("\n"))
        },
    );
    let kmod = verify::check_kmod_info(img, &plist.identifier, &plist.version);
    rep.report(
        "kmod_info (layout, name/version = Info.plist, start/stop IA/0 signed rebases into __TEXT_EXEC)",
        kmod.as_ref()
            .map(|k| format!("{} {} start={} stop={}", k.name, k.version, k.start_symbol, k.stop_symbol))
            .map_err(|e| e.to_string()),
    );
    rep.report(
        "pointer authentication (every signed pointer IA/0 into __TEXT_EXEC; the tables the kernel calls)",
        verify::arm64e::check_auth(img, &a.signed)
            .map(|n| format!("{n} signed pointers; tables: {}", if a.signed.is_empty() { "none named".to_string() } else { a.signed.join(", ") }))
            .map_err(|e| e.join("\n")),
    );
    let exports_dir = a.exports.as_ref().filter(|d| d.is_dir());
    let Some(dir) = exports_dir else {
        println!(
            "SKIP arm64e binds and collection: no export lists (--exports ../shared/xnu-exports)"
        );
        return Ok(());
    };
    let mut sets = HashMap::new();
    for (b, _) in &plist.libraries {
        sets.insert(
            b.clone(),
            load_arch_exports(dir, b, "arm64").map_err(|e| e.to_string())?,
        );
    }
    let problems = verify::arm64e::check_binds(img, &sets);
    rep.report(
        "binds against the arm64 export lists of the declared bundles",
        if problems.is_empty() {
            Ok(String::new())
        } else {
            Err(problems.join("\n"))
        },
    );
    let kernel = verify::SyntheticKernel::from_sets(sets.values());
    let seed = a.seed.unwrap_or(1);
    for (what, sub_page) in [("16 KiB slides", false), ("sub-page slides", true)] {
        let slides = verify::collection::slides(img.segments.len(), seed, sub_page);
        rep.report(
            &format!("collection with per-segment {what} (every ADRP, low-12, branch and pointer re-derived from split-seg info and chains)"),
            verify::collection::build(img, &slides, &kernel.symbols)
                .map(|r| format!(
                    "slides {:x?} (seed {seed}): {} pointers, {} binds, {} branches, {} ADRPs, {} low-12 uses land on their targets",
                    r.slides, r.pointers, r.binds, r.branches, r.adrps, r.low12s
                ))
                .map_err(|e| e.to_string()),
        );
    }
    Ok(())
}
