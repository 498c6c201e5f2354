import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { scaffoldPlugin } from "./scaffold.ts";
import { buildPlugin } from "./plugin_build.ts";
import { loadComponent } from "./component/component_loader.ts";
import { ComponentFilter } from "./component/component_filter.ts";
import { requestContext } from "../../tests/support/filter_context.ts";
import "../../tests/support/example_plugins.ts"; // warms jco before sanitized tests

Deno.test("a scaffolded C plugin builds, loads and filters", async () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-scaffold-"));
  try {
    const root = scaffoldPlugin("hello", "c", dir);
    const built = await buildPlugin(root);
    assert.equal(built.cached, false);
    assert.equal((await buildPlugin(root)).cached, true);
    const c = await loadComponent(built.bytes, { maxMemoryBytes: 16 << 20 });
    const f = await ComponentFilter.create("hello", "FAIL_CLOSE", c, {});
    const ctx = requestContext("/x");
    assert.equal((await f.onRequest(ctx)).action, "continue");
    assert.equal(ctx.requestHeaders.get("x-hello"), "1");
    const denied = await f.onRequest(requestContext("/hello/deny"));
    assert.equal(denied.action === "respond" && denied.response.status, 403);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

Deno.test("scaffolding a JS plugin writes the manifest and source; bad names are refused", () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-scaffold-"));
  try {
    const root = scaffoldPlugin("jsf", "js", dir);
    assert.deepEqual(JSON.parse(readFileSync(join(root, "plugin.json"), "utf8")), {
      name: "jsf",
      lang: "js",
      sources: ["filter.js"],
    });
    assert.match(readFileSync(join(root, "filter.js"), "utf8"), /onRequestHeaders/);
    assert.throws(() => scaffoldPlugin("Bad-Name", "c", dir), /names are/);
    assert.throws(() => scaffoldPlugin("jsf", "c", dir), /already exists/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
