// deno-lint-ignore-file no-console
/**
 * What the bench chain (bench_chain.ts) costs per request in process, with the request and
 * response contexts built as the HTTP/1.1 proxy builds them (the head parsed by the proxy's own
 * parser, a wrk-like request and nginx-like response): µs per request for both phases and
 * onDone together (parsing timed apart), and on Bun the heap objects allocated per request (a
 * bun:jsc census). `bun bench/l7/chain_cost.ts [--filters authz,fault] [--n 200000] [--managed]`
 * (`--managed`: behind ManagedFilter, as the filter host serves them); also runs on
 * Deno (`deno run -A`), without the allocation count.
 */
import process from "node:process";
import { Buffer } from "node:buffer";
import { FilterChain, type HttpResponseContext } from "../../src/core/mod.ts";
import { parseRequest } from "../../src/core/http1_request.ts";
import { upstreamHeadList } from "../../src/core/http1_upstream.ts";
import { TEST_PEER } from "../../tests/support/filter_context.ts";
import { BENCH_FILTERS, benchFilters } from "./bench_chain.ts";
import { ManagedFilter } from "../../src/filters/mod.ts";

const argv = process.argv.slice(2);
const opt = (n: string): string | undefined => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const N = Number(opt("n") ?? 200_000);
const only = opt("filters")?.split(",") ?? BENCH_FILTERS;
// `--managed`: each filter behind the filter host's ManagedFilter facade, as weft runs them.
const managed = argv.includes("--managed");
const filters = await benchFilters(only);
const chain = new FilterChain(
  managed
    ? filters.map((f) =>
      new ManagedFilter({
        name: f.name,
        type: "weft.component",
        url: undefined,
        sha256: undefined,
        config: {},
        failPolicy: f.failPolicy,
        phase: "UNSPECIFIED",
        priority: 0,
      }, f)
    )
    : filters,
);
const REQ = Buffer.from("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", "latin1");
const RES = Buffer.from(
  "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 07:00:00 GMT\r\n" +
    "Content-Type: application/octet-stream\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n",
  "latin1",
);

function one(): void {
  const { ctx } = parseRequest(REQ, TEST_PEER, "inbound");
  const v = chain.onRequest(ctx);
  if (v instanceof Promise || v.kind !== "forward") throw new Error("expected a sync forward");
  const res = upstreamHeadList(RES);
  const resCtx: HttpResponseContext = {
    status: 200,
    responseHeaders: res.headers,
    responseBody: undefined,
    bodyFollows: true,
  };
  const r = chain.onResponse(ctx, resCtx);
  if (r instanceof Promise || r.kind !== "forward") throw new Error("expected a sync forward");
  chain.onDone(ctx);
}

function parseOnly(): void {
  parseRequest(REQ, TEST_PEER, "inbound");
  upstreamHeadList(RES);
}

function time(f: () => void, n: number): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f();
  return ((performance.now() - t0) * 1000) / n;
}

// deno-lint-ignore no-explicit-any
const jsc: any = "Bun" in globalThis ? await import("bun:jsc" as string) : undefined;

time(one, N / 4); // warm up (JIT tiers)
time(parseOnly, N / 4);
const base = time(parseOnly, N);
const all = time(one, N);
console.log(
  `${"Bun" in globalThis ? "bun" : "deno"} chain [${only.join(",")}]${managed ? " managed" : ""}: ${
    (all - base).toFixed(2)
  } µs per request (filters, both phases, onDone; parse alone ${base.toFixed(2)} µs)`,
);
if (jsc) {
  // Objects allocated per request: a heap census (objectTypeCounts walks every cell, garbage
  // included) after a full collection and after a batch small enough to run without one.
  const census = (): Record<string, number> => jsc.heapStats().objectTypeCounts;
  const sum = (c: Record<string, number>): number => Object.values(c).reduce((a, b) => a + b, 0);
  jsc.fullGC();
  const before = census();
  for (let i = 0; i < 500; i++) one();
  const after = census();
  const diff = Object.entries(after).map(([k, v]) => [k, (v - (before[k] ?? 0)) / 500] as const)
    .filter(([, d]) => d > 0).sort((x, y) => y[1] - x[1]);
  console.log(
    `  ${((sum(after) - sum(before)) / 500).toFixed(1)} heap objects per request (parse + chain): ${
      diff.slice(0, 8).map(([k, d]) => `${k} ${d.toFixed(1)}`).join(", ")
    }`,
  );
}
