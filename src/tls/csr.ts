/**
 * The node agent's side of Istio's CreateCertificate: a fresh P-256 key and a CSR with an empty
 * subject and the SPIFFE id as its only URI SAN (ztunnel's shape), and turning the returned chain
 * (leaf first, root last) into an IssuedLeaf after checking it names the requested identity.
 */
import { WeftError } from "../core/mod.ts";
import type { IssuedLeaf } from "./ca.ts";
import { EC_P256, pkcs8Pem, withNewline } from "./_pem.ts";
import { parseSpiffeId } from "./spiffe_id.ts";
import { loadX509 } from "./x509_loader.ts";

export interface CsrAndKey {
  readonly csrPem: string;
  readonly keyPem: string;
}

export async function createCsr(identity: string): Promise<CsrAndKey> {
  parseSpiffeId(identity);
  const x509 = await loadX509();
  const keys = await crypto.subtle.generateKey(EC_P256, true, ["sign", "verify"]);
  const req = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: EC_P256,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: identity }], true),
    ],
  });
  return {
    csrPem: withNewline(req.toString("pem")),
    keyPem: withNewline(pkcs8Pem(await crypto.subtle.exportKey("pkcs8", keys.privateKey))),
  };
}

/** Check a CreateCertificate answer and make it an IssuedLeaf. */
export async function leafFromChain(
  identity: string,
  keyPem: string,
  chain: readonly string[],
  issuedAt: Date,
): Promise<IssuedLeaf> {
  if (chain.length < 2) {
    throw new WeftError(
      "ca_bad_response",
      "Cannot use issued certificate: the chain must hold the leaf and the root",
    );
  }
  const x509 = await loadX509();
  const leaf = new x509.X509Certificate(chain[0]!);
  const root = new x509.X509Certificate(chain[chain.length - 1]!);
  const sans = leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [];
  const uris = sans.filter((n) => n.type === "url").map((n) => n.value);
  if (uris.length !== 1 || uris[0] !== identity) {
    throw new WeftError(
      "ca_bad_response",
      `Cannot use issued certificate: it names ${JSON.stringify(uris)}, not ${identity}`,
    );
  }
  if (!(await leaf.verify({ publicKey: root.publicKey, signatureOnly: true }))) {
    throw new WeftError(
      "ca_bad_response",
      "Cannot use issued certificate: it does not chain to the returned root",
    );
  }
  const pems = chain.map(withNewline);
  return {
    identity,
    certPem: pems[0]!,
    keyPem,
    chainPem: pems.slice(0, -1).join(""),
    rootsPem: pems[pems.length - 1]!,
    serial: leaf.serialNumber,
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    issuedAt,
  };
}
