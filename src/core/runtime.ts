/**
 * The one place for runtime-specific calls, so weft stays runnable on Deno and Bun: environment,
 * signals, exit, monotonic time. Everything else uses web or node: APIs both runtimes provide.
 */
// deno-lint-ignore no-explicit-any
const g = globalThis as any;
export const runtimeName: "deno" | "bun" | "node" = g.Deno ? "deno" : g.Bun ? "bun" : "node";

export function env(name: string): string | undefined {
  if (g.Deno) {
    try {
      return g.Deno.env.get(name);
    } catch {
      return undefined;
    }
  }
  return g.process?.env?.[name];
}

export function onSignal(signal: "SIGTERM" | "SIGINT", fn: () => void): () => void {
  if (g.Deno) {
    g.Deno.addSignalListener(signal, fn);
    return () => g.Deno.removeSignalListener(signal, fn);
  }
  g.process.on(signal, fn);
  return () => g.process.off(signal, fn);
}

export function exit(code: number): never {
  if (g.Deno) g.Deno.exit(code);
  g.process.exit(code);
  throw new Error("unreachable");
}

export function args(): string[] {
  return g.Deno ? [...g.Deno.args] : g.process.argv.slice(2);
}

/** Resident set size in bytes (for /config_dump and benches). */
export function rssBytes(): number {
  if (g.Deno) return g.Deno.memoryUsage().rss;
  return g.process.memoryUsage().rss;
}

export function nowMs(): number {
  return performance.now();
}
