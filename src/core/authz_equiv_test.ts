/**
 * The compiled L4 check (authz.ts + authz_compile.ts) against the direct evaluation it replaced
 * (tests/support/authz_l4_reference.ts): seeded random policy sets over awkward principals, IPs,
 * CIDRs, patterns and `when` keys must give the same decision, policy id and dry-run verdicts.
 */
import { assertEquals } from "../../tests/support/assert.ts";
import { referenceAuthorizeL4 } from "../../tests/support/authz_l4_reference.ts";
import { authorizeL4 } from "./authz.ts";
import { peerIp } from "./authz_peer.ts";
import { parseIp } from "./ip.ts";
import type { AuthorizationPolicy, PolicyRule, Snapshot, Workload } from "./snapshot.ts";

const echo: Workload = {
  name: "echo",
  namespace: "default",
  serviceAccount: "echo",
  identity: "spiffe://cluster.local/ns/default/sa/echo",
  address: "127.0.1.3",
  ports: [8080],
  labels: { app: "echo" },
  mtlsMode: "PERMISSIVE",
};
const db = {
  name: "db",
  namespace: "default",
  hostname: "db.default.svc.cluster.local",
  vips: [],
  subsets: [],
  inboundFilters: [],
  outboundFilters: [],
  ports: [{ port: 5432, targetPort: 8080, protocol: "TCP", name: "tcp" }],
  endpoints: [{ workload: "echo", namespace: "default", address: echo.address }],
};

/** mulberry32: a small seeded PRNG, so a failure names a reproducible case. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pools = {
  principals: [
    "cluster.local/ns/default/sa/sleep",
    "cluster.local/ns/other/*",
    "*/sa/client",
    "*",
    "",
    "*ns/a/sa/b*",
    "td/ns/a/sa/b/ns/c/sa/d",
  ],
  namespaces: ["default", "other", "ev*", "*", "*ault", "a", "c", "x", ""],
  serviceAccounts: ["default/sleep", "other/client", "c/d", "a/b", "x/y", "\0"],
  cidrs: [
    "127.0.1.0/24",
    "127.0.1.2",
    "10.0.0.0/8",
    "10.0.0.0/",
    "0.0.0.0/0",
    "::1",
    "::/0",
    "fd00::/8",
    "::ffff:127.0.1.2",
    "127.0.1.0/33",
    "bad",
    "127.0.1.0/24/3",
    "127.0.1.128/25",
    "127.0.1.0/x",
    "127.0.1.3/31",
    "127.0.1.0/1.5",
  ],
  ports: ["8080", "9090", "08080", "*", "80*", "*20", "15020"],
  http: ["GET", "/x", "a.example", "*"],
  whenKeys: [
    "source.principal",
    "source.namespace",
    "source.serviceAccount",
    "source.ip",
    "destination.ip",
    "destination.port",
    "request.headers[x-a]",
    "request.auth.claims[iss]",
  ],
};
const principals = [
  undefined,
  "spiffe://cluster.local/ns/default/sa/sleep",
  "spiffe://cluster.local/ns/other/sa/client",
  "spiffe://",
  "spiffe://td/ns/a/sa/b/ns/c/sa/d",
  "spiffe://td/ns/x/sa/y/z",
  "cluster.local/ns/default/sa/sleep",
  "spiffe://td/ns//sa/x",
];
const ips = [
  "127.0.1.2",
  "10.1.2.3",
  "::1",
  "::ffff:127.0.1.2",
  "fd00::5",
  "127.0.1.200",
  "nope",
  "127.0.1.02",
  "127.0.1.256",
  "0.0.0.0",
];

