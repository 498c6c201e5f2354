import assert from "node:assert/strict";
import { effectiveRetry, loadIstioDocuments, parseDurationMs } from "./mod.ts";
import { isIpAddress } from "./check.ts";
import { parseIp } from "../core/mod.ts";

const BOOKINFO = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings, namespace: bookinfo }
spec:
  hosts: [ratings]
  http:
    - match: [{ headers: { end-user: { exact: jason } } }]
      fault: { abort: { percentage: { value: 100.0 }, httpStatus: 500 }, delay: { fixedDelay: 1m, percent: 10 } }
      route: [{ destination: { host: ratings, subset: v1 } }]
    - route: [{ destination: { host: ratings, subset: v1 } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: a, namespace: bookinfo }
spec:
  selector: { matchLabels: { app: ratings } }
  rules: [{ from: [{ source: { remoteIpBlocks: [10.0.0.0/8], requestPrincipals: ["*"], serviceAccounts: [bookinfo/productpage] } }] }]
`;

Deno.test("istio: multi-document files, durations, deprecated percent, new source fields", () => {
  const r = loadIstioDocuments([{ file: "bookinfo.yaml", text: BOOKINFO }]);
  assert.deepEqual(r.problems, []);
  const f = r.resources.virtualServices[0]!.http[0]!.fault!;
  assert.deepEqual(f.delay, { fixedDelayMs: 60_000, percent: 10 });
  assert.deepEqual(f.abort, { httpStatus: 500, grpcStatus: undefined, percent: 100 });
  const src = r.resources.authorizationPolicies[0]!.policy.rules[0]!.from![0]!.source;
  assert.deepEqual(src.serviceAccounts, ["bookinfo/productpage"]);
  assert.ok(Object.isFrozen(r.resources.virtualServices[0]));
});

Deno.test("istio: every problem names file, document, kind, name and path", () => {
  const r = loadIstioDocuments([{
    file: "bad.yaml",
    text: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [r]
  http:
    - route: [{ destination: { host: r }, service: x }]
      fault: { abort: { grpcStatus: NOPE, percent: 300 } }
---
kind: Gateway
metadata: { name: g }
---
workloads: []
`,
  }]);
  const all = r.problems.join("\n");
  assert.match(
    all,
    /bad\.yaml#0 VirtualService default\/r: spec\.http\[0\]\.route\[0\]\.service: unknown field/,
  );
  assert.match(
    all,
    /bad\.yaml#0 VirtualService default\/r: spec\.http\[0\]\.fault\.abort\.grpcStatus/,
  );
  assert.match(
    all,
    /bad\.yaml#0 VirtualService default\/r: spec\.http\[0\]\.fault\.abort\.percent: must be an integer 0-100/,
  );
  assert.match(all, /bad\.yaml#1 Gateway default\/g: kind: unsupported kind/);
  assert.match(all, /bad\.yaml#2: kind: the weft mesh file shape/);
});

Deno.test("istio: hostile input is reported, never thrown", () => {
  let deep = "x";
  for (let i = 0; i < 200; i++) deep = `{a: ${deep}}`;
  const texts = [
    "{{{{",
    `apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: ${deep}`,
    `apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: .nan}, {port: 1e300}, {port: "80"}]}`,
    "- 1\n- 2",
    Array.from({ length: 10_000 }, (_, i) => `kind: Pod\napiVersion: v1\nmetadata: {name: p${i}}\n`)
      .join("---\n"),
  ];
  for (const text of texts) {
    const r = loadIstioDocuments([{ file: "h.yaml", text }]);
    assert.ok(r.problems.length > 0 || r.resources.pods.length === 10_000, text.slice(0, 40));
  }
});

Deno.test("istio: durations in Istio/protobuf/Go form", () => {
  const cases: [string, number | undefined][] = [
    ["1m", 60_000],
    ["1.5s", 1500],
    ["100ms", 100],
    ["1h", 3_600_000],
    ["1h30m", 5_400_000],
    ["0.250s", 250],
    ["0", 0],
    ["-1s", undefined],
    ["1d", undefined],
    ["s", undefined],
    ["1e3s", undefined],
    ["99999999999999999999h", undefined],
  ];
  for (const [text, want] of cases) assert.equal(parseDurationMs(text), want, text);
});

