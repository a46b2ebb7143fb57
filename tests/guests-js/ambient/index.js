// user-info reaches for one thing a JavaScript runtime usually has and a
// connector must not (the connection's `probe` field names it): fetch,
// console (stdio), process/environment, require. It reports what it found;
// the test expects each to be absent or to fail. It also counts its calls in
// a global: a fresh instance per call always answers `call #1`.
import { defineConnector, additionalInfo } from "@connector-host/sdk";

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

export default defineConnector({
  authType: "api-key",
  basicAuth: () => ({ tag: "bearer" }),
  userInfo(connection) {
    globalThis.calls = (globalThis.calls ?? 0) + 1;
    const name = additionalInfo(connection, "probe");
    return {
      platformUserId: "ambient",
      name: `call #${globalThis.calls}`,
      additionalInfo: name ? [[name, probe(name)]] : [],
    };
  },
});
