//! Build script: generates the Karel parser from `grammar/karel.lalrpop` with LALRPOP.
//! The generated parser lands in `$OUT_DIR/karel.rs` and is never committed.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    lalrpop::Configuration::new()
        .set_in_dir("grammar")
        .emit_rerun_directives(true)
        .process()
        .expect("LALRPOP failed to generate the Karel parser from grammar/karel.lalrpop");
}
