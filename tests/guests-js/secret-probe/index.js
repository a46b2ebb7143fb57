// user-info tries to read the secret the host injects: it sends a request
// with the credential the connection names to a server that echoes every
// header back, and returns everything it saw (status, headers, body) and
// everything it can reach in its own global scope. The test checks that
// none of it holds the secret.
import { defineConnector, http, additionalInfo } from "@connector-host/sdk";

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

export default defineConnector({
  authType: "api-key",
  basicAuth: () => ({ tag: "bearer" }),
  userInfo(connection) {
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
  },
});
