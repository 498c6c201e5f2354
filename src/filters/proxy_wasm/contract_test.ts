/** The shared HttpFilter contract (tests/support/filter_contract.ts) run on proxy-wasm filters
 * built from source: c-add-header sets the header, the C test filter denies and traps by path. */
import { filterContract } from "../../../tests/support/filter_contract.ts";
import { plugins, ref, testFilter } from "../../../tests/support/proxy_wasm_kit.ts";
import { createProxyWasmFilter } from "./mod.ts";

const built = await plugins();
const testWasm = await testFilter();

filterContract("proxy-wasm", {
  headerSetter: () =>
    createProxyWasmFilter(
      ref("contract-header", built.cAddHeader, { name: "x-contract", value: "yes" }),
    ),
  denier: () => createProxyWasmFilter(ref("contract-deny", testWasm, {})),
  trapper: () => createProxyWasmFilter(ref("contract-trap", testWasm, {})),
});
