import * as grpc from "@grpc/grpc-js";
const t0 = performance.now();
const server = new grpc.Server();
const ident = (b: Buffer) => b;
server.addService({
  Echo: { path: "/t.T/Echo", requestStream: true, responseStream: true, requestSerialize: ident, requestDeserialize: ident, responseSerialize: ident, responseDeserialize: ident },
} as grpc.ServiceDefinition, {
  Echo: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => { call.on("data", (d: Buffer) => call.write(d)); call.on("end", () => call.end()); },
});
const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => e ? rej(e) : res(p)));
const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
const call = client.makeBidiStreamRequest("/t.T/Echo", ident, ident);
let n = 0; const N = 2000;
const done = new Promise<void>((r) => call.on("data", () => { if (++n === N) r(); }));
const t1 = performance.now();
for (let i = 0; i < N; i++) call.write(Buffer.alloc(100));
await done;
console.log("rtt msgs", N, (performance.now() - t1).toFixed(1), "ms", "setup", (t1 - t0).toFixed(1));
call.end(); client.close();
await new Promise<void>((r) => server.tryShutdown(() => r()));
console.log("closed");
