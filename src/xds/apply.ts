/**
 * Applying one response's resources to the store, per resource (ztunnel's model, xds.md §11):
 * valid resources apply even when others in the same response are rejected; every rejection is
 * reported as `name: reason`; duplicates are rejected; rejected names keep their last good value.
 */
import type { Any } from "@bufbuild/protobuf/wkt";
import { errorMessage } from "../core/mod.ts";
import { RESOURCE_TYPES } from "./resources/registry.ts";
import type { ResourceStore } from "./store.ts";
import { emptyPool } from "./string_pool.ts";

export interface Incoming {
  /** Name the transport gave (Delta `Resource.name`); undefined in SotW. */
  readonly name: string | undefined;
  readonly version: string;
  readonly any: Any | undefined;
}

export interface ApplyResult {
  readonly changed: boolean;
  readonly errors: readonly string[];
  /** Names present in the response (accepted or rejected). */
  readonly seen: ReadonlySet<string>;
  /** Some resource was rejected before its name could be read (SotW). */
  readonly unnamed: boolean;
  /** Some name came twice (the response as a whole is malformed). */
  readonly duplicates: boolean;
  /** Names accepted (applied, or already held at that version). */
  readonly accepted: ReadonlySet<string>;
}

export function applyResources(
  store: ResourceStore,
  typeUrl: string,
  items: readonly Incoming[],
  accept: (name: string) => boolean,
  /** A check across resources (e.g. ECDS type_urls named by listeners): a reason rejects. */
  check?: (name: string, value: unknown) => string | undefined,
): ApplyResult {
  const type = RESOURCE_TYPES.get(typeUrl);
  const errors: string[] = [];
  const seen = new Set<string>();
  let unnamed = false;
  if (!type) {
    const accepted = new Set<string>();
    const errors = [`unknown type URL ${typeUrl}`];
    return { changed: false, errors, seen, unnamed, accepted, duplicates: false };
  }
  const held = store.of(typeUrl);
  const decoded: { name: string; version: string; value: unknown }[] = [];
  const dup = new Set<string>();
  for (const [i, it] of items.entries()) {
    const label = it.name ?? `resources[${i}]`;
    if (!it.any) {
      errors.push(`${label}: resource body is missing`);
      if (it.name) seen.add(it.name);
      else unnamed = true;
      continue;
    }
    try {
      const d = type.decode(it.any);
      if (it.name !== undefined && it.name !== d.name) {
        throw new Error(`resource name ${d.name} does not match ${it.name}`);
      }
      if (seen.has(d.name)) dup.add(d.name);
      seen.add(d.name);
      const why = check?.(d.name, d.value);
      if (why !== undefined) throw new Error(why);
      decoded.push({ name: d.name, version: it.version, value: d.value });
    } catch (err) {
      if (it.name) seen.add(it.name);
      else unnamed = true;
      errors.push(`${label}: ${errorMessage(err)}`);
    }
  }
  emptyPool();
  let changed = false;
  for (const name of dup) errors.push(`${name}: named twice in one response`);
  const accepted = new Set<string>();
  for (const d of decoded) {
    if (dup.has(d.name) || !accept(d.name)) continue;
    accepted.add(d.name);
    const old = held.get(d.name);
    if (old && old.version === d.version && d.version !== "") continue;
    held.set(d.name, { version: d.version, value: d.value });
    changed = true;
  }
  if (changed) store.touch(typeUrl);
  return { changed, errors, seen, unnamed, accepted, duplicates: dup.size > 0 };
}

export function removeResources(
  store: ResourceStore,
  typeUrl: string,
  names: Iterable<string>,
): boolean {
  const held = store.of(typeUrl);
  let changed = false;
  for (const n of names) changed = held.delete(n) || changed;
  if (changed) store.touch(typeUrl);
  return changed;
}
