/**
 * The immutable configuration the data path reads. The control path (bootstrap YAML in src/app,
 * xDS in src/xds) validates raw input and builds a Snapshot; the data path swaps whole snapshots
 * and never mutates one (ztunnel's model: control writes, data reads).
 */
import type { RoutePolicy } from "./route_policy.ts";

/** "ip:port" with IPv6 in brackets. */
export type SocketAddr = string;

export interface NodeInfo {
  readonly name: string;
  /** The HBONE port (15008). The HBONE server binds <workload ip>:<hbonePort> for each local
   * workload and presents that workload's identity (ztunnel's in-pod mode: no SNI is sent, so
   * the listening address decides the certificate). */
  readonly hbonePort: number;
  readonly trustDomain: string;
  readonly network: string;
}

/** PeerAuthentication vocabulary for the plaintext inbound port 15006. */
export type MtlsMode = "STRICT" | "PERMISSIVE";

export interface Workload {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** spiffe://<td>/ns/<ns>/sa/<sa> */
  readonly identity: string;
  /** The workload's IP (any loopback address on a laptop). */
  readonly address: string;
  /** Ports the workload listens on; empty = any. */
  readonly ports: readonly number[];
  readonly labels: Readonly<Record<string, string>>;
  readonly mtlsMode: MtlsMode;
  /** xDS `Workload.application_tunnel` with protocol PROXY: inbound HBONE tunnels reach the
   * workload on `port` (else the target port) after a PROXY v2 header (hbone.md §8). */
  readonly applicationTunnel?: { readonly protocol: "PROXY"; readonly port: number | undefined };
}

export type AppProtocol = "TCP" | "HTTP" | "HTTP2" | "GRPC";

export interface ServicePort {
  readonly port: number;
  readonly targetPort: number;
  readonly protocol: AppProtocol;
  readonly name: string;
}

export interface Endpoint {
  readonly workload: string;
  readonly namespace: string;
  /** Workload IP. */
  readonly address: string;
  /** Where to dial HBONE for this endpoint (default <address>:15008, as ztunnel dials the pod
   * IP); undefined = not in the mesh (plaintext, direct). */
  readonly hboneAddress: SocketAddr | undefined;
  /** Name of the node hosting it (informational, shown in config_dump and the pool key). */
  readonly node: string | undefined;
  /** Expected server identity (spiffe://...) when reached over HBONE. */
  readonly identity: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly weight: number;
  /** xDS `Workload.network`; undefined = the node's own network. */
  readonly network?: string;
  /** xDS `Workload.network_gateway` (field 19): on another network, the endpoint is reached by
   * double HBONE through this east-west gateway (hbone.md §9); without one it is unreachable. */
  readonly networkGateway?: GatewayAddress;
}

/** ztunnel's GatewayAddress: a gateway by IP (on its network) or by service hostname, and the
 * port of its HBONE listener (default 15008). */
export interface GatewayAddress {
  readonly destination:
    | { readonly kind: "address"; readonly network: string; readonly ip: string }
    | { readonly kind: "hostname"; readonly namespace: string; readonly hostname: string };
  readonly hboneMtlsPort: number;
}

