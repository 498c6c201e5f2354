/** The bootstrap configuration (weft.yaml) after validation: frozen and fully defaulted. */
import type { InpodConfig } from "./config_inpod.ts";
import type {
  AuthorizationPolicy,
  CalloutCluster,
  GatewayAddress,
  Limits,
  Subset,
  Timeouts,
  Workload,
} from "../core/mod.ts";
import type {
  ExtAuthzProvider,
  HttpRetry,
  HttpRoute,
  RequestAuthentication,
} from "../istio/mod.ts";

export interface CaConfig {
  /** auto: dev CA in stateDir; files: root cert + key; xds: workload certificates by CSR from
   * the control plane's CA service (no CA key on the node). */
  readonly mode: "auto" | "files" | "xds";
  /** auto: where the dev CA is generated and kept. */
  readonly stateDir: string;
  /** files: PEM root certificate and key. */
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  /** Certificate revocation lists for HBONE peers (ztunnel's CRL_PATH, which overrides it): a
   * PEM of X509 CRL blocks or one DER CRL, watched for changes. */
  readonly crlFile: string | undefined;
}

export interface ListenersConfig {
  readonly admin: string;
  readonly metrics: string;
  readonly readiness: string;
  /** "" = disabled. */
  readonly socks5: string;
  /** 0 = disabled. */
  readonly inboundPlaintextPort: number;
  /** Bind a listener on every service VIP:port (outbound capture). Several nodes on one laptop
   * share the loopback: only the nodes whose workloads call services should capture. */
  readonly captureServiceVips: boolean;
  /** Admin (15000), metrics (15020) and SOCKS5 (15080) may bind off loopback only with this
   * opt-in. */
  readonly allowNonLoopback: boolean;
}

export interface EndpointConfig {
  readonly workload: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly address: string;
  readonly port: number | undefined;
  readonly tunnel: "HBONE" | "NONE";
  readonly hboneAddress: string | undefined;
  readonly node: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly weight: number;
  /** Its network; undefined = the node's (`node.network`). */
  readonly network: string | undefined;
  /** East-west gateway of its network (double HBONE when that network is not the node's). */
  readonly networkGateway: GatewayAddress | undefined;
}

export interface ServicePortConfig {
  readonly port: number;
  readonly targetPort: number;
  readonly protocol: "TCP" | "HTTP" | "HTTP2" | "GRPC";
  readonly name: string;
}

/** Istio WasmPlugin vocabulary, per service and direction. */
export interface PluginConfig {
  /** proxy-wasm root id (WasmPlugin pluginName); undefined = the plugin name. */
  readonly pluginName: string | undefined;
  /** WasmPlugin vmConfig.env, resolved (INLINE values, HOST from weft's own environment). */
  readonly env: Readonly<Record<string, string>>;
  /** Upstreams a proxy-wasm plugin may call (`proxy_http_call` cluster names). */
  readonly clusters: Readonly<Record<string, CalloutCluster>>;
  readonly maxMemoryBytes: number | undefined;
  readonly callBudgetMs: number | undefined;
  /** proxy-wasm body callbacks: none, whole bodies (`true` = "buffered") or Envoy's per-chunk
   * "streamed" calls. */
  readonly bodies: "none" | "buffered" | "streamed";
  readonly name: string;
  readonly url: string;
  readonly sha256: string | undefined;
  readonly type: "component" | "proxy-wasm";
  readonly direction: "inbound" | "outbound";
  readonly phase: "AUTHN" | "AUTHZ" | "STATS" | "UNSPECIFIED";
  readonly priority: number;
  readonly failStrategy: "FAIL_CLOSE" | "FAIL_OPEN" | "FAIL_RELOAD";
  readonly pluginConfig: unknown;
}

export interface ServiceConfig {
  readonly name: string;
  readonly namespace: string;
  readonly hostname: string;
  readonly vips: readonly string[];
  readonly ports: readonly ServicePortConfig[];
  readonly endpoints: readonly EndpointConfig[];
  /** DestinationRule subsets. */
  readonly subsets: readonly Subset[];
  /** VirtualService `http` routes as src/istio parses them, destination hosts resolved to FQDNs
   * (compiled into the traffic-split and fault plugins' configs). */
  readonly http: readonly HttpRoute[];
  readonly plugins: readonly PluginConfig[];
  /** Identities its HBONE endpoints may present besides their own (hbone.md §4). */
  readonly subjectAltNames?: readonly string[];
}

export interface WeftConfig {
  readonly node: {
    readonly name: string;
    readonly trustDomain: string;
    readonly network: string;
    readonly hbonePort: number;
    readonly rootNamespace: string;
    /** Local workload that outbound traffic from an unknown client IP counts as (e.g. a laptop
     * curl from 127.0.0.1); undefined = refuse such clients. */
    readonly defaultSourceWorkload: string | undefined;
    /** Envoy bootstrap node.metadata for proxy-wasm filters (read when the filter host starts). */
    readonly metadata: Readonly<Record<string, unknown>>;
  };
  readonly ca: CaConfig;
  readonly certificates: { readonly ttlMs: number; readonly rotateAtFraction: number };
  readonly listeners: ListenersConfig;
  readonly outboundTrafficPolicy: "ALLOW_ANY" | "REGISTRY_ONLY";
  /** MeshConfig `defaultHttpRetryPolicy` (weft.yaml `meshConfig`, or a MeshConfig in
   * `resources`/`configDir`): the retries of HTTP routes that set none; undefined = Istio's. */
  readonly defaultHttpRetryPolicy: HttpRetry | undefined;
  readonly timeouts: Timeouts;
  readonly limits: Limits;
  readonly workloads: readonly Workload[];
  readonly services: readonly ServiceConfig[];
  readonly authorizationPolicies: readonly AuthorizationPolicy[];
  /** RequestAuthentications from `resources`/`configDir` (JWT verification, inbound). */
  readonly requestAuthentications?: readonly RequestAuthentication[];
  /** MeshConfig `extensionProviders` (ext_authz) that CUSTOM policies name (weft.yaml
   * `meshConfig`, or a MeshConfig / istio ConfigMap in `resources`/`configDir`). */
  readonly extensionProviders: readonly ExtAuthzProvider[];
  /** xDS control plane address; when set, workloads/services/policies come from it. */
  readonly xds: {
    readonly address: string | undefined;
    /** "delta" (default, as ztunnel) or "sotw". */
    readonly mode: "delta" | "sotw";
    /** mTLS to the control plane (needs a local CA: ca.mode auto or files). */
    readonly tls: boolean;
    /** The SPIFFE id the control plane must present over mTLS. */
    readonly serverIdentity: string | undefined;
    /** File holding this node's bearer token for the CA service (ca.mode xds) and, with
     * rootCertFile, for the xDS stream too. */
    readonly tokenFile: string | undefined;
    /** PEM root(s) the control plane's TLS certificate must chain to (istiod's shape: server
     * TLS, the node authenticated by its token; the root comes from a ConfigMap). */
    readonly rootCertFile: string | undefined;
  };
  /** In-pod capture (src/app/config_inpod.ts); undefined = off. */
  readonly inpod?: InpodConfig | undefined;
}
