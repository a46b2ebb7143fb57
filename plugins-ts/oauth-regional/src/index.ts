/**
 * Regional CRM: an OAuth connector whose API lives on a per-region hostname
 * (`eu.regional-crm.example`, `us.regional-crm.example`, …), modelled on App
 * Connect's `getOauthInfo({ hostname })`. The TypeScript twin of
 * `plugins/oauth-regional`.
 *
 * Copy this folder to start an OAuth connector. The host requires
 * `authType`, `oauthInfo` and `userInfo`; every other hook is optional:
 * delete the ones you do not need. `connector.json` next to `package.json` is
 * the manifest: its `clientId`, `redirectUri` and `secrets` must agree with
 * the constants below.
 */
import { config, defineConnector, errors, http } from "@connector-host/sdk";
import type { ConnectionInfo, OauthValues, UserIdentity } from "@connector-host/sdk";

/** The public client id: the manifest's `auth.oauth.clientId`. */
const CLIENT_ID = "regional-public-client";
/** The manifest's `auth.oauth.redirectUri` (operators may override it with the `redirect-uri` config key). */
const REDIRECT_URI = "https://apps.example.com/oauth/callback";
/**
 * The host secret holding the client secret. The value never enters the
 * sandbox; the name must be listed in the manifest's `secrets`.
 */
const CLIENT_SECRET = "regional-crm-client-secret";
/** Used when neither the user nor the operator (`default-hostname`) chose a region. */
const DEFAULT_HOSTNAME = "eu.regional-crm.example";
/** Every regional hostname ends with this. */
const REGIONAL_DOMAIN = ".regional-crm.example";

export default defineConnector({
  /** Must equal the manifest's `auth.type`. */
  authType: "oauth",

  /**
   * Server-side OAuth values: the token endpoint of the user's region and a reference to the client secret.
   * The authorize page is the manifest's `authUrl` unless the operator set the `authorize-url` config key.
   */
  oauthInfo(input) {
    const info: OauthValues = {
      clientId: CLIENT_ID,
      clientSecret: { tag: "host-secret", val: CLIENT_SECRET },
      accessTokenUri: "",
      redirectUri: config.get("redirect-uri") ?? REDIRECT_URI,
    };
    const authorizeUrl = config.get("authorize-url");
    if (authorizeUrl !== undefined) {
      info.authorizationUri = authorizeUrl;
    }
    const region = Region.resolve(input.hostname);
    if (typeof region === "string") {
      // A fail message stops the flow and is shown to the user.
      info.failMessage = region;
    } else {
      info.accessTokenUri = region.url("/oauth/token");
      info.hostname = region.hostname;
    }
    return info;
  },

  /** The code exchange tells the CRM which region issued the code, and the client authenticates in the body. */
  overridingOauthOption(info) {
    const region = Region.required(info.hostname);
    return {
      extraBodyParams: [["region", region.label]],
      extraHeaders: [],
      clientAuthLocation: "body",
    };
  },

  /** Who the user is: `GET /api/v1/me` with the access token the host injects. */
  userInfo,

  /** Same call as `userInfo`. */
  refreshUserInfo: userInfo,

  /** The connection is valid while `/api/v1/me` answers 2xx. */
  authValidation(connection) {
    const region = Region.required(connection.hostname);
    const response = http.get(region.url("/api/v1/me"), { credential: "accessToken" });
    return {
      successful: response.ok,
      status: response.status,
      failReason: response.ok ? undefined : `Regional CRM answered HTTP ${response.status}`,
    };
  },
});

function userInfo(connection: ConnectionInfo): UserIdentity {
  const region = Region.required(connection.hostname);
  const me = http
    .get(region.url("/api/v1/me"), { headers: { accept: "application/json" }, credential: "accessToken" })
    .okOrThrow() // 401 → re-auth, other non-2xx → provider error
    .json();
  const id = text(me.id);
  if (id === undefined) throw badResponse("no `id`");
  return {
    platformUserId: id,
    name: text(me.name) ?? id,
    timezoneName: text(me.timezone),
    additionalInfo: [],
  };
}

/** The region a call talks to: `{scheme}://{hostname}`. */
class Region {
  private constructor(
    readonly scheme: string,
    readonly hostname: string,
  ) {}

  /**
   * Picks the hostname (the user's, else config `default-hostname`, else
   * `DEFAULT_HOSTNAME`) and refuses anything outside the regional domain; a
   * message for the user when it refuses. The host enforces `allowedHosts`
   * anyway; this gives the user a clear message instead of a refused request.
   */
  static resolve(requested: string | undefined): Region | string {
    const fallback = config.get("default-hostname");
    const hostname = (requested?.trim() ? requested : (fallback ?? DEFAULT_HOSTNAME)).trim().toLowerCase();
    const allowed = isRegional(hostname) || fallback?.trim().toLowerCase() === hostname;
    if (!allowed) {
      return `\`${hostname}\` is not a Regional CRM hostname (expected <region>${REGIONAL_DOMAIN})`;
    }
    const scheme = config.get("scheme") ?? "https";
    if (scheme !== "https" && scheme !== "http") {
      return `unsupported scheme \`${scheme}\` in the connector config`;
    }
    return new Region(scheme, hostname);
  }

  /** As `resolve`, throwing `bad-input` when it refuses. */
  static required(requested: string | undefined): Region {
    const region = Region.resolve(requested);
    if (typeof region === "string") throw errors.badInput(region);
    return region;
  }

  url(path: string): string {
    return `${this.scheme}://${this.hostname}${path}`;
  }

  /** The region's name: the hostname's first label (`eu`). */
  get label(): string {
    return this.hostname.split(".")[0] ?? "";
  }
}

/** `<label>[.<label>…].regional-crm.example` with plain DNS labels. */
function isRegional(hostname: string): boolean {
  if (!hostname.endsWith(REGIONAL_DOMAIN)) return false;
  const sub = hostname.slice(0, -REGIONAL_DOMAIN.length);
  return sub
    .split(".")
    .every((label) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i.test(label));
}

/** A JSON string or number as text. */
function text(value: unknown): string | undefined {
  return typeof value === "string" || typeof value === "number" ? String(value) : undefined;
}

function badResponse(why: string) {
  return errors.provider({ code: "unexpected_response", message: `unexpected /api/v1/me response: ${why}` });
}
