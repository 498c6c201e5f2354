/** The node's token file is read again for every CSR: a token rotated on disk (kubelet's
 * projected service-account token, here two node tokens) is what the next request carries, with
 * no restart; an unreadable or empty file keeps the last token read. Over real gRPC. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority } from "../tls/mod.ts";
import { meshManifestsFromYaml } from "../../tests/support/istio_manifests.ts";
import { compactMeshYaml } from "./_test_fixtures.ts";
import { RemoteCa } from "./ca_client.ts";
import { startControlPlane } from "./control_plane/mod.ts";
import { tokenFromFile } from "./token_file.ts";

const hash = (t: string): string => createHash("sha256").update(t).digest("hex");

/** kubelet's atomic update: write a temp file, rename it over the token. */
async function rotate(path: string, token: string): Promise<void> {
  await writeFile(`${path}.tmp`, token);
  await rename(`${path}.tmp`, path);
}

Deno.test("token file: read on every call; empty or missing keeps the last token", async () => {
  const dir = await mkdtemp(join(tmpdir(), "weft-token-"));
  try {
    const path = join(dir, "istio-token");
    const read = tokenFromFile(path);
    assert.equal(read(), undefined, "nothing read yet");
    await rotate(path, "one\n");
    assert.equal(read(), "one");
    await rotate(path, "two");
    assert.equal(read(), "two");
    await writeFile(path, "");
    assert.equal(read(), "two", "an empty file keeps the last token");
    await rm(path);
    assert.equal(read(), "two", "a missing file keeps the last token");
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("token file: RemoteCa sends the token on disk now, so a rotated token is used without a restart", async () => {
  const dir = await mkdtemp(join(tmpdir(), "weft-token-"));
  const mesh = join(dir, "mesh.yaml");
  const tokens = `nodeTokens: { node-a: ${hash("tok-a")}, node-b: ${hash("tok-b")} }\n`;
  await writeFile(mesh, meshManifestsFromYaml(tokens + compactMeshYaml(10)));
  const cp = await startControlPlane({
    configPath: mesh,
    address: "127.0.0.1:0",
    ca: await CertificateAuthority.generate(),
  });
  const path = join(dir, "token");
  await writeFile(path, "tok-a");
  const ca = new RemoteCa({ address: cp.address, token: tokenFromFile(path) });
  const echo = "spiffe://cluster.local/ns/default/sa/echo"; // echo-1 on node-a
  const db = "spiffe://cluster.local/ns/default/sa/default"; // db-1 on node-b only
  try {
    assert.equal((await ca.issueLeaf(echo)).identity, echo);
    await assert.rejects(ca.issueLeaf(db), /node node-a hosts no workload/);
    await rotate(path, "tok-b");
    assert.equal((await ca.issueLeaf(db)).identity, db, "the rotated token names node-b");
    await rotate(path, "tok-expired");
    await assert.rejects(ca.issueLeaf(db), /not authenticated/);
  } finally {
    ca.close();
    await cp.close();
    await rm(dir, { recursive: true });
  }
});
