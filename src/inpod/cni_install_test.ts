/**
 * `weft cni install|uninstall` on temp CNI dirs: chaining into the first conflist, .conf
 * conversion, idempotence, unknown fields and other plugins kept, uninstall, bad JSON, missing
 * dirs, waiting for a late primary config, refusal of a cniVersion the plugin cannot serve.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CniInstallOptions, installCni, uninstallCni } from "./cni_install.ts";
import { primaryConfFile } from "./cni_conflist.ts";

interface Node {
  root: string;
  opts: CniInstallOptions;
  bin: string;
  conf: string;
}

async function node(): Promise<Node> {
  const root = await mkdtemp(join(tmpdir(), "weft-cni-install-"));
  const bin = join(root, "bin");
  const conf = join(root, "net.d");
  await Deno.mkdir(bin);
  await Deno.mkdir(conf);
  const binary = join(root, "weft");
  await writeFile(binary, "#!/bin/true\nweft binary\n");
  return {
    root,
    bin,
    conf,
    opts: {
      binDir: bin,
      confDir: conf,
      pluginName: "weft-cni",
      binary,
      socket: "/var/run/weft/zds.sock",
      waitMs: 0,
    },
  };
}

const BRIDGE = {
  cniVersion: "1.0.0",
  name: "pods",
  plugins: [
    {
      type: "bridge",
      bridge: "cni0",
      ipam: { type: "host-local", subnet: "10.244.1.0/24" },
    },
    { type: "portmap", capabilities: { portMappings: true } },
  ],
  disableCheck: false,
  "x-vendor": { keep: [1, 2] },
};

async function json(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path, "utf8"));
}

async function withNode(fn: (n: Node) => Promise<void>): Promise<void> {
  const n = await node();
  try {
    await fn(n);
  } finally {
    await rm(n.root, { recursive: true, force: true });
  }
}

Deno.test("cni install: the first conflist by name gets weft chained last, other files untouched", () =>
  withNode(async (n) => {
    await writeFile(join(n.conf, "10-pods.conflist"), JSON.stringify(BRIDGE));
    const other = JSON.stringify({ cniVersion: "1.0.0", name: "later", type: "ptp" });
    await writeFile(join(n.conf, "20-later.conf"), other);
    await writeFile(join(n.conf, "05-notes.txt"), "not a config");
    const r = await installCni(n.opts);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.value.confFile, join(n.conf, "10-pods.conflist"));
    assert.equal(r.value.replaced, 0);
    const got = await json(join(n.conf, "10-pods.conflist"));
    assert.deepEqual(got, {
      ...BRIDGE,
      plugins: [...BRIDGE.plugins, { type: "weft-cni", zdsSocket: "/var/run/weft/zds.sock" }],
    });
    assert.equal(await readFile(join(n.conf, "20-later.conf"), "utf8"), other);
    // The binary, executable, under the plugin's name; no temp files left behind.
    const bin = join(n.bin, "weft-cni");
    assert.equal(await readFile(bin, "utf8"), await readFile(n.opts.binary, "utf8"));
    assert.equal((await stat(bin)).mode & 0o777, 0o755);
    assert.deepEqual((await readdir(n.bin)).sort(), ["weft-cni"]);
    assert.deepEqual((await readdir(n.conf)).sort(), [
      "05-notes.txt",
      "10-pods.conflist",
      "20-later.conf",
    ]);
  }));

Deno.test("cni install: idempotent; a new socket replaces weft's entry, never duplicates it", () =>
  withNode(async (n) => {
    const path = join(n.conf, "10-pods.conflist");
    await writeFile(path, JSON.stringify(BRIDGE));
    const first = await installCni(n.opts);
    assert.ok(first.ok && first.value.written);
    const text = await readFile(path, "utf8");
    const again = await installCni(n.opts);
    assert.ok(again.ok);
    assert.equal(again.value.written, false, "same entry: nothing rewritten");
    assert.equal(again.value.replaced, 1);
    assert.equal(await readFile(path, "utf8"), text);
    const moved = await installCni({ ...n.opts, socket: "/run/weft2/zds.sock" });
    assert.ok(moved.ok && moved.value.written);
    const plugins = (await json(path)).plugins as { type: string; zdsSocket?: string }[];
    assert.deepEqual(plugins.map((p) => p.type), ["bridge", "portmap", "weft-cni"]);
    assert.equal(plugins[2]!.zdsSocket, "/run/weft2/zds.sock");
  }));

Deno.test("cni install: a single .conf becomes a .conflist holding it unchanged; mode kept", () =>
  withNode(async (n) => {
    const conf = {
      cniVersion: "0.4.0",
      name: "bridge-net",
      type: "bridge",
      ipam: { type: "host-local", ranges: [[{ subnet: "10.1.0.0/16" }]] },
      unknownField: true,
    };
    await writeFile(join(n.conf, "10-bridge.conf"), JSON.stringify(conf), { mode: 0o600 });
    await Deno.chmod(join(n.conf, "10-bridge.conf"), 0o600);
    const r = await installCni(n.opts);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.value.convertedFrom, join(n.conf, "10-bridge.conf"));
    assert.deepEqual(await readdir(n.conf), ["10-bridge.conflist"]);
    assert.equal(primaryConfFile(await readdir(n.conf)), "10-bridge.conflist");
    const path = join(n.conf, "10-bridge.conflist");
    assert.deepEqual(await json(path), {
      cniVersion: "0.4.0",
      name: "bridge-net",
      plugins: [conf, { type: "weft-cni", zdsSocket: "/var/run/weft/zds.sock" }],
    });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    // Re-running finds the converted list first and leaves it as it is.
    const again = await installCni(n.opts);
    assert.ok(again.ok && !again.value.written && again.value.convertedFrom === undefined);
  }));

Deno.test("cni uninstall: weft's entry out of every config, then the binary; others kept", () =>
  withNode(async (n) => {
    await writeFile(join(n.conf, "10-pods.conflist"), JSON.stringify(BRIDGE));
    assert.ok((await installCni(n.opts)).ok);
    const r = await uninstallCni(n.opts);
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.value, {
      confFiles: [join(n.conf, "10-pods.conflist")],
      binaryRemoved: true,
    });
    assert.deepEqual(await json(join(n.conf, "10-pods.conflist")), BRIDGE);
    assert.deepEqual(await readdir(n.bin), []);
    // Twice is fine: nothing left to do.
    const again = await uninstallCni(n.opts);
    assert.ok(again.ok);
    assert.deepEqual(again.value, { confFiles: [], binaryRemoved: false });
  }));

Deno.test("cni install: bad JSON, bad shapes and an unsupported cniVersion, each with its path", () =>
  withNode(async (n) => {
    const path = join(n.conf, "10-pods.conflist");
    await writeFile(path, "{ not json");
    let r = await installCni(n.opts);
    assert.ok(!r.ok);
    assert.match(r.problems[0]!, /10-pods\.conflist: not valid JSON/);
    assert.equal(await readFile(path, "utf8"), "{ not json", "a bad file is left alone");
    await writeFile(path, JSON.stringify({ cniVersion: "1.1.0", plugins: [{ type: "" }, 3] }));
    r = await installCni(n.opts);
    assert.ok(!r.ok);
    const all = r.problems.join("\n");
    assert.match(all, /10-pods\.conflist: name: must be a non-empty string/);
    assert.match(
      all,
      /cniVersion: weft's plugin supports 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, got "1\.1\.0"/,
    );
    assert.match(all, /plugins\[0\]\.type: must be a non-empty string/);
    assert.match(all, /plugins\[1\]: must be an object/);
    await writeFile(path, JSON.stringify({ ...BRIDGE, plugins: [{ type: "weft-cni" }] }));
    r = await installCni(n.opts);
    assert.ok(!r.ok);
    assert.match(r.problems[0]!, /no primary plugin to chain after/);
    // Uninstall reports a file it cannot read and keeps the binary.
    await writeFile(path, "[");
    const u = await uninstallCni(n.opts);
    assert.ok(!u.ok);
    assert.match(u.problems[0]!, /10-pods\.conflist: not valid JSON/);
    assert.deepEqual(await readdir(n.bin), ["weft-cni"]);
  }));

Deno.test("cni install: missing dirs, relative paths, a bad name and a missing binary, all reported", () =>
  withNode(async (n) => {
    const r = await installCni({
      ...n.opts,
      binDir: join(n.root, "nope-bin"),
      confDir: "relative/net.d",
      pluginName: "../evil",
      binary: join(n.root, "missing"),
      socket: "zds.sock",
    });
    assert.ok(!r.ok);
    assert.equal(r.problems.length, 5, r.problems.join("\n"));
    const all = r.problems.join("\n");
    assert.match(all, /--cni-bin-dir .*nope-bin: .*\(mount the host's directory here\)/);
    assert.match(all, /--cni-conf-dir relative\/net\.d: must be an absolute path/);
    assert.match(all, /--name \.\.\/evil: must be a file name/);
    assert.match(all, /--binary .*missing: /);
    assert.match(all, /--socket zds\.sock: must be an absolute path/);
    const u = await uninstallCni({ ...n.opts, confDir: join(n.root, "gone") });
    assert.ok(!u.ok);
    assert.match(u.problems[0]!, /--cni-conf-dir .*gone: /);
  }));

Deno.test("cni install: waits (bounded) for the primary config, then fails clearly without one", () =>
  withNode(async (n) => {
    let waited = 0;
    const none = await installCni({ ...n.opts, waitMs: 150, pollMs: 20, onWait: () => waited++ });
    assert.ok(!none.ok);
    assert.match(
      none.problems[0]!,
      /net\.d: no CNI network config \(\.conf, \.conflist, \.json\) after 150 ms/,
    );
    assert.equal(waited, 1);
    // The primary plugin's config appears while the installer waits.
    const late = installCni({ ...n.opts, waitMs: 10_000, pollMs: 20 });
    await new Promise((r) => setTimeout(r, 60));
    await writeFile(join(n.conf, "10-pods.conflist"), JSON.stringify(BRIDGE));
    const r = await late;
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.value.confFile, join(n.conf, "10-pods.conflist"));
  }));

Deno.test("cni install: refuses to convert a .conf over an existing .conflist of the same name", () =>
  withNode(async (n) => {
    await writeFile(
      join(n.conf, "10-a.conf"),
      JSON.stringify({ cniVersion: "1.0.0", name: "a", type: "ptp" }),
    );
    await writeFile(join(n.conf, "10-a.conflist"), JSON.stringify(BRIDGE));
    const r = await installCni(n.opts);
    assert.ok(!r.ok);
    assert.match(
      r.problems[0]!,
      /10-a\.conf: cannot convert to .*10-a\.conflist: that file exists/,
    );
  }));
