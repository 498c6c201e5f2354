/**
 * `deno task demo:pods` (root): in-pod capture on real network namespaces.
 *   1. builds two node namespaces joined by a veth wire and pods under them, starts weft (Bun) in
 *      each node and enrolls the pods with the `weft cni` command (CNI ADD, chained);
 *   2. curl in pod `client` (node 1) → service web → pod `server` (node 2): prints the identities
 *      each side saw;
 *   3. captures the inter-node wire with tcpdump during a request carrying a marker: TLS records,
 *      no plaintext; the same capture of a plaintext passthrough request shows the marker, so the
 *      check can tell the two apart;
 *   4. applies a DENY AuthorizationPolicy live and shows the refusal;
 *   5. removes the pods (CNI DEL) and everything it built.
 * Exits 0 when every step matched, 1 otherwise, 2 when not root / tools missing.
 */
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { print } from "../../src/core/mod.ts";
import { leftoverNamespaces, type PodNs, topologyUnavailable } from "../support/topology.ts";
import { APP_PORT, bunPath, type InpodMesh, startInpodMesh } from "../support/inpod_mesh.ts";

let failed = false;
function step(ok: boolean, text: string): void {
  if (!ok) failed = true;
  print(`${ok ? "  ok " : "  XX "} ${text}`);
}

/**
 * Capture the wire during `fn`; returns the raw pcap bytes. tcpdump reads packets from the
 * kernel's capture ring when it is scheduled, and SIGINT stops it without draining the ring: on a
 * loaded box the exchange `fn` made could still sit there, so the capture looked empty. Before
 * the stop, a plaintext barrier request (pod client → pod outsider, not in the mesh) crosses the
 * same wire after `fn`; once its unique path is in the file (-U writes every packet as it is
 * read), every packet before it is too.
 */
async function captureWire(m: InpodMesh, fn: () => Promise<unknown>): Promise<Uint8Array> {
  const file = join(m.dir, `wire-${crypto.randomUUID().slice(0, 6)}.pcap`);
  // Its first line ("listening on wire0") is printed once the capture is active.
  const dump = await m.topo.serve(m.topo.nodes[0]!.ns, [
    "sh",
    "-c",
    `exec tcpdump -i wire0 --immediate-mode -U -Z root -n -s 0 -w ${file} tcp 2>&1`,
  ]);
  try {
    await fn();
    const barrier = `weft-capture-barrier-${crypto.randomUUID().slice(0, 8)}`;
    const outsider = m.topo.pod("outsider");
    const deadline = Date.now() + 20_000;
    while (!contains(await readFile(file), barrier)) {
      if (Date.now() > deadline) throw new Error("tcpdump never wrote the barrier request");
      await curlOk(m, m.topo.pod("client"), `http://${outsider.ip}:${APP_PORT}/${barrier}`);
    }
  } finally {
    dump.kill("SIGINT");
    await dump.status;
  }
  const bytes = await readFile(file);
  await rm(file);
  return new Uint8Array(bytes);
}

/** Whether a request went through (curl exit 0), up to 3 tries: on a loaded box one may time
 * out, and the capture around it must hold a completed exchange. */
async function curlOk(m: InpodMesh, pod: PodNs, url: string): Promise<boolean> {
  for (let i = 0; i < 3; i++) if ((await m.curl(pod, url)).code === 0) return true;
  return false;
}

function contains(hay: Uint8Array, needle: string): boolean {
  return Buffer.from(hay).includes(Buffer.from(needle));
}

/** TLS application-data records (0x17 0x03 0x03) in the capture. */
function tlsRecords(pcap: Uint8Array): number {
  let n = 0;
  for (let i = 0; i + 2 < pcap.length; i++) {
    if (pcap[i] === 0x17 && pcap[i + 1] === 0x03 && pcap[i + 2] === 0x03) n++;
  }
  return n;
}

