//! The `connector-host` program, built inside this test package so the tests
//! can spawn it (`CARGO_BIN_EXE_connector-host-under-test`): the same code as
//! the real binary, `connector_host::main`.

fn main() -> std::process::ExitCode {
    connector_host::main()
}
