//! Positive linker tests: every relocation form of spec section 3, checked by decoding the
//! output independently (instruction encodings, symbol addresses), plus the verifier's
//! structural checks and relocation simulator on the result, and their ability to fail.

mod common;
use common::*;
use kext_bundle::image::Image;
use kext_bundle::input::Input;
use kext_bundle::kpi::load_exports;
use kext_bundle::link::link;
use kext_bundle::verify::{self, SyntheticKernel};
use object::macho;

const CALLER: &str = r#"
.text
.globl _caller
_caller:
  callq _callee
  leaq _table(%rip), %rax
  movb $1, _flag+3(%rip)
  movl $7, _word+4(%rip)
  movq ___stack_chk_guard@GOTPCREL(%rip), %rax
  movq _callee@GOTPCREL(%rip), %rax
  callq _printf
  leaq Lstr(%rip), %rdi
  callq _weakling
  retq
.cstring
Lstr: .asciz "hello"
.data
.globl _ptrs
.p2align 3
_ptrs: .quad _callee, _callee+8, _printf, Lstr+1
.globl _diff
_diff: .quad _caller - _ptrs + 5
.globl _diff32
_diff32: .long Lstr - _caller
"#;

const CALLEE: &str = r#"
.text
.globl _callee
_callee:
  retq
.globl _weakling
.weak_definition _weakling
_weakling:
  movl $1, %eax
  retq
.data
.globl _table
.p2align 3
_table: .quad 1, 2
.globl _flag
_flag: .byte 0, 0, 0, 0, 0
.globl _word
.p2align 2
_word: .long 0, 0
.zerofill __DATA,__bss,_zero,64,4
"#;

const STRONG: &str = r#"
.text
.globl _weakling
_weakling:
  movl $2, %eax
  retq
"#;

fn i32_at(b: &[u8], at: u64) -> i64 {
    i32::from_le_bytes(b[at as usize..at as usize + 4].try_into().unwrap()) as i64
}
fn u64_at(b: &[u8], at: u64) -> u64 {
    u64::from_le_bytes(b[at as usize..at as usize + 8].try_into().unwrap())
}

fn build() -> (Image, kext_bundle::link::LinkOutput) {
    let out = link_objects(
        vec![
            kmod_object(),
            compile("caller.s", CALLER),
            compile("callee.s", CALLEE),
            compile("strong.s", STRONG),
        ],
        LIBKERN,
    )
    .expect("link");
    (Image::parse(&out.image).unwrap(), out)
}

