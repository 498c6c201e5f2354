/**
 * Who calls the control plane, from its bearer credential: a static node token (MeshConfig
 * `spec.nodeTokens`, SHA-256) or a Kubernetes service-account JWT, istiod's KubeJWTAuthenticator
 * (security/pkg/server/ca/authenticate/kubeauth) with its audience `istio-ca`. istiod asks the
 * API server (TokenReview); weft has no API server, so it verifies the token itself against the
 * cluster's service-account issuer keys (`kubectl get --raw /openid/v1/jwks`) and issuer, the
 * way a third-party-JWT istiod checks a JWKS. The caller's identity is `system:serviceaccount:
 * <ns>:<sa>`; a bound pod token also names the pod's node (`kubernetes.io.node.name`, Kubernetes
 * >= 1.30), which is what lets a trusted node-agent account act for that node's workloads
 * (istiod's NodeAuthorizer, CA_TRUSTED_NODE_ACCOUNTS).
 * Signature and time checks come from the caller (`JwtVerifier`: src/app builds it from the
 * jwt_authn filter's verifier, which this layer may not import).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import { metrics } from "../../core/mod.ts";

/** Every refusal of an ADS stream or a CSR, by service and a stable reason. */
export const authRefusals = metrics.counter(
  "weft_control_plane_auth_refusals_total",
  "ADS streams and CSRs the control plane refused, by service (ads, ca) and reason",
  ["service", "reason"],
);

/** Parses a JWT and checks its signature against the issuer's keys and its exp/nbf (with a
 * small clock skew); only asymmetric algorithms (RS*, ES*). The payload, or why not. */
export type JwtVerifier = (
  token: string,
  nowS: number,
) => { readonly payload: Readonly<Record<string, unknown>> } | { readonly error: string };

export interface SaTokenOptions {
  /** The service-account issuer (`--service-account-issuer`), compared exactly with `iss`. */
  readonly issuer: string;
  readonly verify: JwtVerifier;
  /** `aud` must contain one of these (istiod's TOKEN_AUDIENCES, default istio-ca). */
  readonly audiences?: readonly string[];
  /** `namespace/serviceaccount` of node agents that may get certificates for the workloads of
   * their token's node (CA_TRUSTED_NODE_ACCOUNTS); default: the mesh's node-agent account. */
  readonly trustedNodeAccounts?: readonly string[];
}

/** An authenticated caller: a node (static token), or a service account. */
export type Caller =
  | { readonly kind: "node"; readonly node: string }
  | {
    readonly kind: "serviceaccount";
    readonly namespace: string;
    readonly serviceAccount: string;
    /** From a bound token's `kubernetes.io.node.name`. */
    readonly node: string | undefined;
    readonly pod: string | undefined;
  };

/** A refusal: the gRPC code, a metric-safe reason, and the message for the caller and the log. */
export interface Refusal {
  readonly code: grpc.status;
  readonly reason: string;
  readonly details: string;
}

// grpc.status values, without loading grpc-js here (it is a type import).
const UNAUTHENTICATED = 16;
const PERMISSION_DENIED = 7;

const unauthenticated = (reason: string, details: string): Refusal => ({
  code: UNAUTHENTICATED,
  reason,
  details,
});
export const denied = (reason: string, details: string): Refusal => ({
  code: PERMISSION_DENIED,
  reason,
  details,
});

/** The bearer credential of a call, or undefined. */
export function bearerOf(md: grpc.Metadata): string | undefined {
  const auth = md.get("authorization")[0];
  const m = typeof auth === "string" ? /^Bearer\s+(\S+)$/.exec(auth) : null;
  return m ? m[1] : undefined;
}

/** The node whose static token `token` is, or undefined. */
export function nodeOfToken(
  token: string,
  tokens: Readonly<Record<string, string>>,
): string | undefined {
  const got = createHash("sha256").update(token).digest();
  for (const [node, hex] of Object.entries(tokens)) {
    const want = Buffer.from(hex, "hex");
    if (want.length === got.length && timingSafeEqual(want, got)) return node;
  }
  return undefined;
}

const obj = (v: unknown): Readonly<Record<string, unknown>> | undefined =>
  typeof v === "object" && v !== null && !Array.isArray(v)
    ? v as Record<string, unknown>
    : undefined;
const str = (v: unknown): string | undefined => typeof v === "string" && v ? v : undefined;

