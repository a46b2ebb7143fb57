// Where the connector:auth WIT is: `CONNECTOR_HOST_WIT`, else the Rust SDK's
// folder in this checkout (the Rust SDK owns the WIT; this package never
// keeps a copy of its own).
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const SDK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export function witDir() {
  const dir = process.env.CONNECTOR_HOST_WIT ?? resolve(SDK_DIR, "..", "crates", "sdk", "wit");
  if (!existsSync(resolve(dir, "hooks.wit"))) {
    throw new Error(`no connector:auth WIT in ${dir}: set CONNECTOR_HOST_WIT to the folder with hooks.wit`);
  }
  return dir;
}
