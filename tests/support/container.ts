/**
 * Running weft in containers for tests: the image from `deno task image` (tools/image.ts, cached
 * by the sha256 of its content), `podman run --network host` so containers share the host
 * loopback (each test on its own random loopback block) or `--network ns:<path>` to run in a
 * node's namespace (in-pod capture), and cleanup of every container a test made.
 * This machine kind needs `--runtime runc --cgroup-manager cgroupfs` (crun fails on its hybrid
 * cgroups) and rlimits no higher than the sandbox's (`--ulimit nofile=1024:1024 ...`).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./weft_proc.ts";

export const PODMAN_GLOBAL = ["--runtime", "runc", "--cgroup-manager", "cgroupfs"];
export const PODMAN_LIMITS = [
  "--ulimit",
  "nofile=1024:1024",
  "--ulimit",
  "nproc=1024:1024",
];
/** Tagged per checkout (a hash of its path), so two checkouts on one machine never run each
 * other's build by tag. */
export const TEST_IMAGE = `localhost/weft:test-${checkoutId(ROOT)}`;

function checkoutId(path: string): string {
  let h = 0x811c9dc5; // FNV-1a 32
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/** Why container tests cannot run here, or undefined when they can. */
export function containerSkipReason(): string | undefined {
  if (Deno.uid() !== 0) return "not root (podman here runs rootful)";
  // nsenter, nft, ip: the image ships the host's copies (tools/image.ts).
  for (const tool of ["podman", "buildah", "runc", "catatonit", "nsenter", "nft", "ip"]) {
    const r = spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    if (r.status !== 0) return `${tool} is not installed (WEFT_SETUP_APT=1 deno task setup)`;
  }
  return undefined;
}

export interface TestImage {
  readonly tag: string;
  readonly id: string;
  readonly sizeBytes: number;
  readonly cached: boolean;
}

/** Builds (or reuses, same binary) the test image in a subprocess; one test process at a time
 * (an exclusive lock on .weft/image.lock), so parallel test files share one build. */
export async function ensureTestImage(): Promise<TestImage> {
  await Deno.mkdir(join(ROOT, ".weft"), { recursive: true });
  const lock = await Deno.open(join(ROOT, ".weft", "image.lock"), { create: true, write: true });
  let r: Deno.CommandOutput;
  try {
    await lock.lock(true);
    r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(ROOT, "tools/image.ts"), "--tag", TEST_IMAGE, "--json"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
  } finally {
    lock.close(); // releases the lock
  }
  const dec = new TextDecoder();
  if (!r.success) throw new Error(`deno task image failed:\n${dec.decode(r.stderr)}`);
  return JSON.parse(dec.decode(r.stdout)) as TestImage;
}

export function podman(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync("podman", [...PODMAN_GLOBAL, ...args], { encoding: "utf8" });
  return { code: r.status ?? -1, out: r.stdout ?? "", err: r.stderr ?? "" };
}

/** What the node agent's container needs for in-pod capture, as podman flags (the DaemonSet in
 * deploy/node-agent.yaml says the same): NET_ADMIN (nftables, SO_MARK, IP_TRANSPARENT) and
 * SYS_ADMIN (setns into pod namespaces, nsenter), and the host's /var/run/netns with
 * propagation from the host (rslave: Kubernetes' HostToContainer), so namespaces made after
 * the agent started appear too. The node's network is given per container (`commandIn`). */
export const INPOD_RUN = [
  "--cap-add",
  "NET_ADMIN,SYS_ADMIN",
  "-v",
  "/var/run/netns:/var/run/netns:rslave",
];

/** Starts `weft <argv>` in fresh containers (host network, `mounts` at the same paths, `extra`
 * podman flags), and remembers their names so `cleanup()` removes them even when a test fails. */
export class ContainerLauncher {
  readonly names: string[] = [];
  private readonly prefix = `weft-test-${Deno.pid}-${Math.floor(Math.random() * 1e6)}`;

  constructor(
    readonly image: string,
    readonly mounts: readonly string[],
    readonly extra: readonly string[] = [],
  ) {}

  readonly command = (argv: readonly string[]): [string, string[]] =>
    this.run(["--network", "host"], argv);

  /** `weft <argv>` in a container on the network namespace at `netnsPath` (a node), with
   * `mounts` as well as the launcher's, and `env`. */
  commandIn(
    netnsPath: string,
    opts: { mounts?: readonly string[]; env?: Record<string, string> } = {},
  ): (argv: readonly string[]) => [string, string[]] {
    const env = Object.entries(opts.env ?? {}).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
    return (argv) => this.run(["--network", `ns:${netnsPath}`, ...env], argv, opts.mounts ?? []);
  }

  private run(
    network: string[],
    argv: readonly string[],
    mounts: readonly string[] = [],
  ): [string, string[]] {
    const name = `${this.prefix}-${this.names.length}`;
    this.names.push(name);
    const volumes = [...this.mounts, ...mounts].flatMap((m) => ["-v", `${m}:${m}`]);
    return ["podman", [
      ...PODMAN_GLOBAL,
      "run",
      "--rm",
      "--name",
      name,
      ...network,
      ...PODMAN_LIMITS,
      ...this.extra,
      ...volumes,
      "-e",
      "WEFT_LOG=info",
      this.image,
      ...argv,
    ]];
  }

  cleanup(): void {
    if (this.names.length > 0) podman(["rm", "-f", "--ignore", ...this.names]);
  }
}
