/** Server side of ADS, message by message: legacy and explicit wildcard, stale nonces, NACKs
 * never answered with a resend, Delta subscribe/unsubscribe, missing names, initial versions. */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { meshYaml } from "../_test_fixtures.ts";
import {
  DeltaDiscoveryRequestSchema,
  type DeltaDiscoveryResponse,
  DiscoveryRequestSchema,
  type DiscoveryResponse,
  StatusSchema,
} from "../proto.ts";
import { CLUSTER, LISTENER, ROUTE } from "../type_urls.ts";
import { AdsServerStream } from "./ads_server.ts";
import { buildNode, type NodeResources } from "./build.ts";
import { parseMesh } from "./mesh.ts";

function setup(mode: "sotw" | "delta", v2 = 10) {
  let res: NodeResources = buildNode(parseMesh(meshYaml(v2)), "node-a");
  const out: unknown[] = [];
  const s = new AdsServerStream(mode, () => res, (m) => out.push(m));
  return {
    s,
    out,
    take: () => out.splice(0),
    set: (w: number) => (res = buildNode(parseMesh(meshYaml(w)), "node-a")),
  };
}
const sotw = (init: Record<string, unknown>) => create(DiscoveryRequestSchema, init);
const delta = (init: Record<string, unknown>) => create(DeltaDiscoveryRequestSchema, init);
const nack = create(StatusSchema, { code: 3, message: "bad" });

Deno.test("server sotw: legacy wildcard persists, ACK is silent, stale nonce ignored, NACK not resent", () => {
  const { s, take, set } = setup("sotw");
  s.onSotw(sotw({ typeUrl: LISTENER, node: { id: "node-a" } }));
  const [r1] = take() as DiscoveryResponse[];
  assert.equal(r1!.resources.length, 2);
  s.onSotw(sotw({ typeUrl: LISTENER, versionInfo: r1!.versionInfo, responseNonce: r1!.nonce }));
  assert.equal(take().length, 0, "ACK needs no answer");
  set(50); // listeners unchanged by a weight change: no LDS push
  s.pushAll();
  assert.equal(take().length, 0);
  s.onSotw(sotw({ typeUrl: ROUTE, resourceNames: ["echo.default.svc.cluster.local:80"] }));
  const [rr] = take() as DiscoveryResponse[];
  assert.equal(rr!.resources.length, 1);
  set(70);
  s.pushAll();
  const [rr2] = take() as DiscoveryResponse[];
  assert.equal(rr2!.typeUrl, ROUTE);
  s.onSotw(
    sotw({
      typeUrl: ROUTE,
      resourceNames: ["echo.default.svc.cluster.local:80"],
      responseNonce: rr!.nonce,
    }),
  );
  assert.equal(take().length, 0, "stale nonce is not answered");
  s.onSotw(
    sotw({
      typeUrl: ROUTE,
      resourceNames: ["echo.default.svc.cluster.local:80"],
      responseNonce: rr2!.nonce,
      versionInfo: rr!.versionInfo,
      errorDetail: nack,
    }),
  );
  assert.equal(take().length, 0, "no resend after NACK");
  assert.equal(s.nacks, 1);
});

Deno.test("server sotw: explicit names only; '*' plus a name", () => {
  const { s, take } = setup("sotw");
  s.onSotw(
    sotw({ typeUrl: CLUSTER, resourceNames: ["outbound|5432||db.default.svc.cluster.local"] }),
  );
  assert.equal((take()[0] as DiscoveryResponse).resources.length, 1);
  s.onSotw(sotw({ typeUrl: LISTENER, resourceNames: ["*", "nope"] }));
  assert.equal((take()[0] as DiscoveryResponse).resources.length, 2);
});

Deno.test("server delta: wildcard, forced resend of subscribed names, missing → removed, initial versions", () => {
  const { s, take, set } = setup("delta");
  s.onDelta(delta({ typeUrl: CLUSTER, resourceNamesSubscribe: ["*"] }));
  const [r1] = take() as DeltaDiscoveryResponse[];
  assert.equal(r1!.resources.length, 4);
  s.onDelta(delta({ typeUrl: CLUSTER, responseNonce: r1!.nonce }));
  assert.equal(take().length, 0);
  s.onDelta(
    delta({
      typeUrl: ROUTE,
      resourceNamesSubscribe: ["echo.default.svc.cluster.local:80", "missing"],
    }),
  );
  const [r2] = take() as DeltaDiscoveryResponse[];
  assert.deepEqual(r2!.resources.map((r) => r.name), ["echo.default.svc.cluster.local:80"]);
  assert.deepEqual(r2!.removedResources, ["missing"]);
  set(40);
  s.pushAll();
  const [r3] = take() as DeltaDiscoveryResponse[];
  assert.equal(r3!.typeUrl, ROUTE, "only the changed route is pushed");
  s.onDelta(
    delta({ typeUrl: ROUTE, resourceNamesUnsubscribe: ["echo.default.svc.cluster.local:80"] }),
  );
  const [r4] = take() as DeltaDiscoveryResponse[];
  assert.deepEqual(r4!.removedResources, ["echo.default.svc.cluster.local:80"]);

  // A new stream that already holds the current clusters gets nothing resent for them.
  const fresh = setup("delta", 40);
  const versions = Object.fromEntries(r1!.resources.map((r) => [r.name, r.version]));
  fresh.s.onDelta(
    delta({ typeUrl: CLUSTER, resourceNamesSubscribe: ["*"], initialResourceVersions: versions }),
  );
  const [f1] = fresh.take() as DeltaDiscoveryResponse[];
  assert.equal(f1!.resources.length, 0);
  assert.equal(f1!.removedResources.length, 0);
  fresh.s.onDelta(delta({ typeUrl: CLUSTER, responseNonce: f1!.nonce, errorDetail: nack }));
  assert.equal(fresh.s.nacks, 1);
  assert.equal(fresh.take().length, 0);
});

