/**
 * The third-party proxy-wasm fixtures (tests/fixtures/third_party_wasm): verify their sha256, or
 * re-extract them byte for byte from clones of the repositories that published them.
 *
 *   deno run -A tools/third_party_wasm.ts --verify
 *   deno run -A tools/third_party_wasm.ts --from proxy-wasm-go-sdk=DIR --from proxy=DIR \
 *     --from proxy-wasm-java-sdk=DIR
 *
 * DIR is a git clone (or bare mirror) of github.com/tetratelabs/proxy-wasm-go-sdk,
 * github.com/istio/proxy or github.com/roastedroot/proxy-wasm-java-sdk with the commits below in
 * its history.
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";

export const FIXTURE_DIR = fileURLToPath(
  new URL("../tests/fixtures/third_party_wasm", import.meta.url),
);

export interface ThirdPartyWasm {
  file: string;
  repo: "proxy-wasm-go-sdk" | "proxy" | "proxy-wasm-java-sdk";
  commit: string;
  path: string;
  sha256: string;
}

const GO_SDK = "f6c1ad17591ffe0a5c400fafc12a764df4e1b544";
/** roastedroot/proxy-wasm-java-sdk commits holding its host tests' prebuilt SDK examples. */
const JAVA_GO = "bcc88322b4da89ee5108bbfeccf3220d87261a3b";
const JAVA_RUST = "e6d223b790b51e4a89c9abe12aa300bb82148ad4";
const JAVA_TESTS = "proxy-wasm-java-host/src/test";

export const THIRD_PARTY_WASM: readonly ThirdPartyWasm[] = [
  {
    file: "tinygo-http_auth_random.wasm",
    repo: "proxy-wasm-go-sdk",
    commit: GO_SDK,
    path: "examples/http_auth_random/wasm.wasm",
    sha256: "811d32b98fb2a01cf0b3d66889aad93c377be10208a0f663e7be43abdf007fb6",
  },
  {
    file: "tinygo-http_headers.wasm",
    repo: "proxy-wasm-go-sdk",
    commit: GO_SDK,
    path: "examples/http_headers/wasm.wasm",
    sha256: "6a420d61ae7e3749a7a042566e81f9c3e88cfaf306501aac12c4a921402fb3cb",
  },
  {
    file: "tinygo-helloworld.wasm",
    repo: "proxy-wasm-go-sdk",
    commit: GO_SDK,
    path: "examples/helloworld/wasm.wasm",
    sha256: "126b713079ddb5d87a609b4dcd6b756fcf0f3131b8e9739905618d6fc045c8ca",
  },
  {
    file: "istio-metadata_exchange.wasm",
    repo: "proxy",
    commit: "80a186047c14be0d9e63d33f65d519f02da49452",
    path: "extensions/metadata_exchange/plugin.wasm",
    sha256: "318ef2a2845e06548b1b393899b7a4a3dee95c2aa6f2fc9c02788a16399dce89",
  },
  {
    file: "istio-stats.wasm",
    repo: "proxy",
    commit: "9b4239dee83dd8894bfc579d412ccd894cff2597",
    path: "extensions/stats/plugin.wasm",
    sha256: "fd77adb532f9b5b22c33ac383a19fc5cc0fb042813fe8ccecf8e1c75d4d32d13",
  },
  {
    file: "go-http_body.wasm",
    repo: "proxy-wasm-java-sdk",
    commit: JAVA_GO,
    path: `${JAVA_TESTS}/go-examples/http_body/main.wasm`,
    sha256: "e8aa975a2f94d3406450ac6c6bd8598bdf0b7f6a6909278a1c19b77770d9fba2",
  },
  {
    file: "go-json_validation.wasm",
    repo: "proxy-wasm-java-sdk",
    commit: JAVA_GO,
    path: `${JAVA_TESTS}/go-examples/json_validation/main.wasm`,
    sha256: "07728615afb2850e37d5eb120bb14ae1fecf1839740b48cda00fc999f8cf76bd",
  },
  {
    file: "go-http_body_chunk.wasm",
    repo: "proxy-wasm-java-sdk",
    commit: JAVA_GO,
    path: `${JAVA_TESTS}/go-examples/http_body_chunk/main.wasm`,
    sha256: "b0ade250d85e7be96108f17fbe5e465eb3f9fc8ce21352733d12230ccac49a81",
  },
  {
    file: "rust-envoy_filter_metadata.wasm",
    repo: "proxy-wasm-java-sdk",
    commit: JAVA_RUST,
    path: `${JAVA_TESTS}/rust-examples/envoy_filter_metadata/main.wasm`,
    sha256: "5c541c92db05802893d9eb55ccf5d7b9c3f543f69b27bb042fcad6b099174a86",
  },
  {
    file: "rust-hello_world.wasm",
    repo: "proxy-wasm-java-sdk",
    commit: JAVA_RUST,
    path: `${JAVA_TESTS}/rust-examples/hello_world/main.wasm`,
    sha256: "f728d3f500cc7a75d074c097176850ab8fde419e1c327047753c9bdcd8f5fa50",
  },
];

export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function gitShow(dir: string, commit: string, path: string): Promise<Uint8Array> {
  const out = await new Deno.Command("git", {
    args: ["-C", dir, "show", `${commit}:${path}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `git show ${commit}:${path} in ${dir}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return out.stdout;
}

async function main(args: string[]): Promise<number> {
  const from = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--from") {
      const [k, v] = (args[++i] ?? "").split("=", 2);
      if (!k || !v) throw new Error("--from REPO=DIR");
      from.set(k, v);
    } else if (args[i] !== "--verify") throw new Error(`unknown argument ${args[i]}`);
  }
  let bad = 0;
  for (const w of THIRD_PARTY_WASM) {
    const dest = join(FIXTURE_DIR, w.file);
    const dir = from.get(w.repo);
    if (dir) await Deno.writeFile(dest, await gitShow(dir, w.commit, w.path));
    const got = await sha256Hex(await Deno.readFile(dest));
    const ok = got === w.sha256;
    if (!ok) bad++;
    // deno-lint-ignore no-console
    console.log(`${ok ? "ok  " : "BAD "} ${w.file}  ${w.repo}@${w.commit.slice(0, 12)}:${w.path}`);
  }
  return bad ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
