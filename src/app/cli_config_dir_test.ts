/** `configDir` in weft.yaml is read relative to the file that names it (as `parseConfigText`'s
 * `baseDir` says), not to the directory weft was started from: `weft run --config
 * /etc/weft/weft.yaml` with `configDir: istio/` reads /etc/weft/istio/. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals } from "../../tests/support/assert.ts";
import { loadConfig } from "./cli.ts";

Deno.test("loadConfig: a relative configDir is read beside the config file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-configdir-"));
  try {
    mkdirSync(join(dir, "istio"));
    writeFileSync(join(dir, "weft.yaml"), "configDir: istio/\n");
    writeFileSync(
      join(dir, "istio", "deny.yaml"),
      [
        "apiVersion: security.istio.io/v1",
        "kind: AuthorizationPolicy",
        "metadata: { name: deny-all, namespace: default }",
        "spec: { action: DENY, rules: [{}] }",
        "",
      ].join("\n"),
    );
    // The test runs from the repository root, where there is no istio/ directory.
    const config = await loadConfig(join(dir, "weft.yaml"));
    assert(config, "the config loads");
    assertEquals(config.authorizationPolicies.map((p) => p.name), ["deny-all"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
