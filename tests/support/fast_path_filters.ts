/**
 * TypeScript filters for tests of the chain's synchronous fast path through the HTTP/1.1 proxy
 * (tests/l7_fast_path_test.ts), shared by the in-process (Deno) and the Bun proxy
 * (bun_fast_path_proxy.ts). Every hook counts its calls in the request's filterState, and the
 * outermost response hook reports the counts as response headers, so a hook run twice or
 * skipped by a switch from the fast path to the async one shows on the wire.
 *  - stamp (FAIL_CLOSE): synchronous; sets x-stamp on the request and x-res-stamp on the
 *    response; reports the counts.
 *  - fragile (FAIL_OPEN): synchronous; traps on /trap-open (skipped by its policy).
 *  - gate (FAIL_CLOSE): synchronous; /deny → local 403, /trap → throws (503 by its policy),
 *    /res-deny → local 451 from the response hook, /slow-headers → the request hook suspends.
 *  - upper (FAIL_CLOSE): synchronous headers, asynchronous streamed request body (each chunk
 *    upper-cased after a timer), so one request mixes both paths.
 */
import type { FilterOutcome, HttpFilter, HttpRequestContext } from "../../src/core/mod.ts";

const CONT: FilterOutcome = { action: "continue" };

function count(ctx: HttpRequestContext, key: string): void {
  ctx.filterState.set(key, ((ctx.filterState.get(key) as number | undefined) ?? 0) + 1);
}

function base(
  name: string,
  failPolicy: HttpFilter["failPolicy"],
  done: string[],
): HttpFilter {
  return {
    name,
    failPolicy,
    wantsRequestBody: false,
    wantsResponseBody: false,
    onRequest: (ctx) => (count(ctx, `req:${name}`), CONT),
    onResponse: (ctx) => (count(ctx, `res:${name}`), CONT),
    onDone: (ctx) => done.push(`${name} ${ctx.path}`),
  };
}

const pathOf = (ctx: HttpRequestContext): string => ctx.path.split("?")[0]!;

/** `done`: gets "<filter> <path>" for every onDone call (each must come once per request). */
export function fastPathFilters(done: string[] = []): HttpFilter[] {
  const stamp: HttpFilter = {
    ...base("stamp", "FAIL_CLOSE", done),
    onRequest: (ctx) => {
      count(ctx, "req:stamp");
      ctx.requestHeaders.set("x-stamp", "1");
      return CONT;
    },
    onResponse: (ctx, res) => {
      count(ctx, "res:stamp");
      res.responseHeaders.set("x-res-stamp", String(res.status));
      const calls = [...ctx.filterState].filter(([k]) => k.includes(":"))
        .map(([k, v]) => `${k}=${v}`).sort().join(",");
      res.responseHeaders.set("x-calls", calls);
      return CONT;
    },
  };
  const fragile: HttpFilter = {
    ...base("fragile", "FAIL_OPEN", done),
    onRequest: (ctx) => {
      count(ctx, "req:fragile");
      return pathOf(ctx) === "/trap-open"
        ? { action: "failed", kind: "trap", message: "fragile trapped" }
        : CONT;
    },
  };
  const gate: HttpFilter = {
    ...base("gate", "FAIL_CLOSE", done),
    onRequest: (ctx) => {
      count(ctx, "req:gate");
      const p = pathOf(ctx);
      if (p === "/deny") {
        return {
          action: "respond",
          response: { status: 403, headers: [["x-denied-by", "gate"]], body: "no\n", details: "d" },
        };
      }
      if (p === "/trap") throw new Error("gate trapped");
      if (p === "/slow-headers") {
        return new Promise((r) =>
          setTimeout(() => {
            ctx.requestHeaders.set("x-slow", "1");
            r(CONT);
          }, 5)
        );
      }
      return CONT;
    },
    onResponse: (ctx) => {
      count(ctx, "res:gate");
      if (pathOf(ctx) !== "/res-deny") return CONT;
      return {
        action: "respond",
        response: { status: 451, headers: [], body: "withheld\n", details: "res" },
      };
    },
  };
  const upper: HttpFilter = {
    ...base("upper", "FAIL_CLOSE", done),
    streamsRequestBody: true,
    onRequestBodyChunk: (ctx, chunk) => {
      count(ctx, "body:upper");
      return new Promise((r) =>
        setTimeout(() => {
          const s = new TextDecoder().decode(chunk).toUpperCase();
          r({ action: "replace", body: new TextEncoder().encode(s) });
        }, 1)
      );
    },
  };
  // Request order: stamp, fragile, gate, upper; responses run in reverse (stamp last).
  return [stamp, fragile, gate, upper];
}
