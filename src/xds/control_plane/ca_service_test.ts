/** IstioCertificateService/CreateCertificate over real gRPC: a mesh workload's CSR is signed
 * by src/tls's CA (chain leaf first, root last) only for the node hosting that workload
 * (bearer token); an identity outside the mesh, another node's workload or an unauthenticated
 * caller is refused. */
import assert from "node:assert/strict";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority, createCsr } from "../../tls/mod.ts";
import { compactMeshYaml } from "../_test_fixtures.ts";
import { meshManifestsFromYaml } from "../../../tests/support/istio_manifests.ts";
import { createHash } from "node:crypto";
import { CA_SERVICE, CHANNEL_OPTIONS } from "./grpc_server.ts";
import { IstioCertificateRequestSchema } from "../proto.ts";
import { startControlPlane } from "./mod.ts";

async function csr(uri: string): Promise<string> {
  return (await createCsr(uri)).csrPem;
}

const hash = (t: string): string => createHash("sha256").update(t).digest("hex");

Deno.test("control plane CA: CreateCertificate signs only for the node hosting the workload", async () => {
  const dir = await mkdtemp(join(tmpdir(), "weft-ca-"));
  const path = join(dir, "mesh.yaml");
  const tokens = `nodeTokens: { node-a: ${hash("tok-a")}, node-b: ${hash("tok-b")} }\n`;
  await writeFile(path, meshManifestsFromYaml(tokens + compactMeshYaml(10)));
  const ca = await CertificateAuthority.generate();
  const cp = await startControlPlane({ configPath: path, address: "127.0.0.1:0", ca });
  const client = new grpc.Client(cp.address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  const m = CA_SERVICE.CreateCertificate;
  const ask = (pem: string, token = "tok-a") => {
    const md = new grpc.Metadata();
    if (token) md.set("authorization", `Bearer ${token}`);
    return new Promise<{ err: grpc.ServiceError | null; chain: string[] }>((resolve) =>
      client.makeUnaryRequest(
        m.path,
        m.requestSerialize,
        m.responseDeserialize,
        create(IstioCertificateRequestSchema, { csr: pem, validityDuration: 3600n }),
        md,
        (err, res) => resolve({ err, chain: res?.certChain ?? [] }),
      )
    );
  };
  try {
    const id = "spiffe://cluster.local/ns/default/sa/echo";
    const ok = await ask(await csr(id));
    assert.equal(ok.err, null);
    assert.equal(ok.chain.length, 2);
    assert.equal(ok.chain[1], ca.rootPem);
    const leaf = new x509.X509Certificate(ok.chain[0]!);
    assert.deepEqual(
      leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.map((n) => n.value),
      [id],
    );
    assert.ok(await leaf.verify({ publicKey: (await ca.x509Cert()).publicKey }));
    const denied = await ask(await csr("spiffe://cluster.local/ns/other/sa/intruder"));
    assert.equal(denied.err?.code, grpc.status.PERMISSION_DENIED);
    // db-1 runs on node-b: node-a may not have its certificate, node-b may.
    const db = "spiffe://cluster.local/ns/default/sa/default";
    const notHosted = await ask(await csr(db), "tok-a");
    assert.equal(notHosted.err?.code, grpc.status.PERMISSION_DENIED);
    assert.match(notHosted.err!.details, /node node-a hosts no workload/);
    assert.equal((await ask(await csr(db), "tok-b")).err, null);
    // No credential, or a wrong one: not a node.
    assert.equal((await ask(await csr(id), "")).err?.code, grpc.status.UNAUTHENTICATED);
    assert.equal((await ask(await csr(id), "guess")).err?.code, grpc.status.UNAUTHENTICATED);
  } finally {
    client.close();
    await cp.close();
    await rm(dir, { recursive: true });
  }
});
