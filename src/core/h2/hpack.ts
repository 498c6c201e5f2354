/**
 * HPACK (RFC 7541) for HBONE CONNECT tunnels: a full decoder (static + dynamic table, size
 * updates, integer and string literals, Huffman) because Go/Rust peers index and Huffman-encode,
 * and a minimal encoder (literal without indexing, raw strings) because CONNECT header blocks are
 * tiny and sent once per stream, so compression would buy nothing.
 */
import { WeftError } from "../errors.ts";
import { HUFFMAN_CODES, HUFFMAN_LENGTHS, STATIC_TABLE } from "./hpack_tables.ts";

/** A decoded header list, in wire order (names are lower-case on the wire). */
export type HeaderList = [string, string][];

function hpackError(reason: string): WeftError {
  return new WeftError("h2_compression_error", `Cannot decode HPACK block: ${reason}`);
}

// Huffman decode tree as flat arrays: node i has children at left[i] / right[i]; a leaf holds
// sym[i] >= 0. Built once at load from the RFC code table.
const left: number[] = [-1];
const right: number[] = [-1];
const sym: number[] = [-1];
for (let s = 0; s < 257; s++) {
  const code = HUFFMAN_CODES[s]!;
  const len = HUFFMAN_LENGTHS[s]!;
  let node = 0;
  for (let b = len - 1; b >= 0; b--) {
    const branch = (code >>> b) & 1 ? right : left;
    let next = branch[node]!;
    if (next < 0) {
      next = left.length;
      left.push(-1);
      right.push(-1);
      sym.push(-1);
      branch[node] = next;
    }
    node = next;
  }
  sym[node] = s;
}

const utf8 = new TextDecoder();
const utf8Enc = new TextEncoder();

/** Decode a Huffman-coded string literal (RFC 7541 §5.2: padding ≤ 7 bits of ones, no EOS). */
export function huffmanDecode(src: Uint8Array): string {
  const out: number[] = [];
  let node = 0;
  let depth = 0; // bits consumed since the last emitted symbol
  let allOnes = true;
  for (const byte of src) {
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >> b) & 1;
      node = bit ? right[node]! : left[node]!;
      if (node < 0) throw hpackError("invalid Huffman code");
      depth++;
      allOnes &&= bit === 1;
      const s = sym[node]!;
      if (s >= 0) {
        if (s === 256) throw hpackError("EOS in Huffman string");
        out.push(s);
        node = 0;
        depth = 0;
        allOnes = true;
      }
    }
  }
  if (depth > 7 || !allOnes) throw hpackError("invalid Huffman padding");
  return utf8.decode(new Uint8Array(out));
}

/** Decoder state for one connection direction (the dynamic table lives as long as the session). */
export class HpackDecoder {
  #dyn: [string, string, number][] = []; // newest first; [name, value, size]
  #size = 0;
  #maxSize: number;
  /** Upper bound the peer may raise the table to: our SETTINGS_HEADER_TABLE_SIZE. */
  readonly #limit: number;

  constructor(settingsHeaderTableSize = 4096) {
    this.#maxSize = settingsHeaderTableSize;
    this.#limit = settingsHeaderTableSize;
  }

  get dynamicTableSize(): number {
    return this.#size;
  }

