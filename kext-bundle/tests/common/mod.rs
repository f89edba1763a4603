//! Helpers for the linker's integration tests: tiny objects compiled with clang for the
//! kernel target, a test KPI table and Info.plist.
#![allow(dead_code)]

use kext_bundle::input::{parse_input, parse_object, InObject, Input};
use kext_bundle::kpi::{KpiTable, PlistInfo};
use kext_bundle::link::{link, LinkOptions, LinkOutput};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The kernel flags of spec section 2.2.
pub const KERNEL_CFLAGS: [&str; 10] = [
    "-target",
    "x86_64-apple-macos10.13",
    "-mkernel",
    "-nostdinc",
    "-fno-common",
    "-msoft-float",
    "-mno-sse",
    "-mno-mmx",
    "-O2",
    "-c",
];

fn on_path(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// clang-19 on Linux, `clang` (Xcode) on a Mac; `KEXT_CLANG` overrides.
pub fn clang() -> String {
    if let Ok(c) = std::env::var("KEXT_CLANG") {
        return c;
    }
    for c in ["clang-19", "/usr/lib/llvm-19/bin/clang", "clang"] {
        if on_path(c) {
            return c.to_string();
        }
    }
    panic!("no clang found (install clang-19, or set KEXT_CLANG)");
}

pub fn llvm_ar() -> String {
    for c in [
        "llvm-ar-19",
        "/usr/lib/llvm-19/bin/llvm-ar",
        "llvm-ar",
        "ar",
    ] {
        if Command::new(c).arg("--version").output().is_ok() {
            return c.to_string();
        }
    }
    panic!("no llvm-ar or ar found");
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn scratch_dir() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("kext-bundle-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles C (`.c`) or assembly (`.s`) source named `name` to an object file; returns its path.
pub fn compile_file(name: &str, source: &str, extra: &[&str]) -> PathBuf {
    let dir = scratch_dir();
    let src = dir.join(name);
    std::fs::write(&src, source).unwrap();
    let obj = src.with_extension("o");
    let out = Command::new(clang())
        .args(KERNEL_CFLAGS)
        .args(extra)
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .expect("run clang");
    assert!(
        out.status.success(),
        "clang failed on {name}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    obj
}

/// Compiles and parses; the object is named `<stem>.o` in messages.
pub fn compile(name: &str, source: &str) -> InObject {
    compile_with(name, source, &[])
}

pub fn compile_with(name: &str, source: &str, extra: &[&str]) -> InObject {
    let path = compile_file(name, source, extra);
    let data = std::fs::read(&path).unwrap();
    let stem = Path::new(name).with_extension("o");
    parse_object(stem.to_str().unwrap(), &data).unwrap()
}

/// Builds a static archive from objects; returns it parsed.
pub fn archive(name: &str, objects: &[PathBuf]) -> Input {
    let dir = scratch_dir();
    let path = dir.join(name);
    let out = Command::new(llvm_ar())
        .arg("rcs")
        .arg(&path)
        .args(objects)
        .output()
        .expect("run ar");
    assert!(
        out.status.success(),
        "ar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_input(name, &std::fs::read(&path).unwrap()).unwrap()
}

pub const TEST_KPI: &str = "\
# test table: symbol bundle
_printf com.apple.kpi.libkern
_memcpy com.apple.kpi.libkern
_lck_mtx_lock com.apple.kpi.libkern
___stack_chk_guard com.apple.kpi.libkern
___stack_chk_fail com.apple.kpi.libkern
_msleep com.apple.kpi.bsd
_mbuf_data com.apple.kpi.bsd
_thread_call_enter com.apple.kpi.mach
_lck_mtx_assert com.apple.kpi.unsupported
_ifnet_allocate_extended com.apple.kpi.private
";

pub fn kpi() -> KpiTable {
    KpiTable::parse("test-kpi", TEST_KPI).unwrap()
}

pub const IDENTIFIER: &str = "org.tunnelkext.test";
pub const VERSION: &str = "1.2.3";

/// An Info.plist like the project's, declaring `libs` at 8.0.0.
pub fn plist(libs: &[&str]) -> PlistInfo {
    let mut d = plist::Dictionary::new();
    let s = |v: &str| plist::Value::String(v.to_string());
    d.insert("CFBundleIdentifier".into(), s(IDENTIFIER));
    d.insert("CFBundleVersion".into(), s(VERSION));
    d.insert("OSBundleCompatibleVersion".into(), s("1.0"));
    d.insert("CFBundleExecutable".into(), s("tunnel"));
    d.insert("CFBundlePackageType".into(), s("KEXT"));
    d.insert("CFBundleInfoDictionaryVersion".into(), s("6.0"));
    d.insert("CFBundleName".into(), s("tunnel"));
    d.insert("CFBundleSignature".into(), s("????"));
    let mut l = plist::Dictionary::new();
    for b in libs {
        l.insert(b.to_string(), s("8.0.0"));
    }
    d.insert("OSBundleLibraries".into(), plist::Value::Dictionary(l));
    PlistInfo::from_value("test Info.plist", plist::Value::Dictionary(d)).unwrap()
}

/// C source of a kmod_info whose start/stop are `test_start`/`test_stop`, calling printf.
pub fn kmod_source() -> String {
    format!(
        r#"
typedef unsigned long uint64_t; typedef unsigned int uint32_t; typedef int int32_t;
#pragma pack(push, 4)
typedef struct kmod_info {{
    struct kmod_info *next; int32_t info_version; uint32_t id;
    char name[64]; char version[64]; int32_t reference_count;
    void *reference_list; uint64_t address, size, hdr_size;
    int (*start)(struct kmod_info *, void *); int (*stop)(struct kmod_info *, void *);
}} kmod_info_t;
#pragma pack(pop)
_Static_assert(sizeof(kmod_info_t) == 196, "kmod_info_t is 196 bytes");
extern int printf(const char *, ...);
static int test_start(kmod_info_t *ki, void *d) {{ printf("start\n"); return 0; }}
static int test_stop(kmod_info_t *ki, void *d) {{ printf("stop\n"); return 0; }}
kmod_info_t kmod_info = {{ 0, 1, -1U, "{IDENTIFIER}", "{VERSION}", -1, 0, 0, 0, 0, test_start, test_stop }};
"#
    )
}

pub fn kmod_object() -> InObject {
    compile("kmod.c", &kmod_source())
}

pub fn opts(libs: &[&str]) -> LinkOptions {
    LinkOptions::new(plist(libs), kpi())
}

pub const LIBKERN: &[&str] = &["com.apple.kpi.libkern"];

pub fn link_objects(objs: Vec<InObject>, libs: &[&str]) -> Result<LinkOutput, String> {
    link(objs.into_iter().map(Input::Object).collect(), &opts(libs)).map_err(|e| e.to_string())
}

/// Links `kmod.o` + one object and returns the error text (panics if the link succeeds).
pub fn link_error(obj: InObject, libs: &[&str]) -> String {
    match link_objects(vec![kmod_object(), obj], libs) {
        Ok(_) => panic!("link succeeded but should have failed"),
        Err(e) => e,
    }
}

pub fn assert_has_line(errors: &str, line: &str) {
    assert!(
        errors.lines().any(|l| l == line),
        "expected the line\n  {line}\nin the linker's errors:\n{errors}"
    );
}

/// `<repo>/../shared/xnu-exports`, Apple's KPI export lists: the precondition of the tests in
/// the modules named `needs_apple_exports`, which are the test group `apple-exports` of
/// `scripts/lib/preconditions.sh` (`scripts/test.sh` leaves the group out and reports its
/// tests skipped when the directory is missing). Run without it, a test fails here, naming
/// the directory: it never passes without having run.
pub fn exports_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/xnu-exports");
    assert!(
        dir.is_dir(),
        "precondition not met: {} not found (Apple's KPI export lists); scripts/test.sh \
         reports the test group `apple-exports` skipped without it",
        dir.display()
    );
    dir
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
