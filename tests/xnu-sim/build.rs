//! Compiles the simulator's variadic KPI functions (csrc/variadic.c) and generates the Darwin
//! ABI types from the kext's own header, `shim/kpi.h`, so the simulator and the kext share one
//! definition of every struct and constant they exchange (src/abi).
//!
//! bindgen runs with the root crate's configuration (shim/bindgen_config.rs, included by both
//! build scripts), for the host target: the simulator only ever runs on the host.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/variadic.c");
    cc::Build::new()
        .file("csrc/variadic.c")
        .warnings(true)
        .compile("xnusim_variadic");

    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    // The loader compares kmod_info.name with the bundle's CFBundleIdentifier, as kextd and
    // kmutil do; the one place it is written is the kext's Info.plist.
    let plist_path = manifest.join("../../Info.plist");
    println!("cargo:rerun-if-changed={}", plist_path.display());
    let info = plist::Value::from_file(&plist_path).expect("read Info.plist");
    let bundle_id = info
        .as_dictionary()
        .and_then(|d| d.get("CFBundleIdentifier"))
        .and_then(plist::Value::as_string)
        .expect("Info.plist CFBundleIdentifier");
    println!("cargo:rustc-env=XNUSIM_BUNDLE_ID={bundle_id}");
    let header = manifest.join("../../shim/kpi.h");
    println!("cargo:rerun-if-changed={}", header.display());
    println!(
        "cargo:rerun-if-changed={}",
        manifest.join("../../shim/bindgen_config.rs").display()
    );
    let target = env::var("TARGET").expect("TARGET");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let bindings = kpi_bindgen(header.to_str().expect("UTF-8 path to shim/kpi.h"), &target)
        .generate()
        .expect("bindgen over shim/kpi.h");
    bindings
        .write_to_file(out.join("kpi_bindings.rs"))
        .expect("write kpi_bindings.rs");
}

include!("../../shim/bindgen_config.rs");
