/**
 * The one import site of @peculiar/x509. Its tsyringe dependency needs a Reflect metadata
 * polyfill loaded before it evaluates (else: "tsyringe requires a reflect polyfill"), so the
 * polyfill import must stay first. WebCrypto comes from the runtime (Deno and Bun both provide
 * ECDSA P-256/P-384 and RSA); @peculiar/webcrypto would only be needed on a runtime without them.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(globalThis.crypto);

export { x509 };

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

export function pkcs8Pem(der: ArrayBuffer): string {
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

/** Text of a PEM with a trailing newline, as node:tls and files expect. */
export function withNewline(pem: string): string {
  return pem.endsWith("\n") ? pem : pem + "\n";
}
