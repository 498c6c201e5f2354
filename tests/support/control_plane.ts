/**
 * weft's embedded xDS control plane for integration tests: serves a mesh file (YAML or JSON
 * text, see src/xds/README.md) on 127.0.0.1:<free port>; `update` replaces the file atomically
 * and pushes the change to every connected node before resolving.
 */
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CertificateAuthority } from "../../src/tls/mod.ts";
import { startControlPlane } from "../../src/xds/mod.ts";

export interface TestControlPlane {
  /** "127.0.0.1:<port>" */
  readonly address: string;
  readonly configPath: string;
  update(meshText: string): Promise<void>;
  close(): Promise<void>;
}

export async function startTestControlPlane(
  meshText: string,
  opts: { ca?: CertificateAuthority } = {},
): Promise<TestControlPlane> {
  const dir = await mkdtemp(join(tmpdir(), "weft-test-cp-"));
  const configPath = join(dir, "mesh.yaml");
  await writeFile(configPath, meshText);
  const cp = await startControlPlane({
    configPath,
    address: "127.0.0.1:0",
    ...(opts.ca ? { ca: opts.ca } : {}),
  });
  return {
    address: cp.address,
    configPath,
    async update(text: string): Promise<void> {
      const tmp = `${configPath}.${crypto.randomUUID()}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, configPath);
      if (!(await cp.reload())) throw new Error("mesh file rejected (see the control_plane log)");
    },
    async close(): Promise<void> {
      await cp.close();
      await rm(dir, { recursive: true });
    },
  };
}
