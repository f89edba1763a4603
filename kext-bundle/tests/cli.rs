//! The `kext-bundle` command end to end: bundle, verify, and a failing link.

mod common;
use common::*;
use std::process::Command;

fn exe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kext-bundle"))
}

/// Writes a test Info.plist, KPI table and objects; returns (dir, inputs).
fn setup(extra_c: &str) -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
    let dir = scratch_dir();
    plist::Value::Dictionary(plist(&["com.apple.kpi.libkern", "com.apple.kpi.bsd"]).dict)
        .to_file_xml(dir.join("Info.plist"))
        .unwrap();
    // the test table without its deliberately private entry, so that it passes the table check
    let table: String = TEST_KPI
        .lines()
        .filter(|l| !l.contains("kpi.private"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("kpi.txt"), table).unwrap();
    let kmod = compile_file("kmod.c", &kmod_source(), &[]);
    let user = compile_file("user.c", extra_c, &[]);
    (dir, vec![kmod, user])
}

/// Bundles a kext that imports `msleep` and `memcpy`; returns (scratch dir, bundle).
fn bundled() -> (std::path::PathBuf, std::path::PathBuf) {
    let (dir, inputs) = setup(
        "extern int msleep(void *, void *, int, const char *, void *); extern void *memcpy(void *, const void *, unsigned long);
         int wait(void *c, char *d) { char buf[32]; memcpy(buf, d, 32); return msleep(c, 0, 0, buf, 0); }",
    );
    let kext = dir.join("test.kext");
    let out = exe()
        .args(["bundle", "--out"])
        .arg(&kext)
        .arg("--plist")
        .arg(dir.join("Info.plist"))
        .arg("--kpi")
        .arg(dir.join("kpi.txt"))
        .args(&inputs)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("linked 2 objects"), "{stderr}");
    assert!(kext.join("Contents/MacOS/tunnel").is_file());
    let written = kext_bundle::kpi::PlistInfo::load(&kext.join("Contents/Info.plist")).unwrap();
    assert_eq!(written.identifier, IDENTIFIER);
    (dir, kext)
}

/// `kext-bundle verify` with the test KPI table, and Apple's export lists if `exports` is
/// given: it succeeds with no FAIL line; returns its output.
fn verify_passes(
    dir: &std::path::Path,
    kext: &std::path::Path,
    exports: Option<&std::path::Path>,
) -> String {
    let mut verify = exe();
    verify
        .arg("verify")
        .arg(kext)
        .arg("--kpi")
        .arg(dir.join("kpi.txt"))
        .args(["--seed", "5"]);
    if let Some(d) = exports {
        verify.arg("--exports").arg(d);
    }
    let out = verify.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.lines().any(|l| l.starts_with("FAIL")), "{stdout}");
    let sim = stdout
        .lines()
        .find(|l| l.starts_with("PASS relocation simulator"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        sim.contains("start=_test_start") && sim.contains("(seed 5)"),
        "{sim}"
    );
    stdout
}

/// Without Apple's export lists: the synthetic kernel comes from the project's KPI table, and
/// the checks against Apple's lists are reported as not run.
#[test]
fn bundle_then_verify() {
    let (dir, kext) = bundled();
    let stdout = verify_passes(&dir, &kext, None);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("PASS relocation simulator")
                && l.contains("from the project's KPI table")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("SKIP imports and KPI table vs Apple's export lists")),
        "{stdout}"
    );
}

/// Tests that read Apple's export lists (test group `apple-exports`, see
/// `common::exports_dir`).
mod needs_apple_exports {
    use super::*;

    /// With Apple's export lists: the imports and the KPI table are checked against them, and
    /// the synthetic kernel is built from them.
    #[test]
    fn bundle_then_verify_against_apples_export_lists() {
        let (dir, kext) = bundled();
        let stdout = verify_passes(&dir, &kext, Some(&exports_dir()));
        for check in [
            "PASS imports in Apple's x86_64 export lists of their bundles",
            "PASS KPI table against Apple's export lists",
        ] {
            assert!(
                stdout.lines().any(|l| l.starts_with(check)),
                "{check}:\n{stdout}"
            );
        }
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("PASS relocation simulator")
                    && l.contains("from Apple's export lists")),
            "{stdout}"
        );
    }
}

#[test]
fn failing_link_exits_nonzero_and_names_the_symbol() {
    let (dir, inputs) = setup(
        "extern int pgsignal(void *, int, int); int f(void *p) { return pgsignal(p, 1, 0); }",
    );
    let out = exe()
        .args(["link", "-o"])
        .arg(dir.join("out"))
        .arg("--plist")
        .arg(dir.join("Info.plist"))
        .arg("--kpi")
        .arg(dir.join("kpi.txt"))
        .args(&inputs)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("undefined symbol _pgsignal (user.o): not in the project's KPI table"),
        "{stderr}"
    );
    assert!(!dir.join("out").exists());
}

#[test]
fn verify_fails_on_a_plist_that_does_not_match() {
    let (dir, inputs) = setup("int nothing(void) { return 0; }");
    let kext = dir.join("t.kext");
    let ok = exe()
        .args(["bundle", "--out"])
        .arg(&kext)
        .arg("--plist")
        .arg(dir.join("Info.plist"))
        .arg("--kpi")
        .arg(dir.join("kpi.txt"))
        .args(&inputs)
        .status()
        .unwrap();
    assert!(ok.success());
    // The kext imports only printf (libkern) but the plist also declares bsd.
    let out = exe()
        .arg("verify")
        .arg(&kext)
        .arg("--kpi")
        .arg(dir.join("kpi.txt"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains(
            "OSBundleLibraries declares com.apple.kpi.bsd, but the kext imports nothing from it"
        ),
        "{stdout}"
    );
}
