/**
 * Builds the import object from the module's declared imports: weft's implementation where one
 * exists, otherwise a stub answering UNIMPLEMENTED (12) — NOSYS (52) for WASI — so a module never
 * fails to load for a missing import (the APISIX failure mode). The stubs are listed once per
 * plugin load by the filter.
 */
import { Status, WasiErrno } from "./abi.ts";
import { coreFunctions } from "./env_core.ts";
import { emscriptenFunctions } from "./env_emscripten.ts";
import { headerFunctions } from "./env_headers.ts";
import { serviceFunctions } from "./env_services.ts";
import type { FunctionImport, ValType } from "./module_info.ts";
import type { ProxyWasmVm } from "./vm.ts";
import { wasiFunctions } from "./wasi.ts";
import { SANDBOX_CHECK_NAME, SANDBOX_IMPORT_MODULE } from "../sandbox/instrument.ts";

// deno-lint-ignore no-explicit-any
type AnyFn = (...a: any[]) => any;

const WASI_MODULES = new Set(["wasi_snapshot_preview1", "wasi_unstable"]);

function stub(results: readonly ValType[], code: number): AnyFn {
  const r = results[0];
  if (r === undefined) return () => undefined;
  if (r === "i64") return () => BigInt(code);
  return () => code;
}

export function buildImports(
  vm: ProxyWasmVm,
  declared: readonly FunctionImport[],
): { imports: WebAssembly.Imports; unimplemented: string[] } {
  // Tables are built lazily: a module importing no WASI gets no WASI closures.
  let env: Record<string, AnyFn> | undefined;
  let wasi: Record<string, AnyFn> | undefined;
  const imports: Record<string, Record<string, AnyFn>> = {};
  const unimplemented: string[] = [];
  for (const imp of declared) {
    let impl: AnyFn | undefined;
    const isWasi = WASI_MODULES.has(imp.module);
    if (imp.module === "env") {
      env ??= {
        ...emscriptenFunctions(vm),
        ...coreFunctions(vm),
        ...headerFunctions(vm),
        ...serviceFunctions(vm),
      };
      impl = env[imp.name];
    } else if (imp.module === SANDBOX_IMPORT_MODULE && imp.name === SANDBOX_CHECK_NAME) {
      impl = vm.sandboxCheck;
    } else if (isWasi) {
      wasi ??= wasiFunctions(vm);
      impl = wasi[imp.name];
    }
    if (!impl) {
      unimplemented.push(`${imp.module}.${imp.name}`);
      impl = stub(imp.results, isWasi ? WasiErrno.NOSYS : Status.UNIMPLEMENTED);
    }
    (imports[imp.module] ??= {})[imp.name] = impl;
  }
  return { imports, unimplemented };
}
