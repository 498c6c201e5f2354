/**
 * `deno task gen`: regenerates src/xds/gen (protobuf-es message types) from the Envoy v3 protos
 * shipped inside the @grpc/grpc-js-xds npm package plus weft's own Istio protos in src/xds/proto.
 * Works offline: everything comes from node_modules. Only the message types weft needs (and
 * what they reference) are generated, via `buf generate --type`.
 */
import { WeftError } from "../../core/mod.ts";

const root = new URL("../../../", import.meta.url).pathname;
const deps = `${root}node_modules/@grpc/grpc-js-xds/deps`;
const out = `${root}src/xds/gen`;

/** The types weft reads or writes; buf keeps their transitive dependencies. */
export const GEN_TYPES: readonly string[] = [
  "envoy.service.discovery.v3.AggregatedDiscoveryService",
  "envoy.service.discovery.v3.DiscoveryRequest",
  "envoy.service.discovery.v3.DiscoveryResponse",
  "envoy.service.discovery.v3.DeltaDiscoveryRequest",
  "envoy.service.discovery.v3.DeltaDiscoveryResponse",
  "envoy.service.discovery.v3.Resource",
  "envoy.config.listener.v3.Listener",
  "envoy.config.route.v3.RouteConfiguration",
  "envoy.config.cluster.v3.Cluster",
  "envoy.config.endpoint.v3.ClusterLoadAssignment",
  "envoy.config.core.v3.TypedExtensionConfig",
  "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
  "envoy.extensions.filters.http.rbac.v3.RBAC",
  "envoy.extensions.filters.http.fault.v3.HTTPFault",
  "envoy.extensions.filters.http.wasm.v3.Wasm",
  "envoy.extensions.filters.http.router.v3.Router",
  "envoy.extensions.filters.http.cors.v3.Cors",
  "envoy.extensions.filters.http.cors.v3.CorsPolicy",
  "envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig",
  "xds.type.v3.TypedStruct",
  "udpa.type.v1.TypedStruct",
  "google.rpc.Status",
  "istio.workload.Address",
  "istio.security.Authorization",
  "istio.v1.auth.IstioCertificateService",
];

/** The npm copy of protoc-gen-validate predates `ignore_empty`, which current Envoy protos set;
 * add the fields (same numbers as upstream PGV) so buf can compile the annotations. */
export function patchValidate(src: string): string {
  const adds: Record<string, number> = {
    FloatRules: 8,
    DoubleRules: 8,
    Int32Rules: 8,
    Int64Rules: 8,
    UInt32Rules: 8,
    UInt64Rules: 8,
    SInt32Rules: 8,
    SInt64Rules: 8,
    Fixed32Rules: 8,
    Fixed64Rules: 8,
    SFixed32Rules: 8,
    SFixed64Rules: 8,
    StringRules: 26,
    BytesRules: 14,
    EnumRules: 5,
    RepeatedRules: 5,
    MapRules: 6,
  };
  let text = src;
  for (const [msg, num] of Object.entries(adds)) {
    const head = `message ${msg} {`;
    if (!text.includes(head)) continue;
    const block = text.slice(text.indexOf(head), text.indexOf("\n}", text.indexOf(head)));
    if (block.includes("ignore_empty")) continue;
    text = text.replace(head, `${head}\n    optional bool ignore_empty = ${num};`);
  }
  return text;
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const res = await new Deno.Command(cmd, { args, cwd, stdout: "inherit", stderr: "inherit" })
    .output();
  if (!res.success) {
    throw new WeftError("xds_gen_failed", `Cannot generate xDS types: ${cmd} exited ${res.code}`);
  }
}

/** Root proto files; their import closure is copied (the npm tree holds unrelated protos that
 * do not compile without further dependencies). */
const ROOT_FILES: readonly string[] = [
  "envoy/service/discovery/v3/ads.proto",
  "envoy/config/listener/v3/listener.proto",
  "envoy/config/route/v3/route.proto",
  "envoy/config/cluster/v3/cluster.proto",
  "envoy/config/endpoint/v3/endpoint.proto",
  "envoy/config/core/v3/extension.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto",
  "envoy/extensions/filters/http/rbac/v3/rbac.proto",
  "envoy/extensions/filters/http/fault/v3/fault.proto",
  "envoy/extensions/filters/http/wasm/v3/wasm.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/filters/http/cors/v3/cors.proto",
  "envoy/extensions/path/match/uri_template/v3/uri_template_match.proto",
  "xds/type/v3/typed_struct.proto",
  "udpa/type/v1/typed_struct.proto",
  "google/rpc/status.proto",
  "istio/workload/workload.proto",
  "istio/security/authorization.proto",
  "istio/ca/ca.proto",
];

const SEARCH_ROOTS: readonly string[] = [
  `${deps}/envoy-api`,
  `${deps}/xds`,
  `${deps}/googleapis`,
  `${deps}/protoc-gen-validate`,
  `${root}src/xds/proto`,
];

async function findProto(rel: string): Promise<string | undefined> {
  for (const r of SEARCH_ROOTS) {
    try {
      await Deno.stat(`${r}/${rel}`);
      return `${r}/${rel}`;
    } catch {
      // try the next root
    }
  }
  return undefined;
}

/** Copy the import closure of ROOT_FILES into `tmp`; buf supplies google/protobuf itself. */
async function copyClosure(tmp: string): Promise<number> {
  const seen = new Set<string>();
  const queue = [...ROOT_FILES];
  while (queue.length) {
    const rel = queue.pop()!;
    if (seen.has(rel) || rel.startsWith("google/protobuf/")) continue;
    seen.add(rel);
    const abs = await findProto(rel);
    if (!abs) throw new WeftError("xds_gen_failed", `Cannot generate xDS types: ${rel} not found`);
    const text = await Deno.readTextFile(abs);
    const dest = `${tmp}/${rel}`;
    await Deno.mkdir(dest.slice(0, dest.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(dest, rel === "validate/validate.proto" ? patchValidate(text) : text);
    for (const m of text.matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)";/gm)) {
      queue.push(m[1]!);
    }
  }
  return seen.size;
}

export async function generate(): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "weft-xds-gen-" });
  try {
    await copyClosure(tmp);
    await Deno.writeTextFile(`${tmp}/buf.yaml`, "version: v2\n");
    const plugin = `${root}node_modules/@bufbuild/protoc-gen-es/bin/protoc-gen-es`;
    const template = {
      version: "v2",
      plugins: [{
        local: ["deno", "run", "-A", plugin],
        out,
        opt: ["target=ts", "import_extension=ts"],
        include_imports: true,
      }],
    };
    await Deno.remove(out, { recursive: true }).catch(() => {});
    const types = GEN_TYPES.flatMap((t) => ["--type", t]);
    await run(`${root}node_modules/.bin/buf`, [
      "generate",
      tmp,
      "--template",
      JSON.stringify(template),
      ...types,
    ], tmp);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) await generate();
