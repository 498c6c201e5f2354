// add-header: adds one request header and one response header, name and value taken from the
// WasmPlugin pluginConfig ({"name": "...", "value": "..."}), and counts requests in a metric.
export * from "@solo-io/proxy-runtime/proxy";
import {
  BufferTypeValues,
  Context,
  Counter,
  FilterHeadersStatusValues,
  get_buffer_bytes,
  registerRootContext,
  RootContext,
  stream_context,
} from "@solo-io/proxy-runtime/runtime";
import { jsonString } from "../../common/config";

class AddHeaderRoot extends RootContext {
  headerName: string = "x-weft-add-header";
  headerValue: string = "on";
  requests: Counter = new Counter("weft_add_header_requests_total");

  // The SDK's onConfigure passes the config size where a pointer belongs; read it ourselves.
  onConfigure(configuration_size: u32): bool {
    const bytes = get_buffer_bytes(
      BufferTypeValues.PluginConfiguration,
      0,
      configuration_size,
    );
    const json = String.UTF8.decode(bytes);
    this.headerName = jsonString(json, "name", this.headerName);
    this.headerValue = jsonString(json, "value", this.headerValue);
    return this.headerName.length > 0;
  }

  createContext(context_id: u32): Context {
    return new AddHeader(context_id, this);
  }
}

class AddHeader extends Context {
  root: AddHeaderRoot;
  constructor(context_id: u32, root: AddHeaderRoot) {
    super(context_id, root);
    this.root = root;
  }
  onRequestHeaders(
    _headers: u32,
    _end_of_stream: bool,
  ): FilterHeadersStatusValues {
    stream_context.headers.request.add(
      this.root.headerName,
      this.root.headerValue,
    );
    this.root.requests.increment(1);
    return FilterHeadersStatusValues.Continue;
  }
  onResponseHeaders(
    _headers: u32,
    _end_of_stream: bool,
  ): FilterHeadersStatusValues {
    stream_context.headers.response.add(
      this.root.headerName,
      this.root.headerValue,
    );
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => {
  return new AddHeaderRoot(context_id);
}, "add-header");