#[test]
fn every_relocation_form_lands_where_it_should() {
    let (img, out) = build();
    let mem = img.memory();
    let addr = |n: &str| {
        img.symbol(n)
            .unwrap_or_else(|| panic!("{n} missing"))
            .n_value
    };
    let (caller, callee, table, flag, word) = (
        addr("_caller"),
        addr("_callee"),
        addr("_table"),
        addr("_flag"),
        addr("_word"),
    );
    // The strong definition of _weakling wins over the weak one.
    let strong = img
        .symbols
        .iter()
        .filter(|s| s.name == "_weakling" && s.is_defined())
        .map(|s| s.n_value)
        .collect::<Vec<_>>();
    assert_eq!(strong.len(), 1, "one _weakling survives");
    assert_eq!(
        &mem[strong[0] as usize..strong[0] as usize + 5],
        &[0xb8, 2, 0, 0, 0],
        "the strong one"
    );

    let op = |at: u64, bytes: &[u8]| {
        assert_eq!(
            &mem[(caller + at) as usize..(caller + at) as usize + bytes.len()],
            bytes,
            "opcode at caller+{at}"
        )
    };
    // call _callee (BRANCH within the kext)
    op(0, &[0xe8]);
    assert_eq!(caller + 5 + i32_at(&mem, caller + 1) as u64, callee);
    // leaq _table(%rip) (SIGNED)
    op(5, &[0x48, 0x8d, 0x05]);
    assert_eq!(
        (caller + 12).wrapping_add(i32_at(&mem, caller + 8) as u64),
        table
    );
    // movb $1, _flag+3(%rip): the displacement counts from the end of the 1-byte immediate
    op(12, &[0xc6, 0x05]);
    assert_eq!(
        (caller + 19).wrapping_add(i32_at(&mem, caller + 14) as u64),
        flag + 3
    );
    // movl $7, _word+4(%rip): 4-byte immediate
    op(19, &[0xc7, 0x05]);
    assert_eq!(
        (caller + 29).wrapping_add(i32_at(&mem, caller + 21) as u64),
        word + 4
    );
    // GOT_LOAD of an import: a __got slot with an external UNSIGNED relocation, holding 0
    op(29, &[0x48, 0x8b, 0x05]);
    let slot1 = (caller + 36).wrapping_add(i32_at(&mem, caller + 32) as u64);
    let got = img
        .sections
        .iter()
        .find(|s| s.sectname == "__got")
        .expect("__got");
    assert!(got.contains(slot1) && got.segname == "__DATA");
    assert_eq!(u64_at(&mem, slot1), 0);
    let ext = |a: u64| {
        img.extern_relocs
            .iter()
            .find(|r| r.address as u64 == a)
            .map(|r| {
                (
                    img.symbols[r.symbolnum as usize].name.clone(),
                    r.kind,
                    r.pcrel,
                    r.length,
                )
            })
    };
    assert_eq!(ext(slot1), Some(("___stack_chk_guard".into(), 0, false, 3)));
    // GOT_LOAD of a kext symbol: the slot holds its unslid address, with a local relocation
    op(36, &[0x48, 0x8b, 0x05]);
    let slot2 = (caller + 43).wrapping_add(i32_at(&mem, caller + 39) as u64);
    assert!(got.contains(slot2) && slot2 != slot1);
    assert_eq!(u64_at(&mem, slot2), callee);
    let local = |a: u64| {
        img.local_relocs
            .iter()
            .find(|r| r.address as u64 == a)
            .map(|r| img.section(r.symbolnum).unwrap().sectname.clone())
    };
    assert_eq!(local(slot2).as_deref(), Some("__text"));
    // call _printf: extern BRANCH, rel32 left 0
    op(43, &[0xe8]);
    assert_eq!(ext(caller + 44), Some(("_printf".into(), 2, true, 2)));
    assert_eq!(i32_at(&mem, caller + 44), 0);
    // leaq Lstr(%rip): non-extern SIGNED into __cstring
    op(48, &[0x48, 0x8d, 0x3d]);
    let s = (caller + 55).wrapping_add(i32_at(&mem, caller + 51) as u64);
    assert_eq!(&mem[s as usize..s as usize + 6], b"hello\0");
    assert_eq!(img.section_at(s).unwrap().1.sectname, "__cstring");
    // call _weakling -> the strong definition
    op(55, &[0xe8]);
    assert_eq!(caller + 60 + i32_at(&mem, caller + 56) as u64, strong[0]);
    // pointers: local relocations for kext targets, external UNSIGNED for the import
    let ptrs = addr("_ptrs");
    assert_eq!(u64_at(&mem, ptrs), callee);
    assert_eq!(u64_at(&mem, ptrs + 8), callee + 8);
    assert_eq!(u64_at(&mem, ptrs + 16), 0);
    assert_eq!(u64_at(&mem, ptrs + 24), s + 1);
    assert_eq!(local(ptrs).as_deref(), Some("__text"));
    assert_eq!(local(ptrs + 8).as_deref(), Some("__text"));
    assert_eq!(ext(ptrs + 16), Some(("_printf".into(), 0, false, 3)));
    assert_eq!(local(ptrs + 24).as_deref(), Some("__cstring"));
    // SUBTRACTOR pairs are resolved, with no relocation left
    assert_eq!(
        u64_at(&mem, addr("_diff")),
        caller.wrapping_sub(ptrs).wrapping_add(5)
    );
    assert_eq!(i32_at(&mem, addr("_diff32")), s as i64 - caller as i64);
    assert!(local(addr("_diff")).is_none() && ext(addr("_diff")).is_none());
    // kmod_info.start/stop
    let k = verify::check_kmod_info(&img, IDENTIFIER, VERSION).unwrap();
    assert_eq!(
        (k.start_symbol.as_str(), k.stop_symbol.as_str()),
        ("_test_start", "_test_stop")
    );
    assert!(out.imports.contains_key("_printf") && out.imports.contains_key("___stack_chk_guard"));
}

