//! arm64e: the linker's rules of docs/kext-build.md 9.1–9.3, each with a negative test that fails
//! for its own reason, and the verifier's collection (9.5) with its negative test: remove one
//! split-seg entry and a reference lands elsewhere. Objects come from clang-22 (the first
//! packaged clang that keeps arm64e pointer signatures); without it the tests skip.

mod common;
use common::*;
use kext_bundle::chains::Chained;
use kext_bundle::image::Image;
use kext_bundle::input::{parse_object, InObject, Input};
use kext_bundle::link::link;
use kext_bundle::verify::{self, arm64e, collection, splitseg, SyntheticKernel};
use std::path::Path;
use std::process::Command;

const ARM64E_CFLAGS: [&str; 7] = [
    "-target",
    "arm64e-apple-macos11",
    "-mkernel",
    "-nostdinc",
    "-fno-common",
    "-O2",
    "-c",
];

/// clang-22, which every test here needs: scripts/test.sh installs it (scripts/lib/deps.sh), and
/// a test run without it fails naming it rather than passing.
fn clang22() -> String {
    let c = std::env::var("CLANG_ARM64E").unwrap_or_else(|_| "clang-22".into());
    assert!(
        Command::new(&c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "precondition not met: {c} not found; arm64e objects need clang-22 (scripts/lib/deps.sh installs it)"
    );
    c
}

/// Compiles C or assembly for arm64e; the object is called `as_name` in messages.
fn compile64(name: &str, source: &str, as_name: &str) -> InObject {
    let clang = clang22();
    let dir = scratch_dir();
    let src = dir.join(name);
    std::fs::write(&src, source).unwrap();
    let obj = src.with_extension("o");
    let out = Command::new(clang)
        .args(ARM64E_CFLAGS)
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "clang-22 on {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_object(as_name, &std::fs::read(&obj).unwrap()).unwrap()
}

const USER: &str = r#"
extern int printf(const char *, ...);
extern void *memcpy(void *, const void *, unsigned long);
static int counter;
int bump(char *d, const char *s) { memcpy(d, s, 8); counter++; return printf("%d\n", counter); }
"#;

fn kmod64() -> InObject {
    compile64("kmod.c", &kmod_source(), "kmod.o")
}

fn link64(objs: Vec<InObject>) -> Result<Vec<u8>, String> {
    link(
        objs.into_iter().map(Input::Object).collect(),
        &opts(LIBKERN),
    )
    .map(|o| o.image)
    .map_err(|e| e.to_string())
}

fn link64_error(obj: InObject) -> String {
    match link64(vec![kmod64(), obj]) {
        Ok(_) => panic!("link succeeded but should have failed"),
        Err(e) => e,
    }
}

fn kernel() -> SyntheticKernel {
    SyntheticKernel::from_table(&kpi(), &plist(LIBKERN).declared())
}

fn good_image() -> Image {
    let image = link64(vec![kmod64(), compile64("user.c", USER, "user.o")]).expect("link");
    Image::parse(&image).unwrap()
}

#[test]
fn image_has_the_header_commands_segments_and_chains_of_9_1() {
    let img = good_image();
    assert_eq!(img.cpusubtype, 0xC000_0002);
    assert_eq!(img.flags, 0x85);
    assert_eq!(img.commands.len(), 10);
    assert_eq!(arm64e::structural(&img), Vec::<String>::new());
    let k = verify::check_kmod_info(&img, IDENTIFIER, VERSION).expect("kmod_info");
    assert_eq!(
        (k.start_symbol.as_str(), k.stop_symbol.as_str()),
        ("_test_start", "_test_stop")
    );
    // kmod_info is packed to 4: start sits at a 4-, not 8-byte aligned offset, and the chain
    // reaches it with a stride of 4.
    let start_site = k.address + 180;
    assert_eq!(start_site % 8, 4);
    assert!(matches!(
        img.chains.as_ref().unwrap().fixups.get(&start_site),
        Some(Chained::Rebase { auth: Some(a), .. }) if *a == arm64e::IA0
    ));
    // the negative: a subtype without the kernel bit
    let mut bad = img.clone();
    bad.cpusubtype = 0x8000_0002;
    assert!(arm64e::structural(&bad)
        .iter()
        .any(|l| l.contains("expected ARM64/0xc0000002")));
}

#[test]
fn kernel_calls_go_through_plain_stubs_over_a_got_of_binds() {
    let img = good_image();
    let stubs = img
        .sections
        .iter()
        .find(|s| s.sectname == "__stubs")
        .expect("__stubs");
    let got = img
        .sections
        .iter()
        .find(|s| s.sectname == "__got")
        .expect("__got");
    assert_eq!(
        (stubs.segname.as_str(), got.segname.as_str()),
        ("__TEXT_EXEC", "__DATA_CONST")
    );
    let code = img.read(stubs.addr, stubs.size as usize).unwrap();
    for stub in code.chunks(12) {
        let w: Vec<u32> = stub
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(w[0] & 0x9F00_001F, 0x9000_0010, "adrp x16");
        assert_eq!(w[1] & 0xFFC0_03FF, 0xF940_0210, "ldr x16, [x16, #off]");
        assert_eq!(
            w[2], 0xD61F_0200,
            "br x16 (plain, not braa: minimum macOS 11)"
        );
    }
    let chains = img.chains.as_ref().unwrap();
    for (site, f) in chains.fixups.range(got.addr..got.addr + got.size) {
        match f {
            Chained::Bind {
                auth: None,
                addend: 0,
                ordinal,
            } => {
                assert_eq!(
                    chains.imports[*ordinal as usize].lib_ordinal, 0xFE,
                    "{site:#x}"
                )
            }
            other => panic!("GOT slot {site:#x}: {other:?}, expected a plain bind"),
        }
    }
    assert_eq!(
        chains.fixups.range(got.addr..got.addr + got.size).count(),
        2,
        "printf, memcpy"
    );
}

#[test]
fn bitcode_and_cmdline_are_dropped() {
    let obj = compile64(
        "bc.s",
        ".section __LLVM,__bitcode\n.byte 1,2,3\n.section __LLVM,__cmdline\n.byte 0\n.text\n.globl _f\n_f: ret\n",
        "bc.o",
    );
    let img = Image::parse(&link64(vec![kmod64(), obj]).unwrap()).unwrap();
    assert!(img.sections.iter().all(|s| s.segname != "__LLVM"));
}

#[test]
fn an_unsupported_relocation_is_refused_naming_symbol_and_object() {
    let obj = compile64(
        "sub.s",
        ".data\n.globl _a\n_a: .quad _a - _b\n.globl _b\n_b: .quad 0\n",
        "sub.o",
    );
    let e = link64_error(obj);
    assert!(
        e.contains("SUBTRACTOR relocation to _b (sub.o at __DATA,__data+0x0): not one of the arm64e relocations a kext may use"),
        "{e}"
    );
}

#[test]
fn a_plain_pointer_into_code_from_shim_data_is_refused() {
    let obj = compile64(
        "plain.s",
        ".text\n.globl _f\n_f: ret\n.data\n.globl _table\n.p2align 3\n_table: .quad _f\n",
        "plain.o",
    );
    let e = link64_error(obj);
    assert!(
        e.contains("plain pointer to code _f (plain.o at __DATA,__data+0x0)"),
        "{e}"
    );
}

#[test]
fn a_signed_pointer_from_a_rust_object_is_refused() {
    // C with a function pointer compiles to an AUTHENTICATED_POINTER; named like a rustc
    // codegen unit, the linker takes it for Rust, which must never carry one.
    let src = "static int f(void) { return 1; } int (*hook)(void) = f;";
    let obj = compile64(
        "signed.c",
        src,
        "libtunnel.a(tunnel-0.tunnel.0-cgu.0.rcgu.o)",
    );
    let e = link64_error(obj);
    assert!(e.contains("signed pointer to _f (libtunnel.a(tunnel-0.tunnel.0-cgu.0.rcgu.o) at __DATA,__data+0x0): a Rust object carries an authenticated pointer"), "{e}");
    // the same object under a C name links, and its pointer is signed IA/0
    let obj = compile64("signed.c", src, "signed.o");
    let img = Image::parse(&link64(vec![kmod64(), obj]).unwrap()).unwrap();
    assert!(arm64e::check_auth(&img, &["_hook".to_string()]).is_ok());
}

#[test]
fn a_pointer_straddling_a_chain_page_or_misaligned_is_refused() {
    let straddle = ".data\n.p2align 12\n.globl _g\n_g: .space 4092\n.quad _g\n";
    let obj = compile64("straddle.s", straddle, "straddle.o");
    let e = link64_error(obj);
    assert!(
        e.contains(
            "straddles a 4 KiB chain page: pointer to _g (straddle.o at __DATA,__data+0xffc)"
        ),
        "{e}"
    );
    let odd = ".data\n.p2align 3\n.globl _g\n_g: .space 2\n.quad _g\n";
    let e = link64_error(compile64("odd.s", odd, "odd.o"));
    assert!(
        e.contains(
            "is not 4-byte aligned (chained fixups have a stride of 4): pointer to _g (odd.o"
        ),
        "{e}"
    );
}

#[test]
fn collections_with_per_segment_slides_land_every_reference() {
    let img = good_image();
    for (seed, sub_page) in [(1, false), (2, true), (99, false)] {
        let slides = collection::slides(img.segments.len(), seed, sub_page);
        let r =
            collection::build(&img, &slides, &kernel().symbols).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.pointers > 0 && r.binds == 2 && r.adrps > 0 && r.low12s > 0);
    }
}

