# Everyday recipes. Nothing here is required: the README's two commands work
# with cargo alone (crates/cli/build.rs builds the guest connectors).

# Serve the example connectors (SQLite file, built examples folder).
run:
    cargo run -- serve --dev

# The whole test suite (what CI runs).
test:
    cargo test --workspace

# Build only the guest connectors in plugins/.
plugins:
    cargo build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml --target-dir target/guests

# Benchmarks (release build; prints `name: value unit` lines).
bench:
    cargo bench -p connector-host-tests --bench hook_call

# Formatting and lints, as before every commit.
lint:
    cargo fmt --all -- --check
    cargo fmt --manifest-path plugins/Cargo.toml --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
