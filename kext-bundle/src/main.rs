//! `kext-bundle`: the kext linker, bundler and verifier of tunnel.kext.
//!
//! ```text
//! kext-bundle link   -o OUT    --plist Info.plist --kpi shim/kpi-symbols.txt [--exports DIR] [--root SYM]... INPUT...
//! kext-bundle bundle --out DIR --plist Info.plist --kpi shim/kpi-symbols.txt [--exports DIR] [--root SYM]... INPUT...
//! kext-bundle verify BUNDLE.kext [--kpi FILE] [--exports DIR] [--seed N] [--start SYM] [--stop SYM]
//! ```
//! INPUTs are Mach-O objects (always linked) or static archives (members linked on demand).

use kext_bundle::bundle::{plist_path, write_bundle};
use kext_bundle::image::Image;
use kext_bundle::input::read_input;
use kext_bundle::kpi::{load_export_sets, KpiTable, PlistInfo};
use kext_bundle::link::{link, LinkOptions};
use kext_bundle::verify;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage:
  kext-bundle link   -o OUT    --plist Info.plist --kpi kpi-symbols.txt [--exports DIR] [--root SYM]... INPUT...
  kext-bundle bundle --out DIR --plist Info.plist --kpi kpi-symbols.txt [--exports DIR] [--root SYM]... INPUT...
  kext-bundle verify BUNDLE.kext [--kpi FILE] [--exports DIR] [--seed N] [--start SYM] [--stop SYM]";

#[derive(Default)]
struct Args {
    out: Option<PathBuf>,
    plist: Option<PathBuf>,
    kpi: Option<PathBuf>,
    exports: Option<PathBuf>,
    roots: Vec<String>,
    seed: Option<u64>,
    start: Option<String>,
    stop: Option<String>,
    positional: Vec<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args::default();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-o" | "--out" => a.out = Some(value(&arg)?.into()),
            "--plist" => a.plist = Some(value(&arg)?.into()),
            "--kpi" => a.kpi = Some(value(&arg)?.into()),
            "--exports" => a.exports = Some(value(&arg)?.into()),
            "--root" => a.roots.push(value(&arg)?),
            "--seed" => a.seed = Some(value(&arg)?.parse().map_err(|e| format!("--seed: {e}"))?),
            "--start" => a.start = Some(value(&arg)?),
            "--stop" => a.stop = Some(value(&arg)?),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ => a.positional.push(arg),
        }
    }
    Ok(a)
}

fn do_link(a: &Args) -> Result<kext_bundle::link::LinkOutput, String> {
    let plist_file = a.plist.as_ref().ok_or("--plist is required")?;
    let kpi_file = a.kpi.as_ref().ok_or("--kpi is required")?;
    if a.positional.is_empty() {
        return Err("no input files".into());
    }
    let plist = PlistInfo::load(plist_file).map_err(|e| e.to_string())?;
    let kpi = KpiTable::load(kpi_file).map_err(|e| e.to_string())?;
    let mut opts = LinkOptions::new(plist, kpi);
    if !a.roots.is_empty() {
        opts.roots = a.roots.clone();
    }
    opts.exports_dir = a.exports.clone();
    if let Some(dir) = a.exports.as_ref().filter(|d| d.is_dir()) {
        let bundles: Vec<String> = opts
            .plist
            .libraries
            .iter()
            .map(|(b, _)| b.clone())
            .collect();
        opts.exports = Some(load_export_sets(dir, &bundles).map_err(|e| e.to_string())?);
    }
    let inputs = a
        .positional
        .iter()
        .map(|p| read_input(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let out = link(inputs, &opts).map_err(|e| e.to_string())?;
    for w in &out.warnings {
        eprintln!("kext-bundle: warning: {w}");
    }
    eprintln!(
        "kext-bundle: linked {} objects ({}), {} imports, {} bytes",
        out.objects.len(),
        out.objects.join(", "),
        out.imports.len(),
        out.image.len()
    );
    Ok(out)
}

/// Runs the checks of `verify`; prints one PASS/FAIL/SKIP line per check.
fn do_verify(a: &Args) -> Result<bool, String> {
    let [bundle] = a.positional.as_slice() else {
        return Err("verify takes one bundle path".into());
    };
    let bundle = Path::new(bundle);
    let mut failed = false;
    let mut report = |name: &str, r: Result<String, String>| match r {
        Ok(detail) => println!(
            "PASS {name}{}",
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        ),
        Err(e) => {
            failed = true;
            println!("FAIL {name}:");
            for line in e.lines() {
                println!("    {line}");
            }
        }
    };
    let plist = PlistInfo::load(&plist_path(bundle)).map_err(|e| e.to_string())?;
    let exe = bundle
        .join("Contents")
        .join("MacOS")
        .join(&plist.executable);
    let data = std::fs::read(&exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    let img = Image::parse(&data).map_err(|e| e.to_string())?;
    let problems = verify::structural(&img);
    report(
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
    let kmod = verify::check_kmod_info(&img, &plist.identifier, &plist.version);
    report(
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
    let imports = verify::imports(&img);
    let import_bundles: Option<BTreeSet<String>> = kpi.as_ref().map(|k| {
        imports
            .iter()
            .filter_map(|i| k.bundle_of(i).map(String::from))
            .collect()
    });
    report(
        "Info.plist (keys, versions, OSBundleLibraries = bundles of the imports)",
        verify::check_plist(
            &plist,
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
        Some(k) => report(
            "imports in the project's KPI table under declared bundles",
            verify::check_imports(&img, k, &plist, None)
                .map(|_| format!("{} imports", imports.len()))
                .map_err(|e| e.to_string()),
        ),
        None => println!("SKIP imports vs the KPI table: no --kpi given"),
    }
    match (&kpi, &sets) {
        (Some(k), Some(s)) => {
            report(
                "imports in Apple's x86_64 export lists of their bundles",
                verify::check_imports(&img, k, &plist, Some(s))
                    .map(|_| String::new())
                    .map_err(|e| e.to_string()),
            );
            report(
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
            return Ok(!failed);
        }
    };
    report(
        "relocation simulator",
        verify::simulate(&img, &kernel, load, &plist.identifier, &plist.version)
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
    Ok(!failed)
}

fn run() -> Result<bool, String> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().ok_or(USAGE)?;
    let a = parse_args(args)?;
    match cmd.as_str() {
        "link" => {
            let out_path = a.out.clone().ok_or("-o is required")?;
            let out = do_link(&a)?;
            std::fs::write(&out_path, &out.image)
                .map_err(|e| format!("{}: {e}", out_path.display()))?;
            Ok(true)
        }
        "bundle" => {
            let dir = a.out.clone().ok_or("--out is required")?;
            let out = do_link(&a)?;
            let plist =
                PlistInfo::load(a.plist.as_ref().expect("checked")).map_err(|e| e.to_string())?;
            let exe = write_bundle(&dir, &plist, &out.image).map_err(|e| e.to_string())?;
            eprintln!("kext-bundle: wrote {}", exe.display());
            Ok(true)
        }
        "verify" => do_verify(&a),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(true)
        }
        other => Err(format!("unknown command {other}\n{USAGE}")),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("kext-bundle: verification failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("kext-bundle: error: {e}");
            ExitCode::FAILURE
        }
    }
}
