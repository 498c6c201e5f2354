/** Command dispatch for src/main.ts. Returns the process exit code. */
import { readFile } from "node:fs/promises";
import { errorMessage, logger } from "../core/mod.ts";
import { parseConfigText } from "./config.ts";
import { DEFAULT_CONFIG_YAML, XDS_DEFAULT_CONFIG_YAML } from "./default_config.ts";
import type { WeftConfig } from "./config_types.ts";
import { out } from "./out.ts";

const USAGE = `weft — a per-node service-mesh proxy

Usage:
  weft run [--config weft.yaml] [--xds host:port] [--node name] [--dev]
                         run the node agent (embedded default config when --config is absent;
                         with --xds alone: config and certificates from the control plane)
  weft validate <weft.yaml>
                         check a config; prints every problem with its path, exit 1 if any
  weft control-plane --config-dir DIR | --config FILE | FILE... [--address 127.0.0.1:15010]
                     [--ca-dir .weft/ca] [--tls]
                         serve xDS (ADS, delta and SotW) and the CA from Kubernetes-style Istio
                         manifests (every *.yaml under DIR, watched); --tls: mTLS for xDS and
                         the CA (required unless --address is loopback)
  weft plugin new <name> --lang c|js [--dir plugins]
                         scaffold an L7 filter plugin
  weft help              this text
`;

export interface Flags {
  positional: string[];
  values: Map<string, string>;
  switches: Set<string>;
}

export function parseFlags(argv: readonly string[], withValue: readonly string[]): Flags {
  const f: Flags = { positional: [], values: new Map(), switches: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith("--")) {
      const [k, v] = a.slice(2).split("=", 2) as [string, string | undefined];
      if (v !== undefined) f.values.set(k, v);
      else if (withValue.includes(k)) f.values.set(k, argv[++i] ?? "");
      else f.switches.add(k);
    } else f.positional.push(a);
  }
  return f;
}

export async function loadConfig(
  path: string | undefined,
  opts: { xdsDefault?: boolean; nodeName?: string | undefined } = {},
): Promise<WeftConfig | undefined> {
  let text = opts.xdsDefault ? XDS_DEFAULT_CONFIG_YAML : DEFAULT_CONFIG_YAML;
  if (path) {
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      out.err(`Cannot read config ${path}: ${errorMessage(err)}`);
      return undefined;
    }
  }
  const r = parseConfigText(text, opts.nodeName);
  if (!r.ok) {
    out.err(`Cannot load config ${path ?? "(embedded default)"}: ${r.problems.length} problem(s):`);
    for (const p of r.problems) out.err(`  ${p}`);
    return undefined;
  }
  return r.config;
}

export async function runCli(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case "run": {
        const f = parseFlags(rest, ["config", "xds", "node"]);
        const xds = f.values.get("xds");
        const config = await loadConfig(f.values.get("config"), {
          xdsDefault: xds !== undefined && !f.values.has("config"),
          nodeName: f.values.get("node"),
        });
        if (!config) return 1;
        const { runNodeAgent } = await import("./node_agent.ts");
        return await runNodeAgent({
          config,
          configPath: f.values.get("config"),
          dev: f.switches.has("dev"),
          xds: xds ?? config.xds.address,
        });
      }
      case "validate": {
        const f = parseFlags(rest, []);
        const path = f.positional[0];
        if (!path) {
          out.err("Cannot validate: no file given (usage: weft validate weft.yaml)");
          return 2;
        }
        const config = await loadConfig(path);
        if (!config) return 1;
        out.line(
          `${path}: ok (${config.workloads.length} workloads, ${config.services.length} services, ${config.authorizationPolicies.length} policies)`,
        );
        return 0;
      }
      case "control-plane": {
        const f = parseFlags(rest, ["config", "config-dir", "address", "ca-dir"]);
        const { runControlPlane } = await import("./control_plane_cmd.ts");
        return await runControlPlane(f);
      }
      case "plugin": {
        const { runPluginCmd } = await import("./plugin_cmd.ts");
        return await runPluginCmd(parseFlags(rest, ["lang", "dir"]));
      }
      case undefined:
      case "help":
      case "--help":
      case "-h":
        out.line(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        out.err(`Cannot run "${cmd}": unknown command\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    logger("main").error("fatal", { error: errorMessage(err) });
    out.err(`weft: ${errorMessage(err)}`);
    return 1;
  }
}
