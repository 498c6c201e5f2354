/** Shared helpers for the first-party config converters: path-qualified problem lists. */
import { WeftError } from "../../core/mod.ts";

export type Problems = string[];

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function checkKeys(
  obj: Record<string, unknown>,
  allowed: readonly string[],
  path: string,
  problems: Problems,
): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) problems.push(`${path}.${k}: unknown field`);
  }
}

/** undefined stays undefined; anything else must be a list of strings (numbers are stringified,
 * as Istio accepts `ports: [8080]` in YAML). */
export function listOfStrings(v: unknown, path: string, problems: Problems): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) {
    problems.push(`${path}: must be a list of strings`);
    return undefined;
  }
  return v.map((e, i) => {
    if (typeof e === "string") return e;
    if (typeof e === "number") return String(e);
    problems.push(`${path}[${i}]: must be a string`);
    return "";
  });
}

export function problemsError(what: string, problems: Problems): WeftError {
  return new WeftError("config_invalid", `Cannot convert ${what}: ${problems.join("; ")}`);
}
