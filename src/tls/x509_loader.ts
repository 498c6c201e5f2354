/**
 * The one way to load @peculiar/x509 lazily. Its tsyringe dependency throws at evaluation unless
 * the Reflect metadata polyfill ran first, and Bun (1.4) can evaluate a shared CommonJS dependency
 * out of order when two dynamic imports of the same graph race (reproduced: about 1 start in 7
 * failed with "tsyringe requires a reflect polyfill" when the CA and the CSR path loaded at once).
 * Awaiting the polyfill module before the x509 module, once per process, makes the order explicit
 * whatever the runtime does with concurrent imports.
 */
import type { x509 as X509 } from "./_x509.ts";

let loading: Promise<typeof X509> | undefined;

export function loadX509(): Promise<typeof X509> {
  loading ??= (async () => {
    await import("./_reflect.ts");
    return (await import("./_x509.ts")).x509;
  })();
  return loading;
}
