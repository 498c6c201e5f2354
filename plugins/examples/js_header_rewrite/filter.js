// Example: a header-rewrite filter in JavaScript (componentize-qjs, see wasm/README.md).
// Config {"header": "<name>", "value": "<value>"} sets that request header (default
// x-js-filter: js); /deny answers 403 locally; /trap throws (the host sees a trap).
import { getProperty, setHeader } from "weft:filter/host@0.1.0";

// QuickJS has no TextDecoder/TextEncoder: convert UTF-8 by hand.
const utf8Decode = (bytes) => decodeURIComponent(escape(String.fromCharCode(...bytes)));
const utf8Encode = (s) => Uint8Array.from(unescape(encodeURIComponent(s)), (c) => c.charCodeAt(0));

let header = "x-js-filter";
let value = "js";

export const handler = {
  configure(config) {
    const cfg = JSON.parse(utf8Decode(config) || "{}");
    if (cfg.value !== undefined && typeof cfg.value !== "string") {
      throw "config.value: must be a string";
    }
    header = cfg.header ?? header;
    value = cfg.value ?? value;
  },
  onRequestHeaders() {
    const path = getProperty("request.path");
    if (path === "/deny") {
      const body = utf8Encode("denied by js\n");
      return { tag: "respond", val: { status: 403, headers: [], body, details: "js_denied" } };
    }
    if (path === "/trap") throw new Error("trap requested");
    setHeader("request-headers", header, value);
    return { tag: "continue" };
  },
  onResponseHeaders() {
    return { tag: "continue" };
  },
};
