/**
 * `weft plugin new <name> --lang c|js`: writes a minimal, buildable filter into `<dir>/<name>/`
 * (plugin.json, source, README with build and test steps). The lead wires the CLI to this.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { WeftError } from "../core/mod.ts";

export type PluginLang = "c" | "js";

const C_SOURCE =
  `/* __NAME__: a weft filter (world weft:filter/http-filter@0.1.0, C SDK in wasm/sdk/c). */
#include "weft_filter.h"

int weft_configure(weft_str config, weft_str *error) {
  (void)config; /* JSON text of the FilterRef's config */
  (void)error;
  return 0;
}

weft_action weft_on_request_headers(void) {
  weft_str path;
  if (weft_get_property("request.path", &path) && weft_str_eq(path, "/__NAME__/deny")) {
    return weft_respond(403, "denied by __NAME__\\n", "__NAME___denied");
  }
  weft_set_header(WEFT_REQUEST_HEADERS, "x-__NAME__", "1");
  return weft_continue();
}

weft_action weft_on_response_headers(void) { return weft_continue(); }
`;

const JS_SOURCE =
  `// __NAME__: a weft filter in JavaScript (world weft:filter/http-filter@0.1.0, componentize-qjs).
import { getProperty, setHeader } from "weft:filter/host@0.1.0";

// QuickJS has no TextEncoder: ASCII bytes by hand.
const ascii = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));

export const handler = {
  configure(_config) {},
  onRequestHeaders() {
    if (getProperty("request.path") === "/__NAME__/deny") {
      const body = ascii("denied by __NAME__\\n");
      return { tag: "respond", val: { status: 403, headers: [], body, details: "__NAME___denied" } };
    }
    setHeader("request-headers", "x-__NAME__", "1");
    return { tag: "continue" };
  },
  onResponseHeaders() {
    return { tag: "continue" };
  },
};
`;

const README = `# __NAME__

A weft L7 filter (\`weft:filter@0.1.0\`, see wasm/README.md for the contract and the C/JS binding
conventions).

## Build

\`\`\`sh
weft plugin build __ROOT__      # → __ROOT__/build/__NAME__.wasm (cached by source hash;
                                # in a weft checkout: deno task plugin:build __ROOT__)
\`\`\`

## Wire it in

A filter runs for a service: add it to that service's \`plugins\` in weft.yaml (Istio WasmPlugin
vocabulary; \`url\` may also be a plain path or https://):

\`\`\`yaml
services:
  - name: echo
    ports: [{ port: 8080, protocol: HTTP }]
    plugins:
      - name: __NAME__
        type: component          # proxy-wasm for Envoy/Istio proxy-wasm modules
        url: file://__ROOT__/build/__NAME__.wasm
        direction: inbound       # inbound: requests to the service's local workloads; outbound: calls to it
        phase: UNSPECIFIED       # AUTHN | AUTHZ | STATS | UNSPECIFIED, then priority (higher first)
        priority: 0
        failStrategy: FAIL_CLOSE # FAIL_OPEN skips the filter when it fails
        pluginConfig: {}         # given to configure() as JSON text
\`\`\`

\`weft validate weft.yaml\` checks it. Plugin names are unique per service and direction; the
same name on another service is another filter with its own config.

## Develop

\`deno task dev\` (or \`weft run --dev\`) reloads the filter when its sources or .wasm change;
requests in flight finish on the old generation.
`;

export function scaffoldPlugin(name: string, lang: PluginLang, dir: string): string {
  if (!/^[a-z][a-z0-9_]*$/.test(name)) {
    throw new WeftError("plugin_name", `Cannot create plugin "${name}": names are [a-z][a-z0-9_]*`);
  }
  if (lang !== "c" && lang !== "js") {
    throw new WeftError("plugin_lang", `Cannot create plugin "${name}": lang must be c or js`);
  }
  const root = join(dir, name);
  if (existsSync(root)) {
    throw new WeftError("plugin_exists", `Cannot create plugin "${name}": ${root} already exists`);
  }
  mkdirSync(root, { recursive: true });
  const file = lang === "c" ? "filter.c" : "filter.js";
  const fill = (s: string): string =>
    s.replaceAll("__ROOT__", resolve(root)).replaceAll("__NAME__", name);
  writeFileSync(
    join(root, "plugin.json"),
    JSON.stringify({ name, lang, sources: [file] }, null, 2) + "\n",
  );
  writeFileSync(join(root, file), fill(lang === "c" ? C_SOURCE : JS_SOURCE));
  writeFileSync(join(root, "README.md"), fill(README));
  return root;
}