export interface Subset {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** A filter as configured: the filter host resolves `type` through its registry. */
export interface FilterRef {
  readonly name: string;
  /** e.g. "weft.component" (WIT component), "weft.proxy_wasm", or a first-party plugin name. */
  readonly type: string;
  /** file://, https:// or oci:// URL of the .wasm, or a path. */
  readonly url: string | undefined;
  readonly sha256: string | undefined;
  /** Passed to the filter's configure step as JSON. */
  readonly config: unknown;
  readonly failPolicy: FailPolicy;
  /** Istio WasmPlugin phase/priority; the chain is ordered by them. */
  readonly phase: "AUTHN" | "AUTHZ" | "STATS" | "UNSPECIFIED";
  readonly priority: number;
  /** Where the filter is configured: a service ("namespace/name") or a WasmPlugin selector
   * scope. A filter's identity is (scope, name): one name in two scopes is two filters. */
  readonly scope?: string;
  /** Host-side settings of this filter; each filter kind reads the fields it knows. */
  readonly runtime?: FilterRuntime;
  /** Outbound only: the filter is in the chain of a source workload whose labels match exactly
   * the `selectors` flagged true in `matches` (one variant of a chain whose VirtualService
   * routes have `sourceLabels`; absent = every source). */
  readonly sources?: SourceVariant;
}

export interface SourceVariant {
  readonly selectors: readonly Readonly<Record<string, string>>[];
  readonly matches: readonly boolean[];
}

/** Whether a source workload's labels pick this variant. */
export function sourceVariantApplies(
  v: SourceVariant | undefined,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  if (!v) return true;
  return v.selectors.every((sel, i) =>
    Object.entries(sel).every(([k, val]) => labels?.[k] === val) === v.matches[i]
  );
}

/** An upstream a filter may call out to (`proxy_http_call` cluster). */
export interface CalloutCluster {
  /** "host:port" or an http(s) URL. */
  readonly address?: string;
  /** A mesh service ("name" or "name.namespace" or its hostname), resolved when called. */
  readonly service?: string;
  /** Service port (with `service`). */
  readonly port?: number;
  readonly tls?: {
    /** PEM CA bundle file to verify the upstream with (default: the system roots). */
    readonly caFile?: string;
    readonly serverName?: string;
    readonly insecureSkipVerify?: boolean;
  };
}

/** Per-filter host settings (Istio WasmPlugin pluginName, vmConfig.env, limits, clusters). */
export interface FilterRuntime {
  /** proxy-wasm root id (WasmPlugin `pluginName`); default: the filter name. */
  readonly rootId?: string;
  readonly vmId?: string;
  /** VM configuration (proxy-wasm VM_CONFIGURATION, Envoy vm_config.configuration). */
  readonly vmConfig?: string;
  /** The plugin's own environment (WasmPlugin vmConfig.env). */
  readonly env?: Readonly<Record<string, string>>;
  /** Callout upstreams by cluster name. */
  readonly clusters?: Readonly<Record<string, string | CalloutCluster>>;
  readonly maxMemoryBytes?: number;
  readonly callBudgetMs?: number;
  /** proxy-wasm bodies: "buffered" (the whole body in one body callback; `true` means this) or
   * "streamed" (Envoy's per-chunk callbacks with StopIterationAndBuffer); default none. */
  readonly bodies?: boolean | "none" | "buffered" | "streamed";
}

export type FailPolicy = "FAIL_CLOSE" | "FAIL_OPEN" | "FAIL_RELOAD";

export interface Service {
  readonly name: string;
  readonly namespace: string;
  /** FQDN, e.g. echo.default.svc.cluster.local */
  readonly hostname: string;
  /** Virtual addresses weft captures outbound traffic on (e.g. 127.10.0.1). */
  readonly vips: readonly string[];
  readonly ports: readonly ServicePort[];
  readonly endpoints: readonly Endpoint[];
  readonly subsets: readonly Subset[];
  /** L7 chains; both empty = pure L4. */
  readonly outboundFilters: readonly FilterRef[];
  readonly inboundFilters: readonly FilterRef[];
  /** The VirtualService's http routes in order, for their timeout and retries (the outbound L7
   * proxy applies the first that matches); absent = none. */
  readonly routes?: readonly RoutePolicy[];
  /** Identities an endpoint reached through this service may also present (ztunnel's
   * `Service.subject_alt_names`, Istio ServiceEntry `subjectAltNames`; hbone.md §4), besides its
   * own workload identity. */
  readonly subjectAltNames?: readonly string[];
}

export type StringMatch = string; // Istio form: exact, "abc*", "*abc", "*"

export interface PolicySource {
  readonly principals?: readonly StringMatch[];
  readonly notPrincipals?: readonly StringMatch[];
  readonly namespaces?: readonly StringMatch[];
  readonly notNamespaces?: readonly StringMatch[];
  readonly ipBlocks?: readonly string[];
  readonly notIpBlocks?: readonly string[];
  /** `ns/sa` pairs (Istio 1.22+), checked against the peer identity. */
  readonly serviceAccounts?: readonly string[];
  readonly notServiceAccounts?: readonly string[];
  /** HTTP-only (original client IP from X-Forwarded-For, JWT principal): L7 evaluates them; at
   * L4 an ALLOW rule using them matches nothing and a DENY rule ignores them (ztunnel). */
  readonly remoteIpBlocks?: readonly string[];
  readonly notRemoteIpBlocks?: readonly string[];
  readonly requestPrincipals?: readonly StringMatch[];
  readonly notRequestPrincipals?: readonly StringMatch[];
}

export interface PolicyOperation {
  readonly ports?: readonly string[];
  readonly notPorts?: readonly string[];
  readonly hosts?: readonly StringMatch[];
  readonly notHosts?: readonly StringMatch[];
  readonly methods?: readonly StringMatch[];
  readonly notMethods?: readonly StringMatch[];
  readonly paths?: readonly StringMatch[];
  readonly notPaths?: readonly StringMatch[];
}

export interface PolicyCondition {
  readonly key: string;
  readonly values?: readonly string[];
  readonly notValues?: readonly string[];
}

export interface PolicyRule {
  readonly from?: readonly { readonly source: PolicySource }[];
  readonly to?: readonly { readonly operation: PolicyOperation }[];
  readonly when?: readonly PolicyCondition[];
}

export interface AuthorizationPolicy {
  readonly name: string;
  readonly namespace: string;
  /** matchLabels; undefined = every workload in the namespace (root namespace = mesh-wide). */
  readonly selector: Readonly<Record<string, string>> | undefined;
  /** CUSTOM: requests matching the rules are checked by the external authorizer `provider`
   * (an L7 ext_authz filter); L4 ignores CUSTOM policies, as ztunnel does. */
  readonly action: "ALLOW" | "DENY" | "AUDIT" | "CUSTOM";
  /** CUSTOM only: the MeshConfig extensionProviders name. */
  readonly provider?: string;
  readonly dryRun: boolean;
  /** undefined/empty = matches nothing (spec: {}). */
  readonly rules: readonly PolicyRule[];
  /** `targetRefs` (Service or ServiceEntry names in the policy's namespace): enforced by the L7
   * chain in front of those services (weft's waypoint), never by workload selector nor at L4
   * (ambient: ztunnel does not get such policies). */
  readonly targetServices?: readonly string[];
}

export interface Timeouts {
  readonly connectMs: number;
  readonly idleMs: number;
  readonly drainMs: number;
  /** An HTTP/1.1 request head must arrive within this (408, close); Envoy's
   * request_headers_timeout. Default 10 s; 0 = off. */
  readonly requestHeadersMs?: number;
  /** TLS handshake budget on HBONE listeners (default 10 s). */
  readonly tlsHandshakeMs?: number;
  /** A pooled (keep-alive) HTTP/1.1 upstream connection of the L7 proxy idle this long is
   * closed; Envoy's upstream common_http_protocol_options.idle_timeout. Default 1 h. */
  readonly upstreamIdleMs?: number;
}

export interface Limits {
  readonly maxConnections: number;
  readonly poolMaxStreamsPerConnection: number;
  readonly poolIdleMs: number;
  /** Pending (pre-handshake) connections per HBONE listener (default 256); they count against
   * maxConnections too. */
  readonly maxPendingHandshakes?: number;
}

/** Where the node proxy captures traffic without iptables (all optional, additive). */
export interface CaptureConfig {
  /** SOCKS5 listener (RFC 1928, CONNECT, no auth); undefined = 127.0.0.1:15080, "" = off. */
  readonly socks5?: SocketAddr | undefined;
  /** Plaintext inbound port on each local workload IP (ztunnel 15006); undefined/0 = off. */
  readonly inboundPlaintextPort?: number | undefined;
  /** Local workload ("ns/name" or name) that outbound traffic from an unknown client IP is
   * attributed to; undefined = refuse such clients. */
  readonly defaultSourceWorkload?: string | undefined;
  /** Bind a listener on each service VIP:port (default true). */
  readonly serviceVips?: boolean | undefined;
  /** In-pod mode: local workloads are pods in their own network namespaces; their 15001/15006/
   * 15008 listeners open inside them on enrollment (src/core/pod_capture.ts), not here. */
  readonly inpod?: boolean | undefined;
}

export interface Snapshot {
  readonly version: string;
  readonly node: NodeInfo;
  readonly rootNamespace: string;
  readonly workloads: readonly Workload[];
  readonly services: readonly Service[];
  readonly policies: readonly AuthorizationPolicy[];
  /** Istio's outboundTrafficPolicy: where unknown destinations go. */
  readonly outboundTrafficPolicy: "ALLOW_ANY" | "REGISTRY_ONLY";
  readonly timeouts: Timeouts;
  readonly limits: Limits;
  /** Outbound/inbound capture listeners; undefined = defaults (see CaptureConfig). */
  readonly capture?: CaptureConfig | undefined;
}

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
