/** The node's TLS to its control plane (grpc_transport.ts → core dialGrpc) against a real
 * node:tls server: the right SPIFFE id with ALPN h2 connects; a wrong id, another CA, a server
 * without h2 and (without an expected id) a certificate that does not name the host are
 * refused before any HTTP/2 byte. */
import assert from "node:assert/strict";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { dialGrpc } from "../core/mod.ts";
import { CertificateAuthority } from "../tls/mod.ts";
import { controlPlaneTls, splitAddress } from "./grpc_transport.ts";

const CP_ID = "spiffe://cluster.local/ns/istio-system/sa/weft-control-plane";

Deno.test("control-plane TLS: SPIFFE id, roots, ALPN h2 and the host-name fallback", async () => {
  const ca = await CertificateAuthority.generate();
  const leaf = await ca.issueLeaf(CP_ID);
  const servers: tls.Server[] = [];
  const listen = async (alpn: boolean) => {
    const s = tls.createServer({
      cert: leaf.chainPem,
      key: leaf.keyPem,
      ...(alpn ? { ALPNProtocols: ["h2"] } : {}),
    }, (sock) => sock.on("error", () => {}).end());
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    return (s.address() as AddressInfo).port;
  };
  const h2 = await listen(true);
  const plain = await listen(false);
  const dial = (port: number, roots: string, id: string | undefined) =>
    dialGrpc({
      host: "127.0.0.1",
      port,
      tls: controlPlaneTls({ rootsPem: roots }, "127.0.0.1", id),
    })
      .then((s) => {
        s.destroy();
        return "ok";
      }, (e: Error) => e.message);
  try {
    assert.equal(await dial(h2, ca.rootPem, CP_ID), "ok");
    assert.match(await dial(h2, ca.rootPem, "spiffe://cluster.local/ns/x/sa/y"), /identity/);
    const other = await CertificateAuthority.generate();
    assert.match(await dial(h2, other.rootPem, CP_ID), /verify|certificate/);
    assert.match(await dial(plain, ca.rootPem, CP_ID), /did not agree to h2/);
    assert.match(await dial(h2, ca.rootPem, undefined), /127\.0\.0\.1/);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
});

Deno.test("control-plane address: host:port and [v6]:port", () => {
  assert.deepEqual(splitAddress("127.0.0.1:15010"), { host: "127.0.0.1", port: 15010 });
  assert.deepEqual(splitAddress("[::1]:15012"), { host: "::1", port: 15012 });
  assert.deepEqual(splitAddress("istiod.istio-system.svc:15012"), {
    host: "istiod.istio-system.svc",
    port: 15012,
  });
});
