/**
 * Insightly: an API-key connector, modelled on App Connect's Insightly
 * connector (`getBasicAuth` + `getUserInfo`). The TypeScript twin of
 * `plugins/apikey-insightly`.
 *
 * Copy this folder to start an API-key connector. The host requires
 * `authType`, `basicAuth` and `userInfo`; every other hook is optional. The
 * login form is `auth.apiKey.page` in `connector.json`: the `apiKey` field is
 * the secret (the host keeps it and injects it, you never see it), every
 * other field arrives in `connection.additionalInfo` under its `const`.
 */
import { additionalInfo, defineConnector, errors, http } from "@connector-host/sdk";
import type { ConnectionInfo } from "@connector-host/sdk";

export default defineConnector({
  /** Must equal the manifest's `auth.type`. */
  authType: "api-key",

  /**
   * Insightly takes the key as the Basic-auth user name with an empty
   * password. `{apiKey}` (and `{otherField}`) are filled in by the host.
   */
  basicAuth: () => ({ tag: "basic", val: "{apiKey}:" }),

  /** Who the user is: `GET {apiUrl}/v3.1/Users/Me` with the API key. */
  userInfo(connection) {
    const url = apiUrl(connection);
    const me = usersMe(url).okOrThrow().json(); // 401 → re-auth
    const id = me.USER_ID;
    if (typeof id !== "number" && typeof id !== "string") throw badResponse("no `USER_ID`");
    const name = [me.FIRST_NAME, me.LAST_NAME].filter((part) => typeof part === "string").join(" ");
    return {
      platformUserId: String(id),
      name,
      timezoneName: typeof me.TIMEZONE_ID === "string" ? me.TIMEZONE_ID : undefined,
      // Saved with the connection for later calls.
      additionalInfo: [["apiUrl", url]],
    };
  },

  /** The key is valid while `Users/Me` answers 2xx. */
  authValidation(connection) {
    const response = usersMe(apiUrl(connection));
    return {
      successful: response.ok,
      status: response.status,
      failReason: response.ok ? undefined : `Insightly answered HTTP ${response.status}`,
    };
  },

  /** A cheap call proving the connection works. */
  testConnection(connection) {
    usersMe(apiUrl(connection)).okOrThrow();
    return "Connected to Insightly.";
  },
});

/**
 * The `apiUrl` form field, e.g. `https://api.na1.insightly.com`. The host
 * only lets requests reach the manifest's `allowedHosts`, so a wrong URL fails there.
 */
function apiUrl(connection: ConnectionInfo): string {
  const value = additionalInfo(connection, "apiUrl")?.trim().replace(/\/+$/, "");
  if (!value) throw errors.badInput("the `apiUrl` field is required");
  return value;
}

function usersMe(apiUrl: string) {
  return http.get(`${apiUrl}/v3.1/Users/Me`, {
    headers: { accept: "application/json" },
    credential: "apiKey",
  });
}

function badResponse(why: string) {
  return errors.provider({ code: "unexpected_response", message: `unexpected Users/Me response: ${why}` });
}
