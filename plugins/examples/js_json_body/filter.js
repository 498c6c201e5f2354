// js_json_body: a weft:filter@0.2.0 body filter in JavaScript (componentize-qjs).
// Buffered request: the body must be a JSON object (else a local 400); "password" becomes "***"
// and "checkedBy": "weft" is added. Buffered response: "token" becomes "***".
// Conventions (wasm/README.md): enums are kebab-case strings, variants {tag, val}.

// QuickJS has no TextDecoder/TextEncoder: convert UTF-8 by hand.
const decode = (bytes) => decodeURIComponent(escape(String.fromCharCode(...bytes)));
const encode = (s) => Uint8Array.from(unescape(encodeURIComponent(s)), (c) => c.charCodeAt(0));

export const handler = {
  configure(_config) {
    return { request: "buffered", response: "buffered" };
  },
  onRequestHeaders() {
    return { tag: "continue" };
  },
  onRequestBody(body, _endOfStream) {
    let doc;
    try {
      doc = JSON.parse(decode(body));
    } catch {
      doc = undefined;
    }
    if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
      const reply = encode("expected a JSON object\n");
      return {
        tag: "respond",
        val: { status: 400, headers: [], body: reply, details: "json_body_rejected" },
      };
    }
    if ("password" in doc) doc.password = "***";
    doc.checkedBy = "weft";
    return { tag: "replace", val: encode(JSON.stringify(doc)) };
  },
  onResponseHeaders() {
    return { tag: "continue" };
  },
  onResponseBody(body, _endOfStream) {
    let doc;
    try {
      doc = JSON.parse(decode(body));
    } catch {
      return { tag: "continue" };
    }
    if (doc && typeof doc === "object" && "token" in doc) {
      doc.token = "***";
      return { tag: "replace", val: encode(JSON.stringify(doc)) };
    }
    return { tag: "continue" };
  },
};
