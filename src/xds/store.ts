/** The accepted xDS resources, per type URL: name → {version, value}. Mutated only by the
 * client's protocol handlers; the translator reads it to build a Snapshot. */
export interface Held {
  readonly version: string;
  readonly value: unknown;
}

export class ResourceStore {
  private readonly types = new Map<string, Map<string, Held>>();
  private readonly gens = new Map<string, number>();

  /** Bumped on every change of a type (apply.ts): readers that derive something from a whole
   * type (10 000 Address resources) skip the walk while it is unchanged. */
  generation(typeUrl: string): number {
    return this.gens.get(typeUrl) ?? 0;
  }

  touch(typeUrl: string): void {
    this.gens.set(typeUrl, this.generation(typeUrl) + 1);
  }

  of(typeUrl: string): Map<string, Held> {
    let m = this.types.get(typeUrl);
    if (!m) this.types.set(typeUrl, m = new Map());
    return m;
  }

  get<T>(typeUrl: string, name: string): T | undefined {
    return this.types.get(typeUrl)?.get(name)?.value as T | undefined;
  }

  *values<T>(typeUrl: string): Generator<[string, T]> {
    for (const [k, h] of this.of(typeUrl)) yield [k, h.value as T];
  }

  /** name → version, for Delta `initial_resource_versions`. */
  versions(typeUrl: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, h] of this.of(typeUrl)) out[k] = h.version;
    return out;
  }
}
