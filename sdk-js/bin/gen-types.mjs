#!/usr/bin/env node
// Generates the TypeScript declarations of the connector:auth world from the
// WIT with `jco guest-types` into generated/ (run by `npm ci` as `prepare`).
// The SDK's types are never written by hand.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { types } from "@bytecodealliance/jco";
import { SDK_DIR, witDir } from "./wit.mjs";

const out = resolve(SDK_DIR, "generated");
const files = await types(witDir(), { worldName: "connector", guest: true, outDir: `${out}/` });
await rm(out, { recursive: true, force: true });
for (const [path, content] of Object.entries(files)) {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content);
}
console.error(`generated ${Object.keys(files).length} declaration files in ${out}`);
