/** Client protocol, message by message (xds.md §4-§9), against resources the embedded control
 * plane builds plus hand-made malformed and contradictory ones. */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { buildNode } from "./control_plane/build.ts";
import { parseMesh } from "./control_plane/mesh.ts";
import { meshYaml } from "./_test_fixtures.ts";
import {
  type DeltaDiscoveryRequest,
  DeltaDiscoveryResponseSchema,
  type DiscoveryRequest,
  DiscoveryResponseSchema,
  NodeSchema,
  RouteConfigurationSchema,
} from "./proto.ts";
import { AdsStreamProtocol, type Outgoing, ProtocolState } from "./protocol.ts";
import { ResourceStore } from "./store.ts";
import { ADDRESS, AUTHORIZATION, CLUSTER, ENDPOINT, LISTENER, ROUTE } from "./type_urls.ts";

const node = create(NodeSchema, { id: "node-a" });
const built = buildNode(parseMesh(meshYaml(10)), "node-a");
const anys = (t: string) => [...built.get(t)!.values()].map((b) => b.any);
const names = (t: string) => [...built.get(t)!.keys()];
const garbage = {
  $typeName: "google.protobuf.Any",
  typeUrl: LISTENER,
  value: new Uint8Array([0xff, 0xff]),
} as const;

function setup(mode: "sotw" | "delta") {
  const sent: Outgoing[] = [];
  const state = new ProtocolState(new ResourceStore());
  const p = new AdsStreamProtocol(mode, node, state, (m) => sent.push(m));
  return { sent, state, p, take: () => sent.splice(0) };
}

Deno.test("sotw: first requests carry node once, wildcard types in make-before-break order", () => {
  const { p, take } = setup("sotw");
  p.start();
  const reqs = take() as DiscoveryRequest[];
  assert.deepEqual(reqs.map((r) => r.typeUrl), [CLUSTER, ADDRESS, AUTHORIZATION, LISTENER]);
  assert.equal(reqs[0]!.node?.id, "node-a");
  assert.ok(reqs.slice(1).every((r) => r.node === undefined));
  assert.ok(
    reqs.every((r) =>
      r.resourceNames.length === 0 && r.versionInfo === "" && r.responseNonce === ""
    ),
  );
});

Deno.test("sotw: ACK, then NACK keeps previous version, names every rejection, applies the rest", () => {
  const { p, state, take } = setup("sotw");
  p.start();
  take();
  const ok = p.onSotw(
    create(DiscoveryResponseSchema, {
      typeUrl: CLUSTER,
      versionInfo: "v1",
      nonce: "n1",
      resources: anys(CLUSTER),
    }),
  );
  assert.equal(ok.nack, undefined);
  const [ack, eds] = take() as DiscoveryRequest[];
  assert.equal(ack!.typeUrl, CLUSTER);
  assert.equal(ack!.versionInfo, "v1");
  assert.equal(ack!.responseNonce, "n1");
  assert.equal(ack!.errorDetail, undefined);
  // The clusters' EDS names are subscribed next (no nonce yet for EDS).
  assert.equal(eds!.typeUrl, ENDPOINT);
  assert.deepEqual([...eds!.resourceNames].sort(), names(ENDPOINT).sort());

  const c0 = anys(CLUSTER)[0]!;
  const bad = { ...garbage, typeUrl: CLUSTER };
  const out = p.onSotw(create(DiscoveryResponseSchema, {
    typeUrl: CLUSTER,
    versionInfo: "v2",
    nonce: "n2",
    resources: [c0, bad, anys(CLUSTER)[1]!, anys(CLUSTER)[1]!],
  }));
  assert.ok(out.nack);
  const [nack] = take() as DiscoveryRequest[];
  assert.equal(nack!.versionInfo, "v1", "NACK carries the previous accepted version");
  assert.equal(nack!.responseNonce, "n2");
  assert.equal(nack!.errorDetail?.code, 3);
  assert.match(nack!.errorDetail!.message, /resources\[1\]: Cannot decode/);
  assert.match(nack!.errorDetail!.message, /named twice/);
  assert.equal(state.accepted.get(CLUSTER), "v1");
  // Full-state: the valid c0 stays; the duplicated name keeps its last good value.
  assert.ok(state.store.of(CLUSTER).has(names(CLUSTER)[0]!));
  assert.ok(state.store.of(CLUSTER).has(names(CLUSTER)[1]!));
});