  /** Decode one complete header block (HEADERS + CONTINUATION payloads joined). */
  decode(block: Uint8Array, maxHeaderListBytes = 65536): HeaderList {
    const out: HeaderList = [];
    const st = { pos: 0 };
    let listBytes = 0;
    let fieldSeen = false;
    while (st.pos < block.length) {
      const b = block[st.pos]!;
      let name: string;
      let value: string;
      if (b & 0x80) {
        [name, value] = this.#lookup(readInt(block, st, 7));
      } else if ((b & 0xe0) === 0x20) {
        if (fieldSeen) throw hpackError("table size update after a field");
        const size = readInt(block, st, 5);
        if (size > this.#limit) throw hpackError(`table size ${size} above limit`);
        this.#maxSize = size;
        this.#evict(0);
        continue;
      } else {
        const incremental = (b & 0xc0) === 0x40;
        const idx = readInt(block, st, incremental ? 6 : 4);
        name = idx === 0 ? readString(block, st) : this.#lookup(idx)[0];
        value = readString(block, st);
        if (incremental) this.#insert(name, value);
      }
      fieldSeen = true;
      listBytes += name.length + value.length + 32;
      if (listBytes > maxHeaderListBytes) throw hpackError("header list too large");
      out.push([name, value]);
    }
    return out;
  }

  #lookup(idx: number): [string, string] {
    if (idx === 0) throw hpackError("index 0");
    if (idx <= STATIC_TABLE.length) {
      const e = STATIC_TABLE[idx - 1]!;
      return [e[0], e[1]];
    }
    const e = this.#dyn[idx - STATIC_TABLE.length - 1];
    if (!e) throw hpackError(`index ${idx} out of range`);
    return [e[0], e[1]];
  }

  #insert(name: string, value: string): void {
    const size = utf8Enc.encode(name).length + utf8Enc.encode(value).length + 32;
    this.#evict(size);
    if (size <= this.#maxSize) {
      this.#dyn.unshift([name, value, size]);
      this.#size += size;
    }
  }

  /** Evict oldest entries until `room` more bytes fit (an oversize entry empties the table). */
  #evict(room: number): void {
    while (this.#dyn.length > 0 && this.#size + room > this.#maxSize) {
      this.#size -= this.#dyn.pop()![2];
    }
  }
}

function readInt(buf: Uint8Array, st: { pos: number }, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  let v = buf[st.pos++]! & max;
  if (v < max) return v;
  let shift = 0;
  for (;;) {
    if (st.pos >= buf.length) throw hpackError("truncated integer");
    const b = buf[st.pos++]!;
    v += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) return v;
    if (shift > 28) throw hpackError("integer overflow");
  }
}

function readString(buf: Uint8Array, st: { pos: number }): string {
  if (st.pos >= buf.length) throw hpackError("truncated string");
  const huff = (buf[st.pos]! & 0x80) !== 0;
  const len = readInt(buf, st, 7);
  if (st.pos + len > buf.length) throw hpackError("truncated string");
  const raw = buf.subarray(st.pos, st.pos + len);
  st.pos += len;
  return huff ? huffmanDecode(raw) : utf8.decode(raw);
}

function writeInt(out: number[], first: number, prefixBits: number, v: number): void {
  const max = (1 << prefixBits) - 1;
  if (v < max) {
    out.push(first | v);
    return;
  }
  out.push(first | max);
  v -= max;
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

function writeString(out: number[], s: string): void {
  const bytes = utf8Enc.encode(s);
  writeInt(out, 0, 7, bytes.length);
  for (const b of bytes) out.push(b);
}

const staticIndex = new Map<string, number>();
STATIC_TABLE.forEach(([n, v], i) => {
  if (!staticIndex.has(n)) staticIndex.set(n, i + 1);
  staticIndex.set(`${n}\0${v}`, i + 1);
});

/**
 * Encode a header list statelessly: exact static-table matches as indexed fields, everything
 * else as "literal without indexing" with a static name index when one exists. Never touches
 * the peer's dynamic table, so no encoder state is needed.
 */
export function encodeHeaders(headers: Iterable<readonly [string, string]>): Uint8Array {
  const out: number[] = [];
  for (const [name, value] of headers) {
    const full = staticIndex.get(`${name}\0${value}`);
    if (full !== undefined) {
      writeInt(out, 0x80, 7, full);
      continue;
    }
    const nameIdx = staticIndex.get(name) ?? 0;
    writeInt(out, 0x00, 4, nameIdx);
    if (nameIdx === 0) writeString(out, name);
    writeString(out, value);
  }
  return new Uint8Array(out);
}
