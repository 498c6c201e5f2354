/**
 * L4 telemetry: Istio's istio_tcp_* metrics with ztunnel's labels, weft's own weft_* series, and
 * one access-log record per connection (hbone.md §12–13). Byte counters are bumped once per
 * connection close so the copy loop only adds to two integers.
 */
import { metrics } from "./metrics.ts";
import { logger } from "./log.ts";

const TCP_LABELS = [
  "reporter",
  "source_workload",
  "source_canonical_service",
  "source_canonical_revision",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "source_version",
  "source_cluster",
  "destination_workload",
  "destination_canonical_service",
  "destination_canonical_revision",
  "destination_workload_namespace",
  "destination_principal",
  "destination_app",
  "destination_version",
  "destination_cluster",
  "destination_service",
  "destination_service_namespace",
  "destination_service_name",
  "request_protocol",
  "connection_security_policy",
  "response_flags",
] as const;

export const l4Metrics = {
  opened: metrics.counter(
    "istio_tcp_connections_opened_total",
    "TCP connections opened",
    TCP_LABELS,
  ),
  closed: metrics.counter(
    "istio_tcp_connections_closed_total",
    "TCP connections closed",
    TCP_LABELS,
  ),
  received: metrics.counter(
    "istio_tcp_received_bytes_total",
    "Bytes received from the downstream (request direction)",
    TCP_LABELS,
  ),
  sent: metrics.counter(
    "istio_tcp_sent_bytes_total",
    "Bytes sent to the downstream (response direction)",
    TCP_LABELS,
  ),
  failed: metrics.counter(
    "istio_tcp_connections_failed_total",
    "TCP connections that failed before or while proxying",
    TCP_LABELS,
  ),
  poolConnections: metrics.gauge("weft_hbone_pool_connections", "Open pooled HBONE connections"),
  poolStreams: metrics.gauge("weft_hbone_pool_streams", "Open HBONE streams on pooled connections"),
  hboneResponses: metrics.counter(
    "weft_hbone_responses_total",
    "HBONE CONNECT responses by side and status code",
    ["side", "code"],
  ),
  refused: metrics.counter("weft_l4_refused_total", "Connections refused by the proxy", [
    "direction",
    "reason",
  ]),
  draining: metrics.gauge("weft_drain_state", "1 while the node proxy drains, else 0"),
  active: metrics.gauge("weft_l4_active_connections", "Proxied connections currently open", [
    "direction",
  ]),
};

const access = logger("access");

/** What one proxied connection knows about its ends (unknown = undefined). */
export interface ConnInfo {
  direction: "inbound" | "outbound";
  srcAddr: string;
  srcWorkload: string | undefined;
  srcNamespace: string | undefined;
  srcIdentity: string | undefined;
  dstAddr: string;
  dstHboneAddr: string | undefined;
  dstService: string | undefined;
  dstServiceName: string | undefined;
  dstServiceNamespace: string | undefined;
  dstWorkload: string | undefined;
  dstNamespace: string | undefined;
  dstIdentity: string | undefined;
  /** Istio canonical service / revision / cluster of each end (istio_tcp_* labels). */
  srcCanonical: string | undefined;
  srcRevision: string | undefined;
  srcCluster: string | undefined;
  dstCanonical: string | undefined;
  dstRevision: string | undefined;
  dstCluster: string | undefined;
  mtls: boolean;
  /** Inbound through a network gateway: the origin network (`x-forwarded-network`). */
  srcNetwork?: string | undefined;
}

/** Istio's canonical service and revision of a workload from its labels (what istiod puts in
 * `Workload.canonical_name` / `canonical_revision`, and weft's xDS intake stores as `app` /
 * `version`): the canonical-name label, app.kubernetes.io/name, app, else the workload name;
 * the canonical-revision label, app.kubernetes.io/version, version, else "latest". */
export function canonicalOf(
  labels: Readonly<Record<string, string>>,
  name: string,
): { service: string; revision: string } {
  return {
    service: labels["service.istio.io/canonical-name"] ?? labels["app.kubernetes.io/name"] ??
      labels.app ?? name,
    revision: labels["service.istio.io/canonical-revision"] ??
      labels["app.kubernetes.io/version"] ?? labels.version ?? "latest",
  };
}

/** Fill the source (or destination) workload fields of `info` from a known workload. */
export function setEnd(
  info: ConnInfo,
  end: "src" | "dst",
  w: {
    readonly name: string;
    readonly namespace: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly identity?: string | undefined;
  },
): void {
  const c = canonicalOf(w.labels, w.name);
  if (end === "src") {
    info.srcWorkload = w.name;
    info.srcNamespace = w.namespace;
    info.srcCanonical = c.service;
    info.srcRevision = c.revision;
  } else {
    info.dstWorkload = w.name;
    info.dstNamespace = w.namespace;
    info.dstCanonical = c.service;
    info.dstRevision = c.revision;
    if (w.identity !== undefined) info.dstIdentity = w.identity;
  }
}

