/**
 * networking.istio.io DestinationRule (subsets; the trafficPolicy fields weft implements),
 * ServiceEntry and WorkloadEntry (mesh-external services and VM workloads).
 */
import { type Checker, INT32_MAX, isIpAddress, isObj, type Raw } from "./check.ts";
import { DNS_NAME, meta } from "./meta.ts";
import type {
  DestinationRule,
  ServiceEntry,
  ServicePortSpec,
  WorkloadEntry,
  WorkloadEntrySpec,
} from "./types.ts";

/** weft always tunnels mesh traffic with Istio mTLS (HBONE) and picks endpoints at random by
 * weight: those settings are accepted, everything else in trafficPolicy is rejected. */
function trafficPolicy(c: Checker, path: string, v: unknown): void {
  const o = c.obj(path, v, [
    "loadBalancer",
    "connectionPool",
    "outlierDetection",
    "tls",
    "portLevelSettings",
    "tunnel",
    "proxyProtocol",
  ]);
  c.unsupported(path, o, [
    "connectionPool",
    "outlierDetection",
    "portLevelSettings",
    "tunnel",
    "proxyProtocol",
  ]);
  if (o.loadBalancer !== undefined) {
    const lb = c.obj(`${path}.loadBalancer`, o.loadBalancer, [
      "simple",
      "consistentHash",
      "localityLbSetting",
      "warmupDurationSecs",
    ]);
    c.unsupported(`${path}.loadBalancer`, lb, [
      "consistentHash",
      "localityLbSetting",
      "warmupDurationSecs",
    ]);
    c.oneOf(`${path}.loadBalancer.simple`, lb.simple, ["UNSPECIFIED", "RANDOM"], "RANDOM");
  }
  if (o.tls !== undefined) {
    const t = c.obj(`${path}.tls`, o.tls, ["mode"]);
    c.oneOf(`${path}.tls.mode`, t.mode, ["ISTIO_MUTUAL"], "ISTIO_MUTUAL");
  }
}

export function parseDestinationRule(c: Checker, doc: Raw): DestinationRule {
  const m = meta(c, doc.metadata);
  const spec = c.obj("spec", doc.spec, [
    "host",
    "trafficPolicy",
    "subsets",
    "exportTo",
    "workloadSelector",
  ]);
  c.unsupported("spec", spec, ["workloadSelector"]);
  c.strList("spec.exportTo", spec.exportTo);
  if (spec.trafficPolicy !== undefined) trafficPolicy(c, "spec.trafficPolicy", spec.trafficPolicy);
  const subsets = c.list("spec.subsets", spec.subsets).map((s, i) => {
    const p = `spec.subsets[${i}]`;
    const o = c.obj(p, s, ["name", "labels", "trafficPolicy"]);
    if (o.trafficPolicy !== undefined) trafficPolicy(c, `${p}.trafficPolicy`, o.trafficPolicy);
    return {
      name: c.str(`${p}.name`, o.name, undefined, DNS_NAME, "a subset name"),
      labels: c.labels(`${p}.labels`, o.labels),
    };
  });
  const seen = new Set<string>();
  subsets.forEach((s, i) => {
    if (seen.has(s.name)) c.problems.add(`spec.subsets[${i}].name`, `duplicate subset "${s.name}"`);
    seen.add(s.name);
  });
  return { kind: "DestinationRule", meta: m, host: c.str("spec.host", spec.host), subsets };
}

const PROTOCOLS: Record<string, ServicePortSpec["protocol"]> = {
  HTTP: "HTTP",
  HTTP2: "HTTP2",
  GRPC: "GRPC",
  TCP: "TCP",
  TLS: "TCP",
  HTTPS: "TCP",
  MONGO: "TCP",
  MYSQL: "TCP",
  REDIS: "TCP",
};

function ip(c: Checker, path: string, v: unknown): string {
  const s = c.str(path, v);
  if (s && !isIpAddress(s)) c.problems.add(path, `must be an IP address, got ${JSON.stringify(s)}`);
  return s;
}

