/**
 * Idle memory guard: what `weft run` loads before it knows what a config needs. The static import
 * graph of the node agent must not reach the control path (gRPC, protobuf: ~25 MB resident),
 * the L7 filter host (jco, wasm tooling) or @peculiar/x509 (~10-15 MB): those load with dynamic
 * `import()` only for --xds / ca.mode xds, services with filters, and certificate making.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CertificateAuthority } from "../src/tls/mod.ts";
import { bunPath, ROOT } from "./support/weft_proc.ts";

interface InfoModule {
  readonly specifier: string;
  readonly dependencies?: {
    readonly code?: { readonly specifier: string };
    readonly isDynamic?: boolean;
  }[];
}

/** Specifiers reachable from `entry` through static (non-dynamic, non-type) imports. */
async function staticClosure(entry: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: InfoModule[];
    redirects?: Record<string, string>;
  };
  const norm = (s: string): string => info.redirects?.[s] ?? s;
  const byId = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const stack = [norm(info.roots[0]!)];
  while (stack.length > 0) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of byId.get(s)?.dependencies ?? []) {
      if (!d.isDynamic && d.code) stack.push(norm(d.code.specifier));
    }
  }
  return seen;
}

const HEAVY = [
  /^node:http$/, // Bun's node:http is ~1.7 MB resident; core keeps its own reason phrases
  /\/src\/xds\//,
  /\/src\/filters\//,
  /\/src\/tls\/_x509\.ts$/,
  /\/src\/tls\/(crl_store|_crl_der|_crl_check|_file_watch)\.ts$/, // only with a CRL (CRL_PATH / ca.crlFile)
  /\/yaml@|\/node_modules\/yaml\//, // weft.yaml is parsed with js-yaml (src/app/config.ts)
  /@grpc\/grpc-js/,
  /@bufbuild\/protobuf/,
  /@bytecodealliance\//,
  /@peculiar\/x509/,
  /reflect-metadata/,
];

Deno.test("lazy loading: weft run's static import graph leaves out xDS, the filter host and x509", async () => {
  for (const entry of ["src/main.ts", "src/app/node_agent.ts"]) {
    const mods = await staticClosure(join(ROOT, entry));
    assert.ok(mods.size > 10, `${entry}: the graph was read (${mods.size} modules)`);
    assert.ok(
      [...mods].some((m) => m.endsWith("/src/tls/mod.ts")) || entry === "src/main.ts",
      `${entry}: the identity layer is in the static graph`,
    );
    const heavy = [...mods].filter((m) => HEAVY.some((re) => re.test(m)));
    assert.deepEqual(heavy, [], `${entry} statically imports modules that must load lazily`);
  }
});

Deno.test("no compiler at run time: the lazily loaded filter host never reaches the plugin builder", async () => {
  const mods = await staticClosure(join(ROOT, "src/app/l7_host.ts"));
  assert.ok([...mods].some((m) => m.endsWith("/src/filters/mod.ts")), "the filter host is read");
  const builder = [...mods].filter((m) =>
    /\/src\/filters\/plugin_build\.ts$/.test(m) || m === "node:child_process" ||
    /\/plugins\//.test(m)
  );
  assert.deepEqual(builder, [], "l7_host.ts statically imports the plugin builder");
});

Deno.test("no node:http2 in a node agent: its xDS and CA clients (src/xds/mod.ts, loaded for --xds) and the filter host reach neither grpc-js nor node:http2", async () => {
  // Deno's node:http2 (nghttp2) could abort the whole process when a control plane went away
  // with streams open; the clients run on weft's own HTTP/2 (src/core GrpcChannel) and the
  // control plane's grpc-js server loads only in `weft control-plane`.
  for (const entry of ["src/xds/mod.ts", "src/app/l7_host.ts", "src/app/node_agent.ts"]) {
    const mods = await staticClosure(join(ROOT, entry));
    assert.ok(mods.size > 10, `${entry}: the graph was read (${mods.size} modules)`);
    const bad = [...mods].filter((m) =>
      /@grpc\/grpc-js/.test(m) || m === "node:http2" ||
      /\/src\/xds\/control_plane\/mod\.ts$/.test(m)
    );
    assert.deepEqual(bad, [], `${entry} statically reaches node:http2 or grpc-js`);
  }
  const xds = await staticClosure(join(ROOT, "src/xds/mod.ts"));
  assert.ok([...xds].some((m) => m.endsWith("/src/core/grpc_channel.ts")), "the clients' channel");
  assert.ok([...xds].some((m) => m === "node:tls"), "node: specifiers are in the graph");
});

