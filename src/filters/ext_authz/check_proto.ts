/**
 * The protobuf wire form of Envoy's ext_authz gRPC API (envoy/service/auth/v3: `Authorization/
 * Check`, CheckRequest with its AttributeContext, CheckResponse), hand-written for the few fields
 * weft sends and reads: the filter host may not import src/xds's generated codecs, and a check
 * is one small message per request. The decoder is strict and bounded: any malformed or
 * oversized answer throws, which the filter treats as an authorizer error.
 */

export interface CheckPeer {
  readonly address: string;
  readonly port: number;
  readonly principal: string;
}

export interface CheckHttpRequest {
  readonly id: string;
  readonly method: string;
  /** Lower-case names; repeated headers joined with "," (Envoy). */
  readonly headers: readonly (readonly [string, string])[];
  readonly path: string;
  readonly host: string;
  readonly scheme: string;
  readonly protocol: string;
  /** Body length, or -1 when unknown (Envoy). */
  readonly size: number;
  readonly body: Uint8Array | undefined;
  readonly packAsBytes: boolean;
}

export interface CheckRequestFields {
  readonly source: CheckPeer;
  readonly destination: CheckPeer;
  readonly timeMs: number;
  readonly http: CheckHttpRequest;
}

export interface HeaderOption {
  readonly key: string;
  readonly value: string;
  readonly append: boolean;
}

export type CheckResult =
  | {
    readonly ok: true;
    readonly headers: readonly HeaderOption[];
    readonly headersToRemove: readonly string[];
    readonly responseHeadersToAdd: readonly HeaderOption[];
  }
  | {
    readonly ok: false;
    readonly code: number;
    /** 0 when the authorizer set none (the filter answers 403). */
    readonly httpStatus: number;
    readonly headers: readonly HeaderOption[];
    readonly body: string;
  };

const enc = new TextEncoder();

class Writer {
  private readonly parts: Uint8Array[] = [];
  length = 0;

  private push(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
  }

  private varint(n: number): void {
    const out: number[] = [];
    if (n < 0) {
      // int64 two's complement: ten bytes.
      let v = BigInt.asUintN(64, BigInt(n));
      while (v > 0x7fn) {
        out.push(Number(v & 0x7fn) | 0x80);
        v >>= 7n;
      }
      out.push(Number(v));
    } else {
      while (n > 0x7f) {
        out.push((n % 128) | 0x80);
        n = Math.floor(n / 128);
      }
      out.push(n);
    }
    this.push(Uint8Array.from(out));
  }

  int(field: number, n: number): this {
    if (n !== 0) {
      this.varint(field << 3);
      this.varint(n);
    }
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.varint((field << 3) | 2);
    this.varint(b.length);
    this.push(b);
    return this;
  }

  str(field: number, s: string): this {
    return s === "" ? this : this.bytes(field, enc.encode(s));
  }

