/** Istio and Kubernetes objects after validation: frozen, defaulted, in Istio's own names. */
import type { AuthorizationPolicy } from "../core/mod.ts";
import type { GatewayHttpRoute } from "./http_route.ts";

import type { HeaderOps, RouteCors } from "../core/mod.ts";

export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/** Where an object came from, for messages: `mesh.yaml#2 VirtualService default/reviews`. */
export interface Origin {
  readonly file: string;
  readonly doc: number;
}

export type MtlsMode = "UNSET" | "DISABLE" | "PERMISSIVE" | "STRICT";

export interface PeerAuthentication {
  readonly kind: "PeerAuthentication";
  readonly meta: ObjectMeta;
  readonly selector: Readonly<Record<string, string>> | undefined;
  readonly mode: MtlsMode;
  readonly portLevelMtls: Readonly<Record<number, MtlsMode>>;
}

export interface IstioStringMatch {
  readonly exact?: string;
  readonly prefix?: string;
  readonly regex?: string;
}

export interface HttpMatch {
  readonly name: string | undefined;
  readonly uri: IstioStringMatch | undefined;
  readonly method: IstioStringMatch | undefined;
  readonly authority: IstioStringMatch | undefined;
  readonly scheme: IstioStringMatch | undefined;
  /** Header names lower-cased, query parameter names as written; `{}` = presence. */
  readonly headers: Readonly<Record<string, IstioStringMatch>>;
  readonly withoutHeaders: Readonly<Record<string, IstioStringMatch>>;
  readonly queryParams: Readonly<Record<string, IstioStringMatch>>;
  readonly port: number | undefined;
  readonly sourceLabels: Readonly<Record<string, string>> | undefined;
  readonly sourceNamespace: string | undefined;
  readonly ignoreUriCase: boolean;
}

export interface Destination {
  readonly host: string;
  readonly subset: string | undefined;
  readonly port: number | undefined;
}

export interface RouteDestination {
  readonly destination: Destination;
  readonly weight: number;
  /** `headers` for this destination (when the split picks it). */
  readonly headers?: HttpHeaders | undefined;
}

/** VirtualService `headers`: request and response operations; a request `set`/`add` of
 * `host`/`:authority` as `authority` (istiod's host rewrite). */
export interface HttpHeaders {
  readonly request?: HeaderOps;
  readonly response?: HeaderOps;
  readonly authority?: string;
}

/** Percent 0–100 (Istio `percentage.value`, or the deprecated integer `percent`). */
export interface HttpFault {
  readonly delay: { readonly fixedDelayMs: number; readonly percent: number } | undefined;
  readonly abort:
    | { readonly httpStatus: number; readonly grpcStatus: undefined; readonly percent: number }
    | { readonly httpStatus: undefined; readonly grpcStatus: number; readonly percent: number }
    | undefined;
}

export interface HttpRoute {
  readonly name: string | undefined;
  /** Empty = every request. */
  readonly match: readonly HttpMatch[];
  readonly route: readonly RouteDestination[];
  readonly fault: HttpFault | undefined;
  /** `timeout`; undefined = none. */
  readonly timeoutMs: number | undefined;
  /** `retries` as written; undefined = not set (Istio's default applies). */
  readonly retries: HttpRetry | undefined;
  /** `redirect` (then `route` is empty). */
  readonly redirect?: HttpRedirect | undefined;
  /** `directResponse` (then `route` is empty). */
  readonly directResponse?: { readonly status: number; readonly body: string } | undefined;
  /** `rewrite` (uri, authority); `prefix`: what `uri` replaces (Gateway API ReplacePrefixMatch). */
  readonly rewrite?:
    | { readonly uri?: string; readonly authority?: string; readonly prefix?: string }
    | undefined;
  /** `mirror` + `mirrorPercentage` (or the deprecated `mirrorPercent`), or `mirrors`. */
  readonly mirrors?: readonly HttpMirror[] | undefined;
  /** The route's own `headers` (its destinations carry theirs). */
  readonly headers?: HttpHeaders | undefined;
  /** `corsPolicy` (or a Gateway API CORS filter), as the data path runs it (cors.ts). */
  readonly cors?: RouteCors | undefined;
  /** The status for the share of a destination that does not exist: absent = 503 (Envoy's NC,
   * a VirtualService's undefined subset); 500 for a Gateway API route's invalid backendRef (S19). */
  readonly clusterNotFoundStatus?: 500 | undefined;
  /** `delegate` (S12): replaced by the delegate VirtualService's routes (delegate.ts) before use. */
  readonly delegate?: { readonly name: string; readonly namespace: string | undefined } | undefined;
}

