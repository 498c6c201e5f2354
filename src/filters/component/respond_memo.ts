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

export class RespondMemo {
  private readonly entries: RespondDecision[] = [];
  private next = 0;

  /** The remembered decision equal to the local-response at `ret` (layout: direct_abi.ts). */
  find(u8: Uint8Array, dv: DataView, ret: number): RespondDecision | undefined {
    const status = dv.getUint16(ret + 4, true);
    const hn = dv.getUint32(ret + 12, true);
    for (let i = 0; i < this.entries.length; i++) {
      const d = this.entries[i]!;
      const r = d.response;
      if (r.status === status && r.headers.length === hn && matches(u8, dv, ret, d)) return d;
    }
    return undefined;
  }

  /** Remembers `d` (just lifted) when its strings are ASCII, so bytes compare as char codes. */
  remember(d: RespondDecision): RespondDecision {
    const r = d.response;
    if (!(r.body instanceof Uint8Array) || !ascii(r.details)) return d;
    for (const [k, v] of r.headers) if (!ascii(k) || !ascii(v)) return d;
    for (const h of r.headers) Object.freeze(h);
    Object.freeze(r.headers);
    Object.freeze(r);
    Object.freeze(d);
    this.entries[this.next] = d;
    this.next = (this.next + 1) % SLOTS;
    return d;
  }
}

export class RouteMemo {
  private readonly entries: RouteDecision[] = [];
  private next = 0;

  /** The remembered decision equal to the route at `ret` (service @4/@8, subset tag @12,
   * ptr/len @16/@20). */
  find(u8: Uint8Array, dv: DataView, ret: number): RouteDecision | undefined {
    const sp = dv.getUint32(ret + 4, true);
    const sl = dv.getUint32(ret + 8, true);
    const hasSubset = dv.getUint8(ret + 12) === 1;
    for (let i = 0; i < this.entries.length; i++) {
      const d = this.entries[i]!;
      const r = d.route!;
      if ((r.subset !== undefined) !== hasSubset || !sameStr(u8, sp, sl, r.service)) continue;
      if (
        !hasSubset ||
        sameStr(u8, dv.getUint32(ret + 16, true), dv.getUint32(ret + 20, true), r.subset!)
      ) return d;
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
    this.entries[this.next] = d;
    this.next = (this.next + 1) % SLOTS;
    return d;
  }
}

function matches(u8: Uint8Array, dv: DataView, ret: number, d: RespondDecision): boolean {
  const r = d.response;
  const hp = dv.getUint32(ret + 8, true);
  for (let i = 0; i < r.headers.length; i++) {
    const e = hp + i * 16;
    const [k, v] = r.headers[i]!;
    if (e + 16 > u8.length) return false;
    if (!sameStr(u8, dv.getUint32(e, true), dv.getUint32(e + 4, true), k)) return false;
    if (!sameStr(u8, dv.getUint32(e + 8, true), dv.getUint32(e + 12, true), v)) return false;
  }
  const body = r.body as Uint8Array;
  const bp = dv.getUint32(ret + 16, true);
  const bl = dv.getUint32(ret + 20, true);
  if (bl !== body.length || bp + bl > u8.length) return false;
  for (let i = 0; i < bl; i++) if (u8[bp + i] !== body[i]) return false;
  return sameStr(u8, dv.getUint32(ret + 24, true), dv.getUint32(ret + 28, true), r.details);
}

/** Out-of-range pointers never match (the full lift then reports them). */
function sameStr(u8: Uint8Array, p: number, n: number, s: string): boolean {
  if (n !== s.length || p + n > u8.length) return false;
  for (let i = 0; i < n; i++) if (u8[p + i] !== s.charCodeAt(i)) return false;
  return true;
}

function ascii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}
