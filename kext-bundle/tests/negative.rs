//! Negative linker tests (spec section 4 / 10.4): each rule makes the link fail with a message
//! naming the symbol and the object it came from.

mod common;
use common::*;
use kext_bundle::input::Input;
use kext_bundle::link::link;

#[test]
fn common_symbol_is_refused() {
    let obj = compile_with(
        "common.c",
        "int counter; int get(void) { return counter; }",
        &["-fcommon"],
    );
    let e = link_error(obj, LIBKERN);
    assert_has_line(
        &e,
        "common symbol _counter (common.o): kxld refuses common symbols; compile with -fno-common",
    );
}

#[test]
fn unknown_import_is_refused() {
    let obj = compile(
        "unknown.c",
        "extern void no_such_kpi(int); void f(void) { no_such_kpi(1); }",
    );
    let e = link_error(obj, LIBKERN);
    assert_has_line(
        &e,
        "undefined symbol _no_such_kpi (unknown.o): not in the project's KPI table test-kpi",
    );
}

#[test]
fn private_kpi_gets_a_hint() {
    let obj = compile("private.c", "extern int ifnet_enqueue(void *, void *); int f(void *i, void *m) { return ifnet_enqueue(i, m); }");
    let e = link_error(obj, LIBKERN);
    assert_has_line(
        &e,
        "undefined symbol _ifnet_enqueue (private.o): not in the project's KPI table test-kpi; it is private KPI (Private.exports); use ifnet_allocate and a queue owned by the driver",
    );
    // A symbol the table (wrongly) assigns to the private bundle is refused as well.
    let obj = compile("private2.c", "extern int ifnet_allocate_extended(void *); int f(void *i) { return ifnet_allocate_extended(i); }");
    let e = link_error(obj, LIBKERN);
    assert_has_line(
        &e,
        "undefined symbol _ifnet_allocate_extended (private2.o): exported only by com.apple.kpi.private, which third-party kexts cannot link against",
    );
}