export interface HttpMirror {
  readonly destination: RouteDestination["destination"];
  /** 0–100; absent in the VirtualService = 100. */
  readonly percent: number;
}

/** Istio HTTPRedirect. */
export interface HttpRedirect {
  readonly uri: string | undefined;
  readonly authority: string | undefined;
  readonly scheme: string | undefined;
  readonly port: number | undefined;
  readonly derivePort: "FROM_PROTOCOL_DEFAULT" | "FROM_REQUEST_PORT" | undefined;
  /** Default 301. */
  readonly redirectCode: number;
}

/** Istio HTTPRetry as written (a VirtualService's `retries`, MeshConfig
 * `defaultHttpRetryPolicy`); route_policy.ts `effectiveRetry` turns it into what applies. */
export interface HttpRetry {
  /** Retries after the first try; 0 turns retries off. */
  readonly attempts: number;
  readonly perTryTimeoutMs: number | undefined;
  /** Envoy retry_on conditions and status codes ("503"); undefined = Istio's default conditions. */
  readonly retryOn: readonly string[] | undefined;
  /** Base interval of the jittered exponential back-off; undefined = Envoy's 25 ms. */
  readonly backoffMs: number | undefined;
  /** `retryIgnorePreviousHosts`; undefined = Istio's default (true). */
  readonly ignorePreviousHosts: boolean | undefined;
}

export interface TcpRoute {
  readonly match: readonly { readonly port: number | undefined }[];
  readonly route: readonly RouteDestination[];
}

export interface VirtualService {
  readonly kind: "VirtualService";
  readonly meta: ObjectMeta;
  readonly hosts: readonly string[];
  /** `spec.exportTo` ("." this namespace, "*" all, "~" none, or namespaces); empty = the mesh
   * default, every namespace. Read for delegates (delegate.ts). */
  readonly exportTo?: readonly string[];
  readonly http: readonly HttpRoute[];
  readonly tcp: readonly TcpRoute[];
}

