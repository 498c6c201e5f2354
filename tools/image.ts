// deno-lint-ignore-file no-console
/**
 * `deno task image [--tag localhost/weft:0.1.0]`: the node-agent container image, built with Debian's
 * buildah (no Docker engine needed). Builds the `weft` binary (tools/build.ts), stages a root
 * file system in .weft/image-<pid>/rootfs — the binary; the three programs in-pod capture runs
 * inside pod namespaces (`nsenter` from util-linux, `nft` from nftables, `ip` from iproute2: see
 * src/inpod/nft_rules.ts); exactly the shared libraries `ldd` lists for all four, at the same
 * paths; the host's CA bundle, /tmp and /var/lib/weft — and runs `buildah bud` with the repo's
 * Containerfile on that context only. No shell, no package manager: the tools are single ELF
 * files, and they need no data files for what weft asks of them (numeric routing table and
 * marks, no name lookups). An image labelled with the sha256 of its content (binary, tools,
 * libraries, Containerfile) is reused (`weft.content-sha256`), so an unchanged build is not
 * redone; the binary's build date is the commit's, which keeps it reproducible.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildBinary, git } from "./build.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
/** In-pod capture's run-time tools (src/inpod/nft_rules.ts) and where the image puts them. */
export const INPOD_TOOLS = [
  { name: "nsenter", dest: "/usr/bin/nsenter", pkg: "util-linux" },
  { name: "nft", dest: "/usr/sbin/nft", pkg: "nftables" },
  { name: "ip", dest: "/usr/sbin/ip", pkg: "iproute2" },
] as const;
const SEARCH_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

export interface BuiltImage {
  readonly tag: string;
  readonly id: string;
  readonly sizeBytes: number;
  readonly cached: boolean;
  readonly binarySha256: string;
  /** sha256 over every staged file (and the Containerfile): the cache key. */
  readonly contentSha256: string;
}

/** The host's copy of each in-pod tool (real path), or an error naming the missing package. */
export function inpodToolPaths(): { name: string; dest: string; src: string }[] {
  return INPOD_TOOLS.map((t) => {
    const found = SEARCH_PATH.map((d) => join(d, t.name)).find((p) => existsSync(p));
    if (!found) {
      throw new Error(
        `Cannot build the image: ${t.name} is not installed (apt-get install ${t.pkg}; ` +
          "WEFT_SETUP_APT=1 deno task setup installs it)",
      );
    }
    return { name: t.name, dest: t.dest, src: realpathSync(found) };
  });
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8", maxBuffer: 16 << 20 });
  if (r.status !== 0) {
    throw new Error(`Cannot build the image: ${cmd} ${args[0]} failed: ${r.stderr || r.error}`);
  }
  return r.stdout.trim();
}

