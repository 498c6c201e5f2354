/**
 * Command dispatch for src/main.ts. Returns the process exit code (EXIT): 0 success or a clean
 * drain, 1 a problem with the config, state dir or start-up (reported with its path and reason,
 * before any port is bound), 2 a usage error (unknown command or flag, missing argument).
 * Flags beat environment variables, which beat the config file (WEFT_CONFIG, WEFT_STATE_DIR,
 * WEFT_NODE_NAME, WEFT_XDS_ADDRESS).
 */
import { access, constants, mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { env, errorMessage, logger } from "../core/mod.ts";
import { hostPortProblem, parseConfigText } from "./config.ts";
import { DEFAULT_CONFIG_YAML, XDS_DEFAULT_CONFIG_YAML } from "./default_config.ts";
import type { WeftConfig } from "./config_types.ts";
import { out } from "./out.ts";

export const EXIT = Object.freeze({ ok: 0, failed: 1, usage: 2 });

const USAGE = `weft — a per-node service-mesh proxy

Usage:
  weft run [--config weft.yaml] [--state-dir dir] [--xds host:port] [--node name] [--dev]
                         run the node agent (embedded default config when --config is absent;
                         with --xds alone: config and certificates from the control plane;
                         --dev: rebuild and reload a filter when its sources change)
  weft validate [weft.yaml]
                         check a config (the file, else --config / WEFT_CONFIG); prints every
                         problem with its path, exit 1 if any
  weft control-plane --config-dir DIR | --config FILE | FILE... [--address 127.0.0.1:15010]
                     [--ca-dir .weft/ca] [--tls [--client-auth mtls|token|jwt] | --insecure-plaintext]
                     [--jwks FILE --jwt-issuer URL] [--trusted-node-accounts ns/sa,...]
                         serve xDS (ADS, delta and SotW) and the CA from Kubernetes-style Istio
                         manifests (every *.yaml under DIR, watched); --tls: TLS for xDS and
                         the CA (required unless --address is loopback or --insecure-plaintext),
                         nodes authenticated by client certificate (mtls, the default) or, as
                         istiod does, by their node token over server TLS (token), or also by
                         Kubernetes service-account tokens (jwt: audience istio-ca, verified
                         against the issuer's keys in --jwks ("kubectl get --raw
                         /openid/v1/jwks") and --jwt-issuer; node agents of the accounts in
                         --trusted-node-accounts, env CA_TRUSTED_NODE_ACCOUNTS, default the
                         mesh's node-agent account, act for their token's node); the CA (and
                         so the root nodes verify) is ca-cert.pem + ca-key.pem in --ca-dir
  weft ca init [--ca-dir .weft/ca]
                         make the mesh CA the control plane uses (ca-cert.pem, ca-key.pem; kept
                         if present): the Secret weft-ca and the root for weft-ca-root-cert
  weft cni               chained CNI plugin (CNI_COMMAND=ADD|DEL|CHECK|VERSION, config on stdin):
                         enrolls the pod with the node agent's in-pod capture (also what the
                         installed copy does when the runtime runs it with no arguments)
  weft cni install [--binary path] [--cni-bin-dir /opt/cni/bin] [--cni-conf-dir /etc/cni/net.d]
                   [--socket /var/run/weft/zds.sock] [--name weft-cni] [--wait 60s]
                         copy this binary into the CNI bin dir and chain it into the node's
                         primary network config (waits up to --wait for it, then exit 1)
  weft cni uninstall [--cni-bin-dir dir] [--cni-conf-dir dir] [--name weft-cni]
                         take weft's entry out of the network configs, then remove the binary
  weft plugin new <name> [--lang c|js] [--dir plugins]
                         scaffold an L7 filter plugin (C by default)
  weft plugin build <dir> [--force]
                         build a plugin from source, cached by its sources' hash (developer
                         tool: needs clang; --force rebuilds)
  weft version [--json]  version, git commit, build date and runtime
  weft help              this text

Environment: WEFT_CONFIG (--config), WEFT_STATE_DIR (--state-dir: the dev CA lives in
<dir>/ca), WEFT_NODE_NAME (--node), WEFT_XDS_ADDRESS (--xds), CRL_PATH (ca.crlFile: CRLs
for HBONE peers, watched), WEFT_PLUGIN_DIR (prebuilt
first-party plugins), WEFT_LOG (log level), WEFT_CNI_BIN_DIR, WEFT_CNI_CONF_DIR, WEFT_CNI_SOCKET,
WEFT_CNI_PLUGIN, WEFT_CNI_WAIT (the cni install flags), CA_TRUSTED_NODE_ACCOUNTS
(--trusted-node-accounts). Flags win over the environment, which
wins over the config file.
Exit codes: 0 success (or a clean drain after SIGTERM/SIGINT or POST /quitquitquit), 1 bad
config / state dir / start-up
failure (reported before any port is bound), 2 usage error.
`;

/** Flags each command knows; anything else is a usage error. */
const KNOWN: Record<string, { values: string[]; switches: string[] }> = {
  run: { values: ["config", "xds", "node", "state-dir"], switches: ["dev"] },
  validate: { values: ["config"], switches: [] },
  ca: { values: ["ca-dir"], switches: [] },
  "control-plane": {
    values: [
      "config",
      "config-dir",
      "address",
      "ca-dir",
      "client-auth",
      "jwks",
      "jwt-issuer",
      "trusted-node-accounts",
    ],
    switches: ["tls", "insecure-plaintext"],
  },
  plugin: { values: ["lang", "dir"], switches: ["force"] },
  cni: {
    values: ["binary", "cni-bin-dir", "cni-conf-dir", "socket", "name", "wait"],
    switches: [],
  },
  version: { values: [], switches: ["json"] },
};

/** Parses argv for `cmd`; a usage message for an unknown flag or a flag without its value. */
function commandFlags(cmd: string, argv: readonly string[]): Flags | string {
  const k = KNOWN[cmd]!;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) continue;
    const [name, v] = a.slice(2).split("=", 2) as [string, string | undefined];
    if (k.values.includes(name)) {
      if (v === undefined && (argv[i + 1] === undefined || argv[i + 1]!.startsWith("--"))) {
        return `Cannot run weft ${cmd}: --${name} needs a value`;
      }
      if (v === undefined) i++;
    } else if (!k.switches.includes(name) || v !== undefined) {
      const known = [...k.values.map((x) => `--${x} <value>`), ...k.switches.map((x) => `--${x}`)];
      return `Cannot run weft ${cmd}: unknown flag ${a} (known: ${known.join(", ") || "none"})`;
    }
  }
  return parseFlags(argv, k.values);
}