export function workloadEntrySpec(c: Checker, path: string, v: unknown): WorkloadEntrySpec {
  const o = c.obj(path, v, [
    "address",
    "ports",
    "labels",
    "network",
    "locality",
    "weight",
    "serviceAccount",
  ]);
  const ports: Record<string, number> = {};
  const po = c.obj(`${path}.ports`, o.ports, Object.keys(isObj(o.ports) ? o.ports : {}));
  for (const [k, n] of Object.entries(po)) {
    ports[k] = c.int(`${path}.ports.${k}`, n, undefined, 1, 65535);
  }
  c.optStr(`${path}.locality`, o.locality);
  return {
    address: ip(c, `${path}.address`, o.address),
    labels: c.labels(`${path}.labels`, o.labels),
    serviceAccount: c.str(
      `${path}.serviceAccount`,
      o.serviceAccount,
      "default",
      DNS_NAME,
      "a service account name",
    ),
    network: c.str(`${path}.network`, o.network, ""),
    weight: c.int(`${path}.weight`, o.weight, 1, 0, INT32_MAX),
    ports,
  };
}

export function parseWorkloadEntry(c: Checker, doc: Raw): WorkloadEntry {
  return {
    kind: "WorkloadEntry",
    meta: meta(c, doc.metadata),
    spec: workloadEntrySpec(c, "spec", doc.spec),
  };
}

export function parseServiceEntry(c: Checker, doc: Raw): ServiceEntry {
  const m = meta(c, doc.metadata);
  const spec = c.obj("spec", doc.spec, [
    "hosts",
    "addresses",
    "ports",
    "location",
    "resolution",
    "endpoints",
    "workloadSelector",
    "exportTo",
    "subjectAltNames",
  ]);
  const hosts = c.strList("spec.hosts", spec.hosts);
  if (hosts.length === 0) c.problems.add("spec.hosts", "needs at least one host");
  c.strList("spec.exportTo", spec.exportTo);
  const subjectAltNames = c.strList("spec.subjectAltNames", spec.subjectAltNames);
  const ports = c.list("spec.ports", spec.ports).map((x, i): ServicePortSpec => {
    const p = `spec.ports[${i}]`;
    const o = c.obj(p, x, ["number", "protocol", "name", "targetPort"]);
    const port = c.int(`${p}.number`, o.number, undefined, 1, 65535);
    const proto = c.oneOf(`${p}.protocol`, o.protocol, Object.keys(PROTOCOLS), "TCP");
    return {
      port,
      targetPort: c.int(`${p}.targetPort`, o.targetPort, port, 1, 65535),
      protocol: PROTOCOLS[proto] ?? "TCP",
      name: c.str(`${p}.name`, o.name, `${proto.toLowerCase()}-${port}`),
    };
  });
  if (ports.length === 0) c.problems.add("spec.ports", "needs at least one port");
  let workloadSelector: Record<string, string> | undefined;
  if (spec.workloadSelector !== undefined) {
    const ws = c.obj("spec.workloadSelector", spec.workloadSelector, ["labels"]);
    workloadSelector = c.labels("spec.workloadSelector.labels", ws.labels);
  }
  const endpoints = c.list("spec.endpoints", spec.endpoints).map((e, i) =>
    workloadEntrySpec(c, `spec.endpoints[${i}]`, e)
  );
  if (workloadSelector && endpoints.length) {
    c.problems.add("spec", "set endpoints or workloadSelector, not both");
  }
  const resolution = c.oneOf("spec.resolution", spec.resolution, [
    "NONE",
    "STATIC",
    "DNS",
    "DNS_ROUND_ROBIN",
  ], "NONE");
  if (resolution === "DNS" || resolution === "DNS_ROUND_ROBIN") {
    c.problems.add("spec.resolution", "DNS resolution is not supported by weft (use STATIC)");
  }
  return {
    kind: "ServiceEntry",
    meta: m,
    hosts,
    addresses: c.strList("spec.addresses", spec.addresses).map((a, i) =>
      ip(c, `spec.addresses[${i}]`, a)
    ),
    ports,
    subjectAltNames,
    location: c.oneOf(
      "spec.location",
      spec.location,
      ["MESH_EXTERNAL", "MESH_INTERNAL"],
      "MESH_EXTERNAL",
    ),
    resolution,
    endpoints,
    workloadSelector,
  };
}
