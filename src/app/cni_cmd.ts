/** `weft cni`: reads the CNI environment and stdin, prints the plugin's JSON answer. */
import { text } from "node:stream/consumers";
import process from "node:process";
import { print } from "../core/mod.ts";
import { runCni } from "../inpod/mod.ts";

export async function runCniCmd(): Promise<number> {
  const env = process.env as Record<string, string | undefined>;
  const stdin = env.CNI_COMMAND === "VERSION" ? "" : await text(process.stdin);
  const r = await runCni(env, stdin);
  if (r.stdout) print(r.stdout.replace(/\n$/, ""), "stdout");
  return r.code;
}
