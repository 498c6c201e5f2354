/**
 * Bench harness: one NodeProxy in its own process without the rest of weft (no admin, xDS, L7),
 * so bench/l4.ts can separate the data path's cost from the app's. Usage:
 *   deno run -A bench/l4_node.ts <dir> a|b      (or: bun bench/l4_node.ts <dir> a|b)
 * reads the openssl material bench/l4_peers.ts wrote into <dir>; prints "ready" when bound.
 */
import { NodeProxy } from "../src/core/proxy.ts";
import type { Snapshot } from "../src/core/snapshot.ts";
import type { IdentityProvider, PeerVerdict, TlsMaterial } from "../src/core/transport.ts";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import process from "node:process";
import { benchSnapshot } from "./l4_peers.ts";

const [dir, side] = process.argv.slice(2) as [string, "a" | "b"];
const read = (f: string): string => readFileSync(`${dir}/${f}`, "utf8");
const mat = (name: string): TlsMaterial => ({
  certChainPem: read(`${name}.pem`),
  keyPem: read(`${name}.key`),
  rootsPem: read("ca.pem"),
  serial: name,
  notAfter: new Date(Date.now() + 86400_000),
});
const byId: Record<string, TlsMaterial> = {
  "spiffe://cluster.local/ns/default/sa/client": mat("client"),
  "spiffe://cluster.local/ns/default/sa/server": mat("server"),
};
// Static material, SANs read with node:crypto (cheap; @peculiar/x509 alone adds ~15 MB RSS).
const uri = (der: Uint8Array): string | undefined =>
  /URI:(spiffe:\/\/[^,\s]+)/.exec(new X509Certificate(der).subjectAltName ?? "")?.[1];
const ids: IdentityProvider = {
  trustDomain: "cluster.local",
  material: (id) => byId[id] ? Promise.resolve(byId[id]) : Promise.reject(new Error(`no ${id}`)),
  verifyClient: (der): PeerVerdict => {
    const id = uri(der);
    return id?.startsWith("spiffe://cluster.local/")
      ? { ok: true, identity: id }
      : { ok: false, reason: "trust_domain_mismatch", message: String(id) };
  },
  verifyServer: (der, expected): PeerVerdict => {
    const id = uri(der);
    return id && expected.includes(id)
      ? { ok: true, identity: id }
      : { ok: false, reason: "identity_mismatch", message: String(id) };
  },
  classifyTlsError: () => "handshake_failed",
  onRotate: () => () => {},
};
const snapshot: Snapshot = benchSnapshot(side);
const proxy = new NodeProxy({ snapshot, identity: ids });
await proxy.start();
process.stdout.write(JSON.stringify({ msg: "ready", listeners: proxy.stats().listeners }) + "\n");
process.on("SIGTERM", async () => {
  await proxy.drain(500);
  process.exit(0);
});
// WEFT_BENCH_MEM=1: print where the memory is (V8 heap vs external buffers vs native) each second.
if (process.env.WEFT_BENCH_MEM) {
  setInterval(() => {
    const m = process.memoryUsage();
    const mb = (n: number): number => Math.round(n / 1048576);
    process.stderr.write(
      `mem ${side} rss=${mb(m.rss)} heapTotal=${mb(m.heapTotal)} heapUsed=${
        mb(m.heapUsed)
      } external=${mb(m.external)} arrayBuffers=${mb(m.arrayBuffers ?? 0)}\n`,
    );
  }, 1000).unref();
}
