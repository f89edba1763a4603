//! `pkg-build`: writes the installer package of a kext (see the crate docs).
//!
//! ```text
//! pkg-build --kext DIR.kext --scripts DIR [--support DIR] [--conclusion FILE.html]
//!           [--min-macos 10.13] [--mtime SECONDS] (--out FILE.pkg | --out-dir DIR)
//! ```
//! `--out-dir` names the file `<kext name without .kext>-<CFBundleVersion>.pkg`. Every time in
//! the package is `--mtime`, else `$SOURCE_DATE_EPOCH`, else 2000-01-01: never the clock.
//! Prints the path written.

use pkg_build::kext::Arch;
use pkg_build::product::{self, Inputs};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: pkg-build --kext DIR.kext --scripts DIR [--support DIR] [--conclusion FILE.html]
                 [--min-macos 10.13] [--mtime SECONDS] (--out FILE.pkg | --out-dir DIR)";

/// 2000-01-01T00:00:00Z, when neither --mtime nor SOURCE_DATE_EPOCH says otherwise.
const DEFAULT_MTIME: u32 = 946_684_800;

#[derive(Default)]
struct Args {
    kext: Option<PathBuf>,
    scripts: Option<PathBuf>,
    support: Option<PathBuf>,
    conclusion: Option<PathBuf>,
    min_macos: Option<String>,
    mtime: Option<u32>,
    out: Option<PathBuf>,
    out_dir: Option<PathBuf>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args::default();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--kext" => a.kext = Some(value(&arg)?.into()),
            "--scripts" => a.scripts = Some(value(&arg)?.into()),
            "--support" => a.support = Some(value(&arg)?.into()),
            "--conclusion" => a.conclusion = Some(value(&arg)?.into()),
            "--min-macos" => a.min_macos = Some(value(&arg)?),
            "--mtime" => a.mtime = Some(parse_mtime(&value(&arg)?)?),
            "--out" => a.out = Some(value(&arg)?.into()),
            "--out-dir" => a.out_dir = Some(value(&arg)?.into()),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn parse_mtime(s: &str) -> Result<u32, String> {
    s.parse()
        .map_err(|_| format!("'{s}' is not a time in seconds since 1970 (0 to 4294967295)"))
}

fn run(a: Args) -> Result<PathBuf, String> {
    let kext = a.kext.ok_or("--kext is required")?;
    let scripts = a.scripts.ok_or("--scripts is required")?;
    let mtime = match (a.mtime, std::env::var("SOURCE_DATE_EPOCH")) {
        (Some(t), _) => t,
        (None, Ok(s)) if !s.is_empty() => {
            parse_mtime(&s).map_err(|e| format!("SOURCE_DATE_EPOCH: {e}"))?
        }
        _ => DEFAULT_MTIME,
    };
    let min_macos = a.min_macos.unwrap_or_else(|| "10.13".to_string());
    let inputs = Inputs {
        kext: &kext,
        support: a.support.as_deref(),
        scripts: &scripts,
        conclusion: a.conclusion.as_deref(),
        min_macos: &min_macos,
        mtime,
    };
    let pkg = product::build(&inputs).map_err(|e| e.to_string())?;
    let out = match (a.out, a.out_dir) {
        (Some(out), None) => out,
        (None, Some(dir)) => {
            let stem = pkg.kext.name.trim_end_matches(".kext");
            dir.join(format!("{stem}-{}.pkg", pkg.kext.version))
        }
        _ => return Err("give one of --out and --out-dir".to_string()),
    };
    std::fs::write(&out, &pkg.bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    let archs: Vec<&str> = pkg
        .kext
        .archs
        .iter()
        .map(|a| match a {
            Arch::X86_64 => "x86_64",
            Arch::Arm64e => "arm64e",
        })
        .collect();
    eprintln!(
        "pkg-build: {} {} ({}): {} payload entries, {} script entries, {} bytes",
        pkg.package_id,
        pkg.kext.version,
        archs.join("+"),
        pkg.payload.len(),
        pkg.scripts.len(),
        pkg.bytes.len()
    );
    Ok(out)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("pkg-build: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(out) => {
            println!("{}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pkg-build: {e}");
            ExitCode::FAILURE
        }
    }
}
