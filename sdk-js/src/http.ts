/**
 * Outbound HTTP through the host, the connector's only way out.
 *
 * The host checks every request against the manifest's `allowedHosts`,
 * resolves and filters the destination itself, injects the credential you
 * name (you never see its value), does not follow redirects and audits the
 * request.
 *
 * ```ts
 * const me = http.get(`${apiUrl}/v1/me`, { credential: "apiKey" }).okOrThrow().json();
 * ```
 */
import { send as hostSend } from "connector:auth/http@0.1.0";
import type {
  Credential as WitCredential,
  HttpError as WitHttpError,
  Method,
  Request,
  Response as WitResponse,
} from "connector:auth/http@0.1.0";
import { errors, HttpError } from "./errors.js";

export type { Method, Request, WitCredential, WitResponse };

/**
 * A credential the host injects: the connection's OAuth access token, its API
 * key (placed as `basicAuth` says), the OAuth client credentials as Basic
 * auth, or a named host secret / secret form field (`field:<const>`) in a
 * header.
 */
export type Credential =
  | "accessToken"
  | "apiKey"
  | "clientCredentials"
  | { secret: string; header: string; prefix?: string };

/** Options of a request. */
export interface RequestOptions {
  /** Headers, as an object or as name/value pairs. */
  headers?: Record<string, string> | Array<[string, string]>;
  /** A string (sent as UTF-8), bytes, or a plain object (sent as JSON). */
  body?: string | Uint8Array | object;
  /** The credential the host injects into this request only. */
  credential?: Credential;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** At most this many characters of a body go into an error message. */
const ERROR_TEXT_LIMIT = 300;

/** The answer of the provider. */
export class HttpResponse {
  constructor(private readonly raw: WitResponse) {}

  /** The HTTP status. */
  get status(): number {
    return this.raw.status;
  }

  /** True for 2xx. */
  get ok(): boolean {
    return this.raw.status >= 200 && this.raw.status < 300;
  }

  /** The body's bytes. */
  get body(): Uint8Array {
    return this.raw.body;
  }

  /** The first header with this name (case-insensitive). */
  header(name: string): string | undefined {
    const wanted = name.toLowerCase();
    return this.raw.headers.find(([key]) => key.toLowerCase() === wanted)?.[1];
  }

  /** The body as text (invalid UTF-8 replaced). */
  text(): string {
    return decoder.decode(this.raw.body);
  }

  /** The body parsed as JSON; a provider error when it is not JSON. */
  json<T = any>(): T {
    try {
      return JSON.parse(this.text()) as T;
    } catch (error) {
      throw errors.provider({
        status: this.status,
        code: "unexpected_response",
        message: `the response is not JSON: ${(error as Error).message}`,
      });
    }
  }

  /**
   * This response when 2xx; otherwise throws what the Rust SDK's
   * `error_for_status` returns: 401 → `reauth-required`, anything else a
   * provider error with the status.
   */
  okOrThrow(): this {
    if (this.ok) return this;
    const text = this.text().slice(0, ERROR_TEXT_LIMIT);
    if (this.status === 401) throw errors.reauthRequired(`the provider answered 401: ${text}`);
    throw errors.provider({ status: this.status, message: text });
  }
}

function witCredential(credential: Credential): WitCredential {
  switch (credential) {
    case "accessToken":
      return { tag: "access-token" };
    case "apiKey":
      return { tag: "api-key" };
    case "clientCredentials":
      return { tag: "client-credentials" };
    default:
      return { tag: "host-secret", val: credential };
  }
}

function witBody(body: RequestOptions["body"]): Uint8Array | undefined {
  if (body === undefined) return undefined;
  if (typeof body === "string") return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  return encoder.encode(JSON.stringify(body));
}

function witHeaders(options: RequestOptions): Array<[string, string]> {
  const headers = Array.isArray(options.headers)
    ? [...options.headers]
    : Object.entries(options.headers ?? {});
  const isJson = options.body !== undefined && typeof options.body === "object" && !(options.body instanceof Uint8Array);
  if (isJson && !headers.some(([name]) => name.toLowerCase() === "content-type")) {
    headers.push(["content-type", "application/json"]);
  }
  return headers;
}

/** Sends one request; throws an {@link HttpError} when the host refuses it or it fails. */
export function request(method: Method, url: string, options: RequestOptions = {}): HttpResponse {
  const req: Request = {
    method,
    url,
    headers: witHeaders(options),
    body: witBody(options.body),
    credential: options.credential === undefined ? undefined : witCredential(options.credential),
  };
  try {
    return new HttpResponse(hostSend(req));
  } catch (thrown) {
    const payload = (thrown as { payload?: WitHttpError }).payload;
    throw payload ? new HttpError(payload) : thrown;
  }
}

/** `http.get(url, { credential: "apiKey" })` and friends. */
export const http = {
  request,
  get: (url: string, options?: RequestOptions) => request("get", url, options),
  head: (url: string, options?: RequestOptions) => request("head", url, options),
  post: (url: string, options?: RequestOptions) => request("post", url, options),
  put: (url: string, options?: RequestOptions) => request("put", url, options),
  patch: (url: string, options?: RequestOptions) => request("patch", url, options),
  delete: (url: string, options?: RequestOptions) => request("delete", url, options),
};