Deno.test("sotw: LDS is full state (absent = removed) and unreferenced routes are dropped", () => {
  const { p, state, take } = setup("sotw");
  p.start();
  p.onSotw(
    create(DiscoveryResponseSchema, {
      typeUrl: LISTENER,
      versionInfo: "1",
      nonce: "a",
      resources: anys(LISTENER),
    }),
  );
  const rds = (take() as DiscoveryRequest[]).find((r) => r.typeUrl === ROUTE)!;
  assert.deepEqual(rds.resourceNames, ["echo.default.svc.cluster.local:80"]);
  p.onSotw(
    create(DiscoveryResponseSchema, {
      typeUrl: ROUTE,
      versionInfo: "r1",
      nonce: "b",
      resources: anys(ROUTE),
    }),
  );
  take();
  assert.equal(state.store.of(ROUTE).size, 1);
  const dbOnly = anys(LISTENER).filter((_, i) => names(LISTENER)[i]!.startsWith("db."));
  p.onSotw(
    create(DiscoveryResponseSchema, {
      typeUrl: LISTENER,
      versionInfo: "2",
      nonce: "c",
      resources: dbOnly,
    }),
  );
  const [ack, unsub] = take() as DiscoveryRequest[];
  assert.equal(ack!.versionInfo, "2");
  assert.deepEqual([...state.store.of(LISTENER).keys()], ["db.default.svc.cluster.local:5432"]);
  assert.equal(unsub!.typeUrl, ROUTE);
  assert.deepEqual(unsub!.resourceNames, [], "explicit-then-empty means nothing");
  assert.equal(unsub!.responseNonce, "b", "carries the latest nonce of its type");
  assert.equal(state.store.of(ROUTE).size, 0);
});

Deno.test("sotw: resources not asked for are ignored; unknown type URLs are NACKed", () => {
  const { p, state, take } = setup("sotw");
  p.start();
  p.onSotw(
    create(DiscoveryResponseSchema, {
      typeUrl: ROUTE,
      versionInfo: "1",
      nonce: "x",
      resources: anys(ROUTE),
    }),
  );
  assert.equal(state.store.of(ROUTE).size, 0);
  take();
  const out = p.onSotw(
    create(DiscoveryResponseSchema, {
      typeUrl: "type.googleapis.com/foo.Bar",
      versionInfo: "1",
      nonce: "y",
    }),
  );
  assert.match(out.nack!, /unknown type URL/);
  assert.equal((take()[0] as DiscoveryRequest).errorDetail?.code, 3);
});

