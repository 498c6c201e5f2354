/** The scaffold's README shows weft.yaml as weft.yaml really is: its snippet validates, and the
 * plugin it declares becomes a component FilterRef pointing at the build output. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "../../tests/support/assert.ts";
import { scaffoldPlugin } from "../filters/mod.ts";
import { parseConfigText } from "./config.ts";
import { snapshotFromConfig } from "./snapshot_builder.ts";
import "../../tests/support/example_plugins.ts"; // warms jco before sanitized tests

Deno.test("scaffold README: the weft.yaml snippet validates and wires the filter in", () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-scaffold-readme-"));
  try {
    for (const lang of ["c", "js"] as const) {
      const root = scaffoldPlugin(`probe_${lang}`, lang, dir);
      const readme = readFileSync(join(root, "README.md"), "utf8");
      const yaml = /```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
      assert(yaml, "README has a weft.yaml snippet");
      const r = parseConfigText(yaml);
      assert(r.ok, r.ok ? "" : r.problems.join("\n"));
      const svc = snapshotFromConfig(r.config).services.find((s) => s.name === "echo")!;
      const ref = svc.inboundFilters[0]!;
      assertEquals(ref.type, "weft.component");
      assertEquals(ref.url, `file://${root}/build/probe_${lang}.wasm`);
      assert(readme.includes(`weft plugin build ${root}`));
    }
  } finally {
    rmSync(dir, { recursive: true });
  }
});
