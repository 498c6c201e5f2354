// deno-lint-ignore-file no-console
/**
 * Runs on Bun (spawned by tools/build.ts): Bun.build with `compile`, because the CLI has no
 * plugins. One plugin: `oxc-minify` (imported at the top of jco-transpile, called only with
 * `minify: true`, which weft never passes) loads a platform-specific native addon the bundle
 * cannot carry, so it is replaced by a module whose minify() throws.
 * Argument: a JSON {entry, assets, outfile, define}.
 */
interface BuildArgs {
  readonly entry: string;
  readonly assets: readonly string[];
  readonly outfile: string;
  readonly define: Record<string, string>;
}

interface PluginBuilder {
  onResolve(o: { filter: RegExp }, f: () => { path: string; namespace: string }): void;
  onLoad(
    o: { filter: RegExp; namespace: string },
    f: () => { contents: string; loader: string },
  ): void;
}

interface BunApi {
  build(o: unknown): Promise<{ success: boolean; logs: unknown[] }>;
  argv: string[];
}

const bun = (globalThis as unknown as { Bun: BunApi }).Bun;
const args = JSON.parse(bun.argv[2] ?? "{}") as BuildArgs;

const STUB = `export async function minify() {
  throw new Error("oxc-minify is not part of the weft binary");
}`;

const r = await bun.build({
  entrypoints: [args.entry, ...args.assets],
  // Start-up code (config, certificates, wiring) runs once: with tier-up thresholds 64x the
  // normal ones it stays in the interpreter, and an idle node never touches the optimizing
  // JITs' code (−2.5 MB idle RSS measured); src/core/runtime.ts `settleAfterStart` sets the
  // normal policy back once the node is ready (an xDS node: once its first sync is applied).
  // A node agent reads its configuration from its flags, WEFT_* and its config file only: Bun's
  // standalone executables would otherwise load `.env` and `bunfig.toml` from whatever directory
  // they start in, and a bunfig.toml `preload` runs any script in the agent's process (checked:
  // tests/cli_test.ts). tsconfig.json and package.json autoloading are off by default.
  compile: {
    outfile: args.outfile,
    jitPolicy: 64,
    autoloadDotenv: false,
    autoloadBunfig: false,
    autoloadTsconfig: false,
    autoloadPackageJson: false,
  },
  // Lazily imported modules (xDS, protobuf, jco, the filter host) become chunks loaded on first
  // import(), not code every node parses at start: −6.6 MB idle RSS measured (bench/idle_floor.ts).
  splitting: true,
  // Whitespace and comments out, syntax compacted; identifiers kept (logs, errors and stack
  // traces read the same). Each chunk's source text stays mapped from the binary once evaluated,
  // so its size is resident on every node: bench:idle, alternated, −0.3 to −0.4 MB per node.
  minify: { whitespace: true, syntax: true, identifiers: false },
  naming: { entry: "[name].[ext]", asset: "[name].[ext]" },
  define: args.define,
  plugins: [{
    name: "weft-no-native-minify",
    setup(b: PluginBuilder): void {
      b.onResolve({ filter: /^oxc-minify$/ }, () => ({ path: "oxc-minify", namespace: "weft" }));
      b.onLoad({ filter: /.*/, namespace: "weft" }, () => ({ contents: STUB, loader: "js" }));
    },
  }],
});
if (!r.success) {
  for (const l of r.logs) console.error(l);
  (globalThis as unknown as { process: { exit(c: number): never } }).process.exit(1);
}