#[test]
fn import_from_undeclared_bundle_names_the_bundle() {
    let obj = compile(
        "assert.c",
        "extern void lck_mtx_assert(void *, unsigned); void f(void *m) { lck_mtx_assert(m, 1); }",
    );
    let e = link_error(obj, LIBKERN);
    assert_has_line(
        &e,
        "undefined symbol _lck_mtx_assert (assert.o): exported by com.apple.kpi.unsupported, which Info.plist OSBundleLibraries does not declare; add com.apple.kpi.unsupported",
    );
    // Declared, the same object links.
    let ok = link_objects(
        vec![kmod_object(), compile("assert.c", "extern void lck_mtx_assert(void *, unsigned); void f(void *m) { lck_mtx_assert(m, 1); }")],
        &["com.apple.kpi.libkern", "com.apple.kpi.unsupported"],
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn tls_variable_is_refused() {
    let obj = compile(
        "tls.c",
        "__thread int tls_counter; int bump(void) { return ++tls_counter; }",
    );
    let e = link_error(obj, LIBKERN);
    assert_has_line(
        &e,
        "thread-local variable _tls_counter (tls.o): the kernel has no TLS",
    );
}

#[test]
fn static_constructor_is_refused() {
    let obj = compile(
        "ctor.c",
        "extern int printf(const char *, ...); static int x; __attribute__((constructor)) static void init(void) { x = printf(\"\"); } int get(void) { return x; }",
    );
    let e = link_error(obj, LIBKERN);
    assert_has_line(
        &e,
        "static constructor _init (ctor.o, __DATA,__mod_init_func): a kext has no static constructors or destructors",
    );
}

#[test]
fn absolute_32bit_pointer_is_refused() {
    let obj = compile(
        "abs32.s",
        ".data\n.globl _target\n_target: .long 0\n_ptr: .long _target\n",
    );
    let e = link_error(obj, LIBKERN);
    assert_has_line(
        &e,
        "32-bit absolute pointer to _target (abs32.o at __DATA,__data+0x4): kexts load above 4 GiB, only 64-bit pointers can be relocated",
    );
}

#[test]
fn weak_import_is_refused() {
    let obj = compile(
        "weak.c",
        "extern int msleep(void *, void *, int, const char *, void *) __attribute__((weak_import)); int f(void) { return msleep ? msleep(0, 0, 0, \"\", 0) : 1; }",
    );
    let e = link_error(obj, &["com.apple.kpi.libkern", "com.apple.kpi.bsd"]);
    assert_has_line(
        &e,
        "weak reference to _msleep (weak.o): kxld refuses weak imports",
    );
}

#[test]
fn missing_kmod_info_is_refused() {
    let obj = compile("nokmod.c", "int f(int x) { return x + 1; }");
    let e = link_objects(vec![obj], LIBKERN).unwrap_err();
    assert_has_line(
        &e,
        "missing _kmod_info: no input defines it (the kext is missing its kmod_info structure)",
    );
}

#[test]
fn duplicate_strong_definitions_are_refused() {
    let a = compile("dup_a.c", "int twice(void) { return 1; }");
    let b = compile("dup_b.c", "int twice(void) { return 2; }");
    let e = link_objects(vec![kmod_object(), a, b], LIBKERN).unwrap_err();
    assert_has_line(
        &e,
        "duplicate symbol _twice: defined in dup_a.o and in dup_b.o",
    );
}

#[test]
fn defining_memcpy_is_refused() {
    let obj = compile("mem.c", "void *memcpy(void *d, const void *s, unsigned long n) { char *a = d; const char *b = s; while (n--) *a++ = *b++; return d; }");
    let e = link_error(obj, LIBKERN);
    assert_has_line(
        &e,
        "symbol _memcpy (mem.o): the kext defines a kernel export of the mem* family; is compiler-builtins-mem enabled?",
    );
}

#[test]
fn nonzero_addend_on_import_is_refused() {
    let obj = compile(
        "addend.s",
        ".text\n.globl _f\n_f:\n  callq _printf+4\n  ret\n",
    );
    let e = link_error(obj, LIBKERN);
    assert_has_line(
        &e,
        "call to kernel symbol _printf (addend.o at __TEXT,__text+0x1): non-zero addend 4 on an import",
    );
}

#[test]
fn rip_relative_data_reference_to_import_is_refused() {
    let obj = compile(
        "dataref.s",
        ".text\n.globl _f\n_f:\n  leaq _printf(%rip), %rax\n  ret\n",
    );
    let e = link_error(obj, LIBKERN);
    assert_has_line(
        &e,
        "SIGNED data reference to kernel symbol _printf (dataref.o at __TEXT,__text+0x3): only calls (BRANCH) and GOT loads may reach the kernel",
    );
}

#[test]
fn difference_with_import_is_refused() {
    // Assemblers refuse `.quad _here - _printf`, so the SUBTRACTOR's symbol is pointed at the
    // object's undefined `_printf` after parsing, as a foreign toolchain could emit it.
    let mut obj = compile("subimp.s", ".data\n.globl _here\n_here: .quad _there - _here\n.globl _there\n_there: .quad 0\n.text\n  callq _printf\n");
    let printf = obj
        .symbols
        .iter()
        .position(|s| s.name == "_printf")
        .unwrap() as u32;
    let data = obj
        .sections
        .iter_mut()
        .find(|s| s.sectname == "__data")
        .unwrap();
    let sub = data.relocs.iter_mut().find(|r| r.kind == 5).unwrap();
    sub.symbolnum = printf;
    let e = link_error(obj, LIBKERN);
    assert_has_line(
        &e,
        "difference with kernel symbol _printf (subimp.o at __DATA,__data+0x0): SUBTRACTOR with an import is unsupported",
    );
}

#[test]
fn unsupported_relocation_type_is_refused() {
    let mut obj = compile("badtype.s", ".data\n.globl _p\n_p: .quad _p\n");
    obj.sections
        .iter_mut()
        .find(|s| s.sectname == "__data")
        .unwrap()
        .relocs[0]
        .kind = 12;
    let e = link_error(obj, LIBKERN);
    assert_has_line(
        &e,
        "relocation type 12 to _p (badtype.o at __DATA,__data+0x0): unsupported relocation type",
    );
}

#[test]
fn internal_displacement_out_of_range_is_refused() {
    // 2.25 GiB of zerofill between the code and the variable it addresses.
    let obj = compile(
        "far.s",
        ".text\n.globl _f\n_f:\n  leaq _far(%rip), %rax\n  ret\n.zerofill __DATA,__bss,_big,0x90000000,4\n.zerofill __DATA,__bss,_far,8,3\n",
    );
    let e = link_error(obj, LIBKERN);
    let line = e
        .lines()
        .find(|l| {
            l.starts_with(
                "SIGNED reference to _far (far.o at __TEXT,__text+0x3): 32-bit displacement",
            )
        })
        .unwrap_or_else(|| panic!("no range error in:\n{e}"));
    assert!(line.ends_with("out of range"), "{line}");
}

#[test]
fn kmod_info_must_match_the_plist() {
    let src = kmod_source().replace(VERSION, "9.9.9");
    let obj = compile("kmodv.c", &src);
    let e = link_objects(vec![obj], LIBKERN).unwrap_err();
    assert_has_line(
        &e,
        "_kmod_info.version is \"9.9.9\", Info.plist CFBundleVersion is \"1.2.3\"",
    );
    let src = kmod_source().replace("0, 1, -1U", "0, 2, -1U");
    let e = link_objects(vec![compile("kmodi.c", &src)], LIBKERN).unwrap_err();
    assert_has_line(
        &e,
        "_kmod_info.info_version is 2, expected 1 (KMOD_INFO_VERSION)",
    );
}

#[test]
fn kmod_info_start_must_be_code() {
    let src = kmod_source().replace("test_start, test_stop }", "(void *)&kmod_info, test_stop }");
    let e = link_objects(vec![compile("kmods.c", &src)], LIBKERN).unwrap_err();
    assert!(
        e.contains("_kmod_info.start = ") && e.contains("does not point into __TEXT code"),
        "{e}"
    );
}

#[test]
fn unneeded_archive_member_is_not_linked() {
    // The member that imports a forbidden symbol is never needed, so the link succeeds;
    // once something references it, the link fails naming the member.
    let kmod = compile_file("kmod.c", &kmod_source(), &[]);
    let good = compile_file("good.c", "int helper(int x) { return x * 2; }", &[]);
    let bad = compile_file(
        "bad.c",
        "extern void forbidden(void); void unused(void) { forbidden(); }",
        &[],
    );
    let lib = || archive("libt.a", &[kmod.clone(), good.clone(), bad.clone()]);
    let out = link(vec![lib()], &opts(LIBKERN)).expect("link from the archive alone");
    assert_eq!(
        out.objects.len(),
        1,
        "only the kmod member: {:?}",
        out.objects
    );
    assert!(out.objects[0].ends_with("(kmod.o)"), "{:?}", out.objects);

    let user = compile("user.c", "extern void unused(void); extern int helper(int); int go(void) { unused(); return helper(2); }");
    let e = link(vec![Input::Object(user), lib()], &opts(LIBKERN))
        .unwrap_err()
        .to_string();
    assert_has_line(
        &e,
        "undefined symbol _forbidden (libt.a(bad.o)): not in the project's KPI table test-kpi",
    );
}
