/**
 * deploy/: every manifest validates offline against the Kubernetes API schemas
 * (support/k8s_schema.ts: types, required and unknown fields), the kustomization lists them all,
 * the node agent's shape is what a node agent needs (host network, NET_ADMIN + SYS_ADMIN only,
 * the host paths in-pod capture uses and no others, the CNI dirs only in the install-cni init
 * container, probes on 15021, scrape annotations, grace period = drain + 5 s), its weft.yaml
 * (in-pod capture on) passes `weft validate` and the mesh file parses. Then the node agent's pod,
 * derived from the DaemonSet's template, runs for real under `podman kube play` with the shipped
 * image against a control plane container, and becomes ready; its install-cni init container
 * has put the compiled binary and weft's conflist entry into the test's temp host dirs (never
 * the machine's real /opt/cni or /etc/cni).
 */
import { join } from "node:path";
import { parse, parseAllDocuments, stringify } from "yaml";
import { parseMesh } from "../src/xds/control_plane/mod.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { ContainerLauncher, containerSkipReason, ensureTestImage } from "./support/container.ts";
import { validateManifest } from "./support/k8s_schema.ts";
import { SaTokenSigner } from "./support/k8s_sa_tokens.ts";
import { loopbackBlock, ROOT, runWeft, startWeft, type WeftProc } from "./support/weft_proc.ts";

const DEPLOY = join(ROOT, "deploy");
// Manifests are walked and edited freely here; the schema validator checks what they hold.
// deno-lint-ignore no-explicit-any
type Doc = Record<string, any>;

function manifests(): { file: string; doc: Doc }[] {
  const out: { file: string; doc: Doc }[] = [];
  for (const e of [...Deno.readDirSync(DEPLOY)].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!e.name.endsWith(".yaml") || e.name === "kustomization.yaml") continue;
    for (const d of parseAllDocuments(Deno.readTextFileSync(join(DEPLOY, e.name)))) {
      assertEquals(d.errors, [], e.name);
      out.push({ file: e.name, doc: d.toJS() as Doc });
    }
  }
  return out;
}

function find(kind: string, name: string): Doc {
  const m = manifests().find((m) => m.doc.kind === kind && m.doc.metadata?.name === name);
  assert(m, `deploy/ has ${kind}/${name}`);
  return structuredClone(m.doc);
}

const seconds = (d: string): number => {
  const m = d.match(/^(\d+)(ms|s|m)$/);
  assert(m, `duration ${d}`);
  return Number(m[1]) * ({ ms: 0.001, s: 1, m: 60 }[m[2] as "ms" | "s" | "m"]);
};

Deno.test("deploy: every manifest validates against the Kubernetes API schemas", () => {
  const all = manifests();
  const kinds = all.map((m) => `${m.doc.kind}/${m.doc.metadata.name}`).sort();
  for (
    const want of [
      "DaemonSet/weft-node",
      "ConfigMap/weft-node-config",
      "ServiceAccount/weft-node",
      "Deployment/weft-control-plane",
      "Service/weft-control-plane",
      "ServiceAccount/weft-control-plane",
      "ClusterRole/weft-control-plane",
      "ClusterRoleBinding/weft-control-plane",
      "ConfigMap/weft-mesh",
    ]
  ) assert(kinds.includes(want), `deploy/ has ${want}: ${kinds.join(", ")}`);
  assertEquals(all.flatMap((m) => validateManifest(m.doc, m.file)), []);
  const kust = parse(Deno.readTextFileSync(join(DEPLOY, "kustomization.yaml")));
  assertEquals(kust.kind, "Kustomization");
  assertEquals([...kust.resources].sort(), [...new Set(all.map((m) => m.file))].sort());
});

Deno.test("deploy: the validator catches unknown fields, wrong types and missing required fields", () => {
  const ds = find("DaemonSet", "weft-node");
  ds.spec.template.spec.hostNetwrk = true;
  ds.spec.template.spec.containers[0].ports[0].containerPort = "15008";
  const problems = validateManifest(ds, "mutated");
  assert(
    problems.some((p) => /spec\.template\.spec\.hostNetwrk: unknown field/.test(p)),
    problems.join("\n"),
  );
  assert(problems.some((p) => /containerPort must be integer/.test(p)), problems.join("\n"));
  const noSelector = find("DaemonSet", "weft-node");
  delete noSelector.spec.selector;
  assert(validateManifest(noSelector, "mutated").some((p) => /selector/.test(p)));
});

