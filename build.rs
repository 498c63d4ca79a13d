//! Release builds of the server hand the linker `link/startup-order.txt`: the functions start-up
//! and an ordinary session run, placed side by side. The kernel maps code in 64 KB windows around
//! each page it faults in, so scattered start-up code kept 8–9 MB of the binary resident in an
//! idle server; laid together it takes about 4 MB (idle RSS 15 → 10.2–10.8 MB). The file is written by
//! `scripts/startup-order`; a name the linker does not find (another toolchain, updated
//! dependencies) is skipped, which costs only the layout.
//!
//! LLD (Rust's linker on x86-64 Linux since 1.90) reads the option; GNU ld would refuse it. So
//! the build first links an empty program with the option, with the same compiler, target, flags
//! and linker, and passes it on only when that link succeeds. `STORYTELLER_LINK_ORDER=0` turns
//! the layout off.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ORDER: &str = "link/startup-order.txt";

fn main() {
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-env-changed=STORYTELLER_LINK_ORDER");
    let var = |name: &str| env::var(name).unwrap_or_default();
    if var("PROFILE") != "release"
        || var("STORYTELLER_LINK_ORDER") == "0"
        || !Path::new(ORDER).exists()
    {
        return;
    }
    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join(ORDER);
    let option = format!(
        "-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
        order.display()
    );
    if linker_accepts(&option) {
        println!("cargo:rustc-link-arg-bins={option}");
    } else {
        println!(
            "cargo:warning=this linker does not lay out start-up code (link/startup-order.txt); the server works the same, with a little more memory"
        );
    }
}

/// Whether an empty program links with `option`, built as this crate's binaries will be.
fn linker_accepts(option: &str) -> bool {
    let Some(out) = env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let source = out.join("link_probe.rs");
    if fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    let mut rustc = Command::new(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
    rustc
        .arg(&source)
        .arg("-o")
        .arg(out.join("link_probe"))
        .arg("--target")
        .arg(env::var("TARGET").unwrap_or_default())
        .arg("-C")
        .arg(format!("link-arg={option}"));
    if let Ok(linker) = env::var("RUSTC_LINKER") {
        rustc.arg("-C").arg(format!("linker={linker}"));
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    rustc.args(flags.split('\x1f').filter(|f| !f.is_empty()));
    rustc
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
