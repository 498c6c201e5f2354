/**
 * Decisions a guest repeats are lifted once per guest instance: authz answers every denial by one
 * policy with the same 403, and building it (a body copy, a details decode, four objects) cost more
 * than evaluating the policies; traffic-split answers with a few routes. A remembered decision is
 * returned only when every byte the guest points at (status, header names and values, body,
 * details; service and subset) equals what it was built from; shared decisions are frozen (the
 * HTTP writers copy the body, never write into it).
 */
import type { FilterDecision } from "../../core/mod.ts";

export type RespondDecision = Extract<FilterDecision, { action: "respond" }>;
export type RouteDecision = Extract<FilterDecision, { action: "continue" }>;

/** Distinct responses remembered per instance (authz: one per denying policy, plus gRPC). */
const SLOTS = 8;

/** A remembered decision with the bytes it was built from (compared as bytes: char codes of a
 * concatenated string are a slow path in V8). */
interface Remembered<D> {
  readonly d: D;
  readonly bytes: readonly Uint8Array[];
}

export class RespondMemo {
  private readonly entries: Remembered<RespondDecision>[] = [];
  private next = 0;

  /** The remembered decision equal to the local-response at `ret` (layout: direct_abi.ts). */
  find(u8: Uint8Array, dv: DataView, ret: number): RespondDecision | undefined {
    const status = dv.getUint16(ret + 4, true);
    const hn = dv.getUint32(ret + 12, true);
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      const r = e.d.response;
      if (r.status === status && r.headers.length === hn && matches(u8, dv, ret, e)) return e.d;
    }
    return undefined;
  }

  /** Remembers `d` (just lifted) when its strings are ASCII (then their bytes are their char
   * codes, and equal bytes mean equal strings). */
  remember(d: RespondDecision): RespondDecision {
    const r = d.response;
    if (!(r.body instanceof Uint8Array) || !ascii(r.details)) return d;
    for (const [k, v] of r.headers) if (!ascii(k) || !ascii(v)) return d;
    for (const h of r.headers) Object.freeze(h);
    Object.freeze(r.headers);
    Object.freeze(r);
    Object.freeze(d);
    const bytes = [
      ...r.headers.flatMap(([k, v]) => [latin1(k), latin1(v)]),
      r.body,
      latin1(r.details),
    ];
    this.entries[this.next] = { d, bytes };
    this.next = (this.next + 1) % SLOTS;
    return d;
  }
}

export class RouteMemo {
  private readonly entries: Remembered<RouteDecision>[] = [];
  private next = 0;

  /** The remembered decision equal to the route at `ret` (service @4/@8, subset tag @12,
   * ptr/len @16/@20). */
  find(u8: Uint8Array, dv: DataView, ret: number): RouteDecision | undefined {
    const sp = dv.getUint32(ret + 4, true);
    const sl = dv.getUint32(ret + 8, true);
    const hasSubset = dv.getUint8(ret + 12) === 1;
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.bytes.length !== (hasSubset ? 2 : 1) || !sameBytes(u8, sp, sl, e.bytes[0]!)) continue;
      if (
        !hasSubset ||
        sameBytes(u8, dv.getUint32(ret + 16, true), dv.getUint32(ret + 20, true), e.bytes[1]!)
      ) return e.d;
    }
    return undefined;
  }

  remember(d: RouteDecision): RouteDecision {
    const r = d.route;
    if (r === undefined || !ascii(r.service) || (r.subset !== undefined && !ascii(r.subset))) {
      return d;
    }
    Object.freeze(r);
    Object.freeze(d);
    const bytes = r.subset === undefined
      ? [latin1(r.service)]
      : [latin1(r.service), latin1(r.subset)];
    this.entries[this.next] = { d, bytes };
    this.next = (this.next + 1) % SLOTS;
    return d;
  }
}

function matches(
  u8: Uint8Array,
  dv: DataView,
  ret: number,
  e: Remembered<RespondDecision>,
): boolean {
  const b = e.bytes;
  const hp = dv.getUint32(ret + 8, true);
  const hn = e.d.response.headers.length;
  if (hn > 0 && hp + hn * 16 > u8.length) return false;
  for (let i = 0; i < hn * 2; i++) {
    const at = hp + i * 8;
    if (!sameBytes(u8, dv.getUint32(at, true), dv.getUint32(at + 4, true), b[i]!)) return false;
  }
  return sameBytes(u8, dv.getUint32(ret + 16, true), dv.getUint32(ret + 20, true), b[hn * 2]!) &&
    sameBytes(u8, dv.getUint32(ret + 24, true), dv.getUint32(ret + 28, true), b[hn * 2 + 1]!);
}

/** Out-of-range pointers never match (the full lift then reports them). */
function sameBytes(u8: Uint8Array, p: number, n: number, want: Uint8Array): boolean {
  if (n !== want.length || p + n > u8.length) return false;
  for (let i = 0; i < n; i++) if (u8[p + i] !== want[i]) return false;
  return true;
}

/** An ASCII string's bytes. */
function latin1(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

function ascii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}
