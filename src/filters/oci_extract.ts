/**
 * The module inside a "compat" wasm image (Istio pkg/wasm): a Docker or OCI image whose single
 * layer, a tar (gzip-compressed or not), holds `plugin.wasm` at its root. Every size is bounded:
 * the decompressed stream is cut at `maxBytes`, so a gzip bomb cannot fill memory.
 */

const BLOCK = 512;

/** gunzip `gz`, refusing output beyond `maxBytes`. */
export async function gunzipBounded(gz: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  const ds = new DecompressionStream("gzip");
  const writer = ds.writable.getWriter();
  const written = writer.write(gz as Uint8Array<ArrayBuffer>).then(() => writer.close());
  written.catch(() => {}); // the reader reports a corrupt stream
  const reader = ds.readable.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > maxBytes) throw new RangeError(`layer decompresses to more than ${maxBytes} bytes`);
      parts.push(value);
    }
  } finally {
    await reader.cancel().catch(() => {});
    await writer.abort().catch(() => {});
  }
  await written.catch((e) => {
    throw new TypeError(`corrupt gzip layer: ${(e as Error).message}`);
  });
  return concat(parts, n);
}

export function concat(parts: readonly Uint8Array[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function field(h: Uint8Array, off: number, len: number): string {
  const end = h.subarray(off, off + len).indexOf(0);
  return new TextDecoder().decode(h.subarray(off, end < 0 ? off + len : off + end));
}

function octal(h: Uint8Array, off: number, len: number): number {
  const t = field(h, off, len).trim();
  if (!/^[0-7]*$/.test(t)) throw new TypeError("corrupt tar header (size)");
  return t === "" ? 0 : parseInt(t, 8);
}

/** PAX extended header records (`<len> key=value\n`): only `path` matters here. */
function paxPath(b: Uint8Array): string | undefined {
  const text = new TextDecoder().decode(b);
  for (const line of text.split("\n")) {
    const m = /^\d+ path=(.*)$/s.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

/** The bytes of the first regular file named `plugin.wasm` (any directory, as Istio's
 * `filepath.Base(name) == "plugin.wasm"`), or undefined when there is none. */
export function pluginFromTar(tar: Uint8Array): Uint8Array | undefined {
  let off = 0;
  let longName: string | undefined;
  while (off + BLOCK <= tar.length) {
    const h = tar.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) return undefined;
    const size = octal(h, 124, 12);
    const type = String.fromCharCode(h[156] ?? 0);
    const body = off + BLOCK;
    if (body + size > tar.length) throw new TypeError("truncated tar layer");
    const data = tar.subarray(body, body + size);
    off = body + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x" || type === "L") {
      longName = type === "x" ? paxPath(data) : field(data, 0, data.length);
      continue;
    }
    const prefix = field(h, 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    longName = undefined;
    if ((type === "0" || type === "\0") && name.split("/").pop() === "plugin.wasm") {
      return data;
    }
  }
  return undefined;
}