Deno.test("deploy: the node agent is shaped like a node agent; its config validates", async () => {
  const ds = find("DaemonSet", "weft-node");
  const pod = ds.spec.template.spec;
  const c = pod.containers.find((x: Doc) => x.name === "weft");
  assertEquals(pod.hostNetwork, true);
  assertEquals(c.securityContext.capabilities, { drop: ["ALL"], add: ["NET_ADMIN", "SYS_ADMIN"] });
  assertEquals(c.securityContext.privileged, false);
  assertEquals(c.readinessProbe.httpGet, { path: "/healthz/ready", port: 15021 });
  assertEquals(c.livenessProbe.httpGet.port, 15021);
  assert(c.resources.requests.cpu && c.resources.requests.memory);
  const ann = ds.spec.template.metadata.annotations;
  assertEquals([ann["prometheus.io/scrape"], ann["prometheus.io/port"]], ["true", "15020"]);
  // Exactly the host paths the pod uses: state, pod namespaces, the CNI plugin's socket dir, and
  // (install-cni only) the node's CNI bin and network config dirs.
  const hostPaths = new Map<string, string>(
    pod.volumes.filter((v: Doc) => v.hostPath).map((v: Doc) => [v.name, v.hostPath.path]),
  );
  assertEquals([...hostPaths.values()].sort(), [
    "/etc/cni/net.d",
    "/opt/cni/bin",
    "/var/lib/weft",
    "/var/run/netns",
    "/var/run/weft",
  ]);
  const cniDirs = ["/etc/cni/net.d", "/opt/cni/bin"];
  const hostMounts = (x: Doc): string[] =>
    x.volumeMounts.map((m: Doc) => hostPaths.get(m.name)).filter((p: unknown) => p).sort();
  assert(!hostMounts(c).some((p) => cniDirs.includes(p)), "the agent does not mount the CNI dirs");
  const mountOf = (path: string): Doc =>
    c.volumeMounts.find((m: Doc) => hostPaths.get(m.name) === path);
  assertEquals(
    mountOf("/var/run/netns").mountPath,
    "/var/run/netns",
    "CNI_NETNS paths as on the host",
  );
  assertEquals(mountOf("/var/run/netns").mountPropagation, "HostToContainer");
  const weftYaml = find("ConfigMap", "weft-node-config").data["weft.yaml"];
  // In-pod capture is on, its socket and state inside the mounted /var/run/weft.
  const inpod = parse(weftYaml).inpod;
  for (const p of [inpod.socket, inpod.stateDir]) {
    assert(p.startsWith(`${mountOf("/var/run/weft").mountPath}/`), p);
  }
  const drain = seconds(parse(weftYaml).timeouts.drain);
  assertEquals(pod.terminationGracePeriodSeconds, drain + 5, "grace = drain + 5 s");
  // The same check the init container runs, by the real CLI.
  const dir = await Deno.makeTempDir({ prefix: "weft-deploy-" });
  try {
    await Deno.writeTextFile(join(dir, "weft.yaml"), weftYaml);
    const r = await runWeft(["validate"], { env: { WEFT_CONFIG: join(dir, "weft.yaml") } });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(pod.initContainers[0].args, ["validate"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // install-cni: after validation, `weft cni install` with only the CNI dirs, nothing added.
  assertEquals(pod.initContainers.map((x: Doc) => x.name), ["validate-config", "install-cni"]);
  const inst = pod.initContainers[1];
  assertEquals(inst.args, ["cni", "install"]);
  assertEquals(hostMounts(inst), cniDirs);
  assertEquals(inst.securityContext.capabilities, { drop: ["ALL"] });
  const envOf = (name: string): string => inst.env.find((e: Doc) => e.name === name)?.value;
  assertEquals(envOf("WEFT_CNI_SOCKET"), inpod.socket, "the entry names the agent's socket");
  for (
    const [name, host] of [["WEFT_CNI_BIN_DIR", "/opt/cni/bin"], [
      "WEFT_CNI_CONF_DIR",
      "/etc/cni/net.d",
    ]]
  ) {
    const m = inst.volumeMounts.find((m: Doc) => hostPaths.get(m.name) === host);
    assertEquals(envOf(name!), m.mountPath, `${name} is where ${host} is mounted`);
  }
  const mesh = parseMesh(find("ConfigMap", "weft-mesh").data["mesh.yaml"]);
  assertEquals(mesh.nodeAgentIdentity, "spiffe://cluster.local/ns/istio-system/sa/weft-node");
});

/** Where the DaemonSet mounts its projected istio-token (weft.yaml xds.tokenFile's dir). */
const TOKEN_DIR = "/var/run/secrets/tokens";

Deno.test("deploy: node agents authenticate with a projected service-account token the control plane verifies (--client-auth jwt)", () => {
  const ds = find("DaemonSet", "weft-node");
  const pod = ds.spec.template.spec;
  const c = pod.containers.find((x: Doc) => x.name === "weft");
  const tokenFile = parse(find("ConfigMap", "weft-node-config").data["weft.yaml"]).xds.tokenFile;
  assertEquals(tokenFile, `${TOKEN_DIR}/istio-token`, "ztunnel's path");
  const mount = c.volumeMounts.find((m: Doc) => m.mountPath === TOKEN_DIR);
  assert(mount?.readOnly, "the token dir is mounted read-only");
  const vol = pod.volumes.find((v: Doc) => v.name === mount.name);
  assertEquals(vol.projected.sources, [{
    serviceAccountToken: { audience: "istio-ca", expirationSeconds: 43200, path: "istio-token" },
  }]);
  const cp = find("Deployment", "weft-control-plane").spec.template.spec;
  const args: string[] = cp.containers[0].args;
  const flag = (name: string): string | undefined => args[args.indexOf(name) + 1];
  assertEquals(flag("--client-auth"), "jwt");
  assert(flag("--jwt-issuer")?.startsWith("https://"), "the service-account issuer");
  const jwks = flag("--jwks")!;
  const jwksMount = cp.containers[0].volumeMounts.find((m: Doc) => jwks.startsWith(m.mountPath));
  assert(jwksMount, `${jwks} is on a mounted volume`);
  assert(cp.volumes.find((v: Doc) => v.name === jwksMount.name)?.configMap, "a ConfigMap");
  const trusted = cp.containers[0].env.find((e: Doc) => e.name === "CA_TRUSTED_NODE_ACCOUNTS");
  assertEquals(trusted.value, `${ds.metadata.namespace}/${pod.serviceAccountName}`);
});

const skip = containerSkipReason();

/** The DaemonSet's pod as a Pod for `podman kube play`: the test image, a node name instead of
 * the downward API, hostPaths moved under `dir`, listeners and the control plane address on
 * this test's loopback block, no `ports` (podman refuses them with host networking), restart
 * policy OnFailure (below). Everything else is the manifest's, init container included. */
function nodeAgentPod(image: string, dir: string, ip: (n: number) => string, name: string): Doc[] {
  const ds = find("DaemonSet", "weft-node");
  const cm = find("ConfigMap", "weft-node-config");
  const cfg = parse(cm.data["weft.yaml"]);
  cfg.listeners = {
    ...cfg.listeners,
    admin: `${ip(5)}:15000`,
    metrics: `${ip(5)}:15020`,
    readiness: `${ip(5)}:15021`,
  };
  cm.metadata.name = `${name}-config`;
  cm.data["weft.yaml"] = stringify(cfg);
  const spec = ds.spec.template.spec;
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    c.image = image;
    c.env = (c.env ?? []).map((e: Doc) =>
      e.name === "WEFT_NODE_NAME"
        ? { name: e.name, value: "node-a" }
        : e.name === "WEFT_XDS_ADDRESS"
        ? { name: e.name, value: `${ip(1)}:15010` }
        : e
    );
    // podman refuses port mappings on the host network (Kubernetes only documents them there).
    delete c.ports;
  }
  // The mesh root (the weft-ca-root-cert ConfigMap a cluster holds): the test control plane's.
  const root = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `${name}-ca-root` },
    data: { "root-cert.pem": Deno.readTextFileSync(join(dir, "ca", "ca-cert.pem")) },
  };
  for (const v of spec.volumes) {
    if (v.hostPath) v.hostPath.path = join(dir, "host", v.hostPath.path);
    // podman has no service-account token projection: the test's token (signed as
    // kube-apiserver signs it, bound to node-a) from a host dir at the same mount.
    if (v.projected) {
      delete v.projected;
      v.hostPath = { path: join(dir, "host", TOKEN_DIR), type: "Directory" };
    }
    if (v.configMap?.name === "weft-node-config") v.configMap.name = cm.metadata.name;
    if (v.configMap?.name === "weft-ca-root-cert") v.configMap.name = root.metadata.name;
  }
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: ds.spec.template.metadata.labels },
    // OnFailure, not a DaemonSet's Always: podman 4.3 restarts a finished init container under
    // Always (Kubernetes does not), looping `weft validate` for ~20 s before the agent starts.
    spec: { ...spec, restartPolicy: "OnFailure" },
  };
  assertEquals(validateManifest(pod, "derived pod"), []);
  return [cm, root, pod];
}

