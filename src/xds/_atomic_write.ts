/** Test/bench helper: replace a file atomically, as deploy tools do (temp file + rename). */
import { rename, writeFile } from "node:fs/promises";

export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}