Deno.test("delta: ACK/NACK by nonce, per-resource rejection, removals, resubscribe with versions", () => {
  const { p, state, take } = setup("delta");
  p.start();
  const first = take() as DeltaDiscoveryRequest[];
  assert.deepEqual(first.map((r) => r.resourceNamesSubscribe), [["*"], ["*"], ["*"], ["*"]]);
  assert.equal(first[0]!.node?.id, "node-a");
  const res = (n: string, v: string, any = built.get(CLUSTER)!.get(n)!.any) => ({
    name: n,
    version: v,
    resource: any,
  });
  const [c0, c1] = names(CLUSTER);
  p.onDelta(
    create(DeltaDiscoveryResponseSchema, {
      typeUrl: CLUSTER,
      nonce: "d1",
      resources: [res(c0!, "1"), res(c1!, "1")],
    }),
  );
  const [ack, sub] = take() as DeltaDiscoveryRequest[];
  assert.equal(ack!.responseNonce, "d1");
  assert.equal(ack!.errorDetail, undefined);
  assert.equal(sub!.typeUrl, ENDPOINT);
  assert.equal(sub!.responseNonce, "", "a spontaneous subscription change has no nonce");
  assert.deepEqual(sub!.resourceNamesSubscribe, [c0, c1]);

  // One malformed, one contradictory (weights sum to 0), one valid: the valid one applies.
  const route0 = create(RouteConfigurationSchema, {
    name: "r0",
    virtualHosts: [{
      name: "v",
      domains: ["a"],
      routes: [{
        match: { pathSpecifier: { case: "prefix", value: "/" } },
        action: {
          case: "route",
          value: {
            clusterSpecifier: {
              case: "weightedClusters",
              value: { clusters: [{ name: c0!, weight: 0 }] },
            },
          },
        },
      }],
    }],
  });
  const out = p.onDelta(create(DeltaDiscoveryResponseSchema, {
    typeUrl: CLUSTER,
    nonce: "d2",
    resources: [res(c0!, "2", { ...garbage, typeUrl: CLUSTER }), res(c1!, "2")],
  }));
  assert.match(out.nack!, new RegExp(`^${c0!.replaceAll("|", "\\|")}: Cannot decode`));
  const [nack] = take() as DeltaDiscoveryRequest[];
  assert.equal(nack!.responseNonce, "d2");
  assert.equal(state.store.versions(CLUSTER)[c0!], "1", "rejected resource keeps last good");
  assert.equal(state.store.versions(CLUSTER)[c1!], "2");
  const r = p.onDelta(
    create(DeltaDiscoveryResponseSchema, {
      typeUrl: ROUTE,
      nonce: "d3",
      resources: [{
        name: "r0",
        version: "1",
        resource: anyPack(RouteConfigurationSchema, route0),
      }],
    }),
  );
  assert.match(r.nack!, /weights must sum/);
  take();

  p.onDelta(
    create(DeltaDiscoveryResponseSchema, {
      typeUrl: CLUSTER,
      nonce: "d4",
      removedResources: [c1!],
    }),
  );
  assert.deepEqual(Object.keys(state.store.versions(CLUSTER)), [c0]);
  const [, unsub] = take() as DeltaDiscoveryRequest[];
  assert.deepEqual(unsub!.resourceNamesUnsubscribe, [c1]);

  // A new stream resubscribes with what is held.
  const sent2: Outgoing[] = [];
  new AdsStreamProtocol("delta", node, state, (m) => sent2.push(m)).start();
  const cds = (sent2 as DeltaDiscoveryRequest[]).find((m) => m.typeUrl === CLUSTER)!;
  assert.deepEqual(cds.initialResourceVersions, { [c0!]: "1" });
  assert.equal(cds.responseNonce, "");
  const eds = (sent2 as DeltaDiscoveryRequest[]).find((m) => m.typeUrl === ENDPOINT)!;
  assert.deepEqual(eds.resourceNamesSubscribe, [c0]);
});

Deno.test("sotw: a listener rejected before its name is read removes nothing (last good kept)", () => {
  const { p, state, take } = setup("sotw");
  p.start();
  p.onSotw(create(DiscoveryResponseSchema, {
    typeUrl: LISTENER,
    versionInfo: "1",
    nonce: "a",
    resources: anys(LISTENER),
  }));
  take();
  const held = [...state.store.of(LISTENER).keys()].sort();
  assert.equal(held.length, 2);
  // Full state with one listener unreadable: it may be either held one, so none is removed.
  const out = p.onSotw(create(DiscoveryResponseSchema, {
    typeUrl: LISTENER,
    versionInfo: "2",
    nonce: "b",
    resources: [anys(LISTENER)[0]!, garbage],
  }));
  assert.match(out.nack!, /resources\[1\]: Cannot decode/);
  assert.deepEqual([...state.store.of(LISTENER).keys()].sort(), held);
  const [nack] = take() as DiscoveryRequest[];
  assert.equal(nack!.versionInfo, "1");
  // A readable full state still removes what it omits.
  p.onSotw(create(DiscoveryResponseSchema, {
    typeUrl: LISTENER,
    versionInfo: "3",
    nonce: "c",
    resources: [anys(LISTENER)[0]!],
  }));
  assert.deepEqual([...state.store.of(LISTENER).keys()], [names(LISTENER)[0]]);
});

