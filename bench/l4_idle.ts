/**
 * Idle RSS of one weft node (bench:l4's node A config, alone) in each shipped form, measured one
 * after the other in the same run: `deno run src/main.ts`, the `weft` binary, and the binary in
 * the container image (podman, host network; the RSS of the weft process the container runs).
 */
import { spawnSync } from "node:child_process";
import { type Proc, rssMb, spawn } from "./l4_peers.ts";

export interface IdleForm {
  readonly label: string;
  readonly cmd: string;
  readonly args: string[];
  /** For a container: its name, to find the host pid of its process. */
  readonly container?: string;
}

const PODMAN = ["--runtime", "runc", "--cgroup-manager", "cgroupfs"];

/** The container form, when podman and the image are there (root). */
export function containerForm(image: string, dir: string, config: string): IdleForm | undefined {
  if (Deno.uid() !== 0) return undefined;
  const has = spawnSync("podman", [...PODMAN, "image", "exists", image]);
  if (has.status !== 0) return undefined;
  const name = `weft-bench-idle-${Deno.pid}`;
  return {
    label: `container ${image}`,
    cmd: "podman",
    args: [
      ...PODMAN,
      "run",
      "--rm",
      "--name",
      name,
      "--network",
      "host",
      "--ulimit",
      "nofile=1024:1024",
      "--ulimit",
      "nproc=1024:1024",
      "-v",
      `${dir}:${dir}`,
      "-e",
      "WEFT_LOG=info",
      image,
      "run",
      "--config",
      config,
    ],
    container: name,
  };
}

function pidOf(f: IdleForm, p: Proc): number {
  if (!f.container) return p.pid;
  const r = spawnSync("podman", [...PODMAN, "inspect", "--format", "{{.State.Pid}}", f.container], {
    encoding: "utf8",
  });
  return Number(r.stdout.trim());
}

/** Idle RSS in MB per form, one node at a time (they share node A's addresses). */
export async function idleRss(forms: readonly IdleForm[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const f of forms) {
    const p = await spawn(f.cmd, f.args, {
      readyText: '"msg":"ready"',
      env: { ...Deno.env.toObject(), WEFT_LOG: "info" },
    });
    try {
      await new Promise((r) => setTimeout(r, 1000)); // settle, as bench:l4 does
      out.set(f.label, rssMb(pidOf(f, p)).rss);
    } finally {
      await p.stop();
      if (f.container) spawnSync("podman", [...PODMAN, "rm", "-f", "--ignore", f.container]);
    }
  }
  return out;
}
