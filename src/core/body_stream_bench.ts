/**
 * The data path's streamed body phase (body_stream.ts `streamThrough`, on the wire-neutral readers
 * and sinks of body_source.ts): a 1 MiB body in 16 chunks of 64 KiB (and 1024 of 1 KiB) through one
 * streaming filter that passes each chunk, into a sink that drops it; peer: the same chunks handed
 * to the same filter and sink in a plain loop. The difference is what the phase machinery costs
 * per chunk (the await per filter call, trailers hand-off, framing decisions).
 * Run: deno task bench:bodies
 */
import type { Buffer } from "node:buffer";
import { Buffer as B } from "node:buffer";
import type { HttpFilter } from "./filter_api.ts";
import { streamThrough } from "./body_stream.ts";
import type { BodyReader, BodySink } from "./body_source.ts";
import { HeaderList } from "./header_map.ts";
import type { HttpRequestContext } from "./filter_api.ts";

const pass: HttpFilter = {
  name: "pass",
  failPolicy: "FAIL_CLOSE",
  wantsRequestBody: false,
  wantsResponseBody: false,
  streamsRequestBody: true,
  onRequest: () => ({ action: "continue" }),
  onResponse: () => ({ action: "continue" }),
  onRequestBodyChunk: () => ({ action: "continue" }),
  onDone: () => {},
};

const ctx = {
  direction: "inbound",
  method: "POST",
  path: "/",
  authority: "a",
  scheme: "http",
  protocol: "HTTP/1.1",
  requestHeaders: new HeaderList(),
  peer: {} as HttpRequestContext["peer"],
  requestId: "b",
  filterState: new Map(),
  requestBody: undefined,
} satisfies HttpRequestContext;

let dropped = 0;
const sink: BodySink = {
  write: (b) => {
    dropped += b.length;
    return true;
  },
  end: () => {},
};

function reader(chunks: Buffer[]): BodyReader {
  return async (onChunk) => {
    for (const c of chunks) {
      const r = onChunk(c);
      if (r instanceof Promise) await r;
    }
    return [];
  };
}

for (const [label, size, n] of [["64 KiB", 64 * 1024, 16], ["1 KiB", 1024, 1024]] as const) {
  const chunks = Array.from({ length: n }, () => B.alloc(size, 97));
  Deno.bench(`peer: ${n} × ${label} chunks to the filter and sink in a loop`, {
    group: label,
    baseline: true,
  }, () => {
    for (const c of chunks) {
      const o = pass.onRequestBodyChunk!(ctx, c, false);
      if (!(o instanceof Promise) && o.action === "continue") sink.write(c);
    }
  });
  Deno.bench(`streamThrough: ${n} × ${label} chunks, one streaming filter`, {
    group: label,
  }, async () => {
    await streamThrough(
      reader(chunks),
      sink,
      [pass],
      (f, c, e) => f.onRequestBodyChunk!(ctx, c, e),
      ctx,
    );
  });
}
