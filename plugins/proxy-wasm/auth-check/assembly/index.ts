// auth-check: answers 403 locally, with a body, unless the request carries the configured header
// with the configured value ({"header": "x-api-key", "value": "...", "body": "..."}).
export * from "@solo-io/proxy-runtime/proxy";
import {
  BufferTypeValues,
  Context,
  FilterHeadersStatusValues,
  get_buffer_bytes,
  GrpcStatusValues,
  HeaderPair,
  Headers,
  registerRootContext,
  RootContext,
  send_local_response,
  stream_context,
} from "@solo-io/proxy-runtime/runtime";
import { jsonString } from "../../common/config";

class AuthCheckRoot extends RootContext {
  header: string = "x-api-key";
  expected: string = "";
  body: string = "forbidden by auth-check\n";

  onConfigure(configuration_size: u32): bool {
    const bytes = get_buffer_bytes(
      BufferTypeValues.PluginConfiguration,
      0,
      configuration_size,
    );
    const json = String.UTF8.decode(bytes);
    this.header = jsonString(json, "header", this.header);
    this.expected = jsonString(json, "value", this.expected);
    this.body = jsonString(json, "body", this.body);
    // An empty expected value would let any request through: refuse the configuration.
    return this.expected.length > 0;
  }

  createContext(context_id: u32): Context {
    return new AuthCheck(context_id, this);
  }
}

class AuthCheck extends Context {
  root: AuthCheckRoot;
  constructor(context_id: u32, root: AuthCheckRoot) {
    super(context_id, root);
    this.root = root;
  }
  onRequestHeaders(
    _headers: u32,
    _end_of_stream: bool,
  ): FilterHeadersStatusValues {
    const got = stream_context.headers.request.get(this.root.header);
    if (got == this.root.expected) return FilterHeadersStatusValues.Continue;
    const headers: Headers = [];
    headers.push(
      new HeaderPair(
        String.UTF8.encode("content-type"),
        String.UTF8.encode("text/plain"),
      ),
    );
    const reason = got.length == 0 ? "auth_check_missing_header" : "auth_check_wrong_value";
    send_local_response(
      403,
      reason,
      String.UTF8.encode(this.root.body),
      headers,
      GrpcStatusValues.InvalidCode,
    );
    return FilterHeadersStatusValues.StopIteration;
  }
}

registerRootContext((context_id: u32) => {
  return new AuthCheckRoot(context_id);
}, "auth-check");
