// Every misbehaviour the host must contain in a JavaScript connector, chosen
// per call by the connection's `misbehave` field; the test expects the same
// typed error as from the Rust twin in tests/guests/. One package rather than
// one per misbehaviour (as the Rust twins are): each JavaScript package costs
// ~20 s to componentize and carries a whole JS engine to compile, so sharing
// one keeps the suite's JavaScript time down.
//
// - `spin`: loops forever; the deadline stops it (CallError::Timeout).
// - `memory-bomb`: keeps 1 MiB buffers; the memory cap stops it
//   (CallError::OutOfMemory).
// - `recursion`: recurses without end; the engine's recursion limit or the
//   wasm stack limit stops it (CallError::Trap).
// - `secret-probe`: has the host inject the credential named by `credential`
//   into a request to `url` (an echoing server) and returns all it saw and
//   all it can reach in its global scope; none of it may hold the secret.
// - `ambient` (the default): reaches for what a JavaScript runtime usually
//   has and a connector must not (the `probe` field names it: fetch,
//   console, process, require) and counts its calls in a global, so a fresh
//   instance per call always answers `call #1`.
import { defineConnector, http, additionalInfo } from "@connector-host/sdk";

function spin() {
  let spins = 0;
  for (;;) spins = (spins + 1) | 0;
}

function memoryBomb() {
  const hoard = [];
  for (;;) hoard.push(new Uint8Array(1 << 20).fill(0xa5));
}

function descend(depth) {
  return descend(depth + 1) ^ depth;
}

function recursion() {
  return { platformUserId: String(descend(0)), name: "unreachable", additionalInfo: [] };
}

function globals() {
  const seen = [];
  for (const name of Object.getOwnPropertyNames(globalThis)) {
    let value;
    try {
      value = globalThis[name];
    } catch (error) {
      value = `<${error}>`;
    }
    seen.push(`${name}=${typeof value === "object" || typeof value === "function" ? typeof value : String(value)}`);
  }
  return seen.join(";");
}

function secretProbe(connection) {
  const url = additionalInfo(connection, "url");
  const credential = additionalInfo(connection, "credential") ?? "apiKey";
  const response = http.get(url, { credential });
  const headers = [];
  for (const name of ["authorization", "x-echo", "location", "link", "content-location"]) {
    headers.push(`${name}: ${response.header(name) ?? ""}`);
  }
  return {
    platformUserId: "probe",
    name: String(response.status),
    additionalInfo: [
      ["body", response.text()],
      ["headers", headers.join("\n")],
      ["connection", JSON.stringify(connection)],
      ["globals", globals()],
    ],
  };
}

const PROBES = {
  fetch: () => fetch("http://169.254.169.254/latest/meta-data/"),
  console: () => console.log("hello from the sandbox"),
  process: () => process.env.HOME,
  require: () => globalThis.require("fs"),
};

function probe(name) {
  try {
    const value = PROBES[name]?.();
    return `available: ${String(value).slice(0, 60)}`;
  } catch (error) {
    return `failed: ${error?.name ?? "error"}`;
  }
}

function ambient(connection) {
  globalThis.calls = (globalThis.calls ?? 0) + 1;
  const name = additionalInfo(connection, "probe");
  return {
    platformUserId: "ambient",
    name: `call #${globalThis.calls}`,
    additionalInfo: name ? [[name, probe(name)]] : [],
  };
}

const MISBEHAVIOURS = {
  spin,
  "memory-bomb": memoryBomb,
  recursion,
  "secret-probe": secretProbe,
  ambient,
};

export default defineConnector({
  authType: "api-key",
  basicAuth: () => ({ tag: "bearer" }),
  userInfo(connection) {
    const misbehave = additionalInfo(connection, "misbehave") ?? "ambient";
    const run = MISBEHAVIOURS[misbehave];
    if (!run) throw new Error(`unknown misbehaviour ${misbehave}`);
    return run(connection);
  },
});
