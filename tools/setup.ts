// deno-lint-ignore-file no-console
/**
 * Test prerequisites, installed on demand so `deno task test` works on a fresh machine:
 * Debian packages (clang/lld/wasi-libc build the C plugins; promtool checks metrics output; h2load
 * drives the h2c stress test) and
 * the npm dependencies. Idempotent and quiet when everything is present.
 */
import { spawnSync } from "node:child_process";

const NEED: Record<string, string> = {
  clang: "clang",
  "wasm-ld": "lld",
  promtool: "prometheus",
  h2load: "nghttp2-client", // tests/l7_h2c_stress_test.ts
  // In-pod capture tests, demo:pods and bench:inpod (network namespaces, nftables, a capture).
  ip: "iproute2",
  nft: "nftables",
  nsenter: "util-linux",
  tcpdump: "tcpdump",
  curl: "curl",
  openssl: "openssl", // src/core/hbone_server_probe_test.ts (a ChaCha20-only client)
  socat: "socat",
  wrk: "wrk",
  hey: "hey",
  "docker-registry": "docker-registry", // tests/wasm_oci*_test.ts (a real OCI registry)
  python3: "python3", // bcrypt (crypt(3)) for that registry's htpasswd in tests/support/oci_registry.ts
};
const HEADERS: Record<string, string> = {
  "/usr/include/wasm32-wasi/stdlib.h": "wasi-libc",
};

function have(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

// Container tests (tests/container_test.ts, tests/deploy_test.ts) need podman, buildah, runc:
// installed only when asked (WEFT_SETUP_APT=1, as CI does) and root; otherwise those tests skip.
// catatonit is the pause process of pods (`podman kube play`).
const CONTAINER_TOOLS: Record<string, string> = {
  podman: "podman",
  buildah: "buildah",
  runc: "runc",
  catatonit: "catatonit",
};

const missing = new Set<string>();
if (Deno.env.get("WEFT_SETUP_APT") === "1" && Deno.uid?.() === 0) {
  for (const [cmd, pkg] of Object.entries(CONTAINER_TOOLS)) if (!have(cmd)) missing.add(pkg);
}
for (const [cmd, pkg] of Object.entries(NEED)) if (!have(cmd)) missing.add(pkg);
for (const [path, pkg] of Object.entries(HEADERS)) if (!exists(path)) missing.add(pkg);
// The native C unit tests link clang's sanitizer runtimes, a Recommends of clang that
// `--no-install-recommends` leaves out: libclang-rt-dev follows Debian's default clang.
if (missing.has("clang") || !hasAsanRuntime()) missing.add("libclang-rt-dev");

function hasAsanRuntime(): boolean {
  const r = spawnSync("clang", ["-print-file-name=libclang_rt.asan-x86_64.a"], {
    encoding: "utf8",
  });
  const path = (r.stdout ?? "").trim();
  return r.status === 0 && path.startsWith("/") && exists(path);
}

// JS filters are componentized with componentize-qjs (QuickJS). `deno add` cannot install it
// (some of its optional per-platform packages are missing from the registry), npm can.
const qjs = ".weft/tools/node_modules/.bin/componentize-qjs";
if (!exists(qjs) && !exists("node_modules/.bin/componentize-qjs") && have("npm")) {
  console.error("setup: installing componentize-qjs@0.4.5 into .weft/tools (npm)");
  const r = spawnSync("npm", [
    "install",
    "--prefix",
    ".weft/tools",
    "--no-audit",
    "--no-fund",
    "--silent",
    "componentize-qjs@0.4.5",
  ], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (r.status !== 0) {
    console.error(
      "setup: componentize-qjs could not be installed; JS plugin tests will be skipped",
    );
  }
}

// Bun runs the same code (tests/bun_smoke_test.ts keeps that true); it ships inside its npm package.
const bun = ".weft/tools/node_modules/.bin/bun";
if (!exists(bun) && !have("bun") && have("npm")) {
  console.error("setup: installing bun@1.4.5 into .weft/tools (npm)");
  const r = spawnSync("npm", [
    "install",
    "--prefix",
    ".weft/tools",
    "--no-audit",
    "--no-fund",
    "--silent",
    "bun@1.4.5",
  ], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (r.status !== 0) {
    console.error("setup: bun could not be installed; the Bun smoke test will be skipped");
  }
}

if (missing.size > 0) {
  const pkgs = [...missing];
  const isRoot = Deno.uid?.() === 0;
  if (!isRoot || !have("apt-get")) {
    console.error(
      `setup: missing Debian packages: ${pkgs.join(" ")} — install them with apt-get (as root)`,
    );
    Deno.exit(1);
  }
  console.error(`setup: installing Debian packages: ${pkgs.join(" ")}`);
  const env = { ...Deno.env.toObject(), DEBIAN_FRONTEND: "noninteractive" };
  for (
    const args of [["update", "-qq"], ["install", "-y", "-qq", "--no-install-recommends", ...pkgs]]
  ) {
    const r = spawnSync("apt-get", args, { stdio: ["ignore", "ignore", "inherit"], env });
    if (r.status !== 0) {
      console.error(`setup: apt-get ${args[0]} failed (exit ${r.status})`);
      Deno.exit(1);
    }
  }
}

// The first-party plugins are built here, ahead of time (cached by source hash): the node agent
// only loads their wasm.
{
  const r = spawnSync(Deno.execPath(), ["run", "-A", "tools/build_plugins.ts"], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (r.status !== 0) {
    console.error("setup: building the first-party plugins failed (deno task plugins)");
    Deno.exit(1);
  }
}
