/**
 * One module per xDS resource type implements this: decode one `Any`, validate it, and return
 * the resource name plus a plain frozen value the translator reads. Every failure is a
 * WeftError whose message becomes part of the NACK's error_detail.
 */
import type { Any } from "@bufbuild/protobuf/wkt";
import type { JsonObject } from "@bufbuild/protobuf";
import { WeftError } from "../../core/mod.ts";
import { pooledMap } from "../string_pool.ts";

export interface Decoded<T> {
  readonly name: string;
  readonly value: T;
}

export interface ResourceType<T> {
  readonly typeUrl: string;
  decode(any: Any): Decoded<T>;
  /** Names of other resources this one needs before it can serve (warming), by type URL. */
  deps(value: T): readonly { readonly typeUrl: string; readonly name: string }[];
}

export function invalid(what: string, reason: string): WeftError {
  return new WeftError("xds_invalid_resource", `Cannot accept ${what}: ${reason}`);
}

/** `metadata.filter_metadata["weft"]` as a string map (numbers/bools stringified). */
export function weftMeta(
  md: { filterMetadata: { [k: string]: JsonObject } } | undefined,
): Record<string, unknown> {
  return md?.filterMetadata["weft"] ?? {};
}

export function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** The string entries of a metadata object, as one pooled frozen map. */
export function strMap(v: unknown): Readonly<Record<string, string>> {
  if (!v || typeof v !== "object" || Array.isArray(v)) return pooledMap({});
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === "string") out[k] = x;
  return pooledMap(out);
}

export function checkPort(what: string, port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid(what, `port ${port} must be 1-65535`);
  }
}
