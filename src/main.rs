//! The `karel` command-line tool. Everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    karel::nn::tune_allocator();
    karel::cli::main()
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