function generate(r: () => number): AuthorizationPolicy[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const list = <T>(xs: readonly T[]): T[] | undefined => {
    const x = r();
    if (x < 0.55) return undefined;
    if (x < 0.62) return [];
    return Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(xs));
  };
  const rare = <T>(xs: readonly T[]): T[] | undefined => r() < 0.85 ? undefined : list(xs);
  // Absent lists come as explicit `undefined` properties, as decoded configs may carry them.
  const rule = (): PolicyRule =>
    ({
      ...(r() < 0.6 && {
        from: Array.from({ length: Math.floor(r() * 3) }, () => ({
          source: {
            principals: list(pools.principals),
            notPrincipals: rare(pools.principals),
            namespaces: list(pools.namespaces),
            notNamespaces: rare(pools.namespaces),
            serviceAccounts: rare(pools.serviceAccounts),
            notServiceAccounts: rare(pools.serviceAccounts),
            ipBlocks: list(pools.cidrs),
            notIpBlocks: rare(pools.cidrs),
            remoteIpBlocks: rare(pools.cidrs),
            requestPrincipals: rare(pools.principals),
          },
        })),
      }),
      ...(r() < 0.5 && {
        to: Array.from({ length: Math.floor(r() * 3) }, () => ({
          operation: {
            ports: list(pools.ports),
            notPorts: rare(pools.ports),
            methods: rare(pools.http),
            paths: rare(pools.http),
            notHosts: rare(pools.http),
          },
        })),
      }),
      ...(r() < 0.4 && {
        when: Array.from({ length: 1 + Math.floor(r() * 2) }, () => {
          const key = pick(pools.whenKeys);
          const vals = key.endsWith(".ip")
            ? pools.cidrs
            : key === "destination.port"
            ? pools.ports
            : key === "source.serviceAccount"
            ? pools.serviceAccounts
            : key === "source.namespace"
            ? pools.namespaces
            : pools.principals;
          return { key, values: list(vals), notValues: rare(vals) };
        }),
      }),
    }) as PolicyRule;
  return Array.from({ length: Math.floor(r() * 5) }, (_, i) => ({
    name: `p${i}`,
    namespace: pick(["default", "default", "istio-system", "other"]),
    selector: pick([undefined, undefined, { app: "echo" }, { app: "other" }]),
    action: pick(["ALLOW", "ALLOW", "DENY", "AUDIT"] as const),
    dryRun: r() < 0.2,
    rules: Array.from({ length: Math.floor(r() * 4) }, rule),
    ...(r() < 0.1 && { targetServices: [pick(["db", "other"])] }),
  }));
}

Deno.test("L4 authz: the compiled check decides exactly as the direct evaluation", () => {
  let decisions = 0, allowed = 0, withDryRun = 0;
  for (let seed = 1; seed <= 1500; seed++) {
    const r = rng(seed);
    const snap = {
      version: "t",
      node: { name: "b", hbonePort: 15008, trustDomain: "cluster.local", network: "" },
      rootNamespace: "istio-system",
      workloads: [echo],
      services: [db],
      policies: generate(r),
      outboundTrafficPolicy: "ALLOW_ANY",
      timeouts: { connectMs: 1000, idleMs: 0, drainMs: 1000 },
      limits: { maxConnections: 100, poolMaxStreamsPerConnection: 100, poolIdleMs: 1000 },
    } as unknown as Snapshot;
    for (let k = 0; k < 8; k++) {
      const attrs = {
        sourcePrincipal: principals[Math.floor(r() * principals.length)],
        sourceIp: ips[Math.floor(r() * ips.length)]!,
        destinationIp: r() < 0.8 ? echo.address : "::1",
        destinationPort: [8080, 9090, 15020][Math.floor(r() * 3)]!,
      };
      const want = referenceAuthorizeL4(snap, echo, attrs);
      const got = authorizeL4(snap, echo, attrs);
      assertEquals(
        { ...got, dryRun: [...got.dryRun] },
        want,
        `seed ${seed}, peer ${JSON.stringify(attrs)}`,
      );
      decisions++;
      if (got.allowed) allowed++;
      if (got.dryRun.length > 0) withDryRun++;
    }
  }
  // The generator must exercise both outcomes and the dry-run path, or the test proves little.
  assertEquals(decisions, 12_000);
  assertEquals(allowed > 2000 && decisions - allowed > 2000, true, `allowed ${allowed}`);
  assertEquals(withDryRun > 500, true, `with dry-run verdicts ${withDryRun}`);
});

Deno.test("L4 authz: the connection's IPv4 fast path parses as parseIp does", () => {
  const r = rng(7);
  const chars = "0123456789.:af";
  const texts = [
    ...ips,
    "1.2.3",
    "1.2.3.4.5",
    "01.2.3.4",
    "1.2.3.4 ",
    "",
    ".1.2.3",
    "1..2.3",
    "255.255.255.255",
    "999.1.1.1",
    "1.2.3.1000",
    "300.2.3.4",
    "1.2.3.-4",
  ];
  for (let i = 0; i < 20_000; i++) {
    const len = 1 + Math.floor(r() * 15);
    texts.push(Array.from({ length: len }, () => chars[Math.floor(r() * chars.length)]).join(""));
    const q = () => String(Math.floor(r() * 300)).padStart(r() < 0.1 ? 2 : 1, "0");
    texts.push(`${q()}.${q()}.${q()}.${q()}`);
  }
  const plain = (ip: { v: number; bytes: ArrayLike<number> } | undefined) =>
    ip && { v: ip.v, bytes: Array.from(ip.bytes) };
  for (const t of texts) assertEquals(plain(peerIp(t)), plain(parseIp(t)), JSON.stringify(t));
});
