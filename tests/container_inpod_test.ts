/**
 * The shipped image in in-pod mode (issues 9 + 10 together), root + podman only: the two-node
 * namespace topology of tests/support/topology.ts, one node agent per node running FROM THE
 * IMAGE in a container on that node's network namespace (`--network ns:`), with what the
 * DaemonSet grants (NET_ADMIN, SYS_ADMIN, /var/run/netns from the host, the ZDS socket dir).
 * Each node's CNI plugin is installed by the image's `weft cni install` (as the DaemonSet's init
 * container does), and pods are enrolled by running it as a runtime does: the weft entry of the
 * node's conflist, executed from the node's CNI bin dir with no arguments; unmodified curl in pod A reaches pod B's app
 * through both containerised agents; access logs, metrics and the pods' nftables rules show the
 * capture; node 2's agent is replaced by a new container (a rolling update) and takes its pod
 * back from the state on the host path; SIGTERM drains and every container exits 0. Namespaces and containers are removed even
 * when a step fails. Skipped, with the reason in its name, elsewhere.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ContainerLauncher,
  containerSkipReason,
  ensureTestImage,
  INPOD_RUN,
  podman,
} from "./support/container.ts";
import { bunPath, type InpodMesh, startInpodMesh } from "./support/inpod_mesh.ts";
import { leftoverNamespaces, topologyUnavailable } from "./support/topology.ts";

const skip = containerSkipReason() ?? topologyUnavailable() ??
  (bunPath() ? undefined : "needs bun for the pods' HTTP app (deno task setup)");

/** Node n's CNI dirs with the pod network's config already there, then the image's `weft cni
 * install` run in a container the way the DaemonSet's init container runs it (no shell, every
 * capability dropped, read-only root): the image's binary copies itself (process.execPath) into
 * the node's bin dir and chains itself into the conflist with the node agent's socket. */
async function installCniFromImage(
  installers: ContainerLauncher,
  root: string,
  node: number,
  socket: string,
): Promise<{ binDir: string; confDir: string }> {
  const binDir = join(root, `node${node}`, "opt/cni/bin");
  const confDir = join(root, `node${node}`, "etc/cni/net.d");
  await mkdir(binDir, { recursive: true });
  await mkdir(confDir, { recursive: true });
  await writeFile(
    join(confDir, "10-pods.conflist"),
    JSON.stringify({
      cniVersion: "1.0.0",
      name: "pods",
      plugins: [{ type: "ptp", ipam: { type: "host-local", subnet: "10.0.0.0/8" } }],
    }),
  );
  const [program, args] = installers.command([
    "cni",
    "install",
    "--cni-bin-dir",
    binDir,
    "--cni-conf-dir",
    confDir,
    "--socket",
    socket,
  ]);
  const r = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  assert.equal(r.code, 0, dec.decode(r.stderr) + dec.decode(r.stdout));
  assert.match(dec.decode(r.stdout), /"msg":"cni plugin installed"/);
  return { binDir, confDir };
}

async function metric(m: InpodMesh, node: number, name: string, label: string): Promise<number> {
  const r = await m.topo.run(m.topo.nodes[node - 1]!.ns, [
    "curl",
    "-s",
    "http://127.0.0.1:15020/metrics",
  ]);
  return r.stdout.split("\n").filter((l) => l.startsWith(name) && l.includes(label))
    .reduce((n, l) => n + Number(l.split(" ").pop()), 0);
}

