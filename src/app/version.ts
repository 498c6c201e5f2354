/**
 * Build information for `weft version` and the `weft_build` / `istio_build` gauges. A binary
 * built by `deno task build` carries it (tools/build.ts defines globalThis.WEFT_BUILD_INFO at
 * bundle time); a source run reports the package version with commit "dev".
 */
import { runtimeVersion } from "../core/mod.ts";

/** The version of weft (package.json's). */
export const WEFT_VERSION = "0.1.0";

export interface BuildInfo {
  readonly version: string;
  readonly commit: string;
  readonly buildDate: string;
  readonly runtime: string;
  /** "binary" (bun build --compile) or "source" (deno/bun run src/main.ts). */
  readonly kind: "binary" | "source";
}

interface Injected {
  readonly version?: string;
  readonly commit?: string;
  readonly buildDate?: string;
}

export function buildInfo(): BuildInfo {
  const injected = (globalThis as { WEFT_BUILD_INFO?: Injected }).WEFT_BUILD_INFO;
  return Object.freeze({
    version: injected?.version ?? WEFT_VERSION,
    commit: injected?.commit ?? "dev",
    buildDate: injected?.buildDate ?? "",
    runtime: runtimeVersion(),
    kind: injected ? "binary" : "source",
  });
}