#[test]
fn layout_symbols_and_header_follow_the_spec() {
    let (img, _) = build();
    assert!(
        verify::structural(&img).is_empty(),
        "{:?}",
        verify::structural(&img)
    );
    assert_eq!(img.filetype, macho::MH_KEXT_BUNDLE);
    assert_eq!(img.commands.len(), 8);
    let names: Vec<String> = img
        .sections
        .iter()
        .map(|s| format!("{},{}", s.segname, s.sectname))
        .collect();
    assert_eq!(
        names.first().map(String::as_str),
        Some("__TEXT,__text"),
        "{names:?}"
    );
    let data: Vec<&String> = names.iter().filter(|n| n.starts_with("__DATA")).collect();
    assert_eq!(
        data.first().map(|s| s.as_str()),
        Some("__DATA,__got"),
        "{names:?}"
    );
    assert_eq!(
        data.last().map(|s| s.as_str()),
        Some("__DATA,__bss"),
        "{names:?}"
    );
    let bss = img.sections.iter().find(|s| s.sectname == "__bss").unwrap();
    assert!(bss.zerofill() && bss.offset == 0);
    let zero = img.symbol("_zero").unwrap();
    assert!(bss.contains(zero.n_value));
    // only _kmod_info is exported; the rest is local; imports are undefined externals
    let exported: Vec<&str> = img
        .symbols
        .iter()
        .filter(|s| s.is_ext() && s.is_defined())
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(exported, ["_kmod_info"]);
    assert!(img.symbol("_caller").is_some_and(|s| !s.is_ext()));
    assert_eq!(verify::imports(&img), ["___stack_chk_guard", "_printf"]);
    assert!(!img
        .symbols
        .iter()
        .any(|s| s.name.starts_with('L') || s.name.starts_with('l')));
    assert_eq!(img.min_version, Some(0x000A_0D00));
    assert_eq!(img.source_version, Some((1 << 40) | (2 << 30) | (3 << 20)));
    // header padding for a signer
    let first = img.sections.iter().map(|s| s.addr).min().unwrap();
    assert!(first >= 32 + img.sizeofcmds as u64 + 256);
}

#[test]
fn uuid_is_deterministic_and_follows_the_content() {
    let (a, _) = build();
    let (b, _) = build();
    assert_eq!(a.data, b.data, "two links of the same inputs are identical");
    let uuid = a.uuid.unwrap();
    assert_ne!(uuid, [0; 16]);
    let changed = link_objects(
        vec![
            kmod_object(),
            compile("caller.s", CALLER),
            compile("callee.s", &CALLEE.replace(".quad 1, 2", ".quad 1, 3")),
            compile("strong.s", STRONG),
        ],
        LIBKERN,
    )
    .unwrap();
    assert_ne!(Image::parse(&changed.image).unwrap().uuid.unwrap(), uuid);
}

#[test]
fn simulator_loads_the_kext_and_checks_every_site() {
    let (img, _) = build();
    let kernel = SyntheticKernel::from_table(&kpi(), &plist(LIBKERN).declared());
    for seed in [1u64, 7, 12345] {
        let load = verify::load_address(seed);
        assert_eq!(load % 4096, 0);
        let r = verify::simulate(&img, &kernel, load, IDENTIFIER, VERSION).expect("simulated load");
        assert_eq!(
            r.start,
            load + verify::check_kmod_info(&img, IDENTIFIER, VERSION)
                .unwrap()
                .start
        );
        assert_eq!(r.start_symbol, "_test_start");
        assert_eq!(r.extern_applied, img.extern_relocs.len());
    }
}

#[test]
fn verifier_catches_broken_images() {
    let (img, out) = build();
    let kernel = SyntheticKernel::from_table(&kpi(), &plist(LIBKERN).declared());
    let load = verify::load_address(3);
    // wrong file type
    let mut bytes = out.image.clone();
    bytes[12] = macho::MH_BUNDLE as u8;
    let e = verify::structural(&Image::parse(&bytes).unwrap());
    assert!(
        e.iter().any(|l| l.contains("expected MH_KEXT_BUNDLE")),
        "{e:?}"
    );
    // a local relocation naming the wrong section
    let mut bad = img.clone();
    let i = bad
        .local_relocs
        .iter()
        .position(|r| bad.section(r.symbolnum).unwrap().sectname == "__text")
        .unwrap();
    bad.local_relocs[i].symbolnum = bad
        .sections
        .iter()
        .position(|s| s.sectname == "__bss")
        .unwrap() as u32
        + 1;
    let e = verify::simulate(&bad, &kernel, load, IDENTIFIER, VERSION)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("outside the section its relocation names"),
        "{e}"
    );
    // an external BRANCH moved off its call instruction
    let mut bad = img.clone();
    let i = bad.extern_relocs.iter().position(|r| r.kind == 2).unwrap();
    bad.extern_relocs[i].address += 1;
    let a = bad.extern_relocs[i].address as usize; // __TEXT: file offset = address
    bad.data[a..a + 4].fill(0);
    let e = verify::simulate(&bad, &kernel, load, IDENTIFIER, VERSION)
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not the operand of a call or jump"), "{e}");
    // an import the kernel lacks
    let small = SyntheticKernel::from_table(
        &kext_bundle::kpi::KpiTable::parse("t", "_printf com.apple.kpi.libkern\n").unwrap(),
        &plist(LIBKERN).declared(),
    );
    let e = verify::simulate(&img, &small, load, IDENTIFIER, VERSION)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "unresolved symbols: ___stack_chk_guard");
    // a second export
    let mut bad = img.clone();
    let n = bad
        .symbols
        .iter()
        .position(|s| s.name == "_caller")
        .unwrap();
    bad.symbols[n].n_type |= macho::N_EXT;
    let e = verify::structural(&bad);
    assert!(e.iter().any(|l| l.contains("_caller")), "{e:?}");
}

