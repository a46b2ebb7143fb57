/**
 * Errors as typed objects. A hook fails by throwing a {@link ConnectorError};
 * the component returns its `payload` as the WIT `connector-error`, so the host
 * maps it exactly as it maps a Rust connector's error (re-authentication, a
 * provider failure, a client error or "not supported").
 */
import type { ConnectorError as WitConnectorError, ProviderError } from "connector:auth/types@0.1.0";
import type { HttpError as WitHttpError } from "connector:auth/http@0.1.0";

export type { WitConnectorError, ProviderError, WitHttpError };

/** A hook's failure. Throw it from any hook; build it with {@link errors}. */
export class ConnectorError extends Error {
  /** The WIT value the host receives (componentize-js reads `payload`). */
  readonly payload: WitConnectorError;

  constructor(payload: WitConnectorError) {
    super(describe(payload));
    this.name = "ConnectorError";
    this.payload = payload;
  }

  /** Which case: `reauth-required`, `provider`, `bad-input`, `not-supported` or `internal`. */
  get tag(): WitConnectorError["tag"] {
    return this.payload.tag;
  }
}

function describe(error: WitConnectorError): string {
  return error.tag === "provider" ? `provider: ${error.val.message}` : `${error.tag}: ${error.val}`;
}

/** The host refused or could not complete an outbound request. */
export class HttpError extends Error {
  /** Why, as the host said it (`origin-not-allowed`, `timeout`, …). */
  readonly error: WitHttpError;

  constructor(error: WitHttpError) {
    super(`http ${error.tag}${"val" in error && error.val !== undefined ? `: ${String(error.val)}` : ""}`);
    this.name = "HttpError";
    this.error = error;
  }

  /**
   * The matching connector error, as the Rust SDK's `?` makes it: a provider
   * error with code `http`. Thrown as is, an `HttpError` becomes this.
   */
  toConnectorError(): ConnectorError {
    return errors.provider({ code: "http", message: this.message });
  }
}

/** Builds the typed errors a hook throws. */
export const errors = {
  /** The credentials are no longer accepted: the user must connect again. */
  reauthRequired: (message: string) => new ConnectorError({ tag: "reauth-required", val: message }),
  /** The CRM answered with an error. */
  provider: (error: { status?: number; code?: string; message: string }) =>
    new ConnectorError({ tag: "provider", val: error as ProviderError }),
  /** The input cannot be used (say which and why). */
  badInput: (message: string) => new ConnectorError({ tag: "bad-input", val: message }),
  /** The connector does not support this hook or this variant of it. */
  notSupported: (message: string) => new ConnectorError({ tag: "not-supported", val: message }),
  /** Any other failure inside the connector. */
  internal: (message: string) => new ConnectorError({ tag: "internal", val: message }),
};

/**
 * What a thrown value becomes at the component boundary: a `ConnectorError`
 * as is, an `HttpError` as a provider error, anything else as `internal`.
 */
export function toConnectorError(thrown: unknown): ConnectorError {
  if (thrown instanceof ConnectorError) return thrown;
  if (thrown instanceof HttpError) return thrown.toConnectorError();
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  return errors.internal(message);
}
