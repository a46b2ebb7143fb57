//! `connector-host signing-key` and `sign`: an Ed25519 key for signing
//! components, and the detached signature (`FILE.wasm.sig`) that `publish`
//! sends and a host with `[publishing] require_signatures` checks.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;

use connector_server::registry::inspect::sha256_hex;
use connector_server::registry::signature::{
    SIGNATURE_SUFFIX, generate_key, public_key_base64, sign, signing_key_from_base64,
};

/// `signing-key --out FILE`.
#[derive(clap::Args)]
pub struct SigningKeyArgs {
    /// Where to write the new private key (base64; created with mode 0600,
    /// never overwritten).
    #[arg(long)]
    out: PathBuf,
}

/// `sign FILE.wasm --key KEY`.
#[derive(clap::Args)]
pub struct SignArgs {
    /// The `.wasm` component.
    file: PathBuf,
    /// The private key `signing-key` wrote.
    #[arg(long)]
    key: PathBuf,
}

/// Writes a new private key and prints its public key (the value for
/// `[publishing] trusted_keys`).
pub fn signing_key(args: SigningKeyArgs) -> anyhow::Result<ExitCode> {
    use std::os::unix::fs::OpenOptionsExt;
    let key = generate_key();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.out)
        .with_context(|| format!("cannot create {} (it must not exist)", args.out.display()))?;
    writeln!(
        file,
        "{}",
        base64::engine::general_purpose::STANDARD.encode(key.to_bytes())
    )?;
    println!("{}", public_key_base64(&key.verifying_key()));
    eprintln!(
        "private key written to {}; the line above is its public key, for [publishing] trusted_keys",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Signs a component: writes `FILE.wasm.sig` next to it.
pub fn sign_file(args: SignArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let text = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read {}", args.key.display()))?;
    let key = signing_key_from_base64(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a signing key: {e}", args.key.display()))?;
    let sha256 = sha256_hex(&bytes);
    let signature = sign(&key, &sha256);
    let out = PathBuf::from(format!("{}{SIGNATURE_SUFFIX}", args.file.display()));
    std::fs::write(&out, serde_json::to_string_pretty(&signature)? + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "signed sha256 {sha256} with {} into {}",
        signature.public_key,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
