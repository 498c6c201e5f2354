/**
 * Config checks per filter type, run where a filter config first arrives (xDS decode, before the
 * ACK): a config a filter kind cannot convert is rejected there with its reason (a NACK) instead
 * of being acknowledged and then failing to load. Filter kinds register checks (grpc-js-xds'
 * `register()` pattern); the control path only calls `checkFilterConfig`.
 */
import type { FilterRef } from "./snapshot.ts";

/** Throws (a WeftError with the reason) when `config` cannot be used by this filter type. */
export type FilterConfigCheck = (config: unknown, ref: FilterRef) => void;

const checks = new Map<string, FilterConfigCheck>();

export function registerFilterConfigCheck(type: string, check: FilterConfigCheck): void {
  checks.set(type, check);
}

/** Run the registered check of `ref.type`, if any; throws what the check throws. */
export function checkFilterConfig(ref: FilterRef): void {
  checks.get(ref.type)?.(ref.config, ref);
}
