/** Builds plugins/examples/<name> from source (cached by source hash) and loads it. */
import { join } from "node:path";
import type { FailPolicy, HttpFilter } from "../../src/core/mod.ts";
import { buildPlugin, REPO_ROOT } from "../../src/filters/plugin_build.ts";
import {
  loadComponent,
  type LoadedComponent,
} from "../../src/filters/component/component_loader.ts";
import {
  ComponentFilter,
  DEFAULT_SANDBOX,
  type SandboxOptions,
} from "../../src/filters/component/component_filter.ts";

const loaded = new Map<string, Promise<LoadedComponent>>();

export function examplePath(name: string): string {
  return join(REPO_ROOT, "plugins/examples", name);
}

export function loadExample(
  name: string,
  binding: "auto" | "jco" = "auto",
  maxMemoryBytes = DEFAULT_SANDBOX.maxMemoryBytes,
): Promise<LoadedComponent> {
  const key = `${name}/${binding}/${maxMemoryBytes}`;
  let p = loaded.get(key);
  if (!p) {
    p = buildPlugin(examplePath(name)).then((b) =>
      loadComponent(b.bytes, { maxMemoryBytes, binding })
    );
    loaded.set(key, p);
  }
  return p;
}

export async function exampleFilter(
  name: string,
  config: unknown = {},
  opts: { binding?: "auto" | "jco"; failPolicy?: FailPolicy; sandbox?: Partial<SandboxOptions> } =
    {},
): Promise<HttpFilter & { binding: "direct" | "jco" }> {
  const sandbox = { ...DEFAULT_SANDBOX, ...opts.sandbox };
  const c = await loadExample(name, opts.binding ?? "auto", sandbox.maxMemoryBytes);
  return await ComponentFilter.create(name, opts.failPolicy ?? "FAIL_CLOSE", c, config, sandbox);
}

// Warm jco (its modules start async file reads and its WASI shim's worker at import) before any
// test starts, so test sanitizers never see those complete inside a test. C guests load without
// jco (the direct binding), so the warm-up forces one load through it.
await loadExample("c_faulty");
await loadExample("c_faulty", "jco");
