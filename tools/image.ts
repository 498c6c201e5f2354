// deno-lint-ignore-file no-console
/**
 * `deno task image [--tag localhost/weft:0.1.0]`: the node-agent container image, built with Debian's
 * buildah (no Docker engine needed). Builds the `weft` binary (tools/build.ts), stages a root
 * file system in .weft/image-<pid>/rootfs — the binary, the shared libraries `ldd` lists for it at the
 * same paths, the host's CA bundle, /tmp and /var/lib/weft — and runs `buildah bud` with the
 * repo's Containerfile on that context only. An image labelled with the binary's sha256 is
 * reused (`weft.binary-sha256`), so an unchanged binary is not rebuilt; the binary's build date
 * is the commit's, which keeps it reproducible.
 */
import { spawnSync } from "node:child_process";
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

export interface BuiltImage {
  readonly tag: string;
  readonly id: string;
  readonly sizeBytes: number;
  readonly cached: boolean;
  readonly binarySha256: string;
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

async function sha256File(path: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", readFileSync(path));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Stages .weft/image/rootfs for the Containerfile. */
function stageRootfs(binary: string): string {
  const ctx = join(ROOT, ".weft", `image-${Deno.pid}`);
  const rootfs = join(ctx, "rootfs");
  rmSync(ctx, { recursive: true, force: true });
  const put = (from: string, to: string): void => {
    mkdirSync(dirname(join(rootfs, to)), { recursive: true });
    copyFileSync(realpathSync(from), join(rootfs, to));
  };
  put(binary, "/usr/local/bin/weft");
  chmodSync(join(rootfs, "usr/local/bin/weft"), 0o755);
  for (const lib of linkedLibraries(binary)) put(lib, lib);
  if (existsSync(CA_BUNDLE)) put(CA_BUNDLE, CA_BUNDLE);
  for (const [dir, mode] of [["tmp", 0o1777], ["var/lib/weft", 0o700], ["etc/weft", 0o755]]) {
    mkdirSync(join(rootfs, dir as string), { recursive: true });
    chmodSync(join(rootfs, dir as string), mode as number);
  }
  return ctx;
}

/** The image id labelled with this binary hash, if one exists. */
function existingImage(tag: string, sha: string): string | undefined {
  const r = spawnSync("podman", [
    "image",
    "inspect",
    "--format",
    '{{.Id}} {{index .Labels "weft.binary-sha256"}}',
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
    return await imageFor(binary, opts.tag);
  } finally {
    if (!opts.binary) rmSync(binary, { force: true });
  }
}

async function imageFor(binary: string, wantTag: string | undefined): Promise<BuiltImage> {
  const sha = await sha256File(binary);
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
    const ctx = stageRootfs(binary);
    run("buildah", [
      "bud",
      "--quiet",
      "--label",
      `weft.binary-sha256=${sha}`,
      "-t",
      tag,
      "-f",
      join(ROOT, "Containerfile"),
      ctx,
    ]);
    rmSync(ctx, { recursive: true, force: true });
    id = existingImage(tag, sha);
    if (!id) throw new Error(`Cannot build the image: ${tag} is missing after buildah bud`);
    const oldId = old.status === 0 ? old.stdout.trim() : "";
    if (oldId && oldId !== id) spawnSync("podman", ["rmi", oldId], { stdio: "ignore" });
  }
  const sizeBytes = Number(run("podman", ["image", "inspect", "--format", "{{.Size}}", tag]));
  return { tag, id, sizeBytes, cached, binarySha256: sha };
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--tag");
  const tag = i >= 0 ? Deno.args[i + 1] : undefined;
  const img = await buildImage(tag ? { tag } : {});
  if (Deno.args.includes("--json")) console.log(JSON.stringify(img));
  console.error(
    `image: ${img.tag} ${img.id.slice(0, 12)} ${(img.sizeBytes / 1e6).toFixed(1)} MB` +
      (img.cached ? " (cached: same binary)" : ""),
  );
}
