/**
 * The CA's signing key for leaf issuance as a node:crypto KeyObject: import, the key-matches-
 * certificate probe, signing and leaf key pairs. Not WebCrypto: its first use maps ~0.6-0.8 MB of
 * Bun's code into every node that issues its own leaves (bench:idle, alternated, the same node
 * issuing through crypto.subtle vs node:crypto: static 42.5 -> 41.7-41.9 MB, xDS 44.9-45.1 ->
 * 44.3-44.4). WebCrypto keys remain for @peculiar/x509 (a new dev root, CSR signing), made from
 * the same PKCS#8 only when those run.
 */
import { Buffer } from "node:buffer";
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { WeftError } from "../core/mod.ts";
import { pemBlock } from "./_ca_der.ts";

/** The signing algorithm of a CA certificate (signingAlgorithmOf). */
export type CaAlgorithm = Algorithm | EcdsaParams;

const CURVES: Readonly<Record<string, string>> = { "P-256": "prime256v1", "P-384": "secp384r1" };

/** Imports a PKCS#8 PEM key that must suit `alg` (the certificate's key kind). */
export function importCaKeyObject(pem: string, alg: CaAlgorithm, src: string): KeyObject {
  const label = /-----BEGIN ([A-Z ]+)-----/.exec(pem)?.[1];
  const der = label === "PRIVATE KEY" ? pemBlock(pem, label) : undefined;
  if (!der) {
    throw new WeftError(
      "ca_key_invalid",
      `Cannot load ${src}: key must be a PEM "PRIVATE KEY" (PKCS#8), got ${
        label ? `"${label}"` : "no PEM block"
      }`,
      { hint: "convert with: openssl pkcs8 -topk8 -nocrypt -in key.pem -out ca-key.pem" },
    );
  }
  let key: KeyObject | undefined;
  try {
    key = createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" });
  } catch (cause) {
    throw mismatch(src, alg, cause);
  }
  if (!suits(key, alg)) throw mismatch(src, alg);
  return key;
}

function suits(key: KeyObject, alg: CaAlgorithm): boolean {
  if (alg.name === "ECDSA") {
    const curve = (alg as EcKeyImportParams).namedCurve;
    return key.asymmetricKeyType === "ec" &&
      key.asymmetricKeyDetails?.namedCurve === CURVES[curve];
  }
  return key.asymmetricKeyType === "rsa";
}

function mismatch(src: string, alg: CaAlgorithm, cause?: unknown): WeftError {
  return new WeftError(
    "ca_key_invalid",
    `Cannot load ${src}: PKCS#8 key does not import as ${alg.name} matching the certificate`,
    { cause, hint: "the key and the certificate must use the same algorithm and curve" },
  );
}

/** A signature over `data` as X.509 carries it (ECDSA: the DER SEQUENCE; RSA: PKCS#1 v1.5),
 * SHA-256 in both cases (the leaf's signatureAlgorithm, _leaf_der.ts). */
export function signSha256(key: KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign("sha256", data, { key, dsaEncoding: "der" }));
}

/** Whether `key` is the private half of the public key `spkiDer`: a signature it makes over
 * random bytes verifies with the certificate's key. */
export function keyMatches(key: KeyObject, spkiDer: Uint8Array): boolean {
  const pub = createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
  const probe = crypto.getRandomValues(new Uint8Array(32));
  return verify("sha256", probe, { key: pub, dsaEncoding: "der" }, signSha256(key, probe));
}

/** A fresh ECDSA P-256 leaf key pair: the public key as SPKI DER, the private key as PKCS#8 PEM. */
export function leafKeyPair(): { spki: Uint8Array; keyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return {
    spki: new Uint8Array(publicKey.export({ type: "spki", format: "der" })),
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
  };
}
