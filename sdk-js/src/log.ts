/**
 * Logging into the host's log, tagged with the connector, version and call.
 * The host rate-limits it per call. There is no `console`: the component is
 * built without stdio, so this is the only output a connector has.
 */
import { log as hostLog } from "connector:auth/log@0.1.0";
import type { Level } from "connector:auth/log@0.1.0";

export type { Level };

function write(level: Level, parts: unknown[]): void {
  hostLog(level, parts.map((part) => (typeof part === "string" ? part : safeJson(part))).join(" "));
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** One function per level; arguments are joined with spaces (objects as JSON). */
export const log = {
  trace: (...parts: unknown[]) => write("trace", parts),
  debug: (...parts: unknown[]) => write("debug", parts),
  info: (...parts: unknown[]) => write("info", parts),
  warn: (...parts: unknown[]) => write("warn", parts),
  error: (...parts: unknown[]) => write("error", parts),
};