const PODS_CONFLIST = {
  cniVersion: "1.0.0",
  name: "pods",
  plugins: [{
    type: "bridge",
    bridge: "cni0",
    ipam: { type: "host-local", subnet: "10.9.0.0/24" },
  }],
};

/** What install-cni (the image's `weft cni install`) left on the temp host: the compiled binary
 * in the bin dir, runnable as the CNI plugin with no arguments, and weft chained into the
 * conflist with the agent's socket. */
async function checkInstalledCni(dir: string): Promise<void> {
  const bin = join(dir, "host/opt/cni/bin/weft-cni");
  assert(((await Deno.stat(bin)).mode! & 0o111) !== 0, "installed plugin is executable");
  const run = async (args: string[], env: Record<string, string> = {}): Promise<string> => {
    const r = await new Deno.Command(bin, { args, env, stdout: "piped", stderr: "piped" }).output();
    assert(r.success, new TextDecoder().decode(r.stderr));
    return new TextDecoder().decode(r.stdout);
  };
  assertEquals(JSON.parse(await run(["version", "--json"])).kind, "binary");
  const version = JSON.parse(await run([], { CNI_COMMAND: "VERSION" }));
  assert(version.supportedVersions.includes("1.0.0"), JSON.stringify(version));
  const list = JSON.parse(
    await Deno.readTextFile(join(dir, "host/etc/cni/net.d/10-pods.conflist")),
  );
  const socket = parse(find("ConfigMap", "weft-node-config").data["weft.yaml"]).inpod.socket;
  assertEquals(list, {
    ...PODS_CONFLIST,
    plugins: [...PODS_CONFLIST.plugins, { type: "weft-cni", zdsSocket: socket }],
  });
}

