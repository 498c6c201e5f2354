/**
 * Small key and PEM helpers of the CA and CSR code that do not need @peculiar/x509, so the
 * modules that use them can load it lazily (only when a certificate is made or parsed).
 */
import { Buffer } from "node:buffer";

/** ECDSA P-256 with SHA-256: the mesh's key and signature algorithm (ztunnel, Istio). */
export const EC_P256: EcKeyGenParams & EcdsaParams = {
  name: "ECDSA",
  namedCurve: "P-256",
  hash: "SHA-256",
};

/** A positive 128-bit serial in hex. The first byte is 0x10-0x7f: no sign bit, minimal DER, and
 * no leading "0" digit, so the text matches runtimes that strip leading zeros (Deno's
 * getPeerCertificate().serialNumber does). */
export function randomSerialHex(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] = 0x10 + (b[0]! % 0x70);
  return Array.from(b, (v) => v.toString(16).padStart(2, "0")).join("");
}

/** DER as PEM text with 64-column base64 lines (the layout @peculiar/x509 writes). */
export function derToPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString("base64");
  const lines = [`-----BEGIN ${label}-----`];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  lines.push(`-----END ${label}-----`);
  return lines.join("\n");
}

export function pkcs8Pem(der: ArrayBuffer): string {
  return derToPem(der, "PRIVATE KEY");
}

/** Text of a PEM with a trailing newline, as node:tls and files expect. */
export function withNewline(pem: string): string {
  return pem.endsWith("\n") ? pem : pem + "\n";
}
