/**
 * App Connect's connector template (`getAuthType`, `getOauthInfo`,
 * `getUserInfo`, `unAuthorize`, `getBasicAuth`), ported with as few changes
 * as possible. Every change is marked `CHANGED:` with the reason; the
 * adapter at the bottom maps the App Connect functions to hooks.
 */
import { config, defineConnector, errors, http, log } from "@connector-host/sdk";
import type { ConnectionInfo, OauthInfoInput } from "@connector-host/sdk";

// CHANGED: `process.env.TEST_CRM_*` → operator config (non-secret values)
// and a host secret *name* (the secret itself never enters the connector).
const env = {
  TEST_CRM_CLIENT_ID: () => config.get("client-id") ?? "test-crm-client-id",
  TEST_CRM_CLIENT_SECRET: "test-crm-client-secret", // a name listed in connector.json `secrets`
  TEST_CRM_TOKEN_URI: () => config.get("token-uri") ?? "http://127.0.0.1:9100/oauth/token",
  TEST_CRM_REDIRECT_URI: () =>
    config.get("redirect-uri") ?? "https://ringcentral.github.io/ringcentral-embeddable/redirect.html",
  TEST_CRM_API: () => (config.get("api-base") ?? "http://127.0.0.1:9100").replace(/\/+$/, ""),
};

function getAuthType() {
  return "oauth"; // Return either 'oauth' OR 'apiKey'
}

// CHOOSE: If using OAuth
function getOauthInfo(_input: OauthInfoInput) {
  return {
    clientId: env.TEST_CRM_CLIENT_ID(),
    // CHANGED: a reference to the secret, not its value.
    clientSecret: { tag: "host-secret" as const, val: env.TEST_CRM_CLIENT_SECRET },
    accessTokenUri: env.TEST_CRM_TOKEN_URI(),
    redirectUri: env.TEST_CRM_REDIRECT_URI(),
  };
}

// CHOOSE: If using apiKey
// CHANGED: App Connect builds the header from the key
// (`Buffer.from(`${apiKey}:`).toString('base64')`); here the host does, from
// this template, and the connector never sees the key.
function getBasicAuth(_args: { apiKey?: string }) {
  return "{apiKey}:";
}

// CHANGED: `async` and `axios` → the synchronous `http` of the SDK; the
// `authHeader` argument is gone: the request names the credential instead.
function getUserInfo({ hostname, additionalInfo }: { hostname?: string; additionalInfo: Array<[string, string]> }) {
  try {
    const userInfoResponse = http.get(`${env.TEST_CRM_API()}/api/v1/me`, {
      headers: { accept: "application/json" },
      credential: "accessToken",
    });
    if (userInfoResponse.status === 401) {
      // CHANGED: a typed error; the host asks the user to connect again.
      throw errors.reauthRequired("the CRM refused the access token");
    }
    const user = userInfoResponse.okOrThrow().json();
    const id = user.id;
    const name = user.name;
    const timezoneName = user.timezone ?? "";
    const timezoneOffset = undefined;
    return {
      successful: true,
      platformUserInfo: {
        id,
        name,
        timezoneName,
        timezoneOffset,
        platformAdditionalInfo: { ...Object.fromEntries(additionalInfo), hostname: hostname ?? "" },
      },
      returnMessage: {
        messageType: "success",
        message: "Connected to TestCRM.",
        ttl: 1000,
      },
    };
  } catch (e) {
    // CHANGED: no `console.log`; `log` goes to the host's log. Failures are
    // rethrown typed instead of `{ successful: false, returnMessage }`.
    log.warn("getUserInfo failed", String(e));
    throw e;
  }
}

// CHANGED: App Connect clears `user.accessToken` and `user.refreshToken`
// here; the host clears its copy itself, and revokes at the provider when
// connector.json declares `revocationEndpoint`. What remains is the message.
function unAuthorize({ user }: { user: ConnectionInfo }) {
  return {
    returnMessage: {
      messageType: "success",
      message: `Logged out of TestCRM${user.platformUserId ? ` (${user.platformUserId})` : ""}.`,
      ttl: 1000,
    },
  };
}

// The adapter: App Connect's shapes to the hooks'.
export default defineConnector({
  authType: getAuthType() === "oauth" ? "oauth" : "api-key",
  oauthInfo: (input) => getOauthInfo(input),
  basicAuth: () => ({ tag: "basic", val: getBasicAuth({}) }),
  userInfo(connection) {
    const result = getUserInfo({ hostname: connection.hostname, additionalInfo: connection.additionalInfo });
    const user = result.platformUserInfo;
    return {
      platformUserId: String(user.id),
      name: user.name,
      timezoneName: user.timezoneName || undefined,
      timezoneOffset: user.timezoneOffset,
      additionalInfo: Object.entries(user.platformAdditionalInfo),
      message: result.returnMessage.message,
    };
  },
  unauthorize: (connection) => unAuthorize({ user: connection }).returnMessage.message,
});
