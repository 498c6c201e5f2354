/**
 * `weft cni`: with no subcommand, the CNI plugin itself (CNI environment and stdin in, the
 * plugin's JSON answer out; also how the runtime runs the installed copy, with no arguments).
 * `weft cni install|uninstall`: put the plugin on the node and chain it into the primary network
 * config, or take it out (src/inpod/cni_install.ts), as istio-cni's install-cni does.
 */
import { text } from "node:stream/consumers";
import process from "node:process";
import { env, logger, print } from "../core/mod.ts";
import {
  DEFAULT_CNI_BIN_DIR,
  DEFAULT_CNI_CONF_DIR,
  DEFAULT_CNI_PLUGIN,
  DEFAULT_ZDS_SOCKET,
  installCni,
  runCni,
  uninstallCni,
} from "../inpod/mod.ts";
import { parseDurationMs } from "../istio/mod.ts";
import type { Flags } from "./cli.ts";
import { out } from "./out.ts";
import { buildInfo } from "./version.ts";

const DEFAULT_WAIT = "60s";

export async function runCniCmd(): Promise<number> {
  const e = process.env as Record<string, string | undefined>;
  const stdin = e.CNI_COMMAND === "VERSION" ? "" : await text(process.stdin);
  const r = await runCni(e, stdin);
  if (r.stdout) print(r.stdout.replace(/\n$/, ""), "stdout");
  return r.code;
}

const setting = (f: Flags, flag: string, envName: string, dflt: string): string =>
  f.values.get(flag) ?? (env(envName) || dflt);

function report(action: string, problems: readonly string[]): number {
  out.err(`Cannot ${action} the CNI plugin: ${problems.length} problem(s):`);
  for (const p of problems) out.err(`  ${p}`);
  return 1;
}

/** `weft cni install|uninstall`; exit 0, 1 (problems, each with its path) or 2 (usage). */
export async function runCniInstallCmd(sub: string, f: Flags): Promise<number> {
  const log = logger("cni");
  const dirs = {
    binDir: setting(f, "cni-bin-dir", "WEFT_CNI_BIN_DIR", DEFAULT_CNI_BIN_DIR),
    confDir: setting(f, "cni-conf-dir", "WEFT_CNI_CONF_DIR", DEFAULT_CNI_CONF_DIR),
    pluginName: setting(f, "name", "WEFT_CNI_PLUGIN", DEFAULT_CNI_PLUGIN),
  };
  if (sub === "uninstall") {
    const r = await uninstallCni(dirs);
    if (!r.ok) return report("uninstall", r.problems);
    log.info("cni plugin uninstalled", { ...dirs, ...r.value });
    return 0;
  }
  const problems: string[] = [];
  const waitText = setting(f, "wait", "WEFT_CNI_WAIT", DEFAULT_WAIT);
  const waitMs = parseDurationMs(waitText);
  if (waitMs === undefined) problems.push(`--wait ${waitText}: must be a duration like 30s`);
  // The binary a node-agent image runs is the plugin; from source there is no binary to copy.
  const binary = f.values.get("binary") ??
    (buildInfo().kind === "binary" ? process.execPath : undefined);
  if (binary === undefined) {
    problems.push(
      "--binary: weft runs from source (deno/bun src/main.ts), so there is no binary to copy;" +
        " build one (deno task build) and pass --binary PATH, or run the binary itself",
    );
  }
  if (binary === undefined || waitMs === undefined) return report("install", problems);
  const r = await installCni({
    ...dirs,
    binary,
    socket: setting(f, "socket", "WEFT_CNI_SOCKET", DEFAULT_ZDS_SOCKET),
    waitMs,
    onWait: () => log.info("waiting for the primary cni config", { confDir: dirs.confDir, waitMs }),
  });
  if (!r.ok) return report("install", r.problems);
  log.info("cni plugin installed", { ...r.value });
  return 0;
}
