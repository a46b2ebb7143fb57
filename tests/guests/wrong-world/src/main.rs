//! Test-only: a plain WASI command. The host must refuse it as a connector
//! (wrong world, no manifest).

fn main() {
    println!("not a connector");
}
