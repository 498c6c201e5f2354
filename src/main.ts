/**
 * weft's command line. Wires the layers together (through src/app); nothing imports this file.
 *   weft run [--config weft.yaml] [--xds host:port] [--dev]
 *   weft validate weft.yaml
 *   weft control-plane --config-dir DIR [--address 127.0.0.1:15010] [--tls]
 *   weft plugin new <name> --lang c|js [--dir plugins]
 */
import { args, execWithGcDefaults, exit, installProcessGuard } from "./core/mod.ts";
import { runCli } from "./app/cli.ts";

// Nothing a peer, a config or a filter sends may end the process: an escaped error is logged and
// counted (weft_unhandled_errors_total), never fatal.
installProcessGuard();
// The long-running commands: the binary replaces itself once to start with weft's collector
// settings (src/core/runtime.ts GC_DEFAULTS) unless the operator set them.
if (args()[0] === "run" || args()[0] === "control-plane") await execWithGcDefaults();
exit(await runCli(args()));
