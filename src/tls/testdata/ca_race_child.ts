/**
 * Child process for ca_store_test.ts: logs "ready" once loaded, waits for a line on stdin (so the
 * parent releases both children at the same moment), opens the auto CA in argv[0] and writes the
 * serial it got to argv[1].
 */
import { logger } from "../../core/mod.ts";
import { loadOrCreateCa } from "../ca_store.ts";

const [stateDir, out] = Deno.args as [string, string];
logger("test").info("ready");
const reader = Deno.stdin.readable.getReader();
await reader.read();
reader.releaseLock();
const ca = await loadOrCreateCa(stateDir);
await Deno.writeTextFile(out, ca.serialNumber);