Deno.test("a node over xDS loads no filter host: what startXds imports reaches neither src/filters nor jco", async () => {
  // The filter host (jco, its WASI shim with a worker thread) was 37 MB of a Bun node's idle RSS
  // over xDS; the RBAC/HTTPFault checks load it only when such a config arrives
  // (XdsClientOptions.loadFilterChecks).
  for (const entry of ["src/xds/mod.ts", "src/app/control_plane_cmd.ts"]) {
    const mods = await staticClosure(join(ROOT, entry));
    assert.ok(mods.size > 10, `${entry}: the graph was read (${mods.size} modules)`);
    const bad = [...mods].filter((m) =>
      /\/src\/filters\//.test(m) || /@bytecodealliance\//.test(m) ||
      /\/src\/app\/filter_checks\.ts$/.test(m)
    );
    assert.deepEqual(bad, [], `${entry} statically reaches the filter host`);
  }
});

Deno.test("first-party filters load without jco: the filter host's static graph reaches neither jco-transpile nor its WASI shim", async () => {
  // preview2-shim starts a worker thread (a second JS engine, ~37 MB) when evaluated; C-SDK
  // guests (authz, fault, traffic-split) are driven directly (component_core.ts + direct_abi.ts),
  // and jco loads only when a component needs its bindings (component_loader.ts loadJco).
  for (const entry of ["src/app/l7_host.ts", "src/filters/mod.ts", "src/app/node_agent.ts"]) {
    const mods = await staticClosure(join(ROOT, entry));
    assert.ok(mods.size > 10, `${entry}: the graph was read (${mods.size} modules)`);
    if (entry !== "src/app/node_agent.ts") {
      assert.ok(
        [...mods].some((m) => m.endsWith("/src/filters/component/direct_abi.ts")),
        `${entry}: the direct binding is in the static graph`,
      );
    }
    const jco = [...mods].filter((m) => /jco-transpile|preview2-shim/.test(m));
    assert.deepEqual(jco, [], `${entry} statically reaches jco or its WASI shim`);
  }
});

Deno.test("a node over xDS decodes with the generated codec: what startXds imports reaches neither protobuf-es nor its descriptors, nor the control plane", async () => {
  // protobuf-es's runtime and the ~80 generated files' descriptors were ~14 MB of a node's idle
  // RSS over xDS; the node decodes with src/xds/gen/node_codec.ts (no descriptors) and loads
  // protobuf-es only for RBAC/HTTPFault/TypedStruct configs (resources/filter_json.ts). The mesh
  // compiler (src/istio, control_plane/) belongs to `weft control-plane`.
  const mods = await staticClosure(join(ROOT, "src/xds/mod.ts"));
  assert.ok([...mods].some((m) => m.endsWith("/src/xds/gen/node_codec.ts")), "the codec is read");
  assert.ok([...mods].some((m) => m.endsWith("/src/xds/client.ts")), "the client is read");
  const bad = [...mods].filter((m) =>
    /@bufbuild\/protobuf/.test(m) || /\/src\/xds\/gen\/.*_pb\.ts$/.test(m) ||
    /\/src\/xds\/proto\.ts$/.test(m) || /\/src\/xds\/resources\/filter_json\.ts$/.test(m) ||
    /\/src\/xds\/control_plane\//.test(m) || /\/src\/istio\//.test(m)
  );
  assert.deepEqual(bad, [], "src/xds/mod.ts statically reaches protobuf-es or the control plane");
});

