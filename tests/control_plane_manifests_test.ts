/**
 * `weft control-plane --config-dir` as a real process: Kubernetes-style manifests from a watched
 * directory; a single VirtualService file is a mesh fragment; hostile edits (wrong types, huge
 * numbers, NaN, deep nesting, 10 000 documents, binary junk) are logged and the last good mesh
 * keeps serving; Istio's string gRPC status is encoded, not a crash; plaintext off loopback and
 * bad manifests at start are refused before binding.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { XdsClient } from "../src/xds/mod.ts";
import { BASE } from "../src/xds/_test_fixtures.ts";
import { meshManifests } from "./support/istio_manifests.ts";
import { runWeft, startWeft } from "./support/weft_proc.ts";

function mesh(): Record<string, unknown> {
  return {
    workloads: [
      { name: "e1", address: "127.0.9.1", node: "node-a", labels: { app: "echo", version: "v1" } },
      { name: "e2", address: "127.0.9.2", node: "node-b", labels: { app: "echo", version: "v2" } },
    ],
    services: [{
      name: "echo",
      vips: ["127.10.9.1"],
      ports: [{ port: 80, targetPort: 8080, protocol: "HTTP" }],
      subsets: [{ name: "v1", labels: { version: "v1" } }, {
        name: "v2",
        labels: { version: "v2" },
      }],
    }],
  };
}

function vs(v2: number, extra = ""): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: default }
spec:
  hosts: [echo]
  http:
    - route:
        - { destination: { host: echo, subset: v1 }, weight: ${100 - v2} }
        - { destination: { host: echo, subset: v2 }, weight: ${v2} }
${extra}`;
}

let deep = "1";
for (let i = 0; i < 300; i++) deep = `[${deep}]`;
const HOSTILE: [string, string][] = [
  ["wrong types", vs(10).replace("weight: 90", "weight: ninety")],
  ["huge number", vs(10).replace("weight: 90", "weight: 1e300")],
  ["NaN", vs(10).replace("weight: 90", "weight: .nan")],
  ["unknown field", vs(10).replace("hosts: [echo]", "hosts: [echo]\n  service: echo")],
  ["deep nesting", vs(10) + `      headers: ${deep}\n`],
  ["not YAML", "\u0000\u0001{{{: ]]"],
  [
    "10k documents",
    Array.from({ length: 10_000 }, (_, i) => `kind: Pod\nmetadata: {name: p${i}}`).join("\n---\n"),
  ],
  ["bad grpc status", vs(10, "      fault: { abort: { grpcStatus: NOT_A_CODE } }")],
];

Deno.test("control-plane --config-dir: fragments, last good mesh on hostile edits, never a crash", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weft-cp-dir-" });
  const write = async (name: string, text: string) => {
    await Deno.writeTextFile(join(dir, `.${name}.tmp`), text);
    await Deno.rename(join(dir, `.${name}.tmp`), join(dir, name));
  };
  await write("mesh.yaml", meshManifests(mesh()));
  await write("echo-vs.yaml", vs(10)); // a single VirtualService file: a mesh fragment
  const cp = await startWeft(["control-plane", "--config-dir", dir, "--address", "127.0.0.1:0"]);
  const client = new XdsClient({ server: String(cp.ready.address), nodeId: "node-a", base: BASE });
  const weights = (
    s: { services: readonly { outboundFilters: readonly { config: unknown }[] }[] },
  ) => JSON.stringify(s.services[0]?.outboundFilters.at(-1)?.config ?? null);
  try {
    client.start();
    const s1 = await client.ready();
    assert.match(weights(s1), /"weight":90.*"weight":10/);
    const loaded = await cp.waitFor((l) => l.msg === "mesh loaded");
    assert.equal((loaded.objects as Record<string, number>).virtualServices, 1);
    const REJECTED = "manifests rejected, keeping the last good mesh";
    const rejected = () => cp.lines.filter((l) => l.msg === REJECTED).length;
    for (const [what, text] of HOSTILE) {
      // A slow edit (10 000 objects) may be rejected twice (a change seen during the reload runs
      // one more): count from before each write, not from the start.
      const before = rejected();
      await write("echo-vs.yaml", text);
      await cp.waitFor(() => rejected() > before, 20_000)
        .catch(() => assert.fail(`no rejection logged for ${what}`));
    }
    // The last edit's own rejection (the one above may have been a repeat of the previous edit's).
    await cp.waitFor(
      (l) => l.msg === REJECTED && /grpcStatus: must be a gRPC status name/.test(String(l.error)),
      20_000,
    );
    const errors = cp.lines.filter((l) => l.msg === REJECTED).map((l) => String(l.error));
    assert.match(
      errors.join("\n"),
      /echo-vs\.yaml#0 VirtualService default\/echo: spec\.http\[0\]\.route\[0\]\.weight/,
    );
    assert.match(errors.join("\n"), /spec\.service: unknown field/);
    assert.match(errors.join("\n"), /grpcStatus: must be a gRPC status name/);
    // Still up, still serving the last good mesh to a new client.
    const late = new XdsClient({ server: String(cp.ready.address), nodeId: "node-b", base: BASE });
    late.start();
    try {
      assert.match(weights(await late.ready()), /"weight":90.*"weight":10/);
    } finally {
      await late.close();
    }
    // Istio's string gRPC status is valid and encodes; then a weight change goes live.
    await write(
      "echo-vs.yaml",
      vs(50, '      fault: { abort: { grpcStatus: "UNAVAILABLE", percentage: { value: 5 } } }'),
    );
    const s2 = await client.waitFor((s) => /"weight":50.*"weight":50/.test(weights(s)));
    // The fault is the route's own (route policy), not a filter of the chain.
    assert.ok(s2.services[0]!.routes?.some((r) => r.fault?.abort?.grpcStatus === 14));
  } finally {
    await client.close();
    assert.equal(await cp.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control-plane: bad manifests and plaintext off loopback are refused before binding", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weft-cp-bad-" });
  try {
    await Deno.writeTextFile(join(dir, "a.yaml"), vs(10).replace("weight: 90", "weight: -1"));
    await Deno.writeTextFile(join(dir, "old.yaml"), "workloads: []\nservices: []\n");
    const bad = await runWeft(["control-plane", "--config-dir", dir, "--address", "127.0.0.1:0"]);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /a\.yaml#0 VirtualService default\/echo: spec\.http\[0\]\.route\[0\]\.weight/,
    );
    assert.match(bad.stderr, /old\.yaml#0: kind: the weft mesh file shape/);
    const open = await runWeft(["control-plane", "--config-dir", dir, "--address", "0.0.0.0:0"]);
    assert.equal(open.code, 2);
    assert.match(open.stderr, /plaintext is for loopback only/);
    const help = await runWeft(["help"]);
    assert.match(help.stdout, /--tls/);
    assert.match(help.stdout, /--config-dir/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
