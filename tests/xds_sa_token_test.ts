/**
 * istiod's ambient bootstrap with real processes: `weft control-plane --tls --client-auth jwt
 * --jwks FILE --jwt-issuer URL` and `weft run` node agents whose xds.tokenFile holds a bound
 * service-account token (tests/support/k8s_sa_tokens.ts signs it as kube-apiserver does). The
 * agent whose token is bound to node-b gets node-b's workload certificate; an agent that calls
 * itself node-b with a token bound to node-a is served (as node-a) but gets no node-b
 * certificate, and the control plane says why. The control plane runs on Bun when one is
 * installed, the nodes on Deno.
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { assert, assertEquals } from "./support/assert.ts";
import { meshManifests } from "./support/istio_manifests.ts";
import { K8S_ISSUER, SaTokenSigner } from "./support/k8s_sa_tokens.ts";
import {
  bunPath,
  LISTENERS,
  loopbackBlock,
  startWeft,
  type WeftProc,
} from "./support/weft_proc.ts";

const ECHO = "spiffe://cluster.local/ns/default/sa/echo";

Deno.test("xds over server TLS + service-account JWTs: the token's node decides the certificates, not the claimed name", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-xds-sa-" });
  const caDir = join(dir, "ca");
  const meshPath = join(dir, "mesh.yaml");
  await Deno.writeTextFile(
    meshPath,
    meshManifests({
      trustDomain: "cluster.local",
      workloads: [{
        name: "echo",
        namespace: "default",
        serviceAccount: "echo",
        address: ip(3),
        node: "node-b",
        labels: { app: "echo" },
      }],
      services: [],
    }),
  );
  const signer = SaTokenSigner.generate("RS256");
  await Deno.writeTextFile(join(dir, "jwks.json"), signer.jwks());
  const procs: WeftProc[] = [];
  try {
    const cp = await startWeft([
      "control-plane",
      "--config",
      meshPath,
      "--address",
      `${ip(1)}:0`,
      "--ca-dir",
      caDir,
      "--tls",
      "--client-auth",
      "jwt",
      "--jwks",
      join(dir, "jwks.json"),
      "--jwt-issuer",
      K8S_ISSUER,
      // The control plane on Bun when there is one (the verifier's node:crypto JWK keys), the
      // node agents on Deno: both runtimes in one run (deploy_test runs the image's Bun agent).
    ], { ...(bunPath() ? { runtime: bunPath()! } : {}) });
    procs.push(cp);
    assertEquals([cp.ready.clientAuth, cp.ready.jwtIssuer], ["jwt", K8S_ISSUER]);
    const node = (name: string, boundTo: string) => {
      const tokenFile = join(dir, `${name}-${boundTo}.token`);
      Deno.writeTextFileSync(
        tokenFile,
        signer.token({
          namespace: "istio-system",
          serviceAccount: "weft-node",
          pod: `weft-node-${boundTo}`,
          node: boundTo,
        }),
      );
      const cfg = join(dir, `${name}-${boundTo}.yaml`);
      Deno.writeTextFileSync(
        cfg,
        stringify({
          node: { name },
          ca: { mode: "xds" },
          listeners: LISTENERS,
          xds: {
            address: String(cp.ready.address),
            rootCertFile: join(caDir, "ca-cert.pem"),
            tokenFile,
          },
        }),
      );
      return cfg;
    };
    const b = await startWeft(["run", "--config", node("node-b", "node-b")]);
    procs.push(b);
    type Dump = {
      workloads: { name: string }[];
      certificates: { identity: string; certChain: { pem: string }[] }[];
    };
    const issued = (d: Dump) => d.certificates.filter((c) => c.certChain.some((x) => x.pem !== ""));
    let dump: Dump | undefined;
    for (let i = 0; i < 200; i++) {
      dump = await (await fetch(`http://${b.ready.admin}/config_dump`)).json();
      if (dump!.workloads.length > 0 && issued(dump!).length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assertEquals(dump!.workloads.map((w) => w.name), ["echo"]);
    assertEquals(issued(dump!).map((c) => c.identity), [ECHO]);
    // Claims node-b, token bound to node-a: the CA refuses node-b's workload.
    const liar = await startWeft(["run", "--config", node("node-b", "node-a")]);
    procs.push(liar);
    const refused = await cp.waitFor(
      (l) => l.msg === "csr refused" && l.reason === "not_on_node",
      20_000,
    );
    assert(
      String(refused.details).includes("node node-a hosts no workload"),
      String(refused.details),
    );
    const liarDump: Dump = await (await fetch(`http://${liar.ready.admin}/config_dump`)).json();
    // Its node-b workload's certificate stays pending: nothing was issued.
    assertEquals(issued(liarDump), []);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await Deno.remove(dir, { recursive: true });
  }
});