/** Flag, else environment variable. */
function setting(f: Flags, flag: string, envName: string): string | undefined {
  return f.values.get(flag) ?? (env(envName) || undefined);
}

/** The state dir must be creatable and writable before anything binds. */
async function checkStateDir(dir: string): Promise<string | undefined> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
    return undefined;
  } catch (err) {
    return `Cannot use state dir ${dir}: ${errorMessage(err)}`;
  }
}

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
  opts: {
    xdsDefault?: boolean;
    nodeName?: string | undefined;
    /** A running node's live edit: problems go here (into its JSON log record), not to stderr
     * as text. */
    problems?: string[];
  } = {},
): Promise<WeftConfig | undefined> {
  let text = opts.xdsDefault ? XDS_DEFAULT_CONFIG_YAML : DEFAULT_CONFIG_YAML;
  if (path) {
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if (opts.problems) opts.problems.push(`Cannot read config ${path}: ${errorMessage(err)}`);
      else out.err(`Cannot read config ${path}: ${errorMessage(err)}`);
      return undefined;
    }
  }
  // A relative `configDir` is read beside the file that names it.
  const r = parseConfigText(text, opts.nodeName, path ? dirname(path) : ".");
  if (!r.ok && opts.problems) {
    opts.problems.push(...r.problems);
    return undefined;
  }
  if (!r.ok) {
    out.err(`Cannot load config ${path ?? "(embedded default)"}: ${r.problems.length} problem(s):`);
    for (const p of r.problems) out.err(`  ${p}`);
    return undefined;
  }
  return r.config;
}

