/**
 * The one import site of @peculiar/x509 (~15 MB resident once loaded). Load it only where a
 * certificate is made or parsed with it — `const { x509 } = await import("./_x509.ts")` — and
 * use `import type { x509 }` for its types: the handshake path reads certificates with _der.ts.
 * Its tsyringe dependency needs a Reflect metadata polyfill loaded before it evaluates (else:
 * "tsyringe requires a reflect polyfill"), so the polyfill import must stay first. WebCrypto
 * comes from the runtime (Deno and Bun both provide ECDSA P-256/P-384 and RSA);
 * @peculiar/webcrypto would only be needed on a runtime without them.
 */
import "./_reflect.ts"; // first: see _reflect.ts
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(globalThis.crypto);

export { x509 };
export { EC_P256, pkcs8Pem, randomSerialHex, withNewline } from "./_pem.ts";