function podmanEnv(dir: string): Record<string, string> {
  // kube play has no --ulimit: the sandbox's limits and runtime come from a containers.conf.
  const conf = join(dir, "containers.conf");
  Deno.writeTextFileSync(
    conf,
    `[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n` +
      `[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n`,
  );
  return { CONTAINERS_CONF: conf };
}

async function podman(
  args: string[],
  env: Record<string, string>,
  cwd?: string,
): Promise<string> {
  const r = await new Deno.Command("podman", {
    args,
    env,
    stdout: "piped",
    stderr: "piped",
    ...(cwd ? { cwd } : {}),
  }).output();
  const dec = new TextDecoder();
  if (!r.success) throw new Error(`podman ${args.join(" ")}: ${dec.decode(r.stderr)}`);
  return dec.decode(r.stdout);
}

Deno.test({
  name: `deploy: podman kube play runs the node agent's pod (from the DaemonSet) to ready${
    skip ? ` (skipped: ${skip})` : ""
  }`,
  ignore: skip !== undefined,
  async fn() {
    const image = await ensureTestImage();
    const ip = loopbackBlock();
    const dir = await Deno.makeTempDir({ prefix: "weft-kube-" });
    const name = `weft-node-test-${Deno.pid}`;
    const env = podmanEnv(dir);
    const kubeFile = join(dir, "pod.yaml");
    const cps = new ContainerLauncher(image.tag, [dir]);
    let cp: WeftProc | undefined;
    try {
      // The manifest's mesh plus one Pod scheduled on node-a; the agent's bound service-account
      // token for node-a and the issuer's keys, as a cluster's API server would make them.
      const meshConfig = parse(find("ConfigMap", "weft-mesh").data["mesh.yaml"]);
      const signer = SaTokenSigner.generate("RS256");
      await Deno.writeTextFile(join(dir, "jwks.json"), signer.jwks());
      const pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "app", namespace: "default" },
        spec: { nodeName: "node-a", serviceAccountName: "app" },
        status: { podIP: ip(2) },
      };
      await Deno.writeTextFile(
        join(dir, "mesh.yaml"),
        `${stringify(meshConfig)}---\n${stringify(pod)}`,
      );
      const state = join(dir, "host", "/var/lib/weft");
      await Deno.mkdir(state, { recursive: true, mode: 0o777 });
      await Deno.chmod(state, 0o777);
      // The token where the DaemonSet mounts its projected volume.
      const tokens = join(dir, "host", TOKEN_DIR);
      await Deno.mkdir(tokens, { recursive: true });
      const ds = find("DaemonSet", "weft-node");
      const deployed: string[] = find("Deployment", "weft-control-plane").spec.template.spec
        .containers[0].args;
      const issuer = deployed[deployed.indexOf("--jwt-issuer") + 1]!;
      await Deno.writeTextFile(
        join(tokens, "istio-token"),
        signer.token({
          namespace: ds.metadata.namespace,
          serviceAccount: ds.spec.template.spec.serviceAccountName,
          pod: name,
          node: "node-a",
          issuer,
        }),
        { mode: 0o644 },
      );
      const cpArgs = ["control-plane", "--config", join(dir, "mesh.yaml")];
      // As the Deployment runs it: server TLS, nodes authenticated by service-account token.
      const tlsArgs = [
        "--tls",
        "--client-auth",
        "jwt",
        "--jwks",
        join(dir, "jwks.json"),
        "--jwt-issuer",
        issuer,
      ];
      cp = await startWeft(
        [...cpArgs, "--address", `${ip(1)}:15010`, "--ca-dir", join(dir, "ca"), ...tlsArgs],
        { command: cps.command },
      );
      assertEquals([cp.ready.tls, cp.ready.clientAuth], [true, "jwt"]);
      await Deno.writeTextFile(
        kubeFile,
        nodeAgentPod(image.tag, dir, ip, name).map((d) => stringify(d)).join("---\n"),
      );
      // The node's pod network, already installed: the conflist install-cni chains weft into
      // (under the test's temp host dir, like every hostPath here).
      const confDir = join(dir, "host/etc/cni/net.d");
      await Deno.mkdir(confDir, { recursive: true });
      await Deno.writeTextFile(join(confDir, "10-pods.conflist"), JSON.stringify(PODS_CONFLIST));
      // From the temp dir with --build=false: podman 4.3 would otherwise try to build the image
      // from a directory named like it (the checkout's `weft` binary).
      await podman(["kube", "play", "--build=false", kubeFile], env, dir);
      const deadline = Date.now() + 60_000;
      let status = 0;
      while (status !== 200 && Date.now() < deadline) {
        status = await fetch(`http://${ip(5)}:15021/healthz/ready`).then(async (r) => {
          await r.body?.cancel();
          return r.status;
        }, () => 0);
        if (status !== 200) await new Promise((r) => setTimeout(r, 200));
      }
      const logs = await podman(["logs", `${name}-weft`], env).catch((e) => String(e));
      assertEquals(status, 200, `node agent pod never became ready:\n${logs}`);
      // In-pod capture started with the DaemonSet's capabilities and mounts (the image has
      // nsenter/nft/ip), its pod channel on the host path the CNI plugin dials.
      assert(logs.includes(`"msg":"pod channel ready"`), logs);
      assert(
        (await Deno.lstat(join(dir, "host/var/run/weft/zds.sock"))).isSocket,
        "the ZDS socket is on the host path",
      );
      await checkInstalledCni(dir);
      const live = await fetch(`http://${ip(5)}:15021/healthz/live`);
      assertEquals([live.status, await live.text()], [200, "live\n"]);
      const dump = await (await fetch(`http://${ip(5)}:15000/config_dump`)).json();
      assertEquals(dump.node.name, "node-a");
      assertEquals(dump.certificates[0]?.identity, "spiffe://cluster.local/ns/default/sa/app");
    } finally {
      await podman(["kube", "play", "--down", kubeFile], env, dir).catch(() => "");
      await podman(["pod", "rm", "-f", "--ignore", name], env).catch(() => "");
      await cp?.stop();
      cps.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