export function emptyInfo(
  direction: "inbound" | "outbound",
  srcAddr: string,
  dstAddr: string,
): ConnInfo {
  return {
    direction,
    srcAddr,
    srcWorkload: undefined,
    srcNamespace: undefined,
    srcIdentity: undefined,
    dstAddr,
    dstHboneAddr: undefined,
    dstService: undefined,
    dstServiceName: undefined,
    dstServiceNamespace: undefined,
    dstWorkload: undefined,
    dstNamespace: undefined,
    dstIdentity: undefined,
    srcCanonical: undefined,
    srcRevision: undefined,
    srcCluster: undefined,
    dstCanonical: undefined,
    dstRevision: undefined,
    dstCluster: undefined,
    mtls: false,
  };
}

function stripSpiffe(id: string | undefined): string {
  return id ? id.replace(/^spiffe:\/\//, "") : "unknown";
}

export function tcpLabels(info: ConnInfo, flags: string): Record<string, string> {
  return {
    reporter: info.direction === "outbound" ? "source" : "destination",
    source_workload: info.srcWorkload ?? "unknown",
    source_canonical_service: info.srcCanonical ?? "unknown",
    source_canonical_revision: info.srcRevision ?? "unknown",
    source_workload_namespace: info.srcNamespace ?? "unknown",
    source_principal: stripSpiffe(info.srcIdentity),
    source_app: info.srcCanonical ?? "unknown",
    source_version: info.srcRevision ?? "unknown",
    source_cluster: info.srcCluster ?? "unknown",
    destination_workload: info.dstWorkload ?? "unknown",
    destination_canonical_service: info.dstCanonical ?? "unknown",
    destination_canonical_revision: info.dstRevision ?? "unknown",
    destination_workload_namespace: info.dstNamespace ?? "unknown",
    destination_principal: stripSpiffe(info.dstIdentity),
    destination_app: info.dstCanonical ?? "unknown",
    destination_version: info.dstRevision ?? "unknown",
    destination_cluster: info.dstCluster ?? "unknown",
    destination_service: info.dstService ?? "unknown",
    destination_service_namespace: info.dstServiceNamespace ?? "unknown",
    destination_service_name: info.dstServiceName ?? "unknown",
    request_protocol: "tcp",
    connection_security_policy: info.mtls ? "mutual_tls" : "unknown",
    response_flags: flags,
  };
}

export type Outcome =
  | "ok"
  | "denied"
  | "connect_failed"
  | "refused"
  | "error"
  | "drained"
  | "idle_timeout"
  | "policy_revoked"
  | "cert_revoked";

const FLAGS: Record<Outcome, string> = {
  ok: "-",
  denied: "DENY",
  connect_failed: "CONNECT",
  refused: "NETWORK_POLICY",
  error: "-",
  drained: "-",
  idle_timeout: "-",
  policy_revoked: "DENY",
  cert_revoked: "CERT_REVOKED",
};

/** Emit metrics and the access record for a finished connection. `openKey` is what `recordOpen`
 * returned: the label key of the connection with no response flag, shared by the istio_tcp_*
 * families (same label names), so a connection builds its labels once. */
export function recordClose(
  info: ConnInfo,
  outcome: Outcome,
  opened: boolean,
  bytesRecv: number,
  bytesSent: number,
  durationMs: number,
  detail?: string,
  openKey?: string,
): void {
  const flags = FLAGS[outcome];
  const key = flags === "-" && openKey !== undefined
    ? openKey
    : l4Metrics.closed.keyOf(tcpLabels(info, flags));
  // ztunnel tracks a connection from the moment its ends are known (before authorization and
  // the upstream connect), so a denied or unreachable one is opened and then closed with its
  // response flag (istio_tcp_connections_closed_total{response_flags="DENY"|"CONNECT"}).
  const tracked = !opened && (outcome === "denied" || outcome === "connect_failed");
  if (tracked) l4Metrics.opened.incKey(l4Metrics.opened.keyOf(tcpLabels(info, "-")));
  if (opened || tracked) {
    l4Metrics.closed.incKey(key);
    if (bytesRecv) l4Metrics.received.incKey(key, bytesRecv);
    if (bytesSent) l4Metrics.sent.incKey(key, bytesSent);
  }
  if (outcome !== "ok" && outcome !== "drained" && outcome !== "idle_timeout") {
    l4Metrics.failed.incKey(key);
  }
  if (!access.enabled("info")) return;
  access.info("connection complete", {
    "src.addr": info.srcAddr,
    "src.workload": info.srcWorkload,
    "src.namespace": info.srcNamespace,
    "src.identity": info.srcIdentity,
    ...(info.srcNetwork !== undefined ? { "src.network": info.srcNetwork } : {}),
    "dst.addr": info.dstAddr,
    "dst.hbone_addr": info.dstHboneAddr,
    "dst.service": info.dstService,
    "dst.workload": info.dstWorkload,
    "dst.namespace": info.dstNamespace,
    "dst.identity": info.dstIdentity,
    direction: info.direction,
    bytes_sent: bytesSent,
    bytes_recv: bytesRecv,
    duration: `${Math.round(durationMs)}ms`,
    outcome,
    ...(flags !== "-" ? { response_flags: flags } : {}),
    ...(detail ? { detail } : {}),
  });
}

/** Count the connection opened; returns its label key for `recordClose`. */
export function recordOpen(info: ConnInfo): string {
  return l4Metrics.opened.incKeyShared(l4Metrics.opened.keyOf(tcpLabels(info, "-")));
}
