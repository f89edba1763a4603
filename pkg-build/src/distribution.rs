//! The `Distribution` file: what Installer shows and checks before it installs anything.
//!
//! Its refusals, each with a message that says why (Installer's JavaScript: `my.result` with
//! type `Fatal` stops the installation and shows title and message; "Installer JavaScript
//! Reference", `installation-check`):
//! - macOS older than the minimum: `<allowed-os-versions>` (Installer's own check of the
//!   volume) and the same comparison in the installation check, which names the versions;
//! - a Mac whose architecture the kext has no slice for: the installation check reads
//!   `hw.optional.arm64` (1 on Apple silicon, also under Rosetta; absent on Intel).
//!
//! Another tun driver is refused by the component's `preinstall`, which runs install.sh's own
//! check (`other_tun_drivers` in `scripts/lib/mac-common.sh`): Installer's JavaScript cannot
//! ask the kernel which kexts are loaded, and a second copy of that logic would drift.
//!
//! `hostArchitectures` lists both architectures whatever the kext has: it says where the
//! package's scripts (bash) may run natively; without arm64 Installer would ask an Apple-silicon
//! Mac to install Rosetta before showing anything.

use crate::kext::{Arch, KextInfo};
use crate::xml_escape;

/// The installation check, ES5 (what Installer's JavaScript and the test's engine accept).
/// `MIN_MACOS`, `HAS_X86_64` and `HAS_ARM64E` are replaced.
const INSTALLATION_CHECK: &str = r#"
var tunnelMinimumMacOS = 'MIN_MACOS';
var tunnelHasX86_64 = HAS_X86_64;
var tunnelHasArm64e = HAS_ARM64E;

function tunnelRefuse(title, message) {
    my.result.type = 'Fatal';
    my.result.title = title;
    my.result.message = message;
    return false;
}

function tunnelInstallationCheck() {
    var version = system.version.ProductVersion;
    if (system.compareVersions(version, tunnelMinimumMacOS) < 0) {
        return tunnelRefuse('macOS ' + tunnelMinimumMacOS + ' or later is required',
            'KEXT_NAME supports macOS ' + tunnelMinimumMacOS + ' (High Sierra) and later. This Mac has macOS ' +
            version + '.');
    }
    var appleSilicon = system.sysctl('hw.optional.arm64') == 1;
    if (appleSilicon && !tunnelHasArm64e) {
        return tunnelRefuse('This package cannot be installed on a Mac with Apple silicon',
            'Its KEXT_NAME was built for Intel Macs only: it has no arm64e code. Install a package ' +
            'built for both architectures (scripts/build.sh builds both by default).');
    }
    if (!appleSilicon && !tunnelHasX86_64) {
        return tunnelRefuse('This package cannot be installed on an Intel Mac',
            'Its KEXT_NAME was built for Macs with Apple silicon only: it has no x86_64 code. Install a ' +
            'package built for both architectures (scripts/build.sh builds both by default).');
    }
    return true;
}
"#;

pub struct Distribution<'a> {
    pub kext: &'a KextInfo,
    /// The component package's identifier (its receipt).
    pub package_id: &'a str,
    /// The component's name inside the archive, e.g. `tunnel.pkg`.
    pub component: &'a str,
    pub min_macos: &'a str,
    pub install_kbytes: u64,
    /// The file name of the conclusion page under `Resources/en.lproj`, if there is one.
    pub conclusion: Option<&'a str>,
}

impl Distribution<'_> {
    pub fn xml(&self) -> String {
        let k = self.kext;
        let script = INSTALLATION_CHECK
            .replace("MIN_MACOS", self.min_macos)
            .replace("HAS_X86_64", &k.archs.contains(&Arch::X86_64).to_string())
            .replace("HAS_ARM64E", &k.archs.contains(&Arch::Arm64e).to_string())
            .replace("KEXT_NAME", &k.name);
        let id = xml_escape(self.package_id);
        let conclusion = match self.conclusion {
            Some(f) => format!(
                "    <conclusion file=\"{}\" mime-type=\"text/html\"/>\n",
                xml_escape(f)
            ),
            None => String::new(),
        };
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<installer-gui-script minSpecVersion="2">
    <title>{title}</title>
    <options customize="never" require-scripts="false" hostArchitectures="x86_64,arm64"/>
    <domains enable_anywhere="false" enable_currentUserHome="false" enable_localSystem="true"/>
    <volume-check>
        <allowed-os-versions>
            <os-version min="{min}"/>
        </allowed-os-versions>
    </volume-check>
    <installation-check script="tunnelInstallationCheck()"/>
    <script><![CDATA[{script}]]></script>
{conclusion}    <choices-outline>
        <line choice="default">
            <line choice="{id}"/>
        </line>
    </choices-outline>
    <choice id="default"/>
    <choice id="{id}" visible="false">
        <pkg-ref id="{id}"/>
    </choice>
    <pkg-ref id="{id}" version="{version}" onConclusion="none" installKBytes="{kbytes}">#{component}</pkg-ref>
</installer-gui-script>
"#,
            title = xml_escape(&format!("{} {}", k.name, k.version)),
            min = xml_escape(self.min_macos),
            version = xml_escape(&k.version),
            kbytes = self.install_kbytes,
            component = xml_escape(self.component),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checks_name_the_kexts_architectures_and_the_minimum() {
        let kext = KextInfo {
            identifier: "org.example.k".into(),
            version: "1.2.3".into(),
            name: "k.kext".into(),
            archs: vec![Arch::X86_64],
        };
        let d = Distribution {
            kext: &kext,
            package_id: "org.example.k.pkg",
            component: "k.pkg",
            min_macos: "10.13",
            install_kbytes: 42,
            conclusion: None,
        }
        .xml();
        assert!(d.contains(r#"<os-version min="10.13"/>"#));
        assert!(d.contains("var tunnelHasX86_64 = true;"));
        assert!(d.contains("var tunnelHasArm64e = false;"));
        assert!(d.contains("var tunnelMinimumMacOS = '10.13';"));
        assert!(d.contains(r##">#k.pkg</pkg-ref>"##));
        assert!(!d.contains("KEXT_NAME") && !d.contains("<conclusion"));
        assert!(!d.contains("]]>\n    <script"), "one CDATA section");
    }
}
