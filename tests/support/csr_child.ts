/**
 * Child of tests/lazy_imports_test.ts, on Deno or Bun: what a node whose certificates come by CSR
 * runs (createCsr, then leafFromChain on the control plane's answer), with crypto.subtle watched
 * from before src/tls loads. Writes the CSR as one JSON line, reads the chain (a JSON array) from
 * stdin until EOF, then writes what was touched: crypto.subtle reads and calls (but the runtime's
 * node:crypto reading it once as it loads) and whether the
 * Reflect metadata polyfill @peculiar/x509 needs was evaluated (it loads first, _reflect.ts).
 */
import { readFileSync, writeSync } from "node:fs";

let subtleReads = 0;
let subtleCalls = 0;
const readers: string[] = [];
/** The runtime's own node:crypto reads crypto.subtle once when it evaluates (to re-export it as
 * webcrypto.subtle); that is no use of WebCrypto, so reads from there do not count. Calls do. */
const RUNTIME_NODE_CRYPTO = /\(node:crypto[:)]|ext:deno_node\/crypto\.ts/;
const count = (): void => {
  const where = new Error().stack?.split("\n").slice(2, 5).join(" | ") ?? "";
  if (RUNTIME_NODE_CRYPTO.test(where)) return;
  subtleReads++;
  readers.push(where);
};
const counted = (subtle: SubtleCrypto): SubtleCrypto =>
  new Proxy(subtle, {
    get(t, k) {
      const v = Reflect.get(t, k, t);
      if (typeof v !== "function") return v;
      return (...args: unknown[]) => {
        subtleCalls++;
        readers.push(`call ${String(k)}: ${new Error().stack?.split("\n")[2] ?? ""}`);
        return v.apply(t, args);
      };
    },
  });
let owner: object | null = globalThis.crypto;
while (owner && !Object.getOwnPropertyDescriptor(owner, "subtle")) {
  owner = Object.getPrototypeOf(owner);
}
const desc = owner ? Object.getOwnPropertyDescriptor(owner, "subtle") : undefined;
if (owner && desc?.configurable) {
  Object.defineProperty(owner, "subtle", {
    configurable: true,
    get(this: Crypto) {
      count();
      return counted(desc.get ? desc.get.call(this) : desc.value);
    },
  });
} else {
  // Bun: subtle is not configurable; watch it through the global instead.
  const real = globalThis.crypto;
  Object.defineProperty(globalThis, "crypto", {
    configurable: true,
    value: new Proxy(real, {
      get(t, k) {
        const v = Reflect.get(t, k, t);
        if (k === "subtle") {
          count();
          return counted(v);
        }
        return typeof v === "function" ? v.bind(t) : v;
      },
    }),
  });
}
const watched = globalThis.crypto.subtle !== undefined && subtleReads === 1;
subtleReads = 0;
readers.length = 0;

const identity = "spiffe://cluster.local/ns/default/sa/web";
const { createCsr, leafFromChain } = await import("../../src/tls/mod.ts");
const { csrPem, keyPem } = await createCsr(identity);
writeSync(1, JSON.stringify({ csrPem }) + "\n");
const chain = JSON.parse(readFileSync(0, "utf8")) as string[];
const leaf = await leafFromChain(identity, keyPem, chain, new Date());
const reflect = Reflect as unknown as { getMetadata?: unknown };
writeSync(
  1,
  JSON.stringify({
    watched,
    identity: leaf.identity,
    subtleReads,
    subtleCalls,
    ...(readers.length ? { readers } : {}),
    reflectPolyfill: typeof reflect.getMetadata === "function",
  }) + "\n",
);
