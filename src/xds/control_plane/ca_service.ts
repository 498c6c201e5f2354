/**
 * Istio's IstioCertificateService/CreateCertificate: a node agent sends a workload's PEM CSR and
 * gets the chain (leaf first, root last), signed by src/tls's CertificateAuthority.signCsr.
 * Only the entitled get a certificate (istiod's node authorizer): the caller is either that
 * workload itself over mTLS, or a node agent authenticated by its bearer token
 * (`authorization: Bearer <token>`, checked against MeshConfig `spec.nodeTokens`, SHA-256) asking
 * for a workload that node hosts. Anyone else is refused, whatever the transport.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { errorMessage, logger } from "../../core/mod.ts";
import { type CertificateAuthority, loadX509 } from "../../tls/mod.ts";
import { create } from "@bufbuild/protobuf";
import { IstioCertificateResponseSchema } from "../proto.ts";
import { peerIdentity } from "../grpc_transport.ts";
import type { Mesh } from "./mesh.ts";

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

/** The node whose token the call carries, or undefined. */
export function callerNode(
  md: grpc.Metadata,
  tokens: Readonly<Record<string, string>>,
): string | undefined {
  const auth = md.get("authorization")[0];
  const m = typeof auth === "string" ? /^Bearer\s+(\S+)$/.exec(auth) : null;
  if (!m) return undefined;
  const got = createHash("sha256").update(m[1]!).digest();
  for (const [node, hex] of Object.entries(tokens)) {
    const want = Buffer.from(hex, "hex");
    if (want.length === got.length && timingSafeEqual(want, got)) return node;
  }
  return undefined;
}

function deny(
  cb: (e: { code: grpc.status; details: string }) => void,
  code: grpc.status,
  details: string,
): void {
  log.warn("csr refused", { details });
  cb({ code, details });
}

export function createCertificateHandler(
  ca: CertificateAuthority,
  mesh: () => Mesh,
): grpc.handleUnaryCall<{ csr: string; validityDuration: bigint }, unknown> {
  return (call, cb) => {
    requestedIdentity(call.request.csr).then(
      (identity) => authorize(identity, call, cb),
      (err) => deny(cb, grpc.status.INTERNAL, `Cannot sign CSR: ${errorMessage(err)}`),
    );
  };

  function authorize(
    identity: string | undefined,
    call: grpc.ServerUnaryCall<{ csr: string; validityDuration: bigint }, unknown>,
    cb: grpc.sendUnaryData<unknown>,
  ): void {
    const { csr, validityDuration } = call.request;
    const m = mesh();
    const peer = peerIdentity(call.getAuthContext()?.sslPeerCertificate?.subjectaltname);
    if (!identity) {
      deny(cb, grpc.status.INVALID_ARGUMENT, "Cannot sign CSR: it has no URI SAN");
      return;
    }
    const hosts = m.workloads.filter((w) => w.identity === identity);
    if (hosts.length === 0) {
      deny(
        cb,
        grpc.status.PERMISSION_DENIED,
        `Cannot sign CSR: ${identity} is not a mesh workload`,
      );
      return;
    }
    if (peer !== identity) {
      if (peer !== undefined && peer !== m.nodeAgentIdentity) {
        deny(
          cb,
          grpc.status.PERMISSION_DENIED,
          `Cannot sign CSR: caller ${peer} may not request ${identity}`,
        );
        return;
      }
      const node = callerNode(call.metadata, m.nodeTokens);
      if (node === undefined) {
        deny(
          cb,
          grpc.status.UNAUTHENTICATED,
          `Cannot sign CSR for ${identity}: the caller is not authenticated as a node ` +
            "(send authorization: Bearer <node token>; tokens are MeshConfig spec.nodeTokens)",
        );
        return;
      }
      if (!hosts.some((w) => w.node === node)) {
        deny(
          cb,
          grpc.status.PERMISSION_DENIED,
          `Cannot sign CSR: node ${node} hosts no workload with identity ${identity}`,
        );
        return;
      }
    }
    const ttlMs = validityDuration > 0n ? Number(validityDuration) * 1000 : undefined;
    ca.signCsr(csr, ttlMs === undefined ? { identity } : { identity, ttlMs }).then(
      (chain) => cb(null, create(IstioCertificateResponseSchema, { certChain: chain })),
      (err) => {
        log.warn("csr rejected", { identity, error: errorMessage(err) });
        cb({ code: grpc.status.INVALID_ARGUMENT, details: errorMessage(err) });
      },
    );
  }
}