export interface DrSubset {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface DestinationRule {
  readonly kind: "DestinationRule";
  readonly meta: ObjectMeta;
  readonly host: string;
  readonly subsets: readonly DrSubset[];
}

export interface WasmPlugin {
  readonly kind: "WasmPlugin";
  readonly meta: ObjectMeta;
  readonly selector: Readonly<Record<string, string>> | undefined;
  readonly targetRefs: readonly { readonly kind: string; readonly name: string }[];
  readonly url: string;
  readonly sha256: string | undefined;
  /** weft's wasm ABI: proxy-wasm (Istio's) or a weft:filter component (annotation
   * `weft.dev/wasm-abi: component`). */
  readonly abi: "proxy-wasm" | "component";
  readonly phase: "AUTHN" | "AUTHZ" | "STATS" | "UNSPECIFIED";
  readonly priority: number;
  readonly pluginName: string;
  readonly pluginConfig: unknown;
  readonly failStrategy: "FAIL_CLOSE" | "FAIL_OPEN" | "FAIL_RELOAD";
  /** `spec.match`: the plugin applies to traffic any entry selects (empty: all traffic). CLIENT =
   * outbound, SERVER = inbound (Istio's WorkloadMode); no ports = every port. */
  readonly match: readonly {
    readonly mode: "CLIENT" | "SERVER" | "CLIENT_AND_SERVER";
    readonly ports: readonly number[];
  }[];
  readonly env: Readonly<Record<string, string>>;
  /** `spec.imagePullSecret`: a kubernetes.io/dockerconfigjson Secret of the plugin's namespace. */
  readonly imagePullSecret?: string | undefined;
}

export interface ServicePortSpec {
  readonly name: string;
  readonly port: number;
  readonly targetPort: number;
  readonly protocol: "TCP" | "HTTP" | "HTTP2" | "GRPC";
}

/** Kubernetes Service or the mesh-internal part of a ServiceEntry. */
export interface KubeService {
  readonly kind: "Service";
  readonly meta: ObjectMeta;
  readonly selector: Readonly<Record<string, string>> | undefined;
  readonly clusterIps: readonly string[];
  readonly ports: readonly ServicePortSpec[];
}

export interface WorkloadEntrySpec {
  readonly address: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  readonly network: string;
  readonly weight: number;
  readonly ports: Readonly<Record<string, number>>;
}

export interface ServiceEntry {
  readonly kind: "ServiceEntry";
  readonly meta: ObjectMeta;
  readonly hosts: readonly string[];
  readonly addresses: readonly string[];
  readonly ports: readonly ServicePortSpec[];
  readonly location: "MESH_EXTERNAL" | "MESH_INTERNAL";
  readonly resolution: "NONE" | "STATIC" | "DNS" | "DNS_ROUND_ROBIN";
  readonly endpoints: readonly WorkloadEntrySpec[];
  readonly workloadSelector: Readonly<Record<string, string>> | undefined;
  /** Identities its endpoints may present besides their own (ztunnel's
   * `Service.subject_alt_names`). */
  readonly subjectAltNames: readonly string[];
}

export interface WorkloadEntry {
  readonly kind: "WorkloadEntry";
  readonly meta: ObjectMeta;
  readonly spec: WorkloadEntrySpec;
}

export interface Pod {
  readonly kind: "Pod";
  readonly meta: ObjectMeta;
  readonly nodeName: string;
  readonly serviceAccount: string;
  /** status.podIP; "" while unscheduled (such pods are no workloads). */
  readonly podIp: string;
  readonly containerPorts: readonly number[];
}

export interface EndpointSlice {
  readonly kind: "EndpointSlice";
  readonly meta: ObjectMeta;
  readonly serviceName: string;
  readonly endpoints: readonly {
    readonly addresses: readonly string[];
    readonly nodeName: string | undefined;
    readonly ready: boolean;
    readonly podName: string | undefined;
  }[];
  readonly ports: readonly { readonly name: string; readonly port: number }[];
}

/** weft's mesh-wide settings (what istiod's MeshConfig and flags hold). */
export interface MeshConfig {
  readonly kind: "MeshConfig";
  readonly meta: ObjectMeta;
  readonly trustDomain: string;
  readonly rootNamespace: string;
  readonly hbonePort: number;
  readonly nodeAgentServiceAccount: string;
  /** Bearer tokens (SHA-256 hex of the token) per node, for the CA service (istiod checks a
   * Kubernetes token and the node authorizer; weft checks a configured credential). */
  readonly nodeTokens: Readonly<Record<string, string>>;
  /** `defaultHttpRetryPolicy`: the retries of every HTTP route whose VirtualService sets none. */
  readonly defaultHttpRetryPolicy: HttpRetry | undefined;
  /** `extensionProviders` weft implements (envoyExtAuthzHttp, envoyExtAuthzGrpc): the external
   * authorizers AuthorizationPolicy CUSTOM names (src/istio/ext_authz.ts). */
  readonly extensionProviders: readonly ExtAuthzProvider[];
}

/** A MeshConfig `extensionProviders[]` entry of kind envoyExtAuthzHttp / envoyExtAuthzGrpc,
 * defaulted as istiod builds Envoy's ext_authz filter (pilot/pkg/security/authz/builder). */
export interface ExtAuthzProvider {
  readonly name: string;
  readonly kind: "http" | "grpc";
  /** A service hostname (`ext-authz.foo.svc.cluster.local`), `namespace/hostname`, or an IP
   * literal (reached directly, for a laptop authorizer on loopback). */
  readonly service: string;
  readonly port: number;
  /** istiod's default: 600 s. */
  readonly timeoutMs: number;
  readonly failOpen: boolean;
  /** Status of the local reply when the authorizer fails (default 403). */
  readonly statusOnError: number | undefined;
  /** HTTP only: prepended to the request path of the check. */
  readonly pathPrefix: string;
  /** HTTP only: request header patterns (`x-foo`, `x-*`, `*-id`, case-insensitive) copied into
   * the check, besides Host, Method, Path, Content-Length and Authorization. */
  readonly includeRequestHeadersInCheck: readonly string[];
  readonly includeAdditionalHeadersInCheck: Readonly<Record<string, string>>;
  readonly includeRequestBodyInCheck: {
    readonly maxRequestBytes: number;
    readonly allowPartialMessage: boolean;
    readonly packAsBytes: boolean;
  } | undefined;
  readonly headersToUpstreamOnAllow: readonly string[];
  /** Empty: every header of the authorizer's answer goes to the client on deny (Envoy). */
  readonly headersToDownstreamOnDeny: readonly string[];
  readonly headersToDownstreamOnAllow: readonly string[];
}

/** One `jwtRules` entry of a RequestAuthentication (istio/api security/v1beta1 jwt.proto). */
export interface JwtRule {
  readonly issuer: string;
  /** Empty: any audience. */
  readonly audiences: readonly string[];
  /** Inline JWKS (JSON text); wins over jwksUri, as istiod. */
  readonly jwks: string | undefined;
  readonly jwksUri: string | undefined;
  /** Lower-case names; none of the three lists set = `Authorization: Bearer` and `access_token`. */
  readonly fromHeaders: readonly { readonly name: string; readonly prefix: string }[];
  readonly fromParams: readonly string[];
  readonly fromCookies: readonly string[];
  readonly forwardOriginalToken: boolean;
  /** Lower-case header name. */
  readonly outputPayloadToHeader: string | undefined;
  readonly outputClaimToHeaders: readonly { readonly header: string; readonly claim: string }[];
  /** JWKS fetch timeout. */
  readonly timeoutMs: number;
}

export interface RequestAuthentication {
  readonly kind: "RequestAuthentication";
  readonly meta: ObjectMeta;
  readonly selector: Readonly<Record<string, string>> | undefined;
  /** `targetRefs` Service names (empty: by selector or namespace). */
  readonly targetServices: readonly string[];
  readonly jwtRules: readonly JwtRule[];
}

export interface NamedPolicy {
  readonly kind: "AuthorizationPolicy";
  readonly meta: ObjectMeta;
  readonly policy: AuthorizationPolicy;
}

/** A `kubernetes.io/dockerconfigjson` Secret (a WasmPlugin's imagePullSecret). */
export interface PullSecret {
  readonly kind: "Secret";
  readonly meta: ObjectMeta;
  /** The docker config JSON text. */
  readonly dockerConfig: string;
}

export type IstioObject =
  | PullSecret
  | NamedPolicy
  | PeerAuthentication
  | RequestAuthentication
  | VirtualService
  | DestinationRule
  | WasmPlugin
  | ServiceEntry
  | WorkloadEntry
  | KubeService
  | Pod
  | EndpointSlice
  | MeshConfig
  | GatewayHttpRoute;

/** Every object of a set of files, by kind, in file order. */
export interface IstioResources {
  readonly meshConfig: MeshConfig | undefined;
  readonly authorizationPolicies: readonly NamedPolicy[];
  readonly peerAuthentications: readonly PeerAuthentication[];
  readonly requestAuthentications: readonly RequestAuthentication[];
  readonly virtualServices: readonly VirtualService[];
  readonly destinationRules: readonly DestinationRule[];
  readonly wasmPlugins: readonly WasmPlugin[];
  readonly serviceEntries: readonly ServiceEntry[];
  readonly workloadEntries: readonly WorkloadEntry[];
  readonly services: readonly KubeService[];
  readonly pods: readonly Pod[];
  readonly endpointSlices: readonly EndpointSlice[];
  /** Image pull Secrets (WasmPlugin imagePullSecret). */
  readonly pullSecrets: readonly PullSecret[];
  /** Accepted but partly ignored (a missing or conflicting VirtualService delegate). */
  readonly warnings?: readonly string[];
}
