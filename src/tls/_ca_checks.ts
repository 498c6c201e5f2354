/** Checks on an operator-supplied CA certificate and key (files mode), with clear errors. */
import { WeftError } from "../core/mod.ts";
import { x509 } from "./_x509.ts";

export function parseCaCert(pem: string, src: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(pem);
  } catch (cause) {
    throw new WeftError("ca_cert_invalid", `Cannot load ${src}: certificate is not PEM X.509`, {
      cause,
    });
  }
}

export function checkCaShape(cert: x509.X509Certificate, src: string, nowMs: number): void {
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) {
    throw new WeftError(
      "ca_not_ca",
      `Cannot load ${src}: certificate is not a CA (basicConstraints cA is not set)`,
    );
  }
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (ku && !(ku.usages & x509.KeyUsageFlags.keyCertSign)) {
    throw new WeftError("ca_not_ca", `Cannot load ${src}: key usage lacks keyCertSign`);
  }
  if (nowMs > cert.notAfter.getTime()) {
    throw new WeftError(
      "ca_expired",
      `Cannot load ${src}: certificate expired at ${cert.notAfter.toISOString()}`,
    );
  }
  if (nowMs < cert.notBefore.getTime()) {
    throw new WeftError(
      "ca_not_yet_valid",
      `Cannot load ${src}: certificate is not valid before ${cert.notBefore.toISOString()}`,
    );
  }
}

export function signingAlgorithmOf(
  cert: x509.X509Certificate,
  src: string,
): Algorithm | EcdsaParams {
  const alg = cert.publicKey.algorithm as Algorithm & { namedCurve?: string };
  if (alg.name === "ECDSA" && (alg.namedCurve === "P-256" || alg.namedCurve === "P-384")) {
    return { name: "ECDSA", namedCurve: alg.namedCurve, hash: "SHA-256" } as EcdsaParams;
  }
  if (alg.name === "RSASSA-PKCS1-v1_5") {
    return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as Algorithm;
  }
  throw new WeftError(
    "ca_key_unsupported",
    `Cannot load ${src}: key algorithm ${alg.name} ${alg.namedCurve ?? ""} is not supported`,
    { hint: "use ECDSA P-256 (or P-384, RSA)" },
  );
}

export async function importCaKey(pem: string, alg: Algorithm, src: string): Promise<CryptoKey> {
  const label = /-----BEGIN ([A-Z ]+)-----/.exec(pem)?.[1];
  if (label !== "PRIVATE KEY") {
    throw new WeftError(
      "ca_key_invalid",
      `Cannot load ${src}: key must be a PEM "PRIVATE KEY" (PKCS#8), got ${
        label ? `"${label}"` : "no PEM block"
      }`,
      { hint: "convert with: openssl pkcs8 -topk8 -nocrypt -in key.pem -out ca-key.pem" },
    );
  }
  try {
    return await crypto.subtle.importKey(
      "pkcs8",
      x509.PemConverter.decodeFirst(pem),
      alg,
      true,
      ["sign"],
    );
  } catch (cause) {
    throw new WeftError(
      "ca_key_invalid",
      `Cannot load ${src}: PKCS#8 key does not import as ${alg.name} matching the certificate`,
      { cause, hint: "the key and the certificate must use the same algorithm and curve" },
    );
  }
}
