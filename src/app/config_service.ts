/** Services: VIPs, ports, endpoints, DestinationRule subsets, VirtualService http routes, plugins. */
import { env, spiffeId } from "../core/mod.ts";
import type { CalloutCluster, GatewayAddress } from "../core/mod.ts";
import { logger, parseIp, splitHostPort } from "../core/mod.ts";
import {
  type Checker,
  hostFqdn,
  type HttpRoute,
  isObj,
  parseHttpRoute,
  parseOciRef,
} from "../istio/mod.ts";
import { type ConfigResources, wasmPluginsFor } from "./config_resources.ts";
import type {
  EndpointConfig,
  PluginConfig,
  ServiceConfig,
  ServicePortConfig,
} from "./config_types.ts";

const log = logger("config");

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function checkService(
  c: Checker,
  path: string,
  v: unknown,
  td: string,
  extra?: ConfigResources,
): ServiceConfig {
  const o = c.obj(path, v, [
    "name",
    "namespace",
    "hostname",
    "vips",
    "address",
    "ports",
    "endpoints",
    "subsets",
    "http",
    "plugins",
    "subjectAltNames",
  ]);
  const name = c.str(`${path}.name`, o.name, undefined, NAME, "a DNS-1123 name");
  const namespace = c.str(`${path}.namespace`, o.namespace, "default", NAME, "a namespace name");
  const vipsRaw = o.vips !== undefined
    ? c.strList(`${path}.vips`, o.vips)
    : o.address !== undefined
    ? [c.str(`${path}.address`, o.address)]
    : [];
  vipsRaw.forEach((a, i) => {
    if (!parseIp(a)) {
      c.problems.add(
        o.vips !== undefined ? `${path}.vips[${i}]` : `${path}.address`,
        `must be an IP address, got "${a}"`,
      );
    }
  });
  // Identities an endpoint may present besides its own (ServiceEntry subjectAltNames).
  const subjectAltNames = c.strList(`${path}.subjectAltNames`, o.subjectAltNames);
  subjectAltNames.forEach((s, i) => {
    if (!/^spiffe:\/\/[^/]+\/ns\/[^/]+\/sa\/[^/]+$/.test(s)) {
      c.problems.add(
        `${path}.subjectAltNames[${i}]`,
        `must be spiffe://<trust domain>/ns/<namespace>/sa/<service account>, got "${s}"`,
      );
    }
  });
  const ports = c.list(`${path}.ports`, o.ports).map((p, i) =>
    checkPort(c, `${path}.ports[${i}]`, p)
  );
  if (ports.length === 0) c.problems.add(`${path}.ports`, "needs at least one port");
  const endpoints = c.list(`${path}.endpoints`, o.endpoints).map((e, i) =>
    checkEndpoint(c, `${path}.endpoints[${i}]`, e, td)
  );
  const subsets = c.list(`${path}.subsets`, o.subsets).map((s, i) => {
    const so = c.obj(`${path}.subsets[${i}]`, s, ["name", "labels"]);
    return {
      name: c.str(`${path}.subsets[${i}].name`, so.name),
      labels: c.labels(`${path}.subsets[${i}].labels`, so.labels),
    };
  });
  const hostname = c.str(`${path}.hostname`, o.hostname, `${name}.${namespace}.svc.cluster.local`);
  // DestinationRules and VirtualServices from `resources`/`configDir` attach by host.
  subsets.push(...(extra?.subsets.get(hostname) ?? []));
  // Inline routes are parsed here; a VirtualService's (resources, configDir) were parsed with it.
  const attached = o.http === undefined ? extra?.http.get(hostname) : undefined;
  const routes = attached?.routes ??
    c.list(`${path}.http`, o.http).map((r, i) => parseHttpRoute(c, `${path}.http[${i}]`, r));
  const routePath = attached ? `${attached.where}: spec.http` : `${path}.http`;
  const http = routes.map((route, i) =>
    withFqdnHosts(route, attached?.namespace ?? namespace, (d, j) => {
      const sub = d.destination.subset;
      if (sub !== undefined && !subsets.some((s) => s.name === sub)) {
        // As Istio: accepted (istioctl analyze warns); its share answers 503 NC at request time.
        log.warn("config warning", {
          path: `${routePath}[${i}].route[${j}].destination.subset`,
          warning: `subset "${sub}" is not defined in this service's subsets: its share of ` +
            "requests gets 503 (no cluster)",
        });
      }
    })
  );
  const plugins = c.list(`${path}.plugins`, o.plugins).map((p, i) =>
    checkPlugin(c, `${path}.plugins[${i}]`, p)
  );
  // WasmPlugins from `resources`/`configDir` attach by targetRefs or selector.
  plugins.push(...wasmPluginsFor({ name, namespace, ports, endpoints }, extra?.wasmPlugins ?? []));
  // A filter is (scope, name): one service's plugins must have distinct names per direction.
  const seen = new Map<string, number>();
  plugins.forEach((p, i) => {
    const key = `${p.direction}/${p.name}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else {
      c.problems.add(
        `${path}.plugins[${i}].name`,
        `duplicate ${p.direction} plugin "${p.name}" (also ${path}.plugins[${first}])`,
      );
    }
  });
  return {
    name,
    namespace,
    hostname,
    vips: vipsRaw,
    ports,
    endpoints,
    subsets,
    http,
    plugins,
    ...(subjectAltNames.length > 0 ? { subjectAltNames } : {}),
  };
}

/** The route with destination hosts as FQDNs (short names resolve in `namespace`, the
 * VirtualService's or the service's), each destination seen by `check`. */
function withFqdnHosts(
  r: HttpRoute,
  namespace: string,
  check: (d: HttpRoute["route"][number], j: number) => void,
): HttpRoute {
  r.route.forEach(check);
  return {
    ...r,
    route: r.route.map((d) => ({
      ...d,
      destination: { ...d.destination, host: hostFqdn(d.destination.host, namespace) },
    })),
  };
}

function checkPort(c: Checker, path: string, v: unknown): ServicePortConfig {
  const o = typeof v === "number"
    ? { port: v }
    : c.obj(path, v, ["port", "targetPort", "protocol", "name"]);
  const port = c.int(`${path}.port`, o.port, undefined, 1, 65535);
  const protocol = c.oneOf(`${path}.protocol`, o.protocol, ["TCP", "HTTP", "HTTP2", "GRPC"], "TCP");
  return {
    port,
    targetPort: c.int(`${path}.targetPort`, o.targetPort, port, 1, 65535),
    protocol,
    name: c.str(`${path}.name`, o.name, `${protocol.toLowerCase()}-${port}`),
  };
}

function checkEndpoint(c: Checker, path: string, v: unknown, td: string): EndpointConfig {
  const o = c.obj(path, v, [
    "workload",
    "namespace",
    "serviceAccount",
    "address",
    "port",
    "tunnel",
    "hboneAddress",
    "node",
    "labels",
    "weight",
    "network",
    "networkGateway",
  ]);
  const address = c.str(`${path}.address`, o.address);
  if (address && !parseIp(address)) {
    c.problems.add(`${path}.address`, `must be an IP address, got "${address}"`);
  }
  const tunnel = c.oneOf(`${path}.tunnel`, o.tunnel, ["HBONE", "NONE"], "HBONE");
  const hboneAddress = c.optStr(`${path}.hboneAddress`, o.hboneAddress);
  if (hboneAddress !== undefined && !splitHostPort(hboneAddress)) {
    c.problems.add(`${path}.hboneAddress`, `must be "ip:port", got "${hboneAddress}"`);
  }
  const namespace = c.str(`${path}.namespace`, o.namespace, "default", NAME, "a namespace name");
  const serviceAccount = c.str(
    `${path}.serviceAccount`,
    o.serviceAccount,
    "default",
    NAME,
    "a service account name",
  );
  void spiffeId(td, namespace, serviceAccount);
  return {
    workload: c.str(`${path}.workload`, o.workload, address),
    namespace,
    serviceAccount,
    address,
    port: o.port === undefined ? undefined : c.int(`${path}.port`, o.port, undefined, 1, 65535),
    tunnel,
    hboneAddress,
    node: c.optStr(`${path}.node`, o.node),
    labels: c.labels(`${path}.labels`, o.labels),
    weight: c.int(`${path}.weight`, o.weight, 1, 0, 1_000_000),
    network: c.optStr(`${path}.network`, o.network),
    networkGateway: o.networkGateway === undefined
      ? undefined
      : checkGateway(c, `${path}.networkGateway`, o.networkGateway),
  };
}

/** ztunnel's GatewayAddress: `address: {network, ip}` or `hostname: {namespace, hostname}`
 * (exactly one), `hboneMtlsPort` (default 15008). */
function checkGateway(c: Checker, path: string, v: unknown): GatewayAddress | undefined {
  const o = c.obj(path, v, ["address", "hostname", "hboneMtlsPort"]);
  const hboneMtlsPort = c.int(`${path}.hboneMtlsPort`, o.hboneMtlsPort, 15008, 1, 65535);
  if ((o.address === undefined) === (o.hostname === undefined)) {
    c.problems.add(path, "needs exactly one of address or hostname");
    return undefined;
  }
  if (o.address !== undefined) {
    const a = c.obj(`${path}.address`, o.address, ["network", "ip"]);
    const ip = c.str(`${path}.address.ip`, a.ip);
    if (ip && !parseIp(ip)) {
      c.problems.add(`${path}.address.ip`, `must be an IP address, got "${ip}"`);
    }
    const network = c.str(`${path}.address.network`, a.network, "");
    return { destination: { kind: "address", network, ip }, hboneMtlsPort };
  }
  const h = c.obj(`${path}.hostname`, o.hostname, ["namespace", "hostname"]);
  return {
    destination: {
      kind: "hostname",
      namespace: c.str(
        `${path}.hostname.namespace`,
        h.namespace,
        undefined,
        NAME,
        "a namespace name",
      ),
      hostname: c.str(`${path}.hostname.hostname`, h.hostname, undefined, NAME, "a host name"),
    },
    hboneMtlsPort,
  };
}

function checkPlugin(c: Checker, path: string, v: unknown): PluginConfig {
  const o = c.obj(path, v, [
    "name",
    "url",
    "sha256",
    "type",
    "direction",
    "phase",
    "priority",
    "failStrategy",
    "pluginConfig",
    "pluginName",
    "vmConfig",
    "clusters",
    "maxMemoryBytes",
    "callBudgetMs",
    "bodies",
  ]);
  const url = c.str(`${path}.url`, o.url);
  if (url && !/^(file:\/\/|https?:\/\/|\.{0,2}\/|[A-Za-z0-9_])/.test(url)) {
    c.problems.add(`${path}.url`, `unsupported URL "${url}"`);
  }
  if (url.startsWith("oci://")) {
    // Here a url without a scheme is a path; an image is always oci:// (a WasmPlugin's may omit it).
    try {
      parseOciRef(url);
    } catch (e) {
      c.problems.add(`${path}.url`, `bad OCI image reference: ${(e as Error).message}`);
    }
  }
  return {
    name: c.str(`${path}.name`, o.name),
    url,
    sha256: o.sha256 === undefined
      ? undefined
      : c.str(`${path}.sha256`, o.sha256, undefined, /^[0-9a-f]{64}$/, "64 lowercase hex digits"),
    type: c.oneOf(`${path}.type`, o.type, ["component", "proxy-wasm"], "component"),
    direction: c.oneOf(`${path}.direction`, o.direction, ["inbound", "outbound"], "inbound"),
    phase: c.oneOf(
      `${path}.phase`,
      o.phase,
      ["AUTHN", "AUTHZ", "STATS", "UNSPECIFIED"],
      "UNSPECIFIED",
    ),
    priority: c.int(`${path}.priority`, o.priority, 0, -2147483648, 2147483647),
    failStrategy: c.oneOf(`${path}.failStrategy`, o.failStrategy, [
      "FAIL_CLOSE",
      "FAIL_OPEN",
      "FAIL_RELOAD",
    ], "FAIL_CLOSE"),
    pluginConfig: o.pluginConfig ?? {},
    pluginName: o.pluginName === undefined ? undefined : c.str(`${path}.pluginName`, o.pluginName),
    env: checkVmEnv(c, `${path}.vmConfig`, o.vmConfig),
    clusters: checkClusters(c, `${path}.clusters`, o.clusters),
    maxMemoryBytes: o.maxMemoryBytes === undefined
      ? undefined
      : c.int(`${path}.maxMemoryBytes`, o.maxMemoryBytes, undefined, 65536, 4 * 1024 ** 3),
    callBudgetMs: o.callBudgetMs === undefined
      ? undefined
      : c.int(`${path}.callBudgetMs`, o.callBudgetMs, undefined, 1, 60_000),
    bodies: typeof o.bodies === "string"
      ? c.oneOf(`${path}.bodies`, o.bodies, ["none", "buffered", "streamed"], "none")
      : c.bool(`${path}.bodies`, o.bodies, false)
      ? "buffered"
      : "none",
  };
}

/** WasmPlugin vmConfig.env: INLINE values, or HOST (weft's own variable of that name). */
function checkVmEnv(c: Checker, path: string, v: unknown): Record<string, string> {
  if (v === undefined) return {};
  const o = c.obj(path, v, ["env"]);
  const out: Record<string, string> = {};
  c.list(`${path}.env`, o.env).forEach((e, i) => {
    const p = `${path}.env[${i}]`;
    const eo = c.obj(p, e, ["name", "valueFrom", "value"]);
    const name = c.str(`${p}.name`, eo.name);
    const from = c.oneOf(`${p}.valueFrom`, eo.valueFrom, ["INLINE", "HOST"], "INLINE");
    if (from === "HOST") {
      const hv = env(name);
      if (hv !== undefined) out[name] = hv;
    } else out[name] = c.str(`${p}.value`, eo.value, "");
  });
  return out;
}

/** Callout clusters: name → "host:port" | { address | service, port, tls }. */
function checkClusters(c: Checker, path: string, v: unknown): Record<string, CalloutCluster> {
  if (v === undefined) return {};
  const o = c.obj(path, v, Object.keys(isObj(v) ? v : {}));
  const out: Record<string, CalloutCluster> = {};
  for (const [name, raw] of Object.entries(o)) {
    const p = `${path}.${name}`;
    if (typeof raw === "string") {
      if (!/^(https?:\/\/)?[^\s/]+:\d{1,5}$/.test(raw)) {
        c.problems.add(p, `must be host:port or an http(s) URL with a port, got "${raw}"`);
      }
      out[name] = { address: raw };
      continue;
    }
    const co = c.obj(p, raw, ["address", "service", "port", "tls"]);
    if ((co.address === undefined) === (co.service === undefined)) {
      c.problems.add(p, "set exactly one of address, service");
    }
    let tls: CalloutCluster["tls"];
    if (co.tls !== undefined) {
      const t = c.obj(`${p}.tls`, co.tls, ["caFile", "serverName", "insecureSkipVerify"]);
      tls = {
        ...(t.caFile !== undefined ? { caFile: c.str(`${p}.tls.caFile`, t.caFile) } : {}),
        ...(t.serverName !== undefined
          ? { serverName: c.str(`${p}.tls.serverName`, t.serverName) }
          : {}),
        insecureSkipVerify: c.bool(`${p}.tls.insecureSkipVerify`, t.insecureSkipVerify, false),
      };
    }
    out[name] = {
      ...(co.address !== undefined ? { address: c.str(`${p}.address`, co.address) } : {}),
      ...(co.service !== undefined ? { service: c.str(`${p}.service`, co.service) } : {}),
      ...(co.port !== undefined ? { port: c.int(`${p}.port`, co.port, undefined, 1, 65535) } : {}),
      ...(tls ? { tls } : {}),
    };
  }
  return out;
}

/** As istioctl analyze (IST0101): a route destination naming no service here is accepted with a
 * warning; its share answers 503 NC, or 500 for a Gateway API backendRef (S19), at request time. */
export function warnUnknownHosts(
  services: readonly Pick<ServiceConfig, "hostname" | "http">[],
): void {
  const known = new Set(services.map((s) => s.hostname));
  services.forEach((s, i) =>
    s.http.forEach((r, k) =>
      r.route.forEach((d, j) => {
        if (known.has(d.destination.host)) return;
        log.warn("config warning", {
          path: `services[${i}].http[${k}].route[${j}].destination.host`,
          ...(r.name ? { route: r.name } : {}),
          warning: `${d.destination.host} matches no service: its share of requests gets ${
            r.clusterNotFoundStatus ?? 503
          }`,
        });
      })
    )
  );
}