export async function runCli(argv: readonly string[]): Promise<number> {
  // A CNI runtime runs the installed plugin (`weft cni install`) with no arguments.
  const [cmd, ...rest] = argv.length === 0 && env("CNI_COMMAND") ? ["cni"] : argv;
  let f: Flags = { positional: [], values: new Map(), switches: new Set() };
  if (cmd !== undefined && KNOWN[cmd]) {
    const parsed = commandFlags(cmd, rest);
    if (typeof parsed === "string") {
      out.err(parsed);
      return EXIT.usage;
    }
    f = parsed;
  }
  try {
    switch (cmd) {
      case "run": {
        const xds = setting(f, "xds", "WEFT_XDS_ADDRESS");
        const xdsProblem = xds === undefined ? undefined : hostPortProblem(xds);
        if (xdsProblem) {
          const fromFlag = f.values.has("xds");
          out.err(`Cannot run weft run: ${fromFlag ? "--xds" : "WEFT_XDS_ADDRESS"} ${xdsProblem}`);
          return fromFlag ? EXIT.usage : EXIT.failed;
        }
        const configPath = setting(f, "config", "WEFT_CONFIG");
        const loaded = await loadConfig(configPath, {
          xdsDefault: xds !== undefined && configPath === undefined,
          nodeName: setting(f, "node", "WEFT_NODE_NAME"),
        });
        if (!loaded) return EXIT.failed;
        const stateDir = setting(f, "state-dir", "WEFT_STATE_DIR");
        // ztunnel's CRL_PATH beats ca.crlFile, as every environment variable beats the file.
        const crlFile = env("CRL_PATH") || loaded.ca.crlFile;
        const config = stateDir === undefined && crlFile === loaded.ca.crlFile
          ? loaded
          : Object.freeze({
            ...loaded,
            ca: Object.freeze({
              ...loaded.ca,
              ...(stateDir === undefined ? {} : { stateDir: join(stateDir, "ca") }),
              crlFile,
            }),
          });
        if (config.ca.mode === "auto") {
          const problem = await checkStateDir(config.ca.stateDir);
          if (problem) {
            out.err(problem);
            return EXIT.failed;
          }
        }
        const { runNodeAgent } = await import("./node_agent.ts");
        return await runNodeAgent({
          config,
          configPath,
          dev: f.switches.has("dev"),
          xds: xds ?? config.xds.address,
        });
      }
      case "validate": {
        const path = f.positional[0] ?? setting(f, "config", "WEFT_CONFIG");
        if (!path) {
          out.err("Cannot validate: no file given (usage: weft validate weft.yaml)");
          return EXIT.usage;
        }
        const config = await loadConfig(path);
        if (!config) return 1;
        out.line(
          `${path}: ok (${config.workloads.length} workloads, ${config.services.length} services, ${config.authorizationPolicies.length} policies)`,
        );
        return 0;
      }
      case "control-plane": {
        const { runControlPlane } = await import("./control_plane_cmd.ts");
        return await runControlPlane(f);
      }
      case "ca": {
        if (f.positional.join(" ") !== "init") {
          out.err(`Cannot run weft ca: expected "init"\n\n${USAGE}`);
          return EXIT.usage;
        }
        const { runCaInit } = await import("./control_plane_cmd.ts");
        return await runCaInit(f);
      }
      case "cni": {
        const sub = f.positional[0];
        if (sub !== undefined && (sub !== "install" && sub !== "uninstall" || f.positional[1])) {
          out.err(`Cannot run weft cni: unknown argument ${f.positional.join(" ")}\n\n${USAGE}`);
          return EXIT.usage;
        }
        const { runCniCmd, runCniInstallCmd } = await import("./cni_cmd.ts");
        // CNI plugin mode: env + stdin in, one JSON result out (src/inpod/cni.ts).
        return sub === undefined ? await runCniCmd() : await runCniInstallCmd(sub, f);
      }
      case "plugin": {
        const { runPluginCmd } = await import("./plugin_cmd.ts");
        return await runPluginCmd(f);
      }
      case "version":
      case "--version": {
        const { buildInfo } = await import("./version.ts");
        const b = buildInfo();
        if (f.switches.has("json")) out.line(JSON.stringify(b));
        else {
          out.line(
            `weft ${b.version} (commit ${b.commit}${
              b.buildDate ? `, built ${b.buildDate}` : ""
            }, ${b.runtime}, ${b.kind})`,
          );
        }
        return 0;
      }
      case undefined:
      case "help":
      case "--help":
      case "-h":
        out.line(USAGE);
        return cmd === undefined ? EXIT.usage : EXIT.ok;
      default:
        out.err(`Cannot run "${cmd}": unknown command\n\n${USAGE}`);
        return EXIT.usage;
    }
  } catch (err) {
    logger("main").error("fatal", { error: errorMessage(err) });
    out.err(`weft: ${errorMessage(err)}`);
    return EXIT.failed;
  }
}
