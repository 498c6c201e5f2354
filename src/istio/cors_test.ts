/** VirtualService `corsPolicy` and the HTTPRoute `CORS` filter → the route's CORS, as istiod
 * translates them; invalid fields refused with their path as istio/api and the CRD do. */
import assert from "node:assert/strict";
import { Checker, parseVirtualService, Problems, routePolicies } from "./mod.ts";
import { gatewayVirtualServices, parseGatewayHttpRoute } from "./http_route.ts";
import { mergeDelegates } from "./delegate.ts";

function parse(corsPolicy: unknown) {
  const problems = new Problems();
  const vs = parseVirtualService(new Checker(problems), {
    metadata: { name: "r", namespace: "default" },
    spec: { hosts: ["echo"], http: [{ corsPolicy, route: [{ destination: { host: "echo" } }] }] },
  });
  return { vs, problems: problems.list };
}

Deno.test("corsPolicy: translated as istiod's TranslateCORSPolicy", () => {
  const { vs, problems } = parse({
    allowOrigins: [{ exact: "https://a.example" }, { prefix: "https://p." }, { regex: ".*\\.r" }],
    allowOrigin: ["ignored-when-allowOrigins-is-set"],
    allowMethods: ["GET", "POST"],
    allowHeaders: ["X-A", "x-b"],
    exposeHeaders: ["x-e"],
    maxAge: "24h",
    allowCredentials: true,
    unmatchedPreflights: "IGNORE",
  });
  assert.deepEqual(problems, []);
  const [p] = routePolicies(vs.http)!;
  assert.deepEqual(p!.cors, {
    allowOrigins: [{ exact: "https://a.example" }, { prefix: "https://p." }, { regex: ".*\\.r" }],
    allowMethods: "GET,POST",
    allowHeaders: "X-A,x-b",
    exposeHeaders: "x-e",
    maxAge: "86400",
    allowCredentials: true,
    forwardNotMatchingPreflights: false,
  });
  // The deprecated allowOrigin: exact strings; defaults forward unmatched preflights.
  const old = parse({ allowOrigin: ["https://o.example", "*"] });
  assert.deepEqual(old.problems, []);
  const [q] = routePolicies(old.vs.http)!;
  assert.deepEqual(q!.cors?.allowOrigins, [{ exact: "https://o.example" }, { exact: "*" }]);
  assert.equal(q!.cors?.forwardNotMatchingPreflights, true);
  assert.equal(q!.cors?.maxAge, "");
});

Deno.test("corsPolicy: every problem with its path", () => {
  const { problems } = parse({
    allowOrigins: [{ exact: "" }, { regex: "(" }, { exact: "a", prefix: "b" }],
    allowMethods: ["GET", "get", "FOO"],
    allowHeaders: ["ok", "bad header"],
    exposeHeaders: [""],
    maxAge: "1.5s",
    allowCredentials: "yes",
    unmatchedPreflights: "DROP",
    allowPrivateNetworkAccess: true,
  });
  const paths = problems.map((p) => p.split(":")[0]);
  for (
    const want of [
      "spec.http[0].corsPolicy.allowOrigins[0]",
      "spec.http[0].corsPolicy.allowOrigins[1].regex",
      "spec.http[0].corsPolicy.allowOrigins[2]",
      "spec.http[0].corsPolicy.allowMethods[1]",
      "spec.http[0].corsPolicy.allowMethods[2]",
      "spec.http[0].corsPolicy.allowHeaders[1]",
      "spec.http[0].corsPolicy.exposeHeaders[0]",
      "spec.http[0].corsPolicy.maxAge",
      "spec.http[0].corsPolicy.allowCredentials",
      "spec.http[0].corsPolicy.unmatchedPreflights",
      "spec.http[0].corsPolicy.allowPrivateNetworkAccess",
    ]
  ) assert.ok(paths.includes(want), `${want} in ${problems.join("; ")}`);
  assert.ok(parse({ maxAge: "0s" }).problems.some((p) => p.includes("corsPolicy.maxAge")));
});

Deno.test("corsPolicy: a delegate route without one inherits the root's (MergeHTTPRoutes)", () => {
  const problems = new Problems();
  const c = new Checker(problems);
  const root = parseVirtualService(c, {
    metadata: { name: "root", namespace: "default" },
    spec: {
      hosts: ["echo"],
      http: [{ corsPolicy: { allowOrigin: ["https://a"] }, delegate: { name: "leaf" } }],
    },
  });
  const leaf = parseVirtualService(c, {
    metadata: { name: "leaf", namespace: "default" },
    spec: { http: [{ route: [{ destination: { host: "echo" } }] }] },
  });
  assert.deepEqual(problems.list, []);
  const [merged] = mergeDelegates([root, leaf], []);
  assert.deepEqual(merged!.http[0]!.cors?.allowOrigins, [{ exact: "https://a" }]);
});

function gateway(filters: unknown[]) {
  const problems = new Problems();
  const route = parseGatewayHttpRoute(new Checker(problems), {
    metadata: { name: "r", namespace: "default" },
    spec: {
      parentRefs: [{ group: "", kind: "Service", name: "echo" }],
      rules: [{ filters, backendRefs: [{ name: "echo", port: 80 }] }],
    },
  });
  const [vs] = gatewayVirtualServices([route]);
  return { http: vs!.http, problems: problems.list };
}

Deno.test("HTTPRoute CORS: converted as istiod's createCorsFilter", () => {
  const { http, problems } = gateway([{
    type: "CORS",
    cors: {
      allowOrigins: ["*", "https://a.example", "https://p.*", "https://*.w.example:8443"],
      allowMethods: ["GET", "*"],
      allowHeaders: ["x-a"],
      exposeHeaders: ["x-e"],
      allowCredentials: true,
    },
  }]);
  assert.deepEqual(problems, []);
  const [p] = routePolicies(http)!;
  assert.deepEqual(p!.cors, {
    allowOrigins: [
      { regex: "^[a-zA-Z][a-zA-Z0-9+.-]*://[^/\\s?#]+$" },
      { exact: "https://a.example" },
      { prefix: "https://p." },
      { regex: "^https://.*\\.w\\.example:8443$" },
    ],
    allowMethods: "GET,*",
    allowHeaders: "x-a",
    exposeHeaders: "x-e",
    maxAge: "5", // the CRD's default
    allowCredentials: true,
    forwardNotMatchingPreflights: false, // istiod: UnmatchedPreflights IGNORE
  });
  const bad = gateway([
    { type: "CORS", cors: { allowMethods: ["get"], maxAge: 0, allowCredentials: false } },
    { type: "CORS", cors: {} },
  ]);
  for (
    const want of [
      "spec.rules[0].filters[0].cors.allowMethods[0]",
      "spec.rules[0].filters[0].cors.maxAge",
      "spec.rules[0].filters[0].cors.allowCredentials",
      "spec.rules[0].filters[1].type",
    ]
  ) assert.ok(bad.problems.some((p) => p.startsWith(want)), `${want} in ${bad.problems}`);
});

Deno.test("corsPolicy: an origin regex RE2 refuses (backreference, lookaround) is refused with its path", () => {
  for (const regex of ["(a)\\1", "(?=https://a).*", "(?<!evil)\\.example"]) {
    const { problems } = parse({ allowOrigins: [{ regex }] });
    assert.equal(problems.length, 1, regex);
    assert.match(problems[0]!, /^spec\.http\[0\]\.corsPolicy\.allowOrigins\[0\]\.regex: /, regex);
  }
  assert.deepEqual(parse({ allowOrigins: [{ regex: "https://([a-z]+)+\\.x" }] }).problems, []);
});
