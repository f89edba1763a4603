//! The kext linker and bundler (placeholder until the kext-build issue lands).

fn main() {
    eprintln!("kext-bundle: not implemented yet");
    std::process::exit(2);
}
