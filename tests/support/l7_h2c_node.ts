/**
 * A standalone L7 service for stress tests, runnable on Deno and Bun: weft's HttpProxy (a
 * header-setting filter in its chain) in front of an HTTP/1.1 echo upstream, on 127.0.0.1:0.
 * Prints one JSON line {"ready": url, "pid": n} and runs until killed.
 */
import process from "node:process";
import { startL7 } from "./l7_harness.ts";
import type { HttpFilter } from "../../src/core/mod.ts";

const tag: HttpFilter = {
  name: "tag",
  failPolicy: "FAIL_CLOSE",
  wantsRequestBody: false,
  wantsResponseBody: false,
  onRequest: (ctx) => {
    ctx.requestHeaders.set("x-stress", "1");
    return { action: "continue" };
  },
  onResponse: () => ({ action: "continue" }),
  onDone: () => {},
};

const h = await startL7([tag]);
process.stdout.write(`${JSON.stringify({ ready: h.url, pid: process.pid })}\n`);
