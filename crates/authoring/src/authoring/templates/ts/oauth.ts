/**
 * {{title}}: an OAuth 2.0 connector in TypeScript. It works against the local
 * test provider (`connector-host dev . --provider`) as generated; change the
 * base URL (config `base-url`), the client id and `allowedHosts` for the
 * real API. The client secret is the host secret `{{id}}-client-secret`
 * (listed in connector.json's `secrets`): it never enters the connector.
 */
import { config, defineConnector, errors, http, log } from "@connector-host/sdk";
import type { UserIdentity } from "@connector-host/sdk";

const DEFAULT_BASE_URL = "http://127.0.0.1:9100";
const CLIENT_ID = "{{id}}-client";
const CLIENT_SECRET = "{{id}}-client-secret";
const REDIRECT_URI = "http://127.0.0.1:8090/oauth/callback";

function baseUrl(): string {
  return (config.get("base-url") ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
}

export default defineConnector({
  authType: "oauth",

  oauthInfo() {
    const base = baseUrl();
    return {
      clientId: CLIENT_ID,
      clientSecret: { tag: "host-secret", val: CLIENT_SECRET },
      accessTokenUri: `${base}/oauth/token`,
      redirectUri: REDIRECT_URI,
      authorizationUri: `${base}/oauth/authorize`,
    };
  },

  userInfo(connection): UserIdentity {
    const me = http
      .get(`${baseUrl()}/api/v1/me`, { headers: { accept: "application/json" }, credential: "accessToken" })
      .okOrThrow()
      .json();
    log.info("fetched the connected user");
    if (typeof me.id !== "string") throw errors.internal("the user answer has no `id`");
    return {
      platformUserId: me.id,
      name: typeof me.name === "string" ? me.name : me.id,
      timezoneName: typeof me.timezone === "string" ? me.timezone : undefined,
      additionalInfo: connection.additionalInfo,
    };
  },

  authValidation() {
    const response = http.get(`${baseUrl()}/api/v1/me`, { credential: "accessToken" });
    return {
      successful: response.ok,
      status: response.status,
      failReason: response.ok ? undefined : `the provider answered ${response.status}`,
    };
  },
});
