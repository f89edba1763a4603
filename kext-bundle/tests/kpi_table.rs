//! The project's KPI table (`shim/kpi-symbols.txt`) against Apple's x86_64 export lists
//! (spec section 5): every symbol is exported by the bundle the table names, none is private.

mod common;
use common::*;
use kext_bundle::kpi::{load_exports, KpiTable, PUBLIC_BUNDLES};
use kext_bundle::verify::check_kpi_table;

fn table() -> KpiTable {
    let path = repo_root().join("shim/kpi-symbols.txt");
    KpiTable::load(&path).unwrap_or_else(|e| panic!("the project's KPI table: {e}"))
}

#[test]
fn table_parses_and_names_only_public_bundles() {
    let t = table();
    assert!(!t.symbols.is_empty(), "the KPI table is empty");
    for (sym, bundle) in &t.symbols {
        assert!(
            PUBLIC_BUNDLES.contains(&bundle.as_str()),
            "{sym}: {bundle} is not a public KPI bundle"
        );
    }
}

/// The tests that read Apple's export lists (test group `apple-exports`, see
/// `common::exports_dir`).
mod needs_apple_exports {
    use super::*;

    #[test]
    fn table_matches_apples_export_lists() {
        let dir = exports_dir();
        check_kpi_table(&table(), &dir).unwrap();
    }

    #[test]
    fn table_check_rejects_private_and_misfiled_symbols() {
        let dir = exports_dir();
        let bad = KpiTable::parse(
            "bad",
            "_ifnet_enqueue com.apple.kpi.bsd\n_printf com.apple.kpi.bsd\n_msleep com.apple.kpi.bsd\n",
        )
        .unwrap();
        let e = check_kpi_table(&bad, &dir).unwrap_err().to_string();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(
            lines,
            [
                "_ifnet_enqueue: the table says com.apple.kpi.bsd, but its x86_64 export lists do not have it (exported by com.apple.kpi.private)",
                "_printf: the table says com.apple.kpi.bsd, but its x86_64 export lists do not have it (exported by com.apple.kpi.libkern)",
            ]
        );
    }

    #[test]
    fn export_lists_have_the_documented_sizes_and_aliases() {
        let dir = exports_dir();
        // spec section 5: x86_64 symbol counts of the public bundles
        for (bundle, n) in [
            ("com.apple.kpi.bsd", 873),
            ("com.apple.kpi.libkern", 1009),
            ("com.apple.kpi.mach", 76),
            ("com.apple.kpi.unsupported", 255),
            ("com.apple.kpi.iokit", 2503),
        ] {
            assert_eq!(load_exports(&dir, bundle).unwrap().len(), n, "{bundle}");
        }
        let libkern = load_exports(&dir, "com.apple.kpi.libkern").unwrap();
        assert_eq!(
            libkern.get("_OSMalloc").map(String::as_str),
            Some("_OSMalloc_external")
        );
    }
}
