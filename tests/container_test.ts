/**
 * The shipped image for real: `deno task image` (cached by binary hash), then the embedded
 * control plane and two node agents in three podman containers on the host network, each node
 * on its own random loopback addresses. Traffic crosses the HBONE tunnel between the two node
 * containers; readiness and metrics answer; SIGTERM drains and every container exits 0.
 * Skipped, with the reason in its name, without root or podman/buildah/runc.
 */
import { connect, type Socket } from "node:net";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  ContainerLauncher,
  containerSkipReason,
  ensureTestImage,
  podman,
} from "./support/container.ts";
import { startEcho } from "./support/echo_server.ts";
import { roundTrip } from "./support/mesh.ts";
import { loopbackBlock, type WeftProc } from "./support/weft_proc.ts";
import { startXdsMesh, type XdsMesh } from "./support/xds_nodes.ts";

const skip = containerSkipReason();

function mesh(ip: (n: number) => string, echoPort: number): Record<string, unknown> {
  const wl = (name: string, address: string, node: string) => ({
    name,
    namespace: "default",
    serviceAccount: name,
    address,
    node,
    labels: { app: name },
  });
  return {
    trustDomain: "cluster.local",
    workloads: [wl("sleep", ip(2), "node-a"), wl("echo", ip(3), "node-b")],
    services: [{
      name: "echo",
      namespace: "default",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: echoPort }],
    }],
    authorizationPolicies: [],
  };
}

function dial(host: string, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 15_000;
    const attempt = () => {
      const s = connect({ host, port: 80, localAddress });
      const retry = (e: Error) => Date.now() < deadline ? setTimeout(attempt, 100) : reject(e);
      s.once("error", retry);
      s.once("connect", () => {
        s.off("error", retry);
        s.on("error", () => {});
        resolve(s);
      });
    };
    attempt();
  });
}

Deno.test({
  name:
    `container: image runs the control plane and two node agents; tunnel, readiness, metrics, SIGTERM drain${
      skip ? ` (skipped: ${skip})` : ""
    }`,
  ignore: skip !== undefined,
  async fn() {
    const image = await ensureTestImage();
    // What the image holds: the binary, nsenter/nft/ip, their libraries, CA certificates; no
    // toolchain or sources.
    const files = podman(["image", "mount", image.tag]);
    assertEquals(files.code, 0, files.err);
    {
      const root = files.out.trim();
      try {
        const all = [...walk(root)].map((f) => f.slice(root.length));
        assert(all.includes("/usr/local/bin/weft"), all.join(" "));
        assert(all.includes("/etc/ssl/certs/ca-certificates.crt"));
        // In-pod capture's tools (tests/container_inpod_test.ts runs them), nothing else.
        for (const tool of ["/usr/bin/nsenter", "/usr/sbin/nft", "/usr/sbin/ip"]) {
          assert(all.includes(tool), tool);
        }
        const programs = all.filter((f) => /\/s?bin\//.test(f));
        assertEquals(programs.sort(), [
          "/usr/bin/nsenter",
          "/usr/local/bin/weft",
          "/usr/sbin/ip",
          "/usr/sbin/nft",
        ]);
        const bad = all.filter((f) =>
          /clang|node_modules|\/src\/|\.ts$|\/bin\/(sh|deno|bun)$/.test(f)
        );
        assertEquals(bad, [], "the image holds no compiler, shell, node_modules or sources");
      } finally {
        podman(["image", "unmount", image.tag]);
      }
    }
    const ip = loopbackBlock();
    const dir = await Deno.makeTempDir({ prefix: "weft-container-" });
    const echo = await startEcho(ip(3));
    const pods = new ContainerLauncher(image.tag, [dir]);
    let x: XdsMesh | undefined;
    try {
      x = await startXdsMesh(
        dir,
        mesh(ip, echo.port),
        ["node-a", "node-b"],
        ["node-a"],
        pods.command,
      );
      const [a, b] = x.nodes as [WeftProc, WeftProc];
      await x.waitReady(a);
      await x.waitReady(b);
      const s = await dial(ip(100), ip(2));
      const data = new TextEncoder().encode("through two containers");
      assertEquals(await roundTrip(s, data), data);
      const metrics = await (await fetch(`http://${b.ready.metrics}/stats/prometheus`)).text();
      assertMatch(metrics, /istio_tcp_connections_opened_total\{[^}]*reporter="destination"/);
      assertMatch(metrics, /weft_build\{component="weft",[^}]*runtime="bun [^"]+"/);
      for (const p of [a, b, x.cp]) assertEquals(await p.stop(), 0, p.stderrText());
      for (const p of [a, b]) {
        await p.waitFor((l) => l.msg === "draining" && l.reason === "SIGTERM");
        await p.waitFor((l) => l.msg === "stopped");
      }
    } finally {
      await x?.stop();
      pods.cleanup();
      await echo.close();
      await Deno.remove(dir, { recursive: true });
    }
    assertEquals(podman(["ps", "-a", "-q", "--filter", `name=${pods.names[0] ?? "none"}`]).out, "");
  },
});

function* walk(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) yield* walk(p);
    else yield p;
  }
}
