/** A bad RequestAuthentication in weft.yaml (inline `resources:`) stops `weft run` before it binds
 * anything, with every problem named by its path; a good one validates. */
import { join } from "node:path";
import { stringify } from "yaml";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { LISTENERS, loopbackBlock, runWeft } from "./support/weft_proc.ts";

function config(jwtRules: unknown, ip: (n: number) => string): string {
  return stringify({
    node: { name: "jwt-cfg" },
    listeners: LISTENERS,
    workloads: [{ name: "w", address: ip(2) }],
    resources: [{
      apiVersion: "security.istio.io/v1",
      kind: "RequestAuthentication",
      metadata: { name: "ra", namespace: "default" },
      spec: { jwtRules },
    }],
  });
}

Deno.test("config: a bad RequestAuthentication exits 1 before binding, every problem with its path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weft-jwt-cfg-" });
  const ip = loopbackBlock();
  try {
    const bad = join(dir, "bad.yaml");
    await Deno.writeTextFile(
      bad,
      config([
        { jwksUri: "file:///etc/passwd", fromHeaders: [{ prefix: "x" }] },
        { issuer: "i", jwks: "{", outputClaimToHeaders: [{ header: "a b", claim: "c" }], foo: 1 },
      ], ip),
    );
    const r = await runWeft(["run", "--config", bad]);
    assertEquals(r.code, 1, r.stderr);
    for (
      const want of [
        /resources\[0\] RequestAuthentication default\/ra: spec\.jwtRules\[0\]\.issuer: is required/,
        /spec\.jwtRules\[0\]\.jwksUri: must be an http or https URL/,
        /spec\.jwtRules\[0\]\.fromHeaders\[0\]\.name: is required/,
        /spec\.jwtRules\[1\]\.foo: unknown field/,
        /spec\.jwtRules\[1\]\.jwks: must be a JSON Web Key Set/,
        /spec\.jwtRules\[1\]\.outputClaimToHeaders\[0\]\.header: must be a header name/,
      ]
    ) assertMatch(r.stderr, want);
    assert(!/"msg":"(ready|node proxy ready)"/.test(r.stdout + r.stderr));

    const good = join(dir, "good.yaml");
    await Deno.writeTextFile(
      good,
      config([{ issuer: "https://i.example", jwksUri: "https://i.example/jwks" }], ip),
    );
    const v = await runWeft(["validate", "--config", good]);
    assertEquals(v.code, 0, v.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
