#!/usr/bin/env node
// Builds a JavaScript/TypeScript connector folder into a WebAssembly
// component (`connector-host build DIR` runs this; so can you):
//
//   node bin/build.mjs <connector-dir> <out.wasm>
//
// 1. type-checks a TypeScript entry against the generated WIT types;
// 2. bundles the entry and the SDK into one ES module (esbuild), leaving
//    only the `connector:auth/*` imports;
// 3. evaluates that bundle once in Node, with the host imports stubbed, to
//    read which hooks `defineConnector` recorded as implemented;
// 4. componentizes it (componentize-js) against the `connector` world with
//    every WASI feature disabled: no stdio, clocks, random, http or fetch;
// 5. prints one JSON line, `{"hooks":[…],"imports":[…]}`, on stdout.
//
// The manifest and the hook list are then written into the component as
// custom sections by the caller (connector-host), exactly as for Rust.
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import ts from "typescript";
import { componentize } from "@bytecodealliance/componentize-js";
import { SDK_DIR, witDir } from "./wit.mjs";

const HOST_IMPORT = /^connector:auth\//;
const DISABLED_FEATURES = ["stdio", "random", "clocks", "http", "fetch-event"];
const ENTRY_CANDIDATES = ["src/index.ts", "index.ts", "src/index.js", "index.js"];

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(2);
}

/** The folder's package.json, or `{}`. */
function packageOf(dir) {
  const pkgPath = join(dir, "package.json");
  return existsSync(pkgPath) ? JSON.parse(readFileSync(pkgPath, "utf8")) : {};
}

/**
 * The engine features to disable: all of them, less what package.json's
 * `connectorHostBuild.keepEngineFeatures` keeps. Keeping one makes the
 * component import WASI interfaces the host does not grant, so the host
 * refuses to load it; the option exists to test exactly that refusal.
 */
function disabledFeatures(pkg) {
  const keep = pkg.connectorHostBuild?.keepEngineFeatures ?? [];
  const unknown = keep.filter((feature) => !DISABLED_FEATURES.includes(feature));
  if (unknown.length > 0) {
    fail(`package.json connectorHostBuild.keepEngineFeatures: unknown ${unknown.join(", ")} (known: ${DISABLED_FEATURES.join(", ")})`);
  }
  return DISABLED_FEATURES.filter((feature) => !keep.includes(feature));
}

/** package.json's `main`, else the first of ENTRY_CANDIDATES that exists. */
function entryOf(dir, pkg) {
  if (pkg.main) return resolve(dir, pkg.main);
  const found = ENTRY_CANDIDATES.map((c) => resolve(dir, c)).find(existsSync);
  if (!found) fail(`${dir} has no entry: set "main" in package.json or add one of ${ENTRY_CANDIDATES.join(", ")}`);
  return found;
}

/** Type errors of a TypeScript entry, with the SDK and WIT types in scope. */
function typeCheck(entry) {
  const options = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    lib: ["lib.es2022.d.ts"],
    types: [],
    baseUrl: SDK_DIR,
    paths: { "@connector-host/sdk": ["./src/index.ts"] },
  };
  const generated = ts.sys.readDirectory(join(SDK_DIR, "generated"), [".d.ts"]);
  if (generated.length === 0) fail(`no generated WIT types in ${SDK_DIR}/generated: run \`npm ci\` in ${SDK_DIR}`);
  const roots = [entry, join(SDK_DIR, "src", "globals.d.ts"), ...generated];
  const program = ts.createProgram(roots, options);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  if (diagnostics.length > 0) {
    const host = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => process.cwd(), getNewLine: () => "\n" };
    console.error(ts.formatDiagnostics(diagnostics, host));
    fail(`${diagnostics.length} type error(s) in the connector`);
  }
}

/** One ES module: the entry, its imports and the SDK; `connector:auth/*` left as imports. */
async function bundle(entry, outfile, stubHost) {
  const stub = {
    name: "host-stubs",
    setup(b) {
      b.onResolve({ filter: HOST_IMPORT }, (args) => ({ path: args.path, namespace: "host-stub" }));
      b.onLoad({ filter: /.*/, namespace: "host-stub" }, () => ({
        contents:
          "export const send = () => { throw new Error('no outbound HTTP while reading the hook list'); };" +
          "export const log = () => {}; export const get = () => undefined; export const getAll = () => [];",
        loader: "js",
      }));
    },
  };
  await build({
    stdin: {
      contents: `import * as m from ${JSON.stringify(entry)};\nexport const hooks = m.hooks ?? m.default;\n`,
      resolveDir: process.cwd(),
      loader: "js",
    },
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    outfile,
    alias: { "@connector-host/sdk": join(SDK_DIR, "src", "index.ts") },
    external: stubHost ? [] : ["connector:auth/*"],
    plugins: stubHost ? [stub] : [],
    logLevel: "error",
  });
}

/** The hooks the module implements, as WIT names (`user-info`). */
async function implementedHooks(nodeBundle) {
  const { hooks } = await import(pathToFileURL(nodeBundle).href);
  if (!hooks || typeof hooks !== "object") {
    fail("the entry exports no hooks: `export default defineConnector({ … })` (or `export const hooks = …`)");
  }
  const recorded = hooks[Symbol.for("connector-host.implemented-hooks")];
  const names = recorded ?? Object.keys(hooks).filter((name) => typeof hooks[name] === "function");
  return names.map((name) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`));
}

async function main() {
  const [dirArg, outArg] = process.argv.slice(2);
  if (!dirArg || !outArg) fail("usage: build.mjs <connector-dir> <out.wasm>");
  const dir = resolve(dirArg);
  const pkg = packageOf(dir);
  const entry = entryOf(dir, pkg);
  if (entry.endsWith(".ts")) typeCheck(entry);
  const work = await mkdtemp(join(tmpdir(), "connector-js-"));
  try {
    const guestBundle = join(work, "connector.js");
    const nodeBundle = join(work, "connector.node.mjs");
    await bundle(entry, guestBundle, false);
    await bundle(entry, nodeBundle, true);
    const hooks = await implementedHooks(nodeBundle);
    const { component, imports } = await componentize({
      sourcePath: guestBundle,
      witPath: witDir(),
      worldName: "connector",
      disableFeatures: disabledFeatures(pkg),
    });
    await writeFile(resolve(outArg), component);
    console.log(JSON.stringify({ hooks, imports }));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error) => fail(error?.message ?? String(error)));
