//! Lays out the `idflow` binary's request-path functions together (release and dist builds).
//!
//! `function-order.txt` lists the functions serving requests runs, hottest first
//! (`bench/order-functions.sh` regenerates it from a profile). Given to the linker as its symbol
//! ordering file, they sit side by side at the start of the code instead of spread over all of
//! it, so a server under load keeps a few MiB of its code resident instead of most of it (the
//! kernel maps 64 KiB around every page a thread faults in). A name the file holds that the
//! build lacks is skipped; a function it does not name is laid out after the listed ones, as
//! before: the file only ever changes where code sits, never what it does.
//!
//! Only for the release profiles (`dist` inherits `release`) on x86_64 Linux with the
//! toolchain's own linker (rust-lld, the default there since Rust 1.90): another linker may not
//! know the option, so a configured linker (`RUSTC_LINKER`, `-C linker…`, `-fuse-ld`) or
//! `IDFLOW_FUNCTION_ORDER=0` leaves the layout to the linker.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=function-order.txt");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=IDFLOW_FUNCTION_ORDER");
    let var = |k: &str| env::var(k).unwrap_or_default();
    let rustflags = var("CARGO_ENCODED_RUSTFLAGS");
    let wanted = var("PROFILE") == "release"
        && var("TARGET") == "x86_64-unknown-linux-gnu"
        && env::var_os("RUSTC_LINKER").is_none()
        && !rustflags.contains("linker")
        && !rustflags.contains("fuse-ld")
        && var("IDFLOW_FUNCTION_ORDER") != "0";
    let file = Path::new(&var("CARGO_MANIFEST_DIR")).join("function-order.txt");
    if wanted && file.is_file() {
        println!("cargo:rustc-link-arg-bin=idflow=-Wl,--symbol-ordering-file={}", file.display());
        println!("cargo:rustc-link-arg-bin=idflow=-Wl,--no-warn-symbol-ordering");
    }
}
