/** mTLS between node and control plane: the client checks the control plane's SPIFFE id, the
 * server requires a client certificate, and the CA signs only for the caller (or a node agent). */
import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority, createCsr } from "../tls/mod.ts";
import { BASE, compactMeshYaml, meshYaml } from "./_test_fixtures.ts";
import { meshManifestsFromYaml } from "../../tests/support/istio_manifests.ts";
import { createHash } from "node:crypto";
import { XdsClient } from "./client.ts";
import { startControlPlane } from "./control_plane/mod.ts";
import { type GrpcChannel, GrpcCode, GrpcError } from "../core/mod.ts";
import { bearer, CA_PATH, controlPlaneChannel, type XdsTlsMaterial } from "./grpc_transport.ts";
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
  const channels: GrpcChannel[] = [];
  const ask = async (caller: string, pem: string, token = "") => {
    const c = controlPlaneChannel(cp.address, await material(ca, caller), CP_ID);
    channels.push(c);
    const req = toBinary(
      IstioCertificateRequestSchema,
      create(IstioCertificateRequestSchema, { csr: pem }),
    );
    try {
      await c.unary({ path: CA_PATH, metadata: bearer(token), deadlineMs: 10_000 }, req);
      return null;
    } catch (err) {
      if (err instanceof GrpcError) return err;
      throw err;
    }
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
    assert.equal(anon?.code, GrpcCode.UNAUTHENTICATED, "the agent identity alone names no node");
    const other = await ask("spiffe://cluster.local/ns/default/sa/db", await csr(ECHO_ID));
    assert.equal(other?.code, GrpcCode.PERMISSION_DENIED);
  } finally {
    await good.close();
    for (const c of channels) c.close();
    await cp.close();
    await rm(dir, { recursive: true });
  }
});

Deno.test({
  name: "xds over mTLS: a control plane with the wrong identity is refused",
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