async function main(): Promise<number> {
  const why = topologyUnavailable() ?? (bunPath() ? undefined : "needs bun (deno task setup)");
  if (why) {
    print(`demo:pods refused: ${why}. Run it as root on Linux: sudo deno task demo:pods`, "stderr");
    return 2;
  }
  const have = await new Deno.Command("sh", { args: ["-c", "command -v tcpdump"] }).output();
  if (!have.success) {
    print("demo:pods refused: needs tcpdump (deno task setup installs it)", "stderr");
    return 2;
  }
  print("1. topology: two nodes (network namespaces) joined by a veth wire, pods under them");
  const m = await startInpodMesh();
  const id = m.topo.id;
  try {
    const client = m.topo.pod("client");
    const server = m.topo.pod("server");
    const outsider = m.topo.pod("outsider");
    for (const n of m.topo.nodes) print(`   node ${n.ns}  wire ${n.wireIp}`);
    for (const p of m.topo.pods) {
      print(`   pod  ${p.name.padEnd(9)} ${p.ip.padEnd(13)} on node ${p.node}`);
    }
    for (const p of [client, server]) {
      const r = await m.cni(p, "ADD");
      step(r.code === 0, `weft cni ADD ${p.name}: ${r.code === 0 ? "enrolled" : r.stdout.trim()}`);
    }

    print(`\n2. curl in pod client → http://${m.vip}/ (service web, served by pod server)`);
    const r = await m.curl(client, `http://${m.vip}/`);
    step(
      r.code === 0 && r.body.trim() === `server saw ${client.ip}`,
      `response: ${r.body.trim()} (the app sees the client pod's own IP)`,
    );
    const out = await m.agents[0]!.waitFor((l) =>
      l.msg === "connection complete" && l.direction === "outbound"
    );
    const inb = await m.agents[1]!.waitFor((l) =>
      l.msg === "connection complete" && l.direction === "inbound"
    );
    print(`   node 1 (15001 in pod client): ${out["src.identity"]} → ${out["dst.identity"]}`);
    print(`   node 2 (15008 in pod server): peer ${inb["src.identity"]}, via ${inb["src.addr"]}`);
    step(
      inb["src.identity"] === "spiffe://cluster.local/ns/default/sa/client",
      "the server side verified the client pod's identity (mTLS)",
    );

    print("\n3. the inter-node wire (tcpdump on node 1's wire0)");
    const marker = `weft-demo-${crypto.randomUUID().slice(0, 8)}`;
    let meshOk = false;
    const meshPcap = await captureWire(m, async () => {
      meshOk = await curlOk(m, client, `http://${m.vip}/${marker}`);
    });
    step(meshOk, "mesh request with the marker completed");
    step(
      tlsRecords(meshPcap) > 0 && !contains(meshPcap, marker),
      `mesh request: ${tlsRecords(meshPcap)} TLS application-data records, marker ` +
        `${contains(meshPcap, marker) ? "VISIBLE" : "not in the capture"}`,
    );
    let plainOk = false;
    const plainPcap = await captureWire(m, async () => {
      plainOk = await curlOk(m, client, `http://${outsider.ip}:${APP_PORT}/${marker}`);
    });
    step(plainOk, "plaintext request with the marker completed");
    step(
      contains(plainPcap, marker),
      `control: plaintext passthrough to pod outsider (not in the mesh): marker ` +
        `${contains(plainPcap, marker) ? "visible" : "NOT visible"} on the wire`,
    );

    print("\n4. a DENY AuthorizationPolicy for sa/client, applied live on node 2");
    await m.setPolicies([{
      metadata: { name: "deny-client", namespace: "default" },
      spec: {
        action: "DENY",
        rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/client"] } }] }],
      },
    }]);
    await m.agents[1]!.waitFor((l) => l.msg === "snapshot applied");
    const denied = await m.curl(client, `http://${m.vip}/`);
    const rec = await m.agents[1]!.waitFor((l) =>
      l.msg === "connection complete" && l.outcome === "denied"
    );
    step(denied.code !== 0, `curl: ${denied.body.trim()}`);
    print(`   node 2: outcome ${rec.outcome} (${rec.detail})`);

    print("\n5. removal: weft cni DEL for each pod, then the topology");
    for (const p of [client, server]) {
      const d = await m.cni(p, "DEL");
      const tables = (await m.topo.run(p.ns, ["nft", "list", "tables"])).stdout;
      step(
        d.code === 0 && !tables.includes("weft_inpod"),
        `weft cni DEL ${p.name}: rules removed`,
      );
    }
  } finally {
    await m.close();
  }
  const left = await leftoverNamespaces(id);
  step(left.length === 0, `namespaces left: ${left.length}`);
  print(failed ? "\ndemo:pods FAILED" : "\ndemo:pods OK");
  return failed ? 1 : 0;
}

Deno.exit(await main());
