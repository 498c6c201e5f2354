/**
 * `weft cni install|uninstall` through the real CLI (source, or the compiled binary with
 * WEFT_BIN): flags and environment, exit codes (0, 1 with every problem and its path, 2 for
 * usage), the refusal to install from source without --binary, the bounded wait for a primary
 * config, and the no-argument invocation a CNI runtime makes of the installed plugin. The
 * compiled binary copying itself (process.execPath) from the image, and the installed plugin
 * enrolling pods through the conflist, are in tests/container_inpod_test.ts and
 * tests/deploy_test.ts (the DaemonSet's init container under podman kube play).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals } from "./support/assert.ts";
import { runWeft, weftBin } from "./support/weft_proc.ts";

const PODS = {
  cniVersion: "1.0.0",
  name: "pods",
  plugins: [{ type: "ptp", ipam: { type: "host-local", subnet: "10.9.0.0/24" } }],
};

async function hostDirs(): Promise<
  { root: string; bin: string; conf: string; env: Record<string, string> }
> {
  const root = await mkdtemp(join(tmpdir(), "weft-cni-cli-"));
  const bin = join(root, "opt/cni/bin");
  const conf = join(root, "etc/cni/net.d");
  await Deno.mkdir(bin, { recursive: true });
  await Deno.mkdir(conf, { recursive: true });
  return { root, bin, conf, env: { WEFT_CNI_BIN_DIR: bin, WEFT_CNI_CONF_DIR: conf } };
}

Deno.test("cni cli: install from the environment's dirs, chained entry, log line; uninstall", async () => {
  const h = await hostDirs();
  try {
    await writeFile(join(h.conf, "10-pods.conflist"), JSON.stringify(PODS));
    const binary = join(h.root, "weft-build");
    await writeFile(binary, "stand-in for the weft binary\n");
    // From source, the binary to copy must be named; the compiled binary copies itself.
    const args = weftBin() ? [] : ["--binary", binary];
    const r = await runWeft(["cni", "install", ...args, "--socket", "/run/w/zds.sock"], {
      env: h.env,
    });
    assertEquals(r.code, 0, r.stderr + r.stdout);
    const line = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assertEquals(line.msg, "cni plugin installed");
    assertEquals(line.confFile, join(h.conf, "10-pods.conflist"));
    const list = JSON.parse(await readFile(join(h.conf, "10-pods.conflist"), "utf8"));
    assertEquals(list.plugins, [...PODS.plugins, {
      type: "weft-cni",
      zdsSocket: "/run/w/zds.sock",
    }]);
    assertEquals(await readdir(h.bin), ["weft-cni"]);
    if (!weftBin()) {
      assertEquals(await readFile(join(h.bin, "weft-cni"), "utf8"), await readFile(binary, "utf8"));
    } else {
      // The compiled binary copied itself (process.execPath), byte for byte.
      const cmp = await new Deno.Command("cmp", {
        args: ["-s", weftBin()!, join(h.bin, "weft-cni")],
      }).output();
      assertEquals(cmp.code, 0, "installed copy differs from the running binary");
    }
    const u = await runWeft(["cni", "uninstall"], { env: h.env });
    assertEquals(u.code, 0, u.stderr);
    assertEquals(JSON.parse(await readFile(join(h.conf, "10-pods.conflist"), "utf8")), PODS);
    assertEquals(await readdir(h.bin), []);
  } finally {
    await rm(h.root, { recursive: true, force: true });
  }
});

Deno.test("cni cli: problems exit 1 with their paths; usage errors exit 2", async () => {
  const h = await hostDirs();
  try {
    if (!weftBin()) {
      const src = await runWeft(["cni", "install", "--wait", "0"], { env: h.env });
      assertEquals(src.code, 1);
      assert(/--binary: weft runs from source/.test(src.stderr), src.stderr);
    }
    const binary = join(h.root, "weft-build");
    await writeFile(binary, "x");
    // No primary config yet: a bounded wait, then exit 1 so the init container is restarted.
    const none = await runWeft(["cni", "install", "--binary", binary, "--wait", "200ms"], {
      env: h.env,
    });
    assertEquals(none.code, 1);
    assert(/"msg":"waiting for the primary cni config"/.test(none.stdout), none.stdout);
    assert(none.stderr.includes(`${h.conf}: no CNI network config`), none.stderr);
    const bad = await runWeft([
      "cni",
      "install",
      "--binary",
      join(h.root, "nope"),
      "--cni-conf-dir",
      join(h.root, "missing"),
      "--wait",
      "soon",
    ], { env: h.env });
    assertEquals(bad.code, 1);
    assert(/--wait soon: must be a duration/.test(bad.stderr), bad.stderr);
    await writeFile(join(h.conf, "10-pods.conflist"), "{");
    const json = await runWeft(["cni", "install", "--binary", binary], { env: h.env });
    assertEquals(json.code, 1);
    assert(json.stderr.includes(`${h.conf}/10-pods.conflist: not valid JSON`), json.stderr);
    for (
      const argv of [["cni", "instal"], ["cni", "install", "--force"], ["cni", "install", "x"]]
    ) {
      const u = await runWeft(argv, { env: h.env });
      assertEquals(u.code, 2, `${argv.join(" ")}: ${u.stderr}`);
    }
  } finally {
    await rm(h.root, { recursive: true, force: true });
  }
});

Deno.test("cni cli: run with no arguments and CNI_COMMAND set, weft is the CNI plugin", async () => {
  // How a container runtime runs the installed copy (/opt/cni/bin/weft-cni): no argv.
  const r = await runWeft([], { env: { CNI_COMMAND: "VERSION" } });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout).supportedVersions, ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]);
  const usage = await runWeft([], {});
  assertEquals(usage.code, 2, "no arguments and no CNI_COMMAND: usage");
});
