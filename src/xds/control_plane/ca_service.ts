/**
 * Istio's IstioCertificateService/CreateCertificate: a node agent sends a workload's PEM CSR and
 * gets the chain (leaf first, root last), signed by src/tls's CertificateAuthority.signCsr.
 * The CSR's single URI SAN must be the identity of a workload in the mesh file; over mTLS the
 * caller must also be that workload or the node agent identity (`nodeAgentServiceAccount` in the
 * root namespace). Over plaintext (loopback) callers are not authenticated.
 */
import * as grpc from "@grpc/grpc-js";
// @peculiar/x509 needs the reflect polyfill loaded first (as src/tls/_x509.ts does).
import "./_reflect.ts";
import * as x509 from "@peculiar/x509";
import { errorMessage, logger } from "../../core/mod.ts";
import type { CertificateAuthority } from "../../tls/mod.ts";
import { create } from "@bufbuild/protobuf";
import { IstioCertificateResponseSchema } from "../proto.ts";
import { peerIdentity } from "../grpc_transport.ts";
import type { Mesh } from "./mesh.ts";

const log = logger("xds_ca");

function requestedIdentity(csrPem: string): string | undefined {
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

export function createCertificateHandler(
  ca: CertificateAuthority,
  mesh: () => Mesh,
): grpc.handleUnaryCall<{ csr: string; validityDuration: bigint }, unknown> {
  return (call, cb) => {
    const { csr, validityDuration } = call.request;
    const identity = requestedIdentity(csr);
    const m = mesh();
    const peer = peerIdentity(call.getAuthContext().sslPeerCertificate?.subjectaltname);
    if (
      peer !== undefined && identity !== undefined && peer !== identity &&
      peer !== m.nodeAgentIdentity
    ) {
      cb({
        code: grpc.status.PERMISSION_DENIED,
        details: `Cannot sign CSR: caller ${peer} may not request ${identity}`,
      });
      return;
    }
    if (!identity || !m.workloads.some((w) => w.identity === identity)) {
      cb({
        code: grpc.status.PERMISSION_DENIED,
        details: `Cannot sign CSR: ${identity ?? "no URI SAN"} is not a mesh workload`,
      });
      return;
    }
    const ttlMs = validityDuration > 0n ? Number(validityDuration) * 1000 : undefined;
    ca.signCsr(csr, ttlMs === undefined ? { identity } : { identity, ttlMs }).then(
      (chain) => cb(null, create(IstioCertificateResponseSchema, { certChain: chain })),
      (err) => {
        log.warn("csr rejected", { identity, error: errorMessage(err) });
        cb({ code: grpc.status.INVALID_ARGUMENT, details: errorMessage(err) });
      },
    );
  };
}
