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
  /** An executable whose page cache is dropped first, so it is measured as exec loads it from
   * disk (see evictPageCache). */
  readonly binary?: string;
}

/** RssFile counts the pages of the executable mapped so far, and how many a fault maps depends
 * on how the file sits in the page cache: a binary just written by the build (or cp) measured
 * 2–5 MB more RSS than the same file read back from disk (48.2 vs 43.4 MB, same binary, same
 * run). A node starts from a binary read from disk (an image layer), so each binary's cached pages
 * are dropped first (`dd iflag=nocache count=0`: posix_fadvise DONTNEED on that file only) and its
 * rows measure it as exec loads it. `--as-written` keeps the page cache as it is. */
export async function evictPageCache(path: string): Promise<void> {
  // Pages the build just wrote stay dirty (not droppable) until written back.
  const f = Deno.openSync(path, { read: true, write: true });
  try {
    f.syncSync();
  } finally {
    f.close();
  }
  const r = await new Deno.Command("dd", {
    args: [`if=${path}`, "iflag=nocache", "count=0", "status=none"],
    stderr: "null",
  }).output();
  if (!r.success) {
    Deno.stderr.writeSync(
      new TextEncoder().encode(`could not drop the page cache of ${path}: its RSS may read high\n`),
    );
  }
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
    if (f.binary) await evictPageCache(f.binary);
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