Deno.test("a type never subscribed on the stream is NACKed, nothing applied, no wildcard ACK", () => {
  for (const mode of ["sotw", "delta"] as const) {
    const { p, state, take } = setup(mode);
    p.start();
    take();
    // No listener yet: RDS was never subscribed on this stream.
    const out = mode === "sotw"
      ? p.onSotw(create(DiscoveryResponseSchema, {
        typeUrl: ROUTE,
        versionInfo: "1",
        nonce: "x",
        resources: anys(ROUTE),
      }))
      : p.onDelta(create(DeltaDiscoveryResponseSchema, {
        typeUrl: ROUTE,
        nonce: "x",
        resources: names(ROUTE).map((n, i) => ({
          name: n,
          version: "1",
          resource: anys(ROUTE)[i],
        })),
      }));
    assert.match(out.nack!, /was not subscribed/, mode);
    assert.equal(state.store.of(ROUTE).size, 0, mode);
    const [reply] = take() as (DiscoveryRequest | DeltaDiscoveryRequest)[];
    assert.equal(reply!.errorDetail?.code, 3, `${mode}: a NACK, never an ACK`);
    assert.equal(reply!.responseNonce, "x");
  }
});

Deno.test("delta: resources of an explicit type that were not asked for are not kept", () => {
  const { p, state, take } = setup("delta");
  p.start();
  p.onDelta(create(DeltaDiscoveryResponseSchema, {
    typeUrl: LISTENER,
    nonce: "l1",
    resources: names(LISTENER).map((n, i) => ({
      name: n,
      version: "1",
      resource: anys(LISTENER)[i],
    })),
  }));
  take();
  const asked = [...p["subscribed"].get(ROUTE)!];
  assert.deepEqual(asked, ["echo.default.svc.cluster.local:80"]);
  const other = create(RouteConfigurationSchema, { name: "not-asked" });
  p.onDelta(create(DeltaDiscoveryResponseSchema, {
    typeUrl: ROUTE,
    nonce: "r1",
    resources: [
      { name: asked[0]!, version: "1", resource: anys(ROUTE)[0]! },
      { name: "not-asked", version: "1", resource: anyPack(RouteConfigurationSchema, other) },
    ],
  }));
  assert.deepEqual([...state.store.of(ROUTE).keys()], asked);
});

Deno.test("delta TTL: a resource expires unless a heartbeat (same version, no body) renews it", () => {
  let clock = 0;
  const state = new ProtocolState(new ResourceStore(), undefined, () => clock);
  const sent: Outgoing[] = [];
  const p = new AdsStreamProtocol("delta", node, state, (m) => sent.push(m));
  p.start();
  const [c0, c1] = names(CLUSTER);
  const any = (n: string) => built.get(CLUSTER)!.get(n)!.any;
  const ttl = { seconds: 1n, nanos: 0 };
  p.onDelta(create(DeltaDiscoveryResponseSchema, {
    typeUrl: CLUSTER,
    nonce: "t1",
    resources: [{ name: c0!, version: "1", resource: any(c0!), ttl }, {
      name: c1!,
      version: "1",
      resource: any(c1!),
    }],
  }));
  assert.equal(state.nextExpiry(), 1000);
  clock = 800;
  const hb = p.onDelta(create(DeltaDiscoveryResponseSchema, {
    typeUrl: CLUSTER,
    nonce: "t2",
    resources: [{ name: c0!, version: "1", ttl }],
  }));
  assert.equal(hb.nack, undefined, "a heartbeat is not a missing body");
  assert.equal(hb.changed, false);
  clock = 1500;
  assert.equal(state.expire(), false, "renewed to 1800");
  clock = 1900;
  assert.equal(state.expire(), true);
  assert.deepEqual([...state.store.of(CLUSTER).keys()], [c1], "no TTL: kept");
  // A body-less resource that is not a heartbeat (no TTL held for it) is still rejected.
  const bad = p.onDelta(create(DeltaDiscoveryResponseSchema, {
    typeUrl: CLUSTER,
    nonce: "t3",
    resources: [{ name: c1!, version: "1", ttl }],
  }));
  assert.match(bad.nack!, /resource body is missing/);
  assert.equal(state.nextExpiry(), undefined);
});