Deno.test({
  name: `container + inpod: the image's node agents capture pod traffic in node namespaces${
    skip ? ` (skipped: ${skip})` : ""
  }`,
  ignore: skip !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const image = await ensureTestImage();
    const hosts = await mkdtemp(join(tmpdir(), "weft-cni-host-"));
    // By id: the test tag is shared by every checkout on this machine.
    const pods = new ContainerLauncher(image.id, [], INPOD_RUN);
    const installers = new ContainerLauncher(image.id, [hosts], [
      "--cap-drop",
      "ALL",
      "--read-only",
    ]);
    let m: InpodMesh | undefined;
    try {
      m = await startInpodMesh({
        // The image sets WEFT_STATE_DIR (which beats the config file): point both nodes at the
        // mesh's shared dev CA, as the agents outside containers share it.
        agentCommand: (_n, netns, dir) =>
          pods.commandIn(netns, { mounts: [dir], env: { WEFT_STATE_DIR: dir } }),
        installCni: (n, socket) => installCniFromImage(installers, hosts, n, socket),
      });
      const [a1, a2] = m.agents as [typeof m.agents[0], typeof m.agents[0]];
      const client = m.topo.pod("client");
      const server = m.topo.pod("server");

      for (const p of [client, server]) {
        const r = await m.cni(p, "ADD");
        assert.equal(r.code, 0, r.stdout);
        const tables = await m.topo.run(p.ns, ["nft", "list", "tables"]);
        assert.match(tables.stdout, /table inet weft_inpod/, "rules installed by the container");
        // CHECK: the agent lists the pod's tables with the image's nsenter + nft.
        assert.equal((await m.cni(p, "CHECK")).code, 0);
      }

      const r = await m.curl(client, `http://${m.vip}/`);
      assert.equal(r.code, 0, r.body);
      assert.equal(r.body.trim(), `server saw ${client.ip}`);

      const out = await a1.waitFor((l) =>
        l.msg === "connection complete" && l.direction === "outbound" &&
        l["dst.service"] === "web.default.svc.cluster.local"
      );
      assert.equal(String(out["src.addr"]).split(":")[0], client.ip);
      assert.equal(out["dst.hbone_addr"], `${server.ip}:15008`);
      const inb = await a2.waitFor((l) =>
        l.msg === "connection complete" && l.direction === "inbound" && l.outcome === "ok"
      );
      assert.equal(inb["src.identity"], "spiffe://cluster.local/ns/default/sa/client");
      assert.equal(inb["dst.workload"], "server");
      assert.ok(
        await metric(m, 2, "istio_tcp_connections_opened_total", 'reporter="destination"') >= 1,
        "node 2's container counted the inbound connection",
      );

      // A rolling update of node 2's agent: a new container takes the enrolled pods back from
      // inpod.stateDir on the host path, and traffic flows again.
      const b2 = await m.restartAgent(2);
      await b2.waitFor((l) => l.msg === "pod enrolled" && l.workload === "server");
      const again = await m.curl(client, `http://${m.vip}/`);
      assert.equal(again.body.trim(), `server saw ${client.ip}`, "after the agent's restart");

      for (const p of [client, server]) {
        assert.equal((await m.cni(p, "DEL")).code, 0);
        const tables = await m.topo.run(p.ns, ["nft", "list", "tables"]);
        assert.doesNotMatch(tables.stdout, /weft_inpod/, "DEL removed the pod's rules");
      }

      for (const a of [a1, b2]) {
        assert.equal(await a.stop(), 0, a.stderrText());
        await a.waitFor((l) => l.msg === "draining" && l.reason === "SIGTERM");
        await a.waitFor((l) => l.msg === "stopped");
      }
    } catch (e) {
      // The containers' logs say why (they are gone after cleanup).
      const logs = (m?.agents ?? []).map((a, i) =>
        `node ${i + 1}:\n${a.lines.slice(-30).map((l) => JSON.stringify(l)).join("\n")}\n` +
        a.stderrText().slice(-2000)
      );
      throw new Error(`${(e as Error).message}\n${logs.join("\n")}`, { cause: e });
    } finally {
      await m?.close();
      pods.cleanup();
      installers.cleanup();
      await rm(hosts, { recursive: true, force: true });
    }
    for (const name of [...pods.names, ...installers.names]) {
      assert.equal(podman(["ps", "-a", "-q", "--filter", `name=${name}`]).out, "");
    }
    if (m) assert.deepEqual(await leftoverNamespaces(m.topo.id), []);
  },
});