Deno.test("a node with component filters only loads no proxy-wasm host: the filter host's static graph leaves out its loader, node:http, node:https and node:url", async () => {
  // On Bun, node:http and node:https cost ~7 MB and node:url ~2 MB when imported (bun -e), which
  // an xDS node paid when its first L7 policy loaded the filter layer; the proxy-wasm host loads
  // with the first proxy-wasm filter (proxy_wasm/register.ts), its HTTP clients with the first
  // direct callout (proxy_wasm/http_call.ts).
  const mods = await staticClosure(join(ROOT, "src/app/l7_host.ts"));
  assert.ok([...mods].some((m) => m.endsWith("/src/filters/mod.ts")), "the filter host is read");
  const bad = [...mods].filter((m) =>
    /\/src\/filters\/proxy_wasm\/(loader|vm|filter|http_call)\.ts$/.test(m) ||
    ["node:http", "node:https", "node:url"].includes(m)
  );
  assert.deepEqual(bad, [], "l7_host.ts statically reaches the proxy-wasm host or node:http/url");
});

Deno.test("a node that gets its certificates by CSR makes the key, the CSR and checks the answer with node:crypto and DER: csr.ts statically reaches no x509 loader", async () => {
  // @peculiar/x509 (~200 modules) and WebCrypto's first use (~0.6-0.8 MB of Bun's native code)
  // were paid by every DaemonSet node with ca.mode xds (bench:idle's CSR row).
  const mods = await staticClosure(join(ROOT, "src/tls/csr.ts"));
  assert.ok(mods.size > 5, `csr.ts: the graph was read (${mods.size} modules)`);
  const bad = [...mods].filter((m) =>
    /\/src\/tls\/(x509_loader|_x509|_reflect)\.ts$/.test(m) ||
    /@peculiar\/|reflect-metadata/.test(m)
  );
  assert.deepEqual(bad, [], "src/tls/csr.ts statically reaches @peculiar/x509 or its loader");
});

for (const runtime of ["deno", "bun"] as const) {
  const bun = runtime === "bun" ? bunPath() : undefined;
  Deno.test({
    name: `a CSR node on ${runtime} touches neither crypto.subtle nor @peculiar/x509: createCsr, ` +
      "the control plane's CA signing it, leafFromChain" +
      (runtime === "bun" && !bun ? " (skipped: bun is not installed)" : ""),
    ignore: runtime === "bun" && !bun,
  }, async () => {
    const child = new Deno.Command(runtime === "bun" ? bun! : Deno.execPath(), {
      args: runtime === "bun"
        ? ["tests/support/csr_child.ts"]
        : ["run", "-A", "tests/support/csr_child.ts"],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    const line = async (): Promise<string> => {
      while (!buf.includes("\n")) {
        const r = await lines.read();
        if (r.done) throw new Error(`child ended early: ${buf}`);
        buf += r.value;
      }
      const i = buf.indexOf("\n");
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      return l;
    };
    const stderr = new Response(child.stderr).text();
    try {
      const { csrPem } = JSON.parse(await line()) as { csrPem: string };
      // The control plane's CA (this process: it loads x509 to read the CSR) signs it.
      const ca = await CertificateAuthority.generate();
      const id = "spiffe://cluster.local/ns/default/sa/web";
      const chain = await ca.signCsr(csrPem, { identity: id });
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(JSON.stringify(chain)));
      await w.close();
      const got = JSON.parse(await line());
      assert.deepEqual(got, {
        watched: true,
        identity: id,
        subtleReads: 0,
        subtleCalls: 0,
        reflectPolyfill: false,
      }, await stderr);
    } finally {
      await lines.cancel().catch(() => {});
      const status = await child.status;
      await stderr;
      assert.equal(status.code, 0, await stderr);
    }
  });
}
