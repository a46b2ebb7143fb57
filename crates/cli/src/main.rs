//! The `connector-host` binary; everything it does lives in the library
//! (`connector_host`), so the tests can build the same program.

fn main() -> std::process::ExitCode {
    connector_host::main()
}
