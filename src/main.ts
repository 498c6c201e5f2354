/**
 * weft's command line. Wires the layers together (through src/app); nothing imports this file.
 *   weft run [--config weft.yaml] [--xds host:port] [--dev]
 *   weft validate weft.yaml
 *   weft control-plane --config-dir DIR [--address 127.0.0.1:15010] [--tls]
 *   weft plugin new <name> --lang c|js [--dir plugins]
 */
import { args, exit, installProcessGuard } from "./core/mod.ts";
import { runCli } from "./app/cli.ts";

// Nothing a peer, a config or a filter sends may end the process: an escaped error is logged and
// counted (weft_unhandled_errors_total), never fatal.
installProcessGuard();
exit(await runCli(args()));
