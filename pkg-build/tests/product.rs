//! The whole product archive, read back with apple-xar (the reader rcodesign uses) and
//! apple-bom: names and order, the Bom against the payload tree, the refusals of bad inputs,
//! and byte-identical output for the same input. The independent readers (bsdtar, lsbom.py,
//! duktape, openssl) take the package apart in tests/suites/package.sh.

use apple_xar::reader::XarReader;
use pkg_build::product::{build, Inputs};
use std::path::{Path, PathBuf};

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("pkg-build-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(path: &Path, data: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A kext with a thin x86_64 kext header, hooks and support files.
fn inputs_in(d: &Path) {
    let plist = r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>CFBundleIdentifier</key><string>org.example.k</string>
<key>CFBundleVersion</key><string>2.0.1</string>
<key>CFBundleExecutable</key><string>k</string>
</dict></plist>"#;
    write(
        &d.join("k.kext/Contents/Info.plist"),
        plist.as_bytes(),
        0o664,
    );
    let mut exe = 0xfeed_facf_u32.to_le_bytes().to_vec();
    exe.extend(0x0100_0007_u32.to_le_bytes());
    exe.extend(3u32.to_le_bytes());
    exe.extend(0xbu32.to_le_bytes());
    write(&d.join("k.kext/Contents/MacOS/k"), &exe, 0o775);
    write(
        &d.join("scripts/preinstall"),
        b"#!/bin/bash\nexit 0\n",
        0o755,
    );
    write(
        &d.join("scripts/postinstall"),
        b"#!/bin/bash\nexit 0\n",
        0o700,
    );
    write(&d.join("scripts/lib/common.sh"), b"# sourced\n", 0o600);
    write(&d.join("support/uninstall.sh"), b"#!/bin/bash\n", 0o755);
}

fn build_in(d: &Path, mtime: u32) -> pkg_build::Result<pkg_build::product::Package> {
    let (kext, scripts, support) = (d.join("k.kext"), d.join("scripts"), d.join("support"));
    build(&Inputs {
        kext: &kext,
        support: Some(&support),
        scripts: &scripts,
        conclusion: None,
        min_macos: "10.13",
        mtime,
    })
}

#[test]
fn the_archive_holds_the_distribution_and_one_component_in_id_order() {
    let d = Dir::new("layout");
    inputs_in(&d.0);
    let pkg = build_in(&d.0, 1_700_000_000).unwrap();
    assert_eq!(pkg.package_id, "org.example.k.pkg");
    let mut r = XarReader::new(std::io::Cursor::new(pkg.bytes.clone())).unwrap();
    assert!(r.verify_table_of_contents_checksum().unwrap());
    let names: Vec<String> = r.files().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "Distribution",
            "k.pkg",
            "k.pkg/Bom",
            "k.pkg/Payload",
            "k.pkg/Scripts",
            "k.pkg/PackageInfo"
        ]
    );
    let info = String::from_utf8(
        r.get_file_data_from_path("k.pkg/PackageInfo")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert!(info.contains(r#"identifier="org.example.k.pkg" version="2.0.1" install-location="/""#));
    assert!(info.contains(r#"<payload numberOfFiles="11" "#), "{info}");
    let bom = r.get_file_data_from_path("k.pkg/Bom").unwrap().unwrap();
    let parsed = apple_bom::ParsedBom::parse(&bom).unwrap();
    let mut paths: Vec<(String, u16)> = parsed
        .paths()
        .unwrap()
        .iter()
        .map(|p| (p.path().to_string(), p.file_mode()))
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            (".".to_string(), 0o40755),
            ("./Library".to_string(), 0o40755),
            ("./Library/Application Support".to_string(), 0o40755),
            ("./Library/Application Support/k.kext".to_string(), 0o40755),
            (
                "./Library/Application Support/k.kext/uninstall.sh".to_string(),
                0o100755
            ),
            ("./Library/Extensions".to_string(), 0o40755),
            ("./Library/Extensions/k.kext".to_string(), 0o40755),
            ("./Library/Extensions/k.kext/Contents".to_string(), 0o40755),
            (
                "./Library/Extensions/k.kext/Contents/Info.plist".to_string(),
                0o100644
            ),
            (
                "./Library/Extensions/k.kext/Contents/MacOS".to_string(),
                0o40755
            ),
            (
                "./Library/Extensions/k.kext/Contents/MacOS/k".to_string(),
                0o100644
            ),
        ][..]
    );
    // The scripts keep their owner-execute bit as 0755, everything else is 0644.
    let perm = |p: &str| pkg.scripts.get(p).unwrap().perm;
    assert_eq!((perm("postinstall"), perm("lib/common.sh")), (0o755, 0o644));
}

#[test]
fn the_same_input_gives_the_same_bytes_and_the_time_is_the_only_clock() {
    let d = Dir::new("repro");
    inputs_in(&d.0);
    let a = build_in(&d.0, 1_700_000_000).unwrap().bytes;
    let b = build_in(&d.0, 1_700_000_000).unwrap().bytes;
    assert_eq!(a, b);
    assert_ne!(a, build_in(&d.0, 1_700_000_001).unwrap().bytes);
}

#[test]
fn a_hook_installer_cannot_execute_is_refused() {
    let d = Dir::new("hook");
    inputs_in(&d.0);
    write(&d.0.join("scripts/postinstall"), b"#!/bin/bash\n", 0o644);
    let e = build_in(&d.0, 0).err().expect("refused");
    assert!(
        e.0.contains("runs postinstall only if it is executable"),
        "{e}"
    );
}

#[test]
fn a_symbolic_link_in_the_bundle_is_refused() {
    let d = Dir::new("link");
    inputs_in(&d.0);
    std::os::unix::fs::symlink("Info.plist", d.0.join("k.kext/Contents/link")).unwrap();
    let e = build_in(&d.0, 0).err().expect("refused");
    assert!(e.0.contains("links and devices are not packaged"), "{e}");
}
