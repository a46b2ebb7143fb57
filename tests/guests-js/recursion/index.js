// user-info recurses without end. The engine's own recursion limit or the
// host's wasm stack limit stops it; either way a typed error, never a crash.
import { defineConnector } from "@connector-host/sdk";

function descend(depth) {
  return descend(depth + 1) ^ depth;
}

export default defineConnector({
  authType: "api-key",
  basicAuth: () => ({ tag: "bearer" }),
  userInfo() {
    return { platformUserId: String(descend(0)), name: "unreachable", additionalInfo: [] };
  },
});