/** A service-account JWT → its caller, or why not (istiod's order: token, audience, identity). */
export function verifySaToken(
  token: string,
  opts: SaTokenOptions,
  nowS: number = Date.now() / 1000,
): Caller | Refusal {
  const v = opts.verify(token, Math.floor(nowS));
  if ("error" in v) return unauthenticated("invalid_token", `service-account token: ${v.error}`);
  const p = v.payload;
  if (p.iss !== opts.issuer) {
    return unauthenticated(
      "wrong_issuer",
      `service-account token: issuer ${JSON.stringify(p.iss)} is not ${opts.issuer}`,
    );
  }
  const want = opts.audiences ?? ["istio-ca"];
  const aud = typeof p.aud === "string" ? [p.aud] : Array.isArray(p.aud) ? p.aud : [];
  if (!aud.some((a) => want.includes(a))) {
    return unauthenticated(
      "wrong_audience",
      `service-account token: audience ${JSON.stringify(aud)} has none of ${want.join(", ")}`,
    );
  }
  const sub = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(str(p.sub) ?? "");
  if (!sub) {
    return unauthenticated(
      "not_service_account",
      `service-account token: sub ${JSON.stringify(p.sub)} is not system:serviceaccount:<ns>:<sa>`,
    );
  }
  const [, namespace, serviceAccount] = sub as unknown as [string, string, string];
  const k8s = obj(p["kubernetes.io"]);
  if (
    k8s &&
    (k8s.namespace !== namespace || obj(k8s.serviceaccount)?.name !== serviceAccount)
  ) {
    return unauthenticated(
      "claims_disagree",
      "service-account token: kubernetes.io namespace/serviceaccount disagree with sub",
    );
  }
  return {
    kind: "serviceaccount",
    namespace,
    serviceAccount,
    node: str(obj(k8s?.node)?.name),
    pod: str(obj(k8s?.pod)?.name),
  };
}

/** Authenticates calls with the mesh's static node tokens and, when `sa` is set, Kubernetes
 * service-account JWTs. */
export class CallerAuthenticator {
  constructor(private readonly sa: SaTokenOptions | undefined) {}

  get jwt(): boolean {
    return this.sa !== undefined;
  }

  authenticate(
    md: grpc.Metadata,
    nodeTokens: Readonly<Record<string, string>>,
    nowS?: number,
  ): Caller | Refusal {
    const token = bearerOf(md);
    if (token === undefined) {
      return unauthenticated(
        "no_token",
        this.sa
          ? "send authorization: Bearer <service-account token, audience istio-ca>"
          : "send authorization: Bearer <node token> (MeshConfig spec.nodeTokens)",
      );
    }
    const node = nodeOfToken(token, nodeTokens);
    if (node !== undefined) return { kind: "node", node };
    if (!this.sa) {
      return unauthenticated("unknown_token", "the bearer token is no node's (spec.nodeTokens)");
    }
    return verifySaToken(token, this.sa, nowS);
  }

  /** Whether a service-account caller is a node agent acting for its token's node. */
  trusted(c: Caller, meshNodeAccount: string): boolean {
    if (c.kind === "node") return true;
    const list = this.sa?.trustedNodeAccounts ?? [meshNodeAccount];
    return list.includes(`${c.namespace}/${c.serviceAccount}`);
  }
}

export function isRefusal(v: Caller | Refusal): v is Refusal {
  return "code" in v;
}

/** The node a caller may see and act for, or the refusal (ADS streams; CSRs for others). */
export function callerNodeOf(
  c: Caller,
  auth: CallerAuthenticator,
  meshNodeAccount: string,
): string | Refusal {
  if (c.kind === "node") return c.node;
  const who = `system:serviceaccount:${c.namespace}:${c.serviceAccount}`;
  if (!auth.trusted(c, meshNodeAccount)) {
    return denied(
      "not_node_agent",
      `${who} is not a trusted node-agent account (CA_TRUSTED_NODE_ACCOUNTS)`,
    );
  }
  if (c.node === undefined) {
    return denied(
      "no_node_claim",
      `${who}: the token names no node (kubernetes.io.node.name, a bound pod token from ` +
        "Kubernetes >= 1.30), so it cannot act for a node",
    );
  }
  return c.node;
}

/** `spiffe://td/ns/<ns>/sa/<sa>` → `ns/sa` (the mesh's node-agent account). */
export function accountOf(spiffe: string): string {
  const m = /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(spiffe);
  return m ? `${m[1]}/${m[2]}` : "";
}