  msg(field: number, w: Writer): this {
    return this.bytes(field, w.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

function peer(p: CheckPeer): Writer {
  // config.core.v3.Address{socket_address=1: SocketAddress{address=2, port_value=3}}
  const sock = new Writer().str(2, p.address).int(3, p.port);
  return new Writer().msg(1, new Writer().msg(1, sock)).str(4, p.principal);
}

/** CheckRequest{attributes=1: AttributeContext{source=1, destination=2, request=4}}. */
export function encodeCheckRequest(f: CheckRequestFields): Uint8Array {
  const h = f.http;
  const http = new Writer().str(1, h.id).str(2, h.method);
  for (const [k, v] of h.headers) http.msg(3, new Writer().str(1, k).str(2, v));
  http.str(4, h.path).str(5, h.host).str(6, h.scheme).int(9, h.size).str(10, h.protocol);
  if (h.body && h.body.length > 0) {
    if (h.packAsBytes) http.bytes(12, h.body);
    else http.str(11, new TextDecoder().decode(h.body));
  }
  const secs = Math.floor(f.timeMs / 1000);
  const time = new Writer().int(1, secs).int(2, Math.round(f.timeMs - secs * 1000) * 1_000_000);
  const request = new Writer().msg(1, time).msg(2, http);
  const attrs = new Writer().msg(1, peer(f.source)).msg(2, peer(f.destination)).msg(4, request);
  return new Writer().msg(1, attrs).finish();
}

/** Header options and strings an answer may carry at most. */
const MAX_FIELDS = 1024;
const dec = new TextDecoder("utf-8", { fatal: true });

class Reader {
  pos = 0;
  fields = 0;
  constructor(private readonly b: Uint8Array, private readonly end = b.length) {}

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error("truncated varint");
      const byte = this.b[this.pos++]!;
      n += (byte & 0x7f) * mul;
      mul *= 128;
      if ((byte & 0x80) === 0) return n;
    }
    throw new Error("varint too long");
  }

  tag(): [number, number] {
    if (++this.fields > MAX_FIELDS * 8) throw new Error("too many fields");
    const t = this.varint();
    return [Math.floor(t / 8), t & 7];
  }

  sub(): Reader {
    const len = this.varint();
    if (len > this.end - this.pos) throw new Error("length past the end");
    const r = new Reader(this.b, this.pos + len);
    r.pos = this.pos;
    this.pos += len;
    return r;
  }

  str(): string {
    const r = this.sub();
    return dec.decode(this.b.subarray(r.pos, r.end));
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 2) this.sub();
    else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (n > this.end - this.pos) throw new Error("truncated fixed field");
      this.pos += n;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}

function expect(wire: number, want: number): void {
  if (wire !== want) throw new Error(`wire type ${wire} where ${want} belongs`);
}

/** HeaderValueOption{header=1: HeaderValue{key=1, value=2}, append=2: BoolValue{value=1},
 * append_action=3 (0 APPEND_IF_EXISTS_OR_ADD, ...)}. Unset append: overwrite (Envoy). */
function headerOption(r: Reader): HeaderOption {
  let key = "";
  let value = "";
  let append = false;
  while (!r.done) {
    const [f, w] = r.tag();
    if (f === 1) {
      expect(w, 2);
      const h = r.sub();
      while (!h.done) {
        const [hf, hw] = h.tag();
        if (hf === 1 && hw === 2) key = h.str();
        else if (hf === 2 && hw === 2) value = h.str();
        else h.skip(hw);
      }
    } else if (f === 2) {
      expect(w, 2);
      const b = r.sub();
      while (!b.done) {
        const [bf, bw] = b.tag();
        if (bf === 1 && bw === 0) append = b.varint() !== 0;
        else b.skip(bw);
      }
    } else if (f === 3 && w === 0) append = r.varint() === 0;
    else r.skip(w);
  }
  return { key: key.toLowerCase(), value, append };
}

/** RFC 9110 field names (lower-cased) and values: what the authorizer names must be valid HTTP
 * before it reaches a request or a response; anything else is dropped. */
const NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const VALUE = /^[^\0\r\n]*$/;

function headerList(list: HeaderOption[], r: Reader): void {
  if (list.length >= MAX_FIELDS) throw new Error("too many headers");
  const h = headerOption(r.sub());
  if (NAME.test(h.key) && VALUE.test(h.value)) list.push(h);
}

export function decodeCheckResponse(bytes: Uint8Array): CheckResult {
  const r = new Reader(bytes);
  let code = 0;
  let httpStatus = 0;
  const headers: HeaderOption[] = [];
  const okHeaders: HeaderOption[] = [];
  const toRemove: string[] = [];
  const responseHeaders: HeaderOption[] = [];
  let body = "";
  while (!r.done) {
    const [f, w] = r.tag();
    if (f === 1) { // google.rpc.Status{code=1, message=2, details=3}
      expect(w, 2);
      const s = r.sub();
      while (!s.done) {
        const [sf, sw] = s.tag();
        if (sf === 1 && sw === 0) code = s.varint();
        else s.skip(sw);
      }
    } else if (f === 2) { // DeniedHttpResponse{status=1: HttpStatus{code=1}, headers=2, body=3}
      expect(w, 2);
      const d = r.sub();
      while (!d.done) {
        const [df, dw] = d.tag();
        if (df === 1 && dw === 2) {
          const st = d.sub();
          while (!st.done) {
            const [tf, tw] = st.tag();
            if (tf === 1 && tw === 0) httpStatus = st.varint();
            else st.skip(tw);
          }
        } else if (df === 2 && dw === 2) headerList(headers, d);
        else if (df === 3 && dw === 2) body = d.str();
        else d.skip(dw);
      }
    } else if (f === 3) { // OkHttpResponse{headers=2, headers_to_remove=5, response_headers_to_add=6}
      expect(w, 2);
      const o = r.sub();
      while (!o.done) {
        const [of, ow] = o.tag();
        if (of === 2 && ow === 2) headerList(okHeaders, o);
        else if (of === 5 && ow === 2) {
          if (toRemove.length >= MAX_FIELDS) throw new Error("too many headers to remove");
          toRemove.push(o.str().toLowerCase());
        } else if (of === 6 && ow === 2) headerList(responseHeaders, o);
        else o.skip(ow);
      }
    } else r.skip(w);
  }
  if (code === 0) {
    return {
      ok: true,
      headers: okHeaders,
      headersToRemove: toRemove,
      responseHeadersToAdd: responseHeaders,
    };
  }
  const status = httpStatus >= 200 && httpStatus <= 599 ? httpStatus : 0;
  return { ok: false, code, httpStatus: status, headers, body };
}
