/**
 * Istio's IstioCertificateService/CreateCertificate: a node agent sends a workload's PEM CSR and
 * gets the chain (leaf first, root last), signed by src/tls's CertificateAuthority.signCsr.
 * Only the entitled get a certificate (istiod's NodeAuthorizer): the caller is that workload
 * itself (its mTLS certificate, or its own service-account token), or a node agent asking for a
 * workload its node hosts, the node named by its bearer token: a static node token (MeshConfig
 * `spec.nodeTokens`, SHA-256) or a trusted node-agent account's bound service-account token
 * (sa_token.ts). Anyone else is refused, whatever the transport, with a reason (logged, counted
 * in weft_control_plane_auth_refusals_total). istiod answers every impersonation failure with
 * an opaque UNAUTHENTICATED; weft says why, as its other errors do.
 */
import * as grpc from "@grpc/grpc-js";
import { errorMessage, logger } from "../../core/mod.ts";
import { type CertificateAuthority, loadX509 } from "../../tls/mod.ts";
import { create } from "@bufbuild/protobuf";
import { IstioCertificateResponseSchema } from "../proto.ts";
import { peerIdentity } from "../grpc_transport.ts";
import type { Mesh } from "./mesh.ts";
import {
  accountOf,
  authRefusals,
  CallerAuthenticator,
  callerNodeOf,
  denied,
  isRefusal,
  type Refusal,
} from "./sa_token.ts";

const log = logger("xds_ca");

async function requestedIdentity(csrPem: string): Promise<string | undefined> {
  const x509 = await loadX509(); // src/tls owns the one load order (reflect polyfill first)
  try {
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    const ext = csr.getExtension("2.5.29.17");
    if (!ext) return undefined;
    const names = new x509.SubjectAlternativeNameExtension(ext.rawData).names.items;
    return names.find((n) => n.type === "url")?.value;
  } catch {
    return undefined;
  }
}

type CsrRequest = { csr: string; validityDuration: bigint; metadata?: unknown };

function deny(cb: grpc.sendUnaryData<unknown>, r: Refusal): void {
  authRefusals.inc({ service: "ca", reason: r.reason });
  log.warn("csr refused", { reason: r.reason, details: r.details });
  cb({ code: r.code, details: r.details });
}

export function createCertificateHandler(
  ca: CertificateAuthority,
  mesh: () => Mesh,
  auth: CallerAuthenticator = new CallerAuthenticator(undefined),
): grpc.handleUnaryCall<CsrRequest, unknown> {
  return (call, cb) => {
    // One owner for every failure before the answer (a thrown invariant included): INTERNAL.
    requestedIdentity(call.request.csr).then((identity) => {
      const refusal = authorize(identity, call, mesh(), auth);
      if (refusal) return deny(cb, refusal);
      sign(ca, call.request, identity!, cb);
    }).catch((err) =>
      deny(cb, {
        code: grpc.status.INTERNAL,
        reason: "internal",
        details: `Cannot sign CSR: ${errorMessage(err)}`,
      })
    );
  };
}

/** ztunnel names the identity it asks for in the request's metadata (ImpersonatedIdentity);
 * istiod signs that one. weft signs the CSR's URI SAN, so the two must agree. */
function impersonated(req: CsrRequest): string | undefined {
  const md = req.metadata;
  if (typeof md !== "object" || md === null) return undefined;
  const v = (md as Record<string, unknown>)["ImpersonatedIdentity"];
  return typeof v === "string" && v ? v : undefined;
}

/** undefined = entitled. */
function authorize(
  identity: string | undefined,
  call: grpc.ServerUnaryCall<CsrRequest, unknown>,
  m: Mesh,
  auth: CallerAuthenticator,
): Refusal | undefined {
  if (!identity) {
    return {
      code: grpc.status.INVALID_ARGUMENT,
      reason: "no_san",
      details: "Cannot sign CSR: it has no URI SAN",
    };
  }
  const asked = impersonated(call.request);
  if (asked !== undefined && asked !== identity) {
    return {
      code: grpc.status.INVALID_ARGUMENT,
      reason: "san_mismatch",
      details: `Cannot sign CSR: its URI SAN ${identity} is not ImpersonatedIdentity ${asked}`,
    };
  }
  const hosts = m.workloads.filter((w) => w.identity === identity);
  if (hosts.length === 0) {
    return denied("not_mesh_workload", `Cannot sign CSR: ${identity} is not a mesh workload`);
  }
  const peer = peerIdentity(call.getAuthContext()?.sslPeerCertificate?.subjectaltname);
  if (peer === identity) return undefined;
  if (peer !== undefined && peer !== m.nodeAgentIdentity) {
    return denied(
      "not_own_identity",
      `Cannot sign CSR: caller ${peer} may not request ${identity}`,
    );
  }
  const caller = auth.authenticate(call.metadata, m.nodeTokens);
  if (isRefusal(caller)) {
    return {
      ...caller,
      details:
        `Cannot sign CSR for ${identity}: the caller is not authenticated: ${caller.details}`,
    };
  }
  if (caller.kind === "serviceaccount") {
    const own = `spiffe://${m.trustDomain}/ns/${caller.namespace}/sa/${caller.serviceAccount}`;
    if (own === identity) return undefined; // a workload renewing itself (istiod's default SAN)
    if (!auth.trusted(caller, accountOf(m.nodeAgentIdentity))) {
      return denied(
        "not_own_identity",
        `Cannot sign CSR: system:serviceaccount:${caller.namespace}:${caller.serviceAccount} ` +
          `may get only ${own}, not ${identity}`,
      );
    }
  }
  const node = callerNodeOf(caller, auth, accountOf(m.nodeAgentIdentity));
  if (typeof node !== "string") {
    return { ...node, details: `Cannot sign CSR for ${identity}: ${node.details}` };
  }
  if (!hosts.some((w) => w.node === node)) {
    return denied(
      "not_on_node",
      `Cannot sign CSR: node ${node} hosts no workload with identity ${identity}`,
    );
  }
  return undefined;
}

function sign(
  ca: CertificateAuthority,
  req: CsrRequest,
  identity: string,
  cb: grpc.sendUnaryData<unknown>,
): void {
  const ttlMs = req.validityDuration > 0n ? Number(req.validityDuration) * 1000 : undefined;
  ca.signCsr(req.csr, ttlMs === undefined ? { identity } : { identity, ttlMs }).then(
    (chain) => cb(null, create(IstioCertificateResponseSchema, { certChain: chain })),
    (err) => {
      log.warn("csr rejected", { identity, error: errorMessage(err) });
      cb({ code: grpc.status.INVALID_ARGUMENT, details: errorMessage(err) });
    },
  );
}
