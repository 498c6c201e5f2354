/**
 * Enforces the layer direction of shared/STYLE.md: a wrong import fails CI.
 *   core    → nothing else in src/ (and no protobuf, xDS or wasm packages)
 *   istio   → core (the Istio vocabulary: parsers and the validation toolkit)
 *   tls     → core
 *   filters → core, istio
 *   xds     → core, tls, istio
 *   inpod   → core
 *   app     → any layer; main.ts → app and layers; nothing imports main.ts
 * Cross-layer imports go through the target folder's mod.ts.
 */
import { assertEquals } from "./support/assert.ts";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  istio: ["core"],
  tls: ["core"],
  filters: ["core", "istio"],
  xds: ["core", "tls", "istio"],
  inpod: ["core"],
  app: ["core", "istio", "tls", "filters", "xds", "inpod"],
};
const BANNED_IN_CORE = [
  /^npm:@bufbuild\//,
  /^@bufbuild\//,
  /^npm:@bytecodealliance\//,
  /^@bytecodealliance\//,
];

function* walk(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) {
      if (e.name !== "gen" && e.name !== "node_modules") yield* walk(p);
    } else if (e.name.endsWith(".ts")) yield p;
  }
}

function layerOf(root: string, file: string): string | undefined {
  const rel = relative(join(root, "src"), file);
  if (rel.startsWith("..")) return undefined;
  return rel.includes("/") ? rel.split("/")[0] : "main";
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

export function layerViolations(root: string = ROOT): string[] {
  const out: string[] = [];
  for (const file of walk(join(root, "src"))) {
    const from = layerOf(root, file)!;
    if (file.endsWith("_test.ts") || file.endsWith("_bench.ts")) continue;
    const text = Deno.readTextFileSync(file);
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2]!;
      const where = `${relative(root, file)} imports "${spec}"`;
      if (from === "core" && BANNED_IN_CORE.some((re) => re.test(spec))) {
        out.push(`${where}: core may not use protobuf or wasm packages`);
      }
      if (!spec.startsWith(".")) continue;
      const target = resolve(dirname(file), spec);
      if (target.startsWith(join(root, "plugins"))) {
        out.push(`${where}: the host never imports plugins/ (load .wasm by config)`);
        continue;
      }
      const to = layerOf(root, target);
      if (to === undefined || to === from) continue;
      if (to === "main") {
        out.push(`${where}: nothing imports src/main.ts`);
        continue;
      }
      if (from !== "main" && !(ALLOWED[from] ?? []).includes(to)) {
        out.push(`${where}: layer ${from} may not import ${to}`);
      } else if (!(from === "main" && to === "app") && !target.endsWith(`/src/${to}/mod.ts`)) {
        out.push(`${where}: import ${to} through src/${to}/mod.ts`);
      }
    }
  }
  return out;
}

Deno.test("layers: imports follow the direction in shared/STYLE.md", () => {
  assertEquals(layerViolations(), []);
});

Deno.test("layers: the checker catches a wrong import", () => {
  const root = Deno.makeTempDirSync();
  try {
    Deno.mkdirSync(join(root, "src", "core"), { recursive: true });
    Deno.mkdirSync(join(root, "src", "tls"), { recursive: true });
    Deno.writeTextFileSync(join(root, "src/core/probe.ts"), 'import { x } from "../xds/mod.ts";\n');
    Deno.writeTextFileSync(join(root, "src/tls/probe.ts"), 'import { y } from "../core/log.ts";\n');
    assertEquals(layerViolations(root).sort(), [
      'src/core/probe.ts imports "../xds/mod.ts": layer core may not import xds',
      'src/tls/probe.ts imports "../core/log.ts": import core through src/core/mod.ts',
    ]);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
