/**
 * `weft cni install` / `uninstall` on a node's CNI directories (istio-cni's install-cni, as
 * weft's own code): the plugin binary copied into the CNI bin dir, then weft chained into the
 * primary network config (cni_conflist.ts). Every write is a temp file in the same directory plus
 * rename, so a runtime reading the directory (containerd and CRI-O watch it) sees the old file
 * or the new one, never half of one. The binary goes in before the config names it and comes
 * out after the config stops naming it. Problems are returned, each with its path.
 */
import { chmod, copyFile, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { errorMessage } from "../core/mod.ts";
import { SUPPORTED_CNI_VERSIONS } from "./cni.ts";
import {
  chainWeft,
  CNI_CONF_EXTENSIONS,
  conflistName,
  primaryConfFile,
  unchainWeft,
} from "./cni_conflist.ts";

export const DEFAULT_CNI_BIN_DIR = "/opt/cni/bin";
export const DEFAULT_CNI_CONF_DIR = "/etc/cni/net.d";
export const DEFAULT_CNI_PLUGIN = "weft-cni";

export interface CniDirs {
  readonly binDir: string;
  readonly confDir: string;
  /** The binary's name in binDir, which is also the entry's `type`. */
  readonly pluginName: string;
}

export interface CniInstallOptions extends CniDirs {
  /** The weft executable to copy (the running binary in a node-agent image). */
  readonly binary: string;
  /** The node agent's ZDS socket, as the host sees it (the plugin runs on the host). */
  readonly socket: string;
  /** How long to wait for the primary CNI plugin's config to appear. */
  readonly waitMs: number;
  readonly pollMs?: number;
  /** Called once if the config is not there yet and waiting starts. */
  readonly onWait?: () => void;
}

export type CniResult<T> = { ok: true; value: T } | { ok: false; problems: string[] };

export interface CniInstalled {
  readonly binary: string;
  readonly confFile: string;
  /** The single-plugin file converted into confFile (and removed), if any. */
  readonly convertedFrom: string | undefined;
  /** Earlier weft entries replaced (0 on a first install). */
  readonly replaced: number;
  /** false when the config already held exactly this entry (nothing written). */
  readonly written: boolean;
}

export interface CniUninstalled {
  readonly confFiles: readonly string[];
  readonly binaryRemoved: boolean;
}

const PLUGIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

async function checkDir(label: string, dir: string, problems: string[]): Promise<void> {
  if (!isAbsolute(dir)) {
    problems.push(`${label} ${dir}: must be an absolute path`);
    return;
  }
  try {
    if (!(await stat(dir)).isDirectory()) problems.push(`${label} ${dir}: not a directory`);
  } catch (e) {
    problems.push(`${label} ${dir}: ${errorMessage(e)} (mount the host's directory here)`);
  }
}

/** Every problem with the options, each naming the flag and path. */
export async function checkCniOptions(
  o: CniDirs & { binary?: string; socket?: string },
): Promise<string[]> {
  const problems: string[] = [];
  await checkDir("--cni-bin-dir", o.binDir, problems);
  await checkDir("--cni-conf-dir", o.confDir, problems);
  if (!PLUGIN_NAME.test(o.pluginName)) {
    problems.push(`--name ${o.pluginName}: must be a file name ([A-Za-z0-9._-], no slash)`);
  }
  if (o.socket !== undefined && !isAbsolute(o.socket)) {
    problems.push(`--socket ${o.socket}: must be an absolute path (as the node's host sees it)`);
  }
  if (o.binary !== undefined) {
    try {
      if (!(await stat(o.binary)).isFile()) problems.push(`--binary ${o.binary}: not a file`);
    } catch (e) {
      problems.push(`--binary ${o.binary}: ${errorMessage(e)}`);
    }
  }
  return problems;
}

async function writeAtomic(path: string, dir: string, write: (tmp: string) => Promise<void>) {
  const tmp = join(dir, `.weft-${crypto.randomUUID()}.tmp`);
  try {
    await write(tmp);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

async function waitForConf(o: CniInstallOptions): Promise<string | undefined> {
  const end = Date.now() + o.waitMs;
  let told = false;
  for (;;) {
    const file = primaryConfFile(await readdir(o.confDir));
    if (file || Date.now() >= end) return file;
    if (!told) o.onWait?.();
    told = true;
    await new Promise((r) =>
      setTimeout(r, Math.min(o.pollMs ?? 500, Math.max(1, end - Date.now())))
    );
  }
}

async function readJson(path: string): Promise<CniResult<{ raw: unknown; text: string }>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    return { ok: false, problems: [`${path}: ${errorMessage(e)}`] };
  }
  try {
    return { ok: true, value: { raw: JSON.parse(text), text } };
  } catch (e) {
    return { ok: false, problems: [`${path}: not valid JSON: ${errorMessage(e)}`] };
  }
}

/** Copies the binary, then chains weft into the primary network config. */
export async function installCni(o: CniInstallOptions): Promise<CniResult<CniInstalled>> {
  const problems = await checkCniOptions(o);
  if (problems.length > 0) return { ok: false, problems };
  const binary = join(o.binDir, o.pluginName);
  try {
    await writeAtomic(binary, o.binDir, async (tmp) => {
      await copyFile(o.binary, tmp);
      await chmod(tmp, 0o755);
    });
  } catch (e) {
    return { ok: false, problems: [`${binary}: cannot copy ${o.binary}: ${errorMessage(e)}`] };
  }
  const file = await waitForConf(o);
  if (!file) {
    return {
      ok: false,
      problems: [
        `${o.confDir}: no CNI network config (${
          CNI_CONF_EXTENSIONS.join(", ")
        }) after ${o.waitMs} ms` +
        " (is the pod network's CNI plugin installed on this node?)",
      ],
    };
  }
  const path = join(o.confDir, file);
  const read = await readJson(path);
  if (!read.ok) return read;
  const edit = chainWeft(read.value.raw, path, {
    type: o.pluginName,
    zdsSocket: o.socket,
  }, SUPPORTED_CNI_VERSIONS);
  if (!edit.ok) return { ok: false, problems: [...edit.problems] };
  const target = join(o.confDir, conflistName(file));
  if (target !== path) {
    const clash = await stat(target).then(() => true, () => false);
    if (clash) {
      return { ok: false, problems: [`${path}: cannot convert to ${target}: that file exists`] };
    }
  }
  const text = JSON.stringify(edit.conflist, null, 2) + "\n";
  const same = target === path && JSON.stringify(read.value.raw) === JSON.stringify(edit.conflist);
  try {
    if (!same) {
      const mode = (await stat(path)).mode & 0o777;
      await writeAtomic(target, o.confDir, async (tmp) => {
        await writeFile(tmp, text, { mode });
        await chmod(tmp, mode);
      });
    }
    if (target !== path) await rm(path);
  } catch (e) {
    return { ok: false, problems: [`${target}: cannot write: ${errorMessage(e)}`] };
  }
  const now = primaryConfFile(await readdir(o.confDir));
  if (now !== conflistName(file)) {
    return {
      ok: false,
      problems: [`${o.confDir}/${now}: sorts before ${target}, which the runtime would not read`],
    };
  }
  return {
    ok: true,
    value: {
      binary,
      confFile: target,
      convertedFrom: target === path ? undefined : path,
      replaced: edit.replaced,
      written: !same,
    },
  };
}

/** Takes weft's entry out of every network config in the dir, then removes the binary. */
export async function uninstallCni(o: CniDirs): Promise<CniResult<CniUninstalled>> {
  const problems = await checkCniOptions(o);
  if (problems.length > 0) return { ok: false, problems };
  const changed: string[] = [];
  for (const name of (await readdir(o.confDir)).sort()) {
    if (name.startsWith(".") || !CNI_CONF_EXTENSIONS.some((e) => name.endsWith(e))) continue;
    const path = join(o.confDir, name);
    const read = await readJson(path);
    if (!read.ok) {
      problems.push(...read.problems);
      continue;
    }
    const edit = unchainWeft(read.value.raw, path, o.pluginName);
    if (!edit.ok) problems.push(...edit.problems);
    else if (edit.removed > 0) {
      try {
        const mode = (await stat(path)).mode & 0o777;
        await writeAtomic(path, o.confDir, async (tmp) => {
          await writeFile(tmp, JSON.stringify(edit.conflist, null, 2) + "\n", { mode });
          await chmod(tmp, mode);
        });
        changed.push(path);
      } catch (e) {
        problems.push(`${path}: cannot write: ${errorMessage(e)}`);
      }
    }
  }
  // The binary stays while any config may still name it.
  if (problems.length > 0) return { ok: false, problems };
  const binary = join(o.binDir, o.pluginName);
  const existed = await stat(binary).then(() => true, () => false);
  try {
    await rm(binary, { force: true });
  } catch (e) {
    return { ok: false, problems: [`${binary}: cannot remove: ${errorMessage(e)}`] };
  }
  return { ok: true, value: { confFiles: changed, binaryRemoved: existed } };
}
