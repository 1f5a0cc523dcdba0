//! The `idflow` binary.

fn main() -> std::process::ExitCode {
    idflow_server::cli::main()
}
