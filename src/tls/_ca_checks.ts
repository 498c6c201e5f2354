/** Checks on an operator-supplied CA certificate and key (files mode), with clear errors. Works
 * on the DER reading of _ca_der.ts: a node loading its CA does not load @peculiar/x509. */
import { WeftError } from "../core/mod.ts";
import { type CaDer, pemBlock, readCaDer } from "./_ca_der.ts";

export function parseCaCert(pem: string, src: string): CaDer {
  const invalid = (cause?: unknown): WeftError =>
    new WeftError("ca_cert_invalid", `Cannot load ${src}: certificate is not PEM X.509`, {
      cause,
    });
  const der = pemBlock(pem, "CERTIFICATE");
  if (!der) throw invalid();
  try {
    return readCaDer(der);
  } catch (cause) {
    throw invalid(cause);
  }
}

export function checkCaShape(cert: CaDer, src: string, nowMs: number): void {
  if (!cert.isCa) {
    throw new WeftError(
      "ca_not_ca",
      `Cannot load ${src}: certificate is not a CA (basicConstraints cA is not set)`,
    );
  }
  if (cert.keyCertSign === false) {
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

export function signingAlgorithmOf(cert: CaDer, src: string): Algorithm | EcdsaParams {
  if (cert.keyKind === "P-256" || cert.keyKind === "P-384") {
    return { name: "ECDSA", namedCurve: cert.keyKind, hash: "SHA-256" } as EcdsaParams;
  }
  if (cert.keyKind === "RSA") return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as Algorithm;
  throw new WeftError(
    "ca_key_unsupported",
    `Cannot load ${src}: the key algorithm is not supported`,
    { hint: "use ECDSA P-256 (or P-384, RSA)" },
  );
}
