/**
 * Run by component_core_test.ts in a child process (Deno or Bun): loads the three first-party
 * components with binding "auto", counts the worker threads started, then loads one with binding
 * "jco" and counts again; last, checks that jco's `<name>.core.wasm` is the first core module that
 * component_core.ts reads. jco's WASI shim (preview2-shim) starts a worker thread when evaluated.
 * Prints one JSON line.
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { loadComponent } from "../component_loader.ts";
import { coreModules } from "../component_core.ts";

// Node's "worker" process event fires when a worker thread is created (Deno and Bun emit it too).
let started = 0;
process.on("worker", () => started++);
const workers = (): number => started;
// On Bun that worker throws (process.binding("tcp_wrap")) into the main thread: counted, not fatal.
const errors: string[] = [];
process.on("uncaughtException", (e) => errors.push(String(e)));
const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const opts = { maxMemoryBytes: 16 << 20 };
const bindings: string[] = [];
for (const path of process.argv.slice(2)) {
  bindings.push((await loadComponent(readFileSync(path), opts)).binding);
}
await settle(300);
const afterDirect = workers();
const errorsAfterDirect = errors.length;
const forced = await loadComponent(readFileSync(process.argv[2]!), { ...opts, binding: "jco" });
let afterJco = workers();
for (let i = 0; i < 40 && afterJco === 0; i++) {
  await settle(50);
  afterJco = workers();
}
const { transpileBytes } = await import("@bytecodealliance/jco-transpile");
const sameCore: boolean[] = [];
for (const path of process.argv.slice(2)) {
  const bytes = readFileSync(path);
  const { files } = await transpileBytes(bytes, { name: "guest", instantiation: "async" });
  const ours = coreModules(bytes)?.[0];
  const theirs = files["guest.core.wasm"];
  sameCore.push(
    !!ours && !!theirs && ours.length === theirs.length && ours.every((b, i) => b === theirs[i]),
  );
}
const line = JSON.stringify({
  bindings,
  afterDirect,
  forced: forced.binding,
  afterJco,
  sameCore,
  errorsAfterDirect,
});
// Exits explicitly (jco's worker may keep the loop alive), once the line is written.
await new Promise<void>((r) => process.stdout.write(`${line}\n`, () => r()));
process.exit(0);
