//! Assembling `<name>.kext/Contents/{Info.plist,MacOS/<CFBundleExecutable>}`.

use crate::kpi::PlistInfo;
use crate::{err, Result};
use std::path::{Path, PathBuf};

/// Writes the bundle at `dir` (replacing an older one): Info.plist from the template's
/// dictionary (XML), and the executable.
pub fn write_bundle(dir: &Path, plist: &PlistInfo, image: &[u8]) -> Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| err!("{}: {e}", dir.display()))?;
    }
    let macos = dir.join("Contents").join("MacOS");
    std::fs::create_dir_all(&macos).map_err(|e| err!("{}: {e}", macos.display()))?;
    let plist_path = dir.join("Contents").join("Info.plist");
    plist::Value::Dictionary(plist.dict.clone())
        .to_file_xml(&plist_path)
        .map_err(|e| err!("{}: {e}", plist_path.display()))?;
    let exe = macos.join(&plist.executable);
    std::fs::write(&exe, image).map_err(|e| err!("{}: {e}", exe.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| err!("{}: {e}", exe.display()))?;
    }
    Ok(exe)
}

/// Paths inside a bundle.
pub fn plist_path(bundle: &Path) -> PathBuf {
    bundle.join("Contents").join("Info.plist")
}