/** Absolute paths of the shared libraries (and loader) the binary links. */
export function linkedLibraries(binary: string): string[] {
  const out = run("ldd", [binary]);
  const libs = new Set<string>();
  for (const line of out.split("\n")) {
    const m = line.match(/=>\s+(\/\S+)/) ?? line.match(/^\s*(\/\S+)\s+\(/);
    if (m?.[1]) libs.add(m[1]);
  }
  return [...libs];
}

const sha256 = (data: Uint8Array | string): string =>
  createHash("sha256").update(data).digest("hex");

const sha256File = (path: string): string => sha256(readFileSync(path));

/** Every file the rootfs holds, as [path in the image, path on the host]. */
function rootfsFiles(binary: string): [string, string][] {
  const tools = inpodToolPaths();
  const libs = new Set<string>();
  for (const exe of [binary, ...tools.map((t) => t.src)]) {
    for (const lib of linkedLibraries(exe)) libs.add(lib);
  }
  return [
    ["/usr/local/bin/weft", binary],
    ...tools.map((t): [string, string] => [t.dest, t.src]),
    ...[...libs].sort().map((l): [string, string] => [l, l]),
    ...(existsSync(CA_BUNDLE) ? [[CA_BUNDLE, CA_BUNDLE] as [string, string]] : []),
  ];
}

function contentSha(files: [string, string][], binarySha: string): string {
  const parts = [readFileSync(join(ROOT, "Containerfile"), "utf8")];
  for (const [to, from] of files) {
    parts.push(`${to} ${from === files[0]![1] ? binarySha : sha256File(from)}`);
  }
  return sha256(parts.join("\n"));
}

/** Stages .weft/image-<pid>/rootfs for the Containerfile. */
function stageRootfs(files: [string, string][]): string {
  const ctx = join(ROOT, ".weft", `image-${Deno.pid}`);
  const rootfs = join(ctx, "rootfs");
  rmSync(ctx, { recursive: true, force: true });
  const put = (from: string, to: string): void => {
    mkdirSync(dirname(join(rootfs, to)), { recursive: true });
    copyFileSync(realpathSync(from), join(rootfs, to));
  };
  for (const [to, from] of files) put(from, to);
  for (const [to] of files.slice(0, 1 + INPOD_TOOLS.length)) chmodSync(join(rootfs, to), 0o755);
  for (const [dir, mode] of [["tmp", 0o1777], ["var/lib/weft", 0o700], ["etc/weft", 0o755]]) {
    mkdirSync(join(rootfs, dir as string), { recursive: true });
    chmodSync(join(rootfs, dir as string), mode as number);
  }
  return ctx;
}

/** The image id labelled with this content hash, if one exists. */
function existingImage(tag: string, sha: string): string | undefined {
  const r = spawnSync("podman", [
    "image",
    "inspect",
    "--format",
    '{{.Id}} {{index .Labels "weft.content-sha256"}}',
    tag,
  ], {
    encoding: "utf8",
  });
  if (r.status !== 0) return undefined;
  const [id, label] = r.stdout.trim().split(" ");
  return label === sha ? id : undefined;
}

export async function buildImage(
  opts: { tag?: string; binary?: string } = {},
): Promise<BuiltImage> {
  // The commit's date as build date: the same sources give the same binary, so the same image.
  const binary = opts.binary ?? (await buildBinary(join(ROOT, ".weft", `weft-image-${Deno.pid}`), {
    buildDate: git(["log", "-1", "--format=%cI"]) || undefined,
  })).path;
  try {
    return imageFor(binary, opts.tag);
  } finally {
    if (!opts.binary) rmSync(binary, { force: true });
  }
}

function imageFor(binary: string, wantTag: string | undefined): BuiltImage {
  const binarySha = sha256File(binary);
  const files = rootfsFiles(binary);
  const sha = contentSha(files, binarySha);
  const version = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version as string;
  // deploy/ names this tag (kustomize retags it for a registry).
  const tag = wantTag ?? `localhost/weft:${version}`;
  let id = existingImage(tag, sha);
  const cached = id !== undefined;
  if (!id) {
    // The image this tag named before (another binary): removed once replaced, not left dangling.
    const old = spawnSync("podman", ["image", "inspect", "--format", "{{.Id}}", tag], {
      encoding: "utf8",
    });
    const ctx = stageRootfs(files);
    try {
      run("buildah", [
        "bud",
        "--quiet",
        "--label",
        `weft.binary-sha256=${binarySha}`,
        "--label",
        `weft.content-sha256=${sha}`,
        "-t",
        tag,
        "-f",
        join(ROOT, "Containerfile"),
        ctx,
      ]);
    } finally {
      rmSync(ctx, { recursive: true, force: true });
    }
    id = existingImage(tag, sha);
    if (!id) throw new Error(`Cannot build the image: ${tag} is missing after buildah bud`);
    const oldId = old.status === 0 ? old.stdout.trim() : "";
    if (oldId && oldId !== id) spawnSync("podman", ["rmi", oldId], { stdio: "ignore" });
  }
  const sizeBytes = Number(run("podman", ["image", "inspect", "--format", "{{.Size}}", tag]));
  return { tag, id, sizeBytes, cached, binarySha256: binarySha, contentSha256: sha };
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--tag");
  const tag = i >= 0 ? Deno.args[i + 1] : undefined;
  const img = await buildImage(tag ? { tag } : {});
  if (Deno.args.includes("--json")) console.log(JSON.stringify(img));
  console.error(
    `image: ${img.tag} ${img.id.slice(0, 12)} ${(img.sizeBytes / 1e6).toFixed(1)} MB` +
      (img.cached ? " (cached: same content)" : ""),
  );
}
