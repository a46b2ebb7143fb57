/**
 * {{title}}: an API-key connector in TypeScript. It works against the local
 * test provider (`connector-host dev . --provider`) as generated; change the
 * base URL (config `base-url`) and `allowedHosts` for the real API.
 */
import { additionalInfo, config, defineConnector, errors, http, log } from "@connector-host/sdk";
import type { UserIdentity } from "@connector-host/sdk";

const DEFAULT_BASE_URL = "http://127.0.0.1:9100";

function baseUrl(): string {
  return (config.get("base-url") ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
}

export default defineConnector({
  authType: "api-key",

  // Where the host places the key is declared in connector.json
  // (`auth.apiKey.placement`, here HTTP Basic with the key as the user name
  // and an empty password), so there is no `basicAuth` hook to write.

  userInfo(connection): UserIdentity {
    const me = http
      .get(`${baseUrl()}/v3.1/Users/Me`, { headers: { accept: "application/json" }, credential: "apiKey" })
      .okOrThrow()
      .json();
    log.info("fetched the connected user");
    if (typeof me.USER_ID !== "number" && typeof me.USER_ID !== "string") {
      throw errors.internal("the user answer has no `USER_ID`");
    }
    return {
      platformUserId: String(me.USER_ID),
      name: `${me.FIRST_NAME ?? ""} ${me.LAST_NAME ?? ""}`.trim(),
      timezoneName: typeof me.TIMEZONE_ID === "string" ? me.TIMEZONE_ID : undefined,
      additionalInfo: connection.additionalInfo,
      message: additionalInfo(connection, "welcome"),
    };
  },

  authValidation() {
    const response = http.get(`${baseUrl()}/v3.1/Users/Me`, { credential: "apiKey" });
    return {
      successful: response.ok,
      status: response.status,
      failReason: response.ok ? undefined : `the provider answered ${response.status}`,
    };
  },
});
