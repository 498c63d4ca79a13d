//! Release builds of the server on x86-64 Linux hand the linker `link/startup-order.txt`: the
//! functions start-up and an ordinary session run, placed side by side. The kernel maps code in
//! 64 KB windows around each page it faults in, so scattered start-up code kept 7–8 MB of the
//! binary resident in an idle server; laid together it takes about 2 MB. The file is written by
//! `scripts/startup-order`; a name the linker does not find (another toolchain, updated
//! dependencies) is skipped, which costs only the layout.
//!
//! Only LLD (Rust's default linker on this target since 1.90) is known to read the option, so a
//! build that names another linker, or sets `STORYTELLER_LINK_ORDER=0`, is linked as before.

use std::env;

const ORDER: &str = "link/startup-order.txt";

fn main() {
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-env-changed=STORYTELLER_LINK_ORDER");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    if layout_applies() {
        let path = format!(
            "{}/{ORDER}",
            env::var("CARGO_MANIFEST_DIR").unwrap_or_default()
        );
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={path},--no-warn-symbol-ordering"
        );
    }
}

fn layout_applies() -> bool {
    let var = |name: &str| env::var(name).unwrap_or_default();
    if var("PROFILE") != "release" || var("TARGET") != "x86_64-unknown-linux-gnu" {
        return false;
    }
    if var("STORYTELLER_LINK_ORDER") == "0" {
        return false;
    }
    // A linker of the builder's choosing may be GNU ld, which has no such option.
    // (Cargo tells a build script the linker it was configured with in RUSTC_LINKER.)
    if !var("RUSTC_LINKER").is_empty() {
        return false;
    }
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let own_linker = [
        "linker=",
        "linker-features=-lld",
        "linker-flavor",
        "link-self-contained=-linker",
        "fuse-ld=",
    ];
    if own_linker.iter().any(|f| flags.contains(f)) {
        return false;
    }
    std::path::Path::new(ORDER).exists()
}
