// The one bindgen configuration for shim/kpi.h, shared by the kext's build script (build.rs)
// and the simulator's (tests/xnu-sim/build.rs), so both sides of the ABI see the same
// generated types. Included with `include!` by each build script.

/// bindgen over `header` for clang `target`, as both build scripts run it.
fn kpi_bindgen(header: &str, target: &str) -> bindgen::Builder {
    bindgen::Builder::default()
        .header(header)
        .clang_args(["-nostdinc", "-ffreestanding", "-target", target])
        .use_core()
        .ctypes_prefix("core::ffi")
        .layout_tests(false)
        .derive_default(true)
        // Zero-filled Default of structs holding pointers is an unsafe block bindgen writes
        // without a SAFETY comment; Rust only needs Default for the plain-integer ones.
        .no_default("kmod_info|cdevsw|ifnet_demux_desc|ifnet_init_params|ifnet_attach_proto_param")
        .generate_comments(false)
        .prepend_enum_name(false)
        // The Rust core defines these itself (src/entry.rs); the shim's definitions are C.
        .blocklist_function("tun_(driver|dev|if|proto)_.*")
        .blocklist_var("kmod_info")
}
