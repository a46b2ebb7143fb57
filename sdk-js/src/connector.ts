/**
 * `defineConnector`: the hooks object a component exports, with the
 * optional hooks defaulted and the implemented ones recorded for the build
 * (which writes them into the `connector-hooks` custom section, as the Rust
 * `#[connector]` macro does, so the host never calls the others).
 */
import type * as Wit from "connector:auth/hooks@0.1.0";
import { errors, toConnectorError } from "./errors.js";
import { log } from "./log.js";

/** The hook signatures, generated from the WIT (`jco types`). */
type WitHooks = typeof Wit;

/** The WIT auth mode: `"oauth"` or `"api-key"`. */
export type AuthMode = Wit.AuthMode;

/**
 * A connector: `authType` (required, equal to the manifest's `auth.type`) and
 * any of the other hooks. A hook returns the WIT value or throws a
 * `ConnectorError` (see `errors`).
 */
export type Connector = { authType: AuthMode | (() => AuthMode) } & Partial<Omit<WitHooks, "authType">>;

/** Where the build finds the list of implemented hooks (camelCase names). */
export const IMPLEMENTED = Symbol.for("connector-host.implemented-hooks");

/** Every hook other than `authType`, by its JavaScript name. */
const OPTIONAL_HOOKS = [
  "oauthInfo",
  "overridingOauthOption",
  "credentialsFromTokenResponse",
  "userInfo",
  "basicAuth",
  "unauthorize",
  "refresh",
  "authValidation",
  "refreshUserInfo",
  "testConnection",
] as const satisfies ReadonlyArray<keyof WitHooks>;

/** The hooks object to export as `hooks` (or as the module's default export). */
export type Hooks = WitHooks & { [IMPLEMENTED]: string[] };

/**
 * Turns a connector into the exported hooks: every hook a function that
 * either returns its value or throws a typed error; hooks you leave out
 * answer `not-supported` (and are not listed as implemented).
 */
export function defineConnector(connector: Connector): Hooks {
  const mode = connector.authType;
  const hooks: Record<string | symbol, unknown> = {
    authType: typeof mode === "function" ? mode : () => mode,
  };
  const implemented = ["authType"];
  for (const name of OPTIONAL_HOOKS) {
    const hook = connector[name] as ((arg: unknown) => unknown) | undefined;
    if (typeof hook === "function") {
      implemented.push(name);
      hooks[name] = guarded(hook);
    } else {
      hooks[name] = () => {
        throw errors.notSupported(`this connector does not implement \`${name}\``);
      };
    }
  }
  for (const name of Object.keys(connector)) {
    if (name !== "authType" && !(OPTIONAL_HOOKS as readonly string[]).includes(name)) {
      throw new Error(`\`${name}\` is not a connector hook; the hooks are: authType, ${OPTIONAL_HOOKS.join(", ")}`);
    }
  }
  hooks[IMPLEMENTED] = implemented;
  return hooks as unknown as Hooks;
}

/**
 * Calls `hook`, turning whatever it throws into a `ConnectorError`, except
 * the engine's own failures (see {@link isEngineFailure}): those abort the
 * call, so the host reports a trap, as it does for a Rust connector whose
 * stack runs out.
 */
function guarded(hook: (arg: unknown) => unknown): (arg: unknown) => unknown {
  return (arg) => {
    try {
      return hook(arg);
    } catch (thrown) {
      if (isEngineFailure(thrown)) {
        abortCall(thrown);
      }
      throw toConnectorError(thrown);
    }
  };
}

/**
 * Whether the engine itself gave up (SpiderMonkey's `InternalError`, e.g.
 * "too much recursion"): not a failure the connector chose, so not a typed
 * connector error. (Running out of memory stays an error here: the host
 * knows its cap was hit and reports `OutOfMemory` itself.)
 */
function isEngineFailure(thrown: unknown): boolean {
  const InternalErrorClass = (globalThis as { InternalError?: new () => Error }).InternalError;
  return InternalErrorClass !== undefined && thrown instanceof InternalErrorClass;
}

/**
 * Logs why and rethrows `thrown` as is: an `Error` without a `payload`
 * escaping an export makes the component trap (componentize-js lowers only
 * a `payload` as the WIT error).
 */
function abortCall(thrown: unknown): never {
  const reason = thrown instanceof Error ? thrown.message : String(thrown);
  try {
    log.error(`the JavaScript engine stopped the hook: ${reason}; the call traps`);
  } catch {
    // The log budget or the stack may be exhausted: the trap still happens.
  }
  throw thrown;
}

/** A value of `connection.additionalInfo` (form fields, saved values), by key. */
export function additionalInfo(connection: Wit.ConnectionInfo, key: string): string | undefined {
  return connection.additionalInfo.find(([name]) => name === key)?.[1];
}
