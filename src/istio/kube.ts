/**
 * Kubernetes Service, Pod and EndpointSlice (core/v1, discovery.k8s.io/v1): the objects a
 * cluster already has, from which workloads and services are derived. Only the fields weft uses
 * are read; the rest of each Kubernetes schema is accepted (a `kubectl get -o yaml` dump loads),
 * unknown top-level spec fields are errors.
 */
import { type Checker, isIpAddress, isObj, type Raw } from "./check.ts";
import { meta } from "./meta.ts";
import type { EndpointSlice, KubeService, Pod, ServicePortSpec } from "./types.ts";

const SERVICE_SPEC = [
  "selector",
  "ports",
  "clusterIP",
  "clusterIPs",
  "type",
  "ipFamilies",
  "ipFamilyPolicy",
  "sessionAffinity",
  "sessionAffinityConfig",
  "externalName",
  "externalIPs",
  "externalTrafficPolicy",
  "internalTrafficPolicy",
  "loadBalancerIP",
  "loadBalancerSourceRanges",
  "loadBalancerClass",
  "allocateLoadBalancerNodePorts",
  "publishNotReadyAddresses",
  "healthCheckNodePort",
  "trafficDistribution",
];

/** Istio's protocol selection: `appProtocol`, else the port name's prefix (`http-web`). */
function protocolOf(name: string, appProtocol: string | undefined): ServicePortSpec["protocol"] {
  const p = (appProtocol ?? name.split("-")[0] ?? "").toLowerCase();
  if (p === "http") return "HTTP";
  if (p === "http2" || p === "kubernetes.io/h2c") return "HTTP2";
  if (p === "grpc" || p === "grpc-web") return "GRPC";
  return "TCP";
}

export function parseService(c: Checker, doc: Raw): KubeService {
  const m = meta(c, doc.metadata);
  const spec = c.obj("spec", doc.spec, SERVICE_SPEC);
  const type = c.oneOf("spec.type", spec.type, [
    "ClusterIP",
    "NodePort",
    "LoadBalancer",
    "ExternalName",
  ], "ClusterIP");
  if (type === "ExternalName") {
    c.problems.add("spec.type", "ExternalName services are not supported by weft");
  }
  const ports = c.list("spec.ports", spec.ports).map((x, i): ServicePortSpec => {
    const p = `spec.ports[${i}]`;
    const o = c.obj(p, x, ["name", "port", "targetPort", "protocol", "appProtocol", "nodePort"]);
    const port = c.int(`${p}.port`, o.port, undefined, 1, 65535);
    const name = c.str(`${p}.name`, o.name, "");
    const l4 = c.oneOf(`${p}.protocol`, o.protocol, ["TCP", "UDP", "SCTP"], "TCP");
    if (l4 !== "TCP") c.problems.add(`${p}.protocol`, "only TCP is supported by weft");
    let targetPort = port;
    if (typeof o.targetPort === "string") {
      c.problems.add(
        `${p}.targetPort`,
        "named target ports are not supported by weft; use the number",
      );
    } else targetPort = c.int(`${p}.targetPort`, o.targetPort, port, 1, 65535);
    const proto = protocolOf(name, c.optStr(`${p}.appProtocol`, o.appProtocol));
    return { name: name || `${proto.toLowerCase()}-${port}`, port, targetPort, protocol: proto };
  });
  if (ports.length === 0) c.problems.add("spec.ports", "needs at least one port");
  const ips = spec.clusterIPs !== undefined
    ? c.strList("spec.clusterIPs", spec.clusterIPs)
    : spec.clusterIP !== undefined
    ? [c.str("spec.clusterIP", spec.clusterIP)]
    : [];
  const clusterIps = ips.filter((ip, i) => {
    if (ip === "None" || ip === "") return false;
    if (!isIpAddress(ip)) {
      c.problems.add(`spec.clusterIPs[${i}]`, `must be an IP address, got ${JSON.stringify(ip)}`);
    }
    return true;
  });
  return {
    kind: "Service",
    meta: m,
    selector: spec.selector === undefined ? undefined : c.labels("spec.selector", spec.selector),
    clusterIps,
    ports,
  };
}

