// deno-lint-ignore-file no-console
/**
 * What the L4 authorization check (src/core/authz.ts `authorizeL4`, once per inbound HBONE
 * CONNECT) costs: 10 rules over 3 policies in the shape of plugins/authz's bench (a DENY on an
 * ip block and a namespace, an ALLOW whose 9th rule matches, an ALLOW on ports), for an allowed
 * and a denied peer; min and median µs per call over batches (robust on a busy box).
 *   deno run -A bench/l4_authz.ts   ·   bun bench/l4_authz.ts
 * `--peer <module> --rounds N`: also time the `authorizeL4` another module exports (e.g. main's
 * authz.ts written beside this one with `git show`), alternating the two N times in one run.
 */
import { authorizeL4 } from "../src/core/authz.ts";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { AuthorizationPolicy, Snapshot, Workload } from "../src/core/snapshot.ts";

const echo: Workload = {
  name: "echo",
  namespace: "default",
  serviceAccount: "echo",
  identity: "spiffe://cluster.local/ns/default/sa/echo",
  address: "10.0.1.3",
  ports: [8080],
  labels: { app: "echo" },
  mtlsMode: "PERMISSIVE",
};
const pol = (
  name: string,
  action: AuthorizationPolicy["action"],
  rules: AuthorizationPolicy["rules"],
): AuthorizationPolicy => ({
  name,
  namespace: "default",
  selector: undefined,
  dryRun: false,
  action,
  rules,
});
const policies: AuthorizationPolicy[] = [
  pol("deny-bad", "DENY", [
    { from: [{ source: { ipBlocks: ["192.168.66.0/24"] } }] },
    { from: [{ source: { namespaces: ["evil"] } }] },
  ]),
  pol("allow-apps", "ALLOW", [
    ...["a", "b", "c", "d", "e", "f", "g"].map((n) => ({
      from: [{ source: { principals: [`cluster.local/ns/${n}/sa/client`] } }],
    })),
    {
      from: [{ source: { principals: ["cluster.local/ns/default/sa/sleep"] } }],
      to: [{ operation: { ports: ["8080"] } }],
    },
  ]),
  pol("allow-metrics", "ALLOW", [{ to: [{ operation: { ports: ["15020"] } }] }]),
];
const snapshot: Snapshot = {
  version: "bench",
  node: { name: "b", hbonePort: 15008, trustDomain: "cluster.local", network: "" },
  rootNamespace: "istio-system",
  workloads: [echo],
  services: [],
  policies,
  outboundTrafficPolicy: "ALLOW_ANY",
  timeouts: { connectMs: 1000, idleMs: 0, drainMs: 1000 },
  limits: { maxConnections: 100, poolMaxStreamsPerConnection: 100, poolIdleMs: 1000 },
} as Snapshot;
const peer = (principal: string) => ({
  sourcePrincipal: principal,
  sourceIp: "10.0.2.7",
  destinationIp: echo.address,
  destinationPort: 8080,
});
const cases = [
  ["allowed (9th rule of the ALLOW)", peer("spiffe://cluster.local/ns/default/sa/sleep"), true],
  ["denied (no ALLOW matches)", peer("spiffe://cluster.local/ns/other/sa/x"), false],
] as const;
const runtime = "Bun" in globalThis ? "bun" : "deno";
type Authorize = typeof authorizeL4;
const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};
const peerPath = flag("--peer");
const rounds = Number(flag("--rounds") ?? 1);
const impls: [string, Authorize][] = [["this", authorizeL4]];
if (peerPath) {
  const mod = await import(pathToFileURL(resolve(peerPath)).href) as { authorizeL4: Authorize };
  impls.push(["peer", mod.authorizeL4]);
}

function time(authorize: Authorize, attrs: (typeof cases)[number][1]): [number, number] {
  const batch = 20_000;
  const per: number[] = [];
  for (let b = 0; b < 60; b++) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) authorize(snapshot, echo, attrs);
    per.push(((performance.now() - t0) * 1000) / batch);
  }
  per.sort((x, y) => x - y);
  return [per[0]!, per[30]!];
}

for (const [name, attrs, expect] of cases) {
  for (const [label, authorize] of impls) {
    if (authorize(snapshot, echo, attrs).allowed !== expect) {
      throw new Error(`${label} ${name}: wrong verdict`);
    }
  }
}
for (let round = 0; round < rounds; round++) {
  for (const [label, authorize] of round % 2 === 0 ? impls : [...impls].reverse()) {
    for (const [name, attrs] of cases) {
      const [min, median] = time(authorize, attrs);
      const who = impls.length > 1 ? ` [${label}]` : "";
      console.log(
        `${runtime} authorizeL4${who} ${name}: min ${min.toFixed(2)} µs, median ${
          median.toFixed(2)
        } µs`,
      );
    }
  }
}
