# Everyday recipes. Nothing here is required: the README's two commands work
# with cargo alone (crates/cli/build.rs builds the guest connectors).

# Serve the example connectors (SQLite file, built examples folder).
run:
    cargo run -- serve --dev

# The whole test suite (CI, `.ci/run`, also runs the lints below and requires PostgreSQL).
test:
    cargo test --workspace

# Build only the guest connectors in plugins/ (a workspace of its own).
plugins:
    cargo build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml --target-dir target/guests

# Benchmarks of package connector-host-tests (release build; prints `name: value unit` lines).
bench:
    cargo bench -p connector-host-tests --bench hook_call
    cargo bench -p connector-host-tests --bench outbound
    cargo bench -p connector-host-tests --bench lifecycle
    cargo bench -p connector-host-tests --bench flows

# Formatting and lints of the host and both guest workspaces, as `.ci/run` does.
lint:
    cargo fmt --all -- --check
    cargo fmt --all --manifest-path plugins/Cargo.toml -- --check
    cargo fmt --all --manifest-path tests/guests/Cargo.toml -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --manifest-path plugins/Cargo.toml --target wasm32-wasip2 --target-dir target/guest-clippy --workspace -- -D warnings
    cargo clippy --manifest-path tests/guests/Cargo.toml --target wasm32-wasip2 --target-dir target/guest-clippy --workspace -- -D warnings
