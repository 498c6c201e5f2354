/**
 * One instance per distinct string within one xDS response. protobuf decodes every string anew,
 * so a 10 000-workload mesh held ~25 000 copies each of identities, namespaces, node names and
 * label values (every endpoint of a service names the same ones). Decoders pass the strings and
 * label maps they keep through `pooled`/`pooledMap`; apply.ts empties the pool after each
 * response, so it holds nothing while the node is idle and cannot grow with churn.
 */
let strings = new Map<string, string>();
let maps = new Map<string, Readonly<Record<string, string>>>();

export function pooled(s: string): string {
  const have = strings.get(s);
  if (have !== undefined) return have;
  strings.set(s, s);
  return s;
}

export function pooledOrUndefined(s: string | undefined): string | undefined {
  return s === undefined ? undefined : pooled(s);
}

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

/** One frozen instance per distinct string map (labels: a service's endpoints share theirs). */
export function pooledMap(m: Record<string, string>): Readonly<Record<string, string>> {
  const keys = Object.keys(m);
  if (keys.length === 0) return EMPTY;
  let key = "";
  for (const k of keys) key += `${k}\u0000${m[k]}\u0000`;
  let v = maps.get(key);
  if (!v) {
    const out: Record<string, string> = {};
    for (const k of keys) out[k] = pooled(m[k]!);
    maps.set(key, v = Object.freeze(out));
  }
  return v;
}

/** Forget everything pooled (apply.ts, after each response). */
export function emptyPool(): void {
  if (strings.size) strings = new Map();
  if (maps.size) maps = new Map();
}
