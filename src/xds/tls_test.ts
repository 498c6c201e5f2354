/** mTLS between node and control plane: the client checks the control plane's SPIFFE id, the
 * server requires a client certificate, and the CA signs only for the caller (or a node agent). */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority, createCsr } from "../tls/mod.ts";
import { BASE, compactMeshYaml, meshYaml } from "./_test_fixtures.ts";
import { meshManifestsFromYaml } from "../../tests/support/istio_manifests.ts";
import { createHash } from "node:crypto";
import { XdsClient } from "./client.ts";
import { startControlPlane } from "./control_plane/mod.ts";
import {
  CA_SERVICE,
  CHANNEL_OPTIONS,
  clientCredentials,
  TLS_CHANNEL_OPTIONS,
  type XdsTlsMaterial,
} from "./grpc_transport.ts";
import { xdsTerminations } from "./metrics.ts";
import { IstioCertificateRequestSchema } from "./proto.ts";

const CP_ID = "spiffe://cluster.local/ns/istio-system/sa/weft-control-plane";
const AGENT_ID = "spiffe://cluster.local/ns/istio-system/sa/weft-node";
const ECHO_ID = "spiffe://cluster.local/ns/default/sa/echo";

async function material(ca: CertificateAuthority, id: string): Promise<XdsTlsMaterial> {
  const leaf = await ca.issueLeaf(id);
  return { rootsPem: ca.rootPem, certChainPem: leaf.chainPem, keyPem: leaf.keyPem };
}

async function csr(uri: string): Promise<string> {
  return (await createCsr(uri)).csrPem;
}

Deno.test("xds over mTLS: snapshot flows, CA signs only for the caller or its node's agent", async () => {
  const dir = await mkdtemp(join(tmpdir(), "weft-xds-tls-"));
  const path = join(dir, "mesh.yaml");
  const tok = createHash("sha256").update("tok-a").digest("hex");
  await writeFile(
    path,
    meshManifestsFromYaml(`nodeTokens: { node-a: ${tok} }\n${compactMeshYaml(10)}`),
  );
  const ca = await CertificateAuthority.generate();
  const cp = await startControlPlane({
    configPath: path,
    address: "127.0.0.1:0",
    ca,
    tls: await material(ca, CP_ID),
  });
  const good = new XdsClient({
    server: cp.address,
    nodeId: "node-a",
    base: BASE,
    tls: await material(ca, AGENT_ID),
    serverIdentity: CP_ID,
  });
  const clients: grpc.Client[] = [];
  const ask = async (caller: string, pem: string, token = "") => {
    const md = new grpc.Metadata();
    if (token) md.set("authorization", `Bearer ${token}`);
    const c = new grpc.Client(
      cp.address,
      clientCredentials(await material(ca, caller), CP_ID),
      { ...CHANNEL_OPTIONS, ...TLS_CHANNEL_OPTIONS },
    );
    clients.push(c);
    const m = CA_SERVICE.CreateCertificate;
    return await new Promise<grpc.ServiceError | null>((resolve) =>
      c.makeUnaryRequest(
        m.path,
        m.requestSerialize,
        m.responseDeserialize,
        create(IstioCertificateRequestSchema, { csr: pem }),
        md,
        (err) => resolve(err),
      )
    );
  };
  try {
    good.start();
    const s = await good.ready();
    assert.equal(s.services.length, 2);
    assert.equal(await ask(ECHO_ID, await csr(ECHO_ID)), null, "a workload may renew itself");
    assert.equal(
      await ask(AGENT_ID, await csr(ECHO_ID), "tok-a"),
      null,
      "the agent of node-a (echo-1's node) may ask for it",
    );
    const anon = await ask(AGENT_ID, await csr(ECHO_ID));
    assert.equal(anon?.code, grpc.status.UNAUTHENTICATED, "the agent identity alone names no node");
    const other = await ask("spiffe://cluster.local/ns/default/sa/db", await csr(ECHO_ID));
    assert.equal(other?.code, grpc.status.PERMISSION_DENIED);
  } finally {
    await good.close();
    for (const c of clients) c.close();
    await cp.close();
    await rm(dir, { recursive: true });
  }
});

Deno.test({
  name: "xds over mTLS: a control plane with the wrong identity is refused",
  // grpc-js leaves its subchannel backoff timer running after close() when the last connect
  // attempt failed (bounded by grpc.max_reconnect_backoff_ms = maxBackoffMs here).
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await mkdtemp(join(tmpdir(), "weft-xds-tls-"));
    const path = join(dir, "mesh.yaml");
    await writeFile(path, meshYaml(10));
    const ca = await CertificateAuthority.generate();
    const cp = await startControlPlane({
      configPath: path,
      address: "127.0.0.1:0",
      tls: await material(ca, CP_ID),
    });
    const before = xdsTerminations.sum();
    const wrong = new XdsClient({
      server: cp.address,
      nodeId: "node-a",
      base: BASE,
      tls: await material(ca, AGENT_ID),
      serverIdentity: "spiffe://cluster.local/ns/evil/sa/impostor",
      maxBackoffMs: 50,
    });
    try {
      wrong.start();
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (xdsTerminations.sum() > before + 1) {
            clearInterval(t);
            resolve();
          }
        }, 5);
      });
      assert.equal(wrong.snapshot, undefined, "no config from an unverified control plane");
      assert.equal(cp.streams(), 0);
    } finally {
      await wrong.close();
      await cp.close();
      await rm(dir, { recursive: true });
    }
  },
});
