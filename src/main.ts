/**
 * weft's command line. Wires the layers together (through src/app); nothing imports this file.
 *   weft run [--config weft.yaml] [--xds host:port] [--dev]
 *   weft validate weft.yaml
 *   weft control-plane --config-dir DIR [--address 127.0.0.1:15010] [--tls]
 *   weft plugin new <name> --lang c|js [--dir plugins]
 */
import { args, exit } from "./core/mod.ts";
import { runCli } from "./app/cli.ts";

exit(await runCli(args()));