/// The image with one split-seg entry of `kind` left out (the blob is rewritten in place).
fn without_one_entry(img: &Image, kind: u8) -> (Image, splitseg::Entry) {
    let mut entries = splitseg::parse(img.linkedit_blob(img.split_seg_cmd).unwrap()).unwrap();
    // a cross-segment reference (the builder moves segments apart)
    let seg_of = |sect: u64| {
        img.sections
            .get(sect as usize - 1)
            .map(|s| s.segname.clone())
    };
    let i = entries
        .iter()
        .position(|e| e.kind == kind && seg_of(e.from_section) != seg_of(e.to_section))
        .unwrap_or_else(|| panic!("no cross-segment entry of kind {kind}"));
    let removed = entries.remove(i);
    // the rewritten info goes at the end of the file; LC_SEGMENT_SPLIT_INFO points at it
    let blob = splitseg::encode(&entries);
    let mut data = img.data.clone();
    let mut at = 32;
    for &(cmd, cmdsize) in &img.commands {
        if cmd == object::macho::LC_SEGMENT_SPLIT_INFO {
            data[at + 8..at + 12].copy_from_slice(&(img.data.len() as u32).to_le_bytes());
            data[at + 12..at + 16].copy_from_slice(&(blob.len() as u32).to_le_bytes());
        }
        at += cmdsize as usize;
    }
    data.extend_from_slice(&blob);
    (Image::parse(&data).unwrap(), removed)
}

