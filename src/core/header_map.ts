/** The data path's HeaderMap: ordered lower-case pairs; small, so linear scans beat hashing. */
import type { HeaderMap } from "./filter_api.ts";

export class HeaderList implements HeaderMap {
  private pairs: [string, string][] = [];

  constructor(init?: Iterable<readonly [string, string]>) {
    if (init) { for (const [k, v] of init) this.pairs.push([k.toLowerCase(), v]); }
  }

  /** From node:http rawHeaders ([k, v, k, v, ...]). */
  static fromRaw(raw: readonly string[]): HeaderList {
    const h = new HeaderList();
    for (let i = 0; i + 1 < raw.length; i += 2) h.pairs.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
    return h;
  }

  get(name: string): string | undefined {
    for (const p of this.pairs) if (p[0] === name) return p[1];
    return undefined;
  }
  getAll(name: string): string[] {
    const out: string[] = [];
    for (const p of this.pairs) if (p[0] === name) out.push(p[1]);
    return out;
  }
  set(name: string, value: string): void {
    const n = name.toLowerCase();
    const i = this.pairs.findIndex((p) => p[0] === n);
    if (i < 0) {
      this.pairs.push([n, value]);
      return;
    }
    this.pairs[i] = [n, value];
    for (let j = i + 1; j < this.pairs.length; j++) {
      if (this.pairs[j]![0] === n) {
        this.pairs = this.pairs.filter((p, k) => k <= i || p[0] !== n);
        return;
      }
    }
  }
  add(name: string, value: string): void {
    this.pairs.push([name.toLowerCase(), value]);
  }
  remove(name: string): void {
    const n = name.toLowerCase();
    if (this.pairs.some((p) => p[0] === n)) this.pairs = this.pairs.filter((p) => p[0] !== n);
  }
  has(name: string): boolean {
    return this.pairs.some((p) => p[0] === name);
  }
  entries(): [string, string][] {
    return this.pairs.map((p) => [p[0], p[1]]);
  }
  get size(): number {
    return this.pairs.length;
  }
}
