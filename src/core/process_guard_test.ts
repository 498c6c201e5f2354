import assert from "node:assert/strict";
import { reportUnhandled, UNHANDLED_ERROR_MSG } from "./process_guard.ts";
import { setLogSink } from "./log.ts";
import { metrics } from "./metrics.ts";
import { WeftError } from "./errors.ts";

Deno.test("process guard: an escaped error is logged once with its code and counted by kind", () => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  const count = (): number =>
    Number(
      /weft_unhandled_errors_total\{kind="rejection"\} (\d+)/.exec(metrics.render())?.[1] ?? 0,
    );
  const before = count();
  try {
    reportUnhandled("rejection", new WeftError("filter_load", "Cannot load filter x: boom"));
  } finally {
    restore();
  }
  assert.equal(count(), before + 1);
  assert.equal(lines.length, 1);
  const rec = JSON.parse(lines[0]!);
  assert.equal(rec.msg, UNHANDLED_ERROR_MSG);
  assert.equal(rec.code, "filter_load");
  assert.equal(rec.kind, "rejection");
});

Deno.test("process guard: a worker thread's load error (Bun) is counted as worker, logged at warn", () => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  const err = new Error('process.binding("tcp_wrap") is not implemented in Bun');
  err.stack = `${err.message}\n    at /$bunfs/root/worker-thread.bundle.js:780:55`;
  try {
    reportUnhandled("exception", err);
  } finally {
    restore();
  }
  const rec = JSON.parse(lines[0]!);
  assert.equal(rec.msg, "worker thread error");
  assert.equal(rec.level, "warn");
  assert.match(metrics.render(), /weft_unhandled_errors_total\{kind="worker"\} [1-9]/);
});
