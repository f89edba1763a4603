//! Compiles the C shim and generates Rust bindings for the project's KPI header.
//!
//! Two flavours, chosen by the target:
//! - the macOS kernel (the `x86_64-apple-macos-kext` or `arm64e-apple-macos-kext` target spec):
//!   clang with the flags xnu uses for kexts (docs/kext-build.md sections 2.2 and 9.2); arm64e needs
//!   clang-22, the first packaged clang that keeps the shim's function pointers signed;
//! - the host (Linux): the same sources, freestanding, for linking against the simulated kernel
//!   in `tests/xnu-sim`. The few KPI names that glibc also defines and whose behaviour the
//!   simulator must own (`printf`, `panic`) are renamed in the shim's objects, so the rest of the
//!   test process keeps glibc's (docs/xnu-sim.md section 1).

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// KPI symbols that the simulator defines under `xnusim_<name>` because libc has them too.
const SIM_OWNED: &[&str] = &["printf", "panic", "strlcpy"];

fn main() {
    let target = env::var("TARGET").expect("TARGET");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    // The kernel target is the project's own spec (targets/x86_64-apple-macos-kext.json); a
    // Mac's host target (e.g. aarch64-apple-darwin) builds the simulator flavour like Linux.
    let kernel = target.ends_with("-kext");
    let arm64e = kernel && target.starts_with("arm64e");
    println!("cargo:rerun-if-changed=shim/kpi.h");
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-changed=shim/bindgen_config.rs");
    println!("cargo:rerun-if-changed=Info.plist");
    println!("cargo:rerun-if-env-changed=CLANG");

    // The bundle identifier and version are written once, in Info.plist; the shim's kmod_info
    // and the core (lock group, mbuf tags) get them from here.
    let (bundle_id, bundle_version) = bundle_identity("Info.plist");
    println!("cargo:rustc-env=TUN_BUNDLE_ID={bundle_id}");

    println!("cargo:rerun-if-env-changed=CLANG_ARM64E");
    // The arm64e shim has its own compiler variable: one build script run serves both slices
    // of a universal build, and CLANG names the x86_64 one.
    let clang = if arm64e {
        env::var("CLANG_ARM64E").unwrap_or_else(|_| "clang-22".to_string())
    } else {
        env::var("CLANG").unwrap_or_else(|_| find_clang())
    };
    let mut build = cc::Build::new();
    build
        .compiler(&clang)
        .no_default_flags(true)
        .file("shim/shim.c")
        .include("shim")
        .flag("-nostdinc")
        .flag("-fno-common")
        .flag("-O2")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror")
        .define("TUN_BUNDLE_ID", format!("\"{bundle_id}\"").as_str())
        .define(
            "TUN_BUNDLE_VERSION",
            format!("\"{bundle_version}\"").as_str(),
        );
    if arm64e {
        // -mkernel turns on -fptrauth-calls/-returns/-intrinsics/-auth-traps: every function
        // pointer the shim stores becomes an ARM64_RELOC_AUTHENTICATED_POINTER (IA, disc. 0).
        // FP/SIMD registers are not forbidden on arm64 (xnu builds arm64 kexts this way).
        build
            .flag("-target")
            .flag("arm64e-apple-macos11")
            .flag("-mkernel");
    } else if kernel {
        build
            .flag("-target")
            .flag("x86_64-apple-macos10.13")
            .flag("-mkernel")
            .flag("-msoft-float")
            .flag("-mno-sse")
            .flag("-mno-mmx");
    } else {
        build
            .flag("-ffreestanding")
            .flag("-fno-stack-protector")
            .flag("-fPIC");
    }
    build.compile("tunnelshim");

    if !kernel {
        rename_sim_owned_symbols(&out);
    }

    let clang_target = if arm64e {
        "arm64e-apple-macosx11.0".to_string()
    } else if kernel {
        "x86_64-apple-macosx10.13".to_string()
    } else {
        target.clone()
    };
    let bindings = kpi_bindgen("shim/kpi.h", &clang_target)
        .generate()
        .expect("bindgen over shim/kpi.h");
    bindings
        .write_to_file(out.join("kpi_bindings.rs"))
        .expect("write kpi_bindings.rs");
}

/// `CFBundleIdentifier` and `CFBundleVersion` of the plist at `path`. Both end up in C string
/// literals and in `kmod_info`'s 64-byte fields, so only plain reverse-DNS and version
/// characters are accepted.
fn bundle_identity(path: &str) -> (String, String) {
    let info = plist::Value::from_file(path).expect("read Info.plist");
    let dict = info.as_dictionary().expect("Info.plist is a dictionary");
    let field = |key: &str| {
        let value = dict
            .get(key)
            .and_then(plist::Value::as_string)
            .unwrap_or_else(|| panic!("Info.plist has no string {key}"));
        assert!(
            !value.is_empty()
                && value.len() < 64
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)),
            "Info.plist {key} {value:?}: want 1..63 characters of [A-Za-z0-9.-_]"
        );
        value.to_string()
    };
    (field("CFBundleIdentifier"), field("CFBundleVersion"))
}

/// The first clang found: `clang-19` (Debian's versioned name), then `clang`.
fn find_clang() -> String {
    for name in ["clang-19", "clang"] {
        if Command::new(name).arg("--version").output().is_ok() {
            return name.to_string();
        }
    }
    panic!("no clang found: install clang-19 (scripts/build.sh does) or set CLANG");
}

fn rename_sim_owned_symbols(out: &std::path::Path) {
    let list = out.join("sim-owned-symbols.txt");
    let text: String = SIM_OWNED
        .iter()
        .map(|name| format!("{name} xnusim_{name}\n"))
        .collect();
    std::fs::write(&list, text).expect("write rename list");
    let archive = out.join("libtunnelshim.a");
    let objcopy = ["llvm-objcopy-19", "llvm-objcopy", "objcopy"]
        .into_iter()
        .find(|tool| Command::new(tool).arg("--version").output().is_ok())
        .expect("no objcopy found (binutils or llvm)");
    let status = Command::new(objcopy)
        .arg(format!("--redefine-syms={}", list.display()))
        .arg(&archive)
        .status()
        .expect("run objcopy");
    assert!(status.success(), "objcopy --redefine-syms failed");
}

include!("shim/bindgen_config.rs");
