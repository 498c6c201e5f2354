/** `deno task demo:pods` runs end to end as root (skipped where namespaces cannot be made). */
import assert from "node:assert/strict";
import { ROOT } from "./support/weft_proc.ts";
import { topologyUnavailable } from "./support/topology.ts";
import { bunPath } from "./support/inpod_mesh.ts";

const why = topologyUnavailable() ?? (bunPath() ? undefined : "needs bun");

Deno.test({
  name: "demo:pods: capture, identities, TLS on the wire, live DENY, cleanup",
  ignore: why !== undefined,
  async fn() {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "tests/demo/demo_pods.ts"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, out + new TextDecoder().decode(r.stderr));
    assert.match(out, /TLS application-data records, marker not in the capture/);
    assert.match(out, /outcome denied/);
    assert.match(out, /demo:pods OK/);
  },
});