#[test]
fn plist_checks() {
    let (img, _) = build();
    let k = verify::check_kmod_info(&img, IDENTIFIER, VERSION).unwrap();
    let used = ["com.apple.kpi.libkern".to_string()].into_iter().collect();
    verify::check_plist(&plist(LIBKERN), Some(&k), Some(&used), true).unwrap();
    let e = verify::check_plist(
        &plist(&["com.apple.kpi.libkern", "com.apple.kpi.mach"]),
        Some(&k),
        Some(&used),
        true,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "OSBundleLibraries declares com.apple.kpi.mach, but the kext imports nothing from it"
    );
    let e = verify::check_plist(
        &plist(&["com.apple.kpi.libkern", "com.apple.kpi.private"]),
        Some(&k),
        None,
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("declares com.apple.kpi.private"), "{e}");
    assert!(
        e.contains("Contents/MacOS/tunnel (CFBundleExecutable) missing"),
        "{e}"
    );
    // the project's template parses and passes the key rules
    let repo = kext_bundle::kpi::PlistInfo::load(&repo_root().join("Info.plist")).unwrap();
    verify::check_plist(&repo, None, None, true).unwrap();
}

/// Tests that read Apple's export lists (test group `apple-exports`, see
/// `common::exports_dir`).
mod needs_apple_exports {
    use super::*;

    #[test]
    fn simulator_with_only_bsd_reports_the_other_imports() {
        let dir = exports_dir();
        let obj = compile(
            "imports.c",
            "extern int printf(const char *, ...); extern void *memcpy(void *, const void *, unsigned long);
             extern void lck_mtx_lock(void *); extern int msleep(void *, void *, int, const char *, void *);
             int f(void *m, char *d, const char *s) { memcpy(d, s, 4); lck_mtx_lock(m); printf(\"x\"); return msleep(m, m, 0, \"w\", 0); }",
        );
        let libs = ["com.apple.kpi.libkern", "com.apple.kpi.bsd"];
        let out = link_objects(vec![kmod_object(), obj], &libs).unwrap();
        let img = Image::parse(&out.image).unwrap();
        let bsd = load_exports(&dir, "com.apple.kpi.bsd").unwrap();
        let e = verify::simulate(
            &img,
            &SyntheticKernel::from_sets([&bsd]),
            verify::load_address(9),
            IDENTIFIER,
            VERSION,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "unresolved symbols: _lck_mtx_lock, _memcpy, _printf");
        let libkern = load_exports(&dir, "com.apple.kpi.libkern").unwrap();
        verify::simulate(
            &img,
            &SyntheticKernel::from_sets([&bsd, &libkern]),
            verify::load_address(9),
            IDENTIFIER,
            VERSION,
        )
        .unwrap();
    }
}

#[test]
fn archive_members_are_pulled_in_transitively() {
    // kmod.o (root) -> printf only; user.o references helper() in a second member, which
    // references a third; an unrelated member stays out.
    let kmod = compile_file("kmod.c", &kmod_source(), &[]);
    let a = compile_file(
        "a.c",
        "extern int b(int); int helper(int x) { return b(x) + 1; }",
        &[],
    );
    let b = compile_file("b.c", "int b(int x) { return x * 3; }", &[]);
    let c = compile_file("c.c", "int unrelated(int x) { return x - 3; }", &[]);
    let lib = archive("libz.a", &[kmod, a, b, c]);
    let user = compile(
        "user.c",
        "extern int helper(int); int go(void) { return helper(2); }",
    );
    let out = link(vec![Input::Object(user), lib], &opts(LIBKERN)).unwrap();
    let mut names = out.objects.clone();
    names.sort();
    assert_eq!(
        names,
        ["libz.a(a.o)", "libz.a(b.o)", "libz.a(kmod.o)", "user.o"]
    );
}

#[test]
fn undefined_symbols_carry_ld64s_dynamic_lookup_desc() {
    let (img, out) = build();
    let undefs: Vec<_> = img.symbols.iter().filter(|s| s.is_undefined()).collect();
    assert_eq!(undefs.len(), out.imports.len());
    for s in &undefs {
        assert_eq!(s.n_desc, 0xFE00, "{}", s.name);
        assert!(!s.is_weak_ref(), "{}", s.name);
    }
    // the structural check refuses anything else
    let mut bad = img.clone();
    let n = bad.symbols.iter().position(|s| s.is_undefined()).unwrap();
    bad.symbols[n].n_desc = 0;
    let e = verify::structural(&bad);
    assert!(
        e.iter().any(|l| l.contains("desc 0xfe00 (dynamic lookup")),
        "{e:?}"
    );
}
