/** VirtualService `headers`: Envoy's rules on names, istiod's host mapping, the route's ops and
 * its destinations' as the data path gets them. */
import assert from "node:assert/strict";
import { Checker, parseVirtualService, Problems, routePolicies } from "./mod.ts";

function parse(headers: unknown, destHeaders?: unknown) {
  const problems = new Problems();
  const vs = parseVirtualService(new Checker(problems), {
    metadata: { name: "r", namespace: "default" },
    spec: {
      hosts: ["echo"],
      http: [{
        headers,
        route: [{ destination: { host: "echo", subset: "v1" }, headers: destHeaders }],
      }],
    },
  });
  return { vs, problems: problems.list };
}

Deno.test("headers: set/add/remove become the route's and the destination's ops", () => {
  const { vs, problems } = parse(
    {
      request: { set: { "X-A": "1", host: "h.example" }, add: { "x-b": "2" }, remove: ["X-C"] },
      response: { set: { "x-r": "r" } },
    },
    { response: { remove: ["x-d"] }, request: { set: { ":authority": "d.example" } } },
  );
  assert.deepEqual(problems, []);
  const [p] = routePolicies(vs.http)!;
  assert.deepEqual(p!.rewrite, { authority: "h.example" }, "host → the route's authority rewrite");
  assert.deepEqual(p!.headers, {
    request: { remove: ["x-c"], set: [["x-a", "1"]], add: [["x-b", "2"]] },
    response: { set: [["x-r", "r"]] },
    destinations: [{
      service: "echo",
      subset: "v1",
      response: { remove: ["x-d"] },
      authority: "d.example",
    }],
    single: true,
  });
});

Deno.test("headers: pseudo-headers, host removal, bad names and values are refused with paths", () => {
  const { problems } = parse({
    request: {
      set: { ":path": "/x", "bad name": "v", "x-v": "a\r\nb", "x-f": "%START_TIME%" },
      remove: ["host"],
    },
    response: { add: { host: "h" }, remove: [":status"] },
  });
  const at = (p: string) => problems.some((x) => x.includes(`spec.http[0].headers.${p}`));
  for (
    const p of ["request.set.:path", "request.set.bad name", "request.set.x-v", "request.set.x-f"]
  ) {
    assert(at(p), `${p}: ${problems}`);
  }
  for (const p of ["request.remove[0]", "response.add.host", "response.remove[0]"]) {
    assert(at(p), `${p}: ${problems}`);
  }
  assert.equal(problems.length, 7, problems.join("\n"));
});

Deno.test("headers: a route without them keeps no header work", () => {
  const { vs } = parse(undefined);
  const [p] = routePolicies(vs.http)!;
  assert.equal(p!.headers, undefined);
});
