// The JS binding conventions of componentize-qjs guests (wasm/README.md), one path each:
// u64 are Numbers (a BigInt traps), enums are kebab-case strings, variants are {tag, val} with
// kebab-case tags. The wrong spellings trap ("unreachable"), which the test shows.
import { counterAdd, nowNs, setHeader } from "weft:filter/host@0.1.0";
import { getProperty } from "weft:filter/host@0.1.0";

export const handler = {
  configure(_config) {},
  onRequestHeaders() {
    const path = getProperty("request.path");
    setHeader("request-headers", "x-now-ns-type", typeof nowNs());
    if (path === "/u64-number") counterAdd("calls", 1);
    if (path === "/u64-bigint") counterAdd("calls", 1n); // traps
    if (path === "/enum-camel") setHeader("requestHeaders", "x", "y"); // traps
    if (path === "/tag-capital") return { tag: "Continue" }; // traps
    if (path === "/delay") return { tag: "delay", val: 5 };
    return { tag: "continue" };
  },
  onResponseHeaders() {
    return { tag: "continue" };
  },
};
