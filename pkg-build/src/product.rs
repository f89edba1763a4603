//! The product archive: one component package that installs the kext and its support files,
//! wrapped with the Distribution, as `pkgbuild` plus `productbuild` would make it.
//!
//! ```text
//! Distribution                       checks and choices (crate::distribution)
//! Resources/en.lproj/<conclusion>    the last page Installer shows (optional)
//! <kext name>.pkg/
//!     Bom                            every payload path with mode, owner, size, cksum
//!     Payload                        gzipped odc cpio, paths relative to /
//!     Scripts                        gzipped odc cpio: preinstall, postinstall and what they run
//!     PackageInfo                    identifier, version, install location, scripts
//! ```
//!
//! The payload, installed at `/`:
//!
//! ```text
//! .                                          0755 root:wheel  (/, as macOS has it)
//! Library                                    0755 root:wheel
//! Library/Application Support                0755 root:admin  (as macOS has it)
//! Library/Application Support/<kext name>/   0755 root:wheel; files 0755 if executable, else 0644
//! Library/Extensions                         0755 root:wheel
//! Library/Extensions/<kext name>/            0755 root:wheel; every file 0644 root:wheel
//! ```
//!
//! The system directories are listed with the owner and mode macOS gives them, so that
//! installing never changes them.

use crate::distribution::Distribution;
use crate::kext::{self, KextInfo};
use crate::tree::{dir, FileModes, Tree, ADMIN, ROOT, WHEEL};
use crate::xar::{self, Encoding, Node};
use crate::{bom, err, xml_escape, Result};
use std::path::Path;

/// What the package is made of.
pub struct Inputs<'a> {
    pub kext: &'a Path,
    /// Installed as `/Library/Application Support/<kext name>/`.
    pub support: Option<&'a Path>,
    /// The component's scripts: `preinstall`, `postinstall` and the files they use.
    pub scripts: &'a Path,
    /// An HTML page shown when the installation is over.
    pub conclusion: Option<&'a Path>,
    pub min_macos: &'a str,
    /// Every timestamp in the package (seconds since 1970, UTC).
    pub mtime: u32,
}

pub struct Package {
    pub kext: KextInfo,
    /// The component's identifier: the kext's `CFBundleIdentifier` + `.pkg`.
    pub package_id: String,
    pub payload: Tree,
    pub scripts: Tree,
    pub bytes: Vec<u8>,
}

/// The hooks Installer runs, if the scripts directory has them.
const HOOKS: [&str; 2] = ["preinstall", "postinstall"];

pub fn build(inputs: &Inputs<'_>) -> Result<Package> {
    let kext = kext::read(inputs.kext)?;
    let package_id = format!("{}.pkg", kext.identifier);
    let component = format!("{}.pkg", kext.name.trim_end_matches(".kext"));

    let mut payload = Tree::new(0o755, ROOT, WHEEL);
    payload.add("Library", dir(0o755, ROOT, WHEEL))?;
    if let Some(support) = inputs.support {
        payload.add("Library/Application Support", dir(0o755, ROOT, ADMIN))?;
        let dest = format!("Library/Application Support/{}", kext.name);
        payload.add_from_disk(&dest, support, FileModes::ExecBit)?;
    }
    payload.add("Library/Extensions", dir(0o755, ROOT, WHEEL))?;
    let dest = format!("Library/Extensions/{}", kext.name);
    payload.add_from_disk(&dest, inputs.kext, FileModes::Fixed0644)?;

    let mut scripts = Tree::new(0o755, ROOT, WHEEL);
    scripts.add_contents("", inputs.scripts, FileModes::ExecBit)?;
    let mut hooks = Vec::new();
    for hook in HOOKS {
        match scripts.get(hook) {
            None => {}
            Some(e) if e.perm & 0o100 != 0 => hooks.push(hook),
            Some(_) => {
                return Err(err!(
                    "{}: Installer runs {hook} only if it is executable",
                    inputs.scripts.join(hook).display()
                ))
            }
        }
    }

    let bom = bom::write(&payload, inputs.mtime);
    let payload_gz = crate::tree::gzip(&payload.cpio(inputs.mtime)?)?;
    let scripts_gz = crate::tree::gzip(&scripts.cpio(inputs.mtime)?)?;
    let install_kbytes = payload.install_kbytes();
    let package_info = package_info(&package_id, &kext.version, &payload, &hooks);

    let conclusion = match inputs.conclusion {
        Some(p) => {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| err!("{}: no file name", p.display()))?
                .to_string();
            let data = std::fs::read(p).map_err(|e| err!("{}: {e}", p.display()))?;
            Some((name, data))
        }
        None => None,
    };
    let distribution = Distribution {
        kext: &kext,
        package_id: &package_id,
        component: &component,
        min_macos: inputs.min_macos,
        install_kbytes,
        conclusion: conclusion.as_ref().map(|(n, _)| n.as_str()),
    }
    .xml();

    let mut nodes = vec![Node::File {
        name: "Distribution",
        data: distribution.as_bytes(),
        encoding: Encoding::Zlib,
    }];
    if let Some((name, data)) = &conclusion {
        nodes.push(Node::Dir {
            name: "Resources",
            children: vec![Node::Dir {
                name: "en.lproj",
                children: vec![Node::File {
                    name,
                    data,
                    encoding: Encoding::Zlib,
                }],
            }],
        });
    }
    nodes.push(Node::Dir {
        name: &component,
        children: vec![
            Node::File {
                name: "Bom",
                data: &bom,
                encoding: Encoding::Zlib,
            },
            Node::File {
                name: "Payload",
                data: &payload_gz,
                encoding: Encoding::Stored,
            },
            Node::File {
                name: "Scripts",
                data: &scripts_gz,
                encoding: Encoding::Stored,
            },
            Node::File {
                name: "PackageInfo",
                data: package_info.as_bytes(),
                encoding: Encoding::Zlib,
            },
        ],
    });
    let time = chrono::DateTime::from_timestamp(i64::from(inputs.mtime), 0)
        .ok_or_else(|| err!("{} is not a time", inputs.mtime))?
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let bytes = xar::write(&nodes, &time)?;
    Ok(Package {
        kext,
        package_id,
        payload,
        scripts,
        bytes,
    })
}

/// `PackageInfo`: installed at `/` by root, never relocated (Installer would otherwise look for
/// a bundle with the kext's identifier elsewhere on disk and update that one instead), with
/// the payload's size and the hooks to run.
fn package_info(id: &str, version: &str, payload: &Tree, hooks: &[&str]) -> String {
    let mut scripts = String::new();
    for hook in hooks {
        scripts.push_str(&format!("        <{hook} file=\"./{hook}\"/>\n"));
    }
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<pkg-info format-version="2" identifier="{id}" version="{version}" install-location="/" auth="root" relocatable="false" postinstall-action="none">
    <payload numberOfFiles="{files}" installKBytes="{kbytes}"/>
    <bundle-version/>
    <upgrade-bundle/>
    <update-bundle/>
    <atomic-update-bundle/>
    <strict-identifier/>
    <relocate/>
    <scripts>
{scripts}    </scripts>
</pkg-info>
"#,
        id = xml_escape(id),
        version = xml_escape(version),
        files = payload.len(),
        kbytes = payload.install_kbytes(),
    )
}
