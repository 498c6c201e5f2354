/**
 * The contract every `HttpFilter` implementation runs (component filters, proxy-wasm filters,
 * ...). Each implementation supplies fixtures built from real guests; the suite checks the
 * behaviour the data path relies on: decisions not exceptions, header changes visible to the
 * chain, local responses, traps as `failed` outcomes, and recovery after a trap.
 */
import assert from "node:assert/strict";
import type { FilterOutcome, HttpFilter } from "../../src/core/mod.ts";
import { requestContext, responseContext } from "./filter_context.ts";

export interface ContractFixtures {
  /** Sets request header `x-contract: yes` and continues. */
  headerSetter(): Promise<HttpFilter>;
  /** Answers a request for `/deny` with a local 403 response; continues otherwise. */
  denier(): Promise<HttpFilter>;
  /** Traps on a request for `/trap` (FAIL_CLOSE); continues otherwise. */
  trapper(): Promise<HttpFilter>;
}

async function settle(o: FilterOutcome | Promise<FilterOutcome>): Promise<FilterOutcome> {
  return await o;
}

export function filterContract(
  impl: string,
  fx: ContractFixtures,
  opts: { ignore?: boolean } = {},
): void {
  const t = (name: string, fn: () => Promise<void>): void => {
    Deno.test({ name: `[contract ${impl}] ${name}`, ignore: opts.ignore ?? false, fn });
  };

  t("a request-header change is visible to the data path", async () => {
    const f = await fx.headerSetter();
    const ctx = requestContext("/x", [["host", "a"]]);
    const out = await settle(f.onRequest(ctx));
    assert.equal(out.action, "continue");
    assert.equal(ctx.requestHeaders.get("x-contract"), "yes");
    const res = responseContext(200);
    assert.equal((await settle(f.onResponse(ctx, res))).action, "continue");
    f.onDone(ctx);
  });

  t("a local response carries status, headers and body", async () => {
    const f = await fx.denier();
    const out = await settle(f.onRequest(requestContext("/deny")));
    assert.equal(out.action, "respond");
    if (out.action !== "respond") return;
    assert.equal(out.response.status, 403);
    assert.ok(out.response.body.length > 0);
    assert.equal((await settle(f.onRequest(requestContext("/ok")))).action, "continue");
  });

  t("a trap is a failed outcome, never an exception, and the filter recovers", async () => {
    const f = await fx.trapper();
    assert.equal(f.failPolicy, "FAIL_CLOSE");
    const out = await settle(f.onRequest(requestContext("/trap")));
    assert.equal(out.action, "failed");
    if (out.action === "failed") assert.equal(out.kind, "trap");
    const next = await settle(f.onRequest(requestContext("/fine")));
    assert.equal(next.action, "continue");
  });

  t("interleaved requests keep their own header maps", async () => {
    const f = await fx.headerSetter();
    const ctxs = Array.from({ length: 20 }, (_, i) => requestContext(`/r${i}`));
    const outs = await Promise.all(ctxs.map((c) => settle(f.onRequest(c))));
    assert.ok(outs.every((o) => o.action === "continue"));
    assert.ok(ctxs.every((c) => c.requestHeaders.get("x-contract") === "yes"));
  });
}