const POD_SPEC = [
  "containers",
  "initContainers",
  "ephemeralContainers",
  "nodeName",
  "serviceAccountName",
  "serviceAccount",
  "automountServiceAccountToken",
  "volumes",
  "restartPolicy",
  "terminationGracePeriodSeconds",
  "activeDeadlineSeconds",
  "dnsPolicy",
  "dnsConfig",
  "nodeSelector",
  "hostNetwork",
  "hostPID",
  "hostIPC",
  "shareProcessNamespace",
  "securityContext",
  "imagePullSecrets",
  "hostname",
  "subdomain",
  "affinity",
  "schedulerName",
  "tolerations",
  "hostAliases",
  "priorityClassName",
  "priority",
  "readinessGates",
  "runtimeClassName",
  "enableServiceLinks",
  "preemptionPolicy",
  "overhead",
  "topologySpreadConstraints",
  "setHostnameAsFQDN",
  "os",
  "hostUsers",
  "schedulingGates",
  "resourceClaims",
  "resources",
];

export function parsePod(c: Checker, doc: Raw): Pod {
  const m = meta(c, doc.metadata);
  const spec = c.obj("spec", doc.spec, POD_SPEC);
  const status = isObj(doc.status) ? doc.status : {};
  const podIp = status.podIP === undefined ? "" : c.str("status.podIP", status.podIP);
  if (podIp && !isIpAddress(podIp)) {
    c.problems.add("status.podIP", `must be an IP address, got ${JSON.stringify(podIp)}`);
  }
  const containerPorts: number[] = [];
  c.list("spec.containers", spec.containers).forEach((ct, i) => {
    const co = isObj(ct) ? ct : {};
    c.list(`spec.containers[${i}].ports`, co.ports).forEach((p, j) => {
      const po = isObj(p) ? p : {};
      containerPorts.push(
        c.int(
          `spec.containers[${i}].ports[${j}].containerPort`,
          po.containerPort,
          undefined,
          1,
          65535,
        ),
      );
    });
  });
  return {
    kind: "Pod",
    meta: m,
    nodeName: c.str("spec.nodeName", spec.nodeName, ""),
    serviceAccount: c.str(
      "spec.serviceAccountName",
      spec.serviceAccountName ?? spec.serviceAccount,
      "default",
    ),
    podIp,
    containerPorts,
  };
}

export function parseEndpointSlice(c: Checker, doc: Raw): EndpointSlice {
  const m = meta(c, doc.metadata);
  const serviceName = m.labels["kubernetes.io/service-name"] ?? "";
  if (!serviceName) c.problems.add("metadata.labels", "needs kubernetes.io/service-name");
  c.oneOf("addressType", doc.addressType, ["IPv4", "IPv6", "FQDN"], "IPv4");
  const endpoints = c.list("endpoints", doc.endpoints).map((e, i) => {
    const p = `endpoints[${i}]`;
    const o = c.obj(p, e, [
      "addresses",
      "conditions",
      "hostname",
      "targetRef",
      "nodeName",
      "zone",
      "hints",
      "deprecatedTopology",
    ]);
    const cond = c.obj(`${p}.conditions`, o.conditions, ["ready", "serving", "terminating"]);
    const ref = c.obj(`${p}.targetRef`, o.targetRef, [
      "kind",
      "name",
      "namespace",
      "uid",
      "apiVersion",
      "resourceVersion",
      "fieldPath",
    ]);
    return {
      addresses: c.strList(`${p}.addresses`, o.addresses),
      nodeName: c.optStr(`${p}.nodeName`, o.nodeName),
      ready: c.bool(`${p}.conditions.ready`, cond.ready, true),
      podName: ref.kind === "Pod" ? c.optStr(`${p}.targetRef.name`, ref.name) : undefined,
    };
  });
  const ports = c.list("ports", doc.ports).map((x, i) => {
    const o = c.obj(`ports[${i}]`, x, ["name", "port", "protocol", "appProtocol"]);
    return {
      name: c.str(`ports[${i}].name`, o.name, ""),
      port: c.int(`ports[${i}].port`, o.port, undefined, 1, 65535),
    };
  });
  return { kind: "EndpointSlice", meta: m, serviceName, endpoints, ports };
}