Deno.test("server delta: a name unsubscribed but still under the wildcard is sent again; one not covered is removed", () => {
  const { s, take } = setup("delta");
  const c = "outbound|5432||db.default.svc.cluster.local";
  s.onDelta(delta({ typeUrl: CLUSTER, resourceNamesSubscribe: ["*", c] }));
  const [r1] = take() as DeltaDiscoveryResponse[];
  s.onDelta(delta({ typeUrl: CLUSTER, responseNonce: r1!.nonce }));
  s.onDelta(delta({ typeUrl: CLUSTER, resourceNamesUnsubscribe: [c] }));
  const [r2] = take() as DeltaDiscoveryResponse[];
  assert.deepEqual(r2!.resources.map((r) => r.name), [c], "covered by '*': in resources");
  assert.deepEqual(r2!.removedResources, []);
  s.onDelta(delta({ typeUrl: CLUSTER, resourceNamesUnsubscribe: ["*"] }));
  const [r3] = take() as DeltaDiscoveryResponse[];
  assert.equal(r3!.resources.length, 0);
  assert.equal(r3!.removedResources.length, 4, "nothing subscribed any more: all removed");
});

Deno.test("server: the node is read from the first message only, even when that one has none", () => {
  for (const mode of ["sotw", "delta"] as const) {
    const { s } = setup(mode);
    const first = { typeUrl: CLUSTER, resourceNamesSubscribe: ["*"], resourceNames: ["*"] };
    if (mode === "sotw") s.onSotw(sotw({ typeUrl: CLUSTER }));
    else s.onDelta(delta(first));
    const later = { typeUrl: LISTENER, node: { id: "someone-else" } };
    if (mode === "sotw") s.onSotw(sotw(later));
    else s.onDelta(delta(later));
    assert.equal(s.nodeId, "", `${mode}: a later node does not change the stream's identity`);
  }
});

Deno.test("server sotw: a removed cluster leaves only after listeners and routes were pushed (make-before-break)", () => {
  const full = buildNode(parseMesh(meshYaml(10)), "node-a");
  let res: NodeResources = full;
  const out: DiscoveryResponse[] = [];
  const s = new AdsServerStream("sotw", () => res, (m) => out.push(m as DiscoveryResponse));
  s.onSotw(sotw({ typeUrl: CLUSTER, node: { id: "node-a" } }));
  s.onSotw(sotw({ typeUrl: LISTENER }));
  const [c1, l1] = out.splice(0);
  s.onSotw(sotw({ typeUrl: CLUSTER, versionInfo: c1!.versionInfo, responseNonce: c1!.nonce }));
  s.onSotw(sotw({ typeUrl: LISTENER, versionInfo: l1!.versionInfo, responseNonce: l1!.nonce }));
  const gone = "outbound|5432||db.default.svc.cluster.local";
  const clusters = new Map(full.get(CLUSTER)!);
  clusters.delete(gone);
  const listeners = new Map([...full.get(LISTENER)!].filter(([n]) => !n.startsWith("db.")));
  res = new Map([...full, [CLUSTER, clusters], [LISTENER, listeners]]);
  s.pushAll();
  const pushed = out.splice(0);
  // The clusters with the stale one kept are what the client has: no first CDS push.
  assert.deepEqual(pushed.map((r) => r.typeUrl), [LISTENER, CLUSTER], "listeners first");
  assert.equal(pushed[1]!.resources.length, c1!.resources.length - 1, "then the cluster goes");
  s.pushAll();
  assert.equal(out.length, 0, "nothing more to send");
});

Deno.test("server delta: ztunnel on-demand (subscribe and unsubscribe '*' at once) gets nothing, then what it names", () => {
  const { s, take } = setup("delta");
  s.onDelta(
    delta({ typeUrl: CLUSTER, resourceNamesSubscribe: ["*"], resourceNamesUnsubscribe: ["*"] }),
  );
  const [r1] = take() as DeltaDiscoveryResponse[];
  assert.equal(r1!.resources.length, 0, "subscribed to nothing");
  const c = "outbound|5432||db.default.svc.cluster.local";
  s.onDelta(delta({ typeUrl: CLUSTER, resourceNamesSubscribe: [c] }));
  const [r2] = take() as DeltaDiscoveryResponse[];
  assert.deepEqual(r2!.resources.map((r) => r.name), [c]);
});
