/**
 * The data path's HeaderMap: ordered lower-case pairs; small, so linear scans beat hashing.
 * A list parsed from an HTTP/1.1 head remembers where each field's line sits in that head (its
 * span), until the field is set or replaced: an unchanged field is re-sent as its received bytes
 * (http1_codec.ts `headBytes`), with no string built or encoded for it.
 */
import type { Buffer } from "node:buffer";
import type { HeaderMap } from "./filter_api.ts";

/** name (lower case), value, and the [start, end) of the field's line in the source head when the
 * pair is as received. */
export type Field = [string, string, number?, number?];

export class HeaderList implements HeaderMap {
  private pairs: Field[] = [];
  /** The head bytes that spans point into. */
  private src: Buffer | undefined;
  /** `src` is a whole head (adopt) and `changed` tells whether a field moved since. */
  private whole = false;
  private changed = false;

  /** `spans`: [start, end) per pair of `init`, offsets into `src` (from parseHead). */
  constructor(init?: Iterable<readonly [string, string]>, src?: Buffer, spans?: readonly number[]) {
    if (!init) return;
    if (src && spans) {
      this.src = src;
      let i = 0;
      for (const [k, v] of init) {
        this.pairs.push([k.toLowerCase(), v, spans[i]!, spans[i + 1]!]);
        i += 2;
      }
      return;
    }
    for (const [k, v] of init) this.pairs.push([k.toLowerCase(), v]);
  }

  /** Takes over `fields` as parsed from `src` (names as sent: lower-cased here, in place,
   * unless the parser did already: `lowered`). */
  static adopt(src: Buffer, fields: Field[], lowered = false): HeaderList {
    const h = new HeaderList();
    if (!lowered) { for (const f of fields) f[0] = f[0].toLowerCase(); }
    h.src = src;
    h.whole = true;
    h.pairs = fields;
    return h;
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
      this.changed = true;
      return;
    }
    // The same single value again changes nothing (and keeps the field's received bytes).
    if (this.pairs[i]![1] !== value) {
      this.pairs[i] = [n, value];
      this.changed = true;
    }
    for (let j = i + 1; j < this.pairs.length; j++) {
      if (this.pairs[j]![0] === n) {
        this.pairs = this.pairs.filter((p, k) => k <= i || p[0] !== n);
        this.changed = true;
        return;
      }
    }
  }
  add(name: string, value: string): void {
    this.pairs.push([name.toLowerCase(), value]);
    this.changed = true;
  }
  remove(name: string): void {
    const n = name.toLowerCase();
    if (this.pairs.some((p) => p[0] === n)) {
      this.pairs = this.pairs.filter((p) => p[0] !== n);
      this.changed = true;
    }
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

  /** The whole head these fields were parsed from (`adopt`), while no field was set, added or
   * removed since: it can be sent as received, start line aside (http1_forward.ts). */
  receivedHead(): Buffer | undefined {
    return this.whole && !this.changed ? this.src : undefined;
  }

  /** The fields with their spans, and the head the spans point into (for serialisation; not to
   * be changed). */
  fields(): { readonly src: Buffer | undefined; readonly pairs: readonly Readonly<Field>[] } {
    return { src: this.src, pairs: this.pairs };
  }
}
