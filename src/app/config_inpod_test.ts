import assert from "node:assert/strict";
import { validateConfig } from "./config.ts";

Deno.test("config inpod: absent = off, true = defaults, every problem with its path", () => {
  const off = validateConfig({});
  assert.ok(off.ok && off.config.inpod === undefined);
  const on = validateConfig({ inpod: true });
  assert.ok(on.ok);
  assert.deepEqual(on.config.inpod, {
    socket: "/var/run/weft/zds.sock",
    stateDir: "/var/run/weft/inpod",
    removeGraceMs: 1000,
  });
  const bad = validateConfig({ inpod: { removeGrace: "soon", sockett: "/x" } });
  assert.ok(!bad.ok);
  assert.ok(bad.problems.some((p) => p.startsWith("inpod.removeGrace")), bad.problems.join("\n"));
  assert.ok(bad.problems.some((p) => p.includes("sockett")), bad.problems.join("\n"));
});
