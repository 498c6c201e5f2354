import { assertEquals, assertThrows } from "../../../tests/support/assert.ts";
import { emscriptenFunctions } from "./env_emscripten.ts";
import type { ProxyWasmVm } from "./vm.ts";

Deno.test("emscripten stubs: pthread_equal is nonzero iff equal; abort traps", () => {
  const f = emscriptenFunctions({} as ProxyWasmVm);
  assertEquals(f["pthread_equal"]!(5, 5), 1);
  assertEquals(f["pthread_equal"]!(5, 6), 0);
  assertEquals(f["pthread_equal"]!(f["pthread_self"]!(), f["pthread_self"]!()), 1);
  assertEquals(f["emscripten_resize_heap"]!(1 << 30), 0, "growth only through the sandbox");
  assertThrows(() => f["abort"]!(), /abort/);
});