Deno.test("isIpAddress: dotted quads by a loop agree with parseIp", () => {
  for (const ip of ["10.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "fe80::1", "1234:5678::9"]) {
    assert.equal(isIpAddress(ip), true, ip);
  }
  for (const bad of ["1.2.3", "1.2.3.256", "01.2.3.4", "1..2.3", "1.2.3.4.", "", "x", "1.2.3.4 "]) {
    assert.equal(isIpAddress(bad), parseIp(bad) !== undefined, bad);
    assert.equal(isIpAddress(bad), false, bad);
  }
});

Deno.test("istio: VirtualService timeout and retries, as Istio spells them", () => {
  const vs = (http: string) => ({
    file: "vs.yaml",
    text: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: ns }
spec:
  hosts: [r]
  http:
${http}`,
  });
  const ok = loadIstioDocuments([vs(`    - timeout: 1.5s
      retries: { attempts: 3, perTryTimeout: 200ms, retryOn: "gateway-error,reset,409", backoff: 10ms }
      route: [{ destination: { host: r } }]
    - retries: { attempts: 2 }
      route: [{ destination: { host: r } }]
    - timeout: 0s
      retries: { attempts: 0 }
      route: [{ destination: { host: r } }]
    - retries: { attempts: 2, retryOn: "unavailable,cancelled,deadline-exceeded,internal,resource-exhausted,retriable-status-codes,503" }
      route: [{ destination: { host: r } }]`)]);
  assert.deepEqual(ok.problems, []);
  const [a, b, c, d] = ok.resources.virtualServices[0]!.http;
  // gRPC conditions (Envoy's x-envoy-retry-grpc-on names) are valid Istio and kept.
  assert.deepEqual(d!.retries?.retryOn, [
    "unavailable",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "retriable-status-codes",
    "503",
  ]);
  assert.equal(a!.timeoutMs, 1500);
  assert.deepEqual(a!.retries, {
    attempts: 3,
    perTryTimeoutMs: 200,
    retryOn: ["gateway-error", "reset", "409"],
    backoffMs: 10,
    ignorePreviousHosts: undefined,
  });
  // No retryOn: Istio's default conditions apply (effectiveRetry), without 503 since Istio 1.24.
  assert.equal(b!.retries?.retryOn, undefined);
  assert.deepEqual(effectiveRetry(b!.retries, undefined)?.retryOn, [
    "connect-failure",
    "refused-stream",
    "unavailable",
    "cancelled",
  ]);
  // attempts 0 is kept (it turns the default off), and nothing applies.
  assert.deepEqual([c!.timeoutMs, c!.retries?.attempts], [undefined, 0]);
  assert.equal(effectiveRetry(c!.retries, undefined), undefined);
  const bad = loadIstioDocuments([
    vs(`    - retries: { attempts: -1, perTryTimeout: 0s, retryOn: "envoy-ratelimited,5xx" }
      route: [{ destination: { host: r } }]
    - retries: { retryOn: 5xx }
      route: [{ destination: { host: r } }]`),
  ]);
  const where = "vs.yaml#0 VirtualService ns/r: spec.http[0].retries";
  for (
    const w of [
      `${where}.attempts:`,
      `${where}.perTryTimeout:`,
      `${where}.retryOn: "envoy-ratelimited"`,
      // Istio's validation: settings with retries off are a mistake.
      "vs.yaml#0 VirtualService ns/r: spec.http[1].retries: http retry policy configured when " +
      "attempts are set to 0",
    ]
  ) {
    assert.ok(bad.problems.some((p) => p.startsWith(w)), `missing ${w} in ${bad.problems}`);
  }
});

Deno.test("istio: an object defined in two files is a problem until one goes (kept per cache)", () => {
  const pod = (ip: string) =>
    `apiVersion: v1\nkind: Pod\nmetadata: { name: p, namespace: ns }\nspec: {}\nstatus: { podIP: ${ip} }\n`;
  const cache = new Map();
  const a = { file: "a.yaml", text: pod("10.0.0.1") };
  const b = { file: "b.yaml", text: pod("10.0.0.2") };
  assert.deepEqual(loadIstioDocuments([a, b], cache).problems, ["Pod ns/p: defined twice"]);
  // A file named twice (given itself and through its directory) counts once.
  assert.deepEqual(loadIstioDocuments([a, b, b], new Map()).problems.length, 1);
  const one = loadIstioDocuments([a], cache);
  assert.deepEqual(one.problems, []);
  assert.equal(one.resources.pods.length, 1);
  const renamed = { file: "b.yaml", text: pod("10.0.0.2").replace("name: p", "name: q") };
  const two = loadIstioDocuments([a, renamed], cache);
  assert.deepEqual(two.problems, []);
  assert.deepEqual(two.resources.pods.map((p) => p.meta.name), ["p", "q"]);
  assert.deepEqual(loadIstioDocuments([a, b], cache).problems, ["Pod ns/p: defined twice"]);
});

Deno.test("istio: routesForSource keeps the match blocks a source's labels satisfy", async () => {
  const { routesForSource, sourceSelectors } = await import("./mod.ts");
  const r = loadIstioDocuments([{
    file: "vs.yaml",
    text: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: ns }
spec:
  hosts: [r]
  http:
    - match: [{ sourceLabels: { app: a } }, { sourceLabels: { app: b }, uri: { prefix: /b } }]
      route: [{ destination: { host: r, subset: x } }]
    - match: [{ sourceLabels: { app: c } }]
      route: [{ destination: { host: r, subset: y } }]
    - route: [{ destination: { host: r } }]`,
  }]);
  assert.deepEqual(r.problems, []);
  const http = r.resources.virtualServices[0]!.http;
  assert.equal(sourceSelectors(http).length, 3);
  const forB = routesForSource(http, { app: "b" });
  assert.equal(forB.length, 2);
  assert.deepEqual(forB[0]!.match.map((m) => [m.uri?.prefix, m.sourceLabels]), [["/b", undefined]]);
  assert.equal(routesForSource(http, {}).length, 1);
  assert.equal(routesForSource(http, { app: "c" })[0]!.route[0]!.destination.subset, "y");
});
