/**
 * The operator's read-only, non-secret configuration for this connector
 * (e.g. a default region). Secrets are never here: name them in a request's
 * `credential` instead.
 */
import { get, getAll } from "connector:auth/config@0.1.0";

export const config = {
  /** The value of one key, or `undefined` when the operator did not set it. */
  get: (key: string): string | undefined => get(key),
  /** Every key and value. */
  all: (): Record<string, string> => Object.fromEntries(getAll()),
};
