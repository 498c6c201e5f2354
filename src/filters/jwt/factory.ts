/** The jwt_authn filter's factory: native (no module), config `{jwtRules}` as src/istio parsed
 * them, checked again here because a ref's config is `unknown` to the host. */
import type { FilterRef, HttpFilter } from "../../core/mod.ts";
import { WeftError } from "../../core/mod.ts";
import { Checker, isObj, parseJwtRules, Problems } from "../../istio/mod.ts";
import type { FilterFactory } from "../registry.ts";

const NO_MODULE = new Uint8Array(0);

export function jwtAuthnFactory(): FilterFactory {
  return {
    module(): Promise<Uint8Array> {
      return Promise.resolve(NO_MODULE);
    },
    async create(ref: FilterRef): Promise<HttpFilter> {
      const problems = new Problems();
      const raw = isObj(ref.config) ? ref.config.jwtRules : undefined;
      const rules = parseJwtRules(new Checker(problems), "jwtRules", raw);
      if (!problems.ok) {
        throw new WeftError(
          "filter_config",
          `Cannot load filter ${ref.name}: ${problems.list.join("; ")}`,
        );
      }
      // Loaded with the first RequestAuthentication: a node without one never evaluates it.
      const { JwtAuthnFilter } = await import("./jwt_authn_filter.ts");
      return await JwtAuthnFilter.create(ref.name, ref.failPolicy, rules);
    },
  };
}
