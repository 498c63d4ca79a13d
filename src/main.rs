//! The `storyteller-lsp` binary: the language server on stdio by default, plus the commands of
//! DESIGN.md §9.

fn main() {
    println!("storyteller-lsp {}", env!("CARGO_PKG_VERSION"));
}
