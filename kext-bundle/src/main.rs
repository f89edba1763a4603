//! `kext-bundle`: the kext linker, bundler and verifier of tunnel.kext.
//!
//! ```text
//! kext-bundle link   -o OUT    --plist Info.plist --kpi shim/kpi-symbols.txt [--exports DIR] [--root SYM]... INPUT...
//! kext-bundle bundle --out DIR --plist Info.plist --kpi shim/kpi-symbols.txt [--exports DIR] [--root SYM]... INPUT...
//! kext-bundle verify BUNDLE.kext [--kpi FILE] [--exports DIR] [--seed N] [--start SYM] [--stop SYM] [--signed SYM]...
//! ```
//! INPUTs are Mach-O objects (always linked) or static archives (members linked on demand).
//! Inputs of two architectures (x86_64, arm64e) give one image each, in a universal file.

mod verify_cmd;

use kext_bundle::bundle::write_bundle;
use kext_bundle::fat;
use kext_bundle::input::{read_input, Input};
use kext_bundle::kpi::{load_export_sets, KpiTable, PlistInfo};
use kext_bundle::link::{link, LinkOptions};
use object::macho;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage:
  kext-bundle link   -o OUT    --plist Info.plist --kpi kpi-symbols.txt [--exports DIR] [--root SYM]... INPUT...
  kext-bundle bundle --out DIR --plist Info.plist --kpi kpi-symbols.txt [--exports DIR] [--root SYM]... INPUT...
  kext-bundle verify BUNDLE.kext [--kpi FILE] [--exports DIR] [--seed N] [--start SYM] [--stop SYM] [--signed SYM]...";

#[derive(Default)]
pub struct Args {
    pub out: Option<PathBuf>,
    pub plist: Option<PathBuf>,
    pub kpi: Option<PathBuf>,
    pub exports: Option<PathBuf>,
    pub roots: Vec<String>,
    pub seed: Option<u64>,
    pub start: Option<String>,
    pub stop: Option<String>,
    pub positional: Vec<String>,
    /// Symbols whose every pointer must be signed IA/0 (arm64e), e.g. the cdevsw.
    pub signed: Vec<String>,
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
            "--signed" => a.signed.push(value(&arg)?),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ => a.positional.push(arg),
        }
    }
    Ok(a)
}

/// The architecture of an input: its object's, or its archive's first member's.
fn input_cputype(i: &Input) -> Option<u32> {
    match i {
        Input::Object(o) => Some(o.cputype),
        Input::Archive { members, .. } => members.first().map(|m| m.cputype),
    }
}

/// Links the inputs, one image per architecture among them; several make a universal file.
fn do_link(a: &Args) -> Result<Vec<u8>, String> {
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
    let mut groups: Vec<(u32, Vec<Input>)> = Vec::new();
    for p in &a.positional {
        let input = read_input(p).map_err(|e| e.to_string())?;
        let arch = input_cputype(&input).unwrap_or(macho::CPU_TYPE_X86_64);
        match groups.iter_mut().find(|(c, _)| *c == arch) {
            Some((_, g)) => g.push(input),
            None => groups.push((arch, vec![input])),
        }
    }
    let mut images = Vec::new();
    for (_, inputs) in groups {
        let out = link(inputs, &opts).map_err(|e| e.to_string())?;
        for w in &out.warnings {
            eprintln!("kext-bundle: warning: {w}");
        }
        let (cputype, cpusubtype) = fat::thin_arch(&out.image).map_err(|e| e.to_string())?;
        eprintln!(
            "kext-bundle: linked {} objects ({}), {} imports, {} bytes ({})",
            out.objects.len(),
            out.objects.join(", "),
            out.imports.len(),
            out.image.len(),
            if cputype == macho::CPU_TYPE_ARM64 {
                "arm64e"
            } else {
                "x86_64"
            }
        );
        images.push((cputype, cpusubtype, out.image));
    }
    if images.len() == 1 {
        return Ok(images.pop().expect("one").2);
    }
    let slices: Vec<fat::Slice> = images
        .iter()
        .map(|(cputype, cpusubtype, data)| fat::Slice {
            cputype: *cputype,
            cpusubtype: *cpusubtype,
            data,
        })
        .collect();
    Ok(fat::write(&slices))
}

fn run() -> Result<bool, String> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().ok_or(USAGE)?;
    let a = parse_args(args)?;
    match cmd.as_str() {
        "link" => {
            let out_path = a.out.clone().ok_or("-o is required")?;
            let out = do_link(&a)?;
            std::fs::write(&out_path, &out).map_err(|e| format!("{}: {e}", out_path.display()))?;
            Ok(true)
        }
        "bundle" => {
            let dir = a.out.clone().ok_or("--out is required")?;
            let out = do_link(&a)?;
            let plist =
                PlistInfo::load(a.plist.as_ref().expect("checked")).map_err(|e| e.to_string())?;
            let exe = write_bundle(&dir, &plist, &out).map_err(|e| e.to_string())?;
            eprintln!("kext-bundle: wrote {}", exe.display());
            Ok(true)
        }
        "verify" => verify_cmd::run(&a),
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
