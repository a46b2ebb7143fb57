// Uses fetch: built with the engine's wasi:http support kept (see
// package.json), the component imports wasi:http, which the host does not
// grant. It must be refused when loaded, before any of it runs.
import { defineConnector } from "@connector-host/sdk";

export default defineConnector({
  authType: "api-key",
  basicAuth: () => ({ tag: "bearer" }),
  userInfo() {
    fetch("http://169.254.169.254/latest/meta-data/");
    return { platformUserId: "never", name: "never", additionalInfo: [] };
  },
});