#[test]
fn removing_one_split_seg_entry_makes_the_collection_fail() {
    let img = good_image();
    let slides = collection::slides(img.segments.len(), 5, false);
    // the untouched image passes with the same slides
    collection::build(&img, &slides, &kernel().symbols).unwrap();
    // a pointer (kmod_info.start and friends: chained rebases into __TEXT_EXEC)
    let (bad, e) = without_one_entry(&img, 2);
    let err = collection::build(&bad, &slides, &kernel().symbols)
        .unwrap_err()
        .to_string();
    let site = bad.sections[e.from_section as usize - 1].addr + e.from_offset;
    assert!(
        err.contains(&format!("({site:#x}) to ")) && err.contains("after the move it holds"),
        "{err}"
    );
    // an ADRP to another segment
    let (bad, e) = without_one_entry(&img, 5);
    let err = collection::build(&bad, &slides, &kernel().symbols)
        .unwrap_err()
        .to_string();
    let site = bad.sections[e.from_section as usize - 1].addr + e.from_offset;
    assert!(
        err.contains("ADRP at ") && err.contains(&format!("({site:#x})")),
        "{err}"
    );
    // a low-12 offset: harmless under whole-page slides, caught by the sub-page collection
    let (bad, _) = without_one_entry(&img, 6);
    let sub = collection::slides(img.segments.len(), 5, true);
    let err = collection::build(&bad, &sub, &kernel().symbols)
        .unwrap_err()
        .to_string();
    assert!(err.contains("low-12 at"), "{err}");
}

#[test]
fn the_real_bundle_verifies_when_built() {
    // target/tunnel.kext from scripts/build.sh, when present (the kext-build suite builds it)
    let exe =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tunnel.kext/Contents/MacOS/tunnel");
    let Ok(data) = std::fs::read(&exe) else {
        println!("SKIP: {} not built", exe.display());
        return;
    };
    let Some(slices) = kext_bundle::fat::slices(&data).unwrap() else {
        println!("SKIP: {} is not universal", exe.display());
        return;
    };
    let arm = slices
        .iter()
        .find(|s| s.cputype == object::macho::CPU_TYPE_ARM64)
        .expect("arm64e slice");
    assert_eq!(arm.cpusubtype, 0xC000_0002);
    let img = Image::parse(arm.data).unwrap();
    assert_eq!(arm64e::structural(&img), Vec::<String>::new());
}

/// Tests that read Apple's export lists (scripts/test.sh reports them skipped without
/// ../shared/xnu-exports, the test group `apple-exports`).
mod needs_apple_exports {
    use super::*;

    #[test]
    fn an_import_missing_from_the_arm64_export_lists_is_refused() {
        let dir = exports_dir();
        // _in6_cksum is exported by BSDKernel on x86_64 only
        let obj = compile64("v6.c", "extern int in6_cksum(void *, int, int, int); int f(void *m) { return in6_cksum(m, 0, 0, 0); }", "v6.o");
        let mut o = opts(&["com.apple.kpi.libkern", "com.apple.kpi.bsd"]);
        o.kpi = kext_bundle::kpi::KpiTable::parse(
            "t",
            &format!("{TEST_KPI}_in6_cksum com.apple.kpi.bsd\n"),
        )
        .unwrap();
        o.exports_dir = Some(dir);
        let e = link(vec![Input::Object(kmod64()), Input::Object(obj)], &o)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "undefined symbol _in6_cksum: not in today's arm64 export lists of com.apple.kpi.bsd"
            ),
            "{e}"
        );
    }
}
