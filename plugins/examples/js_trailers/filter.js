// js_trailers: a weft:filter@0.3.0 trailers filter in JavaScript (componentize-qjs), the same
// behaviour as c_trailers: request trailer "x-checksum: bad" answers 422; otherwise it is copied
// to "x-checked-checksum" and "x-filter: js" is added; response "grpc-status" is copied to
// "x-seen-grpc-status". Conventions (wasm/README.md): enums are kebab-case strings, variants
// {tag, val}.
import { addHeader, getHeader, setHeader } from "weft:filter/host@0.3.0";

const encode = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));

export const handler = {
  configure(_config) {
    return { request: "none", response: "none" };
  },
  onRequestHeaders() {
    return { tag: "continue" };
  },
  onRequestBody(_body, _endOfStream) {
    return { tag: "continue" };
  },
  onRequestTrailers() {
    const sum = getHeader("request-trailers", "x-checksum");
    if (sum === "bad") {
      return {
        tag: "respond",
        val: {
          status: 422,
          headers: [["content-type", "text/plain"]],
          body: encode("bad checksum\n"),
          details: "trailer_checksum_rejected",
        },
      };
    }
    if (sum != null) setHeader("request-trailers", "x-checked-checksum", sum);
    addHeader("request-trailers", "x-filter", "js");
    return { tag: "continue" };
  },
  onResponseHeaders() {
    return { tag: "continue" };
  },
  onResponseBody(_body, _endOfStream) {
    return { tag: "continue" };
  },
  onResponseTrailers() {
    const status = getHeader("response-trailers", "grpc-status");
    if (status != null) setHeader("response-trailers", "x-seen-grpc-status", status);
    addHeader("response-trailers", "x-filter", "js");
    return { tag: "continue" };
  },
};
