/**
 * The command line of a node agent, against a real process (the binary under WEFT_BIN):
 * `weft version`, config and state paths from flags and env, exit codes, and bad input (missing
 * or unreadable config, unwritable state dir, wrong flag) failing before anything binds.
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { LISTENERS, loopbackBlock, runWeft, startWeft, weftBin } from "./support/weft_proc.ts";

Deno.test("cli: weft version prints version, commit, build date and runtime", async () => {
  const text = await runWeft(["version"]);
  assertEquals(text.code, 0, text.stderr);
  assertMatch(text.stdout, /^weft \d+\.\d+\.\d+ \(commit [0-9a-z-]+.*, (deno|bun) \d/);
  const j = await runWeft(["version", "--json"]);
  const info = JSON.parse(j.stdout) as Record<string, string>;
  assertEquals(Object.keys(info).sort(), ["buildDate", "commit", "kind", "runtime", "version"]);
  if (weftBin()) {
    assertEquals(info.kind, "binary");
    assertMatch(info.commit!, /^[0-9a-f]{7,}/);
    assertMatch(info.buildDate!, /^\d{4}-\d\d-\d\dT/);
    assertMatch(info.runtime!, /^bun /);
  } else assertEquals(info.kind, "source");
});

Deno.test("cli: a wrong flag is a usage error (exit 2) naming the flag", async () => {
  for (
    const [argv, want] of [
      [["run", "--bogus"], /unknown flag --bogus/],
      [["run", "--config"], /--config needs a value/],
      [["validate", "--dev"], /unknown flag --dev/],
      [["run", "--xds", "nope"], /--xds must be "host:port".*, got "nope"/],
      [["nope"], /unknown command/],
    ] as const
  ) {
    const r = await runWeft([...argv]);
    assertEquals(r.code, 2, `${argv.join(" ")}: ${r.stderr}`);
    assertMatch(r.stderr, want);
  }
});

Deno.test("cli: a missing or unreadable config, or an unusable state dir, exits 1 before binding", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weft-cli-" });
  const ip = loopbackBlock();
  try {
    const good = join(dir, "weft.yaml");
    await Deno.writeTextFile(
      good,
      stringify({ listeners: LISTENERS, workloads: [{ name: "w", address: ip(2) }] }),
    );
    const missing = join(dir, "nope.yaml");
    const blocker = join(dir, "a-file");
    await Deno.writeTextFile(blocker, "");
    // A CRL that does not parse (ztunnel's CRL_PATH, or ca.crlFile) stops the start.
    const badCrl = join(dir, "crl.pem");
    await Deno.writeTextFile(badCrl, "not a valid CRL");
    const crlCfg = join(dir, "crl.yaml");
    await Deno.writeTextFile(
      crlCfg,
      stringify({
        listeners: LISTENERS,
        ca: { crlFile: badCrl },
        workloads: [{ name: "w", address: ip(2) }],
      }),
    );
    const state = { WEFT_STATE_DIR: join(dir, "state") };
    const cases: { argv: string[]; env?: Record<string, string>; want: RegExp }[] = [
      { argv: ["run", "--config", missing], want: new RegExp(`${missing}: .*ENOENT`) },
      { argv: ["run"], env: { WEFT_CONFIG: missing }, want: new RegExp(`${missing}: .*ENOENT`) },
      { argv: ["run", "--config", dir], want: new RegExp(`${dir}: .*EISDIR`) },
      { argv: ["validate"], env: { WEFT_CONFIG: missing }, want: new RegExp(missing) },
      {
        argv: ["run", "--config", good],
        env: { ...state, CRL_PATH: badCrl },
        want: new RegExp(`Cannot load CRL file ${badCrl}: CRL 1: `),
      },
      {
        argv: ["run", "--config", crlCfg],
        env: state,
        want: new RegExp(`Cannot load CRL file ${badCrl}: CRL 1: `),
      },
      {
        argv: ["run", "--config", good],
        env: { WEFT_XDS_ADDRESS: "cp:port" },
        want: /WEFT_XDS_ADDRESS must be "host:port".*, got "cp:port"/,
      },
      {
        argv: ["run", "--config", good, "--state-dir", join(blocker, "state")],
        want: new RegExp(`state dir ${join(blocker, "state", "ca")}: .*(ENOTDIR|EEXIST)`),
      },
      {
        argv: ["run", "--config", good],
        env: { WEFT_STATE_DIR: join(blocker, "s") },
        want: new RegExp(`state dir ${join(blocker, "s", "ca")}`),
      },
    ];
    for (const c of cases) {
      const r = await runWeft(c.argv, { env: c.env ?? {} });
      const what = `${c.argv.join(" ")} ${JSON.stringify(c.env ?? {})}`;
      assertEquals(r.code, 1, `${what}: ${r.stderr}`);
      assertMatch(r.stderr, c.want, what);
      // Nothing was bound or started: no listener or readiness log line.
      assert(!/"msg":"(ready|node proxy ready)"/.test(r.stdout + r.stderr), what);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: WEFT_CONFIG and WEFT_STATE_DIR place config and CA; weft_build is exported", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weft-cli-env-" });
  const ip = loopbackBlock();
  const cfg = join(dir, "etc", "weft.yaml");
  await Deno.mkdir(join(dir, "etc"));
  await Deno.writeTextFile(
    cfg,
    stringify({
      node: { name: "env-node" },
      listeners: LISTENERS,
      workloads: [{ name: "w", address: ip(2) }],
    }),
  );
  const state = join(dir, "state");
  const p = await startWeft(["run"], { env: { WEFT_CONFIG: cfg, WEFT_STATE_DIR: state } });
  try {
    const names = [...Deno.readDirSync(join(state, "ca"))].map((e) => e.name);
    assert(names.length > 0, "the dev CA was written under WEFT_STATE_DIR/ca");
    const metrics = await (await fetch(`http://${p.ready.metrics}/stats/prometheus`)).text();
    assertMatch(metrics, /weft_build\{component="weft",tag="[^"]+",commit="[^"]+",runtime="[^"]+"/);
    assertMatch(metrics, /istio_build\{component="weft",tag="[^"]+"\} 1/);
    const dump = await (await fetch(`http://${p.ready.admin}/config_dump`)).json();
    assertEquals(dump.node.name, "env-node");
  } finally {
    assertEquals(await p.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: weft ca init makes the mesh CA once; --client-auth needs --tls and names its modes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weft-ca-init-" });
  try {
    const first = await runWeft(["ca", "init", "--ca-dir", join(dir, "ca")]);
    assertEquals(first.code, 0, first.stderr);
    const pem = await Deno.readTextFile(join(dir, "ca", "ca-cert.pem"));
    assertMatch(pem, /^-----BEGIN CERTIFICATE-----/);
    const again = await runWeft(["ca", "init", "--ca-dir", join(dir, "ca")]);
    assertEquals([again.code, await Deno.readTextFile(join(dir, "ca", "ca-cert.pem"))], [0, pem]);
    for (
      const [argv, re] of [
        [["ca"], /expected "init"/],
        [["control-plane", "--config", "x.yaml", "--client-auth", "token"], /needs --tls/],
        [
          ["control-plane", "--config", "x.yaml", "--tls", "--client-auth", "sso"],
          /mtls, token or jwt/,
        ],
        [
          ["control-plane", "--config", "x.yaml", "--tls", "--client-auth", "jwt", "--jwks", "k"],
          /jwt needs --jwt-issuer/,
        ],
        [
          ["control-plane", "--config", "x.yaml", "--tls", "--jwks", "k"],
          /needs --client-auth jwt/,
        ],
      ] as const
    ) {
      const r = await runWeft([...argv]);
      assertEquals(r.code, 2, r.stderr);
      assertMatch(r.stderr, re);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Only the compiled binary (WEFT_BIN, `deno task test:binary`) autoloads from its working directory.
Deno.test("cli: the binary ignores a .env and a bunfig.toml in its working directory", {
  ignore: !weftBin(),
}, async () => {
  const bin = weftBin()!;
  const dir = await Deno.makeTempDir({ prefix: "weft-cwd-" });
  try {
    const marker = join(dir, "preload-ran");
    await Deno.writeTextFile(join(dir, ".env"), "WEFT_CONFIG=/nonexistent/from-dotenv.yaml\n");
    await Deno.writeTextFile(
      join(dir, "evil.js"),
      `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "ran");\n`,
    );
    await Deno.writeTextFile(join(dir, "bunfig.toml"), `preload = ["./evil.js"]\n`);
    const r = await new Deno.Command(bin, {
      args: ["validate"],
      cwd: dir,
      env: {},
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).output();
    const err = new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout);
    // validate ran without a file (usage error), not on the .env's WEFT_CONFIG.
    assertMatch(err, /validate|config/i);
    assert(!err.includes("from-dotenv"), err);
    let ran = true;
    try {
      await Deno.stat(marker);
    } catch {
      ran = false;
    }
    assertEquals(ran, false, "bunfig.toml's preload ran inside the weft binary");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
