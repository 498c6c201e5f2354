/* A proxy-wasm test filter in C, written against the ABI directly (no SDK). The request header
 * `x-test: <mode>` picks what it exercises; results come back as request headers so the host
 * test can assert them. Built by the tests with clang (see proxy_wasm_test_kit.ts). Build with
 * -DABI_V010 for the 0.1.0 flavour (2-arg header callbacks, legacy names). */
#include "proxy_wasm_abi.h"

#ifdef ABI_V010
EXPORT(proxy_abi_version_0_1_0) void abi_marker(void) {}
#else
EXPORT(proxy_abi_version_0_2_1) void abi_marker(void) {}
#endif

IMPORT(proxy_get_log_level) uint32_t proxy_get_log_level(uint32_t *level);
IMPORT(proxy_send_local_response)
uint32_t proxy_send_local_response(uint32_t status, const char *d, size_t dl, const char *b,
                                   size_t bl, const char *h, size_t hl, int32_t grpc);
IMPORT(proxy_continue_stream) uint32_t proxy_continue_stream(uint32_t stream);
IMPORT(proxy_set_effective_context) uint32_t proxy_set_effective_context(uint32_t ctx);
IMPORT(proxy_http_call)
uint32_t proxy_http_call(const char *up, size_t ul, const char *h, size_t hl, const char *b,
                         size_t bl, const char *t, size_t tl, uint32_t timeout, uint32_t *token);
IMPORT(proxy_get_property)
uint32_t proxy_get_property(const char *p, size_t pl, char **v, size_t *vl);
IMPORT(proxy_get_shared_data)
uint32_t proxy_get_shared_data(const char *k, size_t kl, char **v, size_t *vl, uint32_t *cas);
IMPORT(proxy_set_shared_data)
uint32_t proxy_set_shared_data(const char *k, size_t kl, const char *v, size_t vl, uint32_t cas);
IMPORT(proxy_define_metric)
uint32_t proxy_define_metric(uint32_t type, const char *n, size_t nl, uint32_t *id);
IMPORT(proxy_increment_metric) uint32_t proxy_increment_metric(uint32_t id, int64_t delta);
IMPORT(proxy_record_metric) uint32_t proxy_record_metric(uint32_t id, uint64_t value);
IMPORT(proxy_get_metric) uint32_t proxy_get_metric(uint32_t id, uint64_t *value);
IMPORT(proxy_set_tick_period_milliseconds) uint32_t proxy_set_tick_period_milliseconds(uint32_t);
IMPORT(proxy_get_header_map_pairs) uint32_t proxy_get_header_map_pairs(uint32_t, char **, size_t *);
IMPORT(proxy_set_header_map_pairs)
uint32_t proxy_set_header_map_pairs(uint32_t, const char *, size_t);
IMPORT(proxy_remove_header_map_value)
uint32_t proxy_remove_header_map_value(uint32_t, const char *, size_t);
IMPORT(proxy_replace_header_map_value)
uint32_t proxy_replace_header_map_value(uint32_t, const char *, size_t, const char *, size_t);
IMPORT(proxy_set_buffer_bytes)
uint32_t proxy_set_buffer_bytes(uint32_t, uint32_t, uint32_t, const char *, size_t);
IMPORT(proxy_weft_no_such_function) uint32_t proxy_weft_no_such_function(uint32_t);
IMPORT(proxy_grpc_call)
uint32_t proxy_grpc_call(const char *up, size_t ul, const char *sv, size_t sl, const char *m,
                         size_t ml, const char *h, size_t hl, const char *b, size_t bl,
                         uint32_t timeout, uint32_t *token);
IMPORT(proxy_get_status) uint32_t proxy_get_status(uint32_t *code, char **msg, size_t *ml);
IMPORT(proxy_grpc_stream)
uint32_t proxy_grpc_stream(const char *up, size_t ul, const char *sv, size_t sl, const char *m,
                           size_t ml, const char *h, size_t hl, uint32_t *token);
IMPORT(proxy_grpc_send) uint32_t proxy_grpc_send(uint32_t token, const char *b, size_t bl, uint32_t end);
IMPORT(proxy_grpc_close) uint32_t proxy_grpc_close(uint32_t token);
IMPORT(proxy_register_shared_queue)
uint32_t proxy_register_shared_queue(const char *n, size_t nl, uint32_t *id);
IMPORT(proxy_resolve_shared_queue)
uint32_t proxy_resolve_shared_queue(const char *v, size_t vl, const char *n, size_t nl, uint32_t *id);
IMPORT(proxy_enqueue_shared_queue)
uint32_t proxy_enqueue_shared_queue(uint32_t id, const char *v, size_t vl);
IMPORT(proxy_dequeue_shared_queue)
uint32_t proxy_dequeue_shared_queue(uint32_t id, char **v, size_t *vl);
IMPORT(proxy_done) uint32_t proxy_done(void);
IMPORT(proxy_get_buffer_status) uint32_t proxy_get_buffer_status(uint32_t, size_t *, uint32_t *);
#define WASI(mod, name) __attribute__((import_module(mod), import_name(#name)))
WASI("wasi_snapshot_preview1", environ_sizes_get) uint32_t environ_sizes_get(uint32_t *, uint32_t *);
WASI("wasi_snapshot_preview1", environ_get) uint32_t environ_get(char **, char *);
WASI("wasi_snapshot_preview1", fd_write) uint32_t fd_write(uint32_t, const void *, uint32_t, uint32_t *);
WASI("wasi_snapshot_preview1", random_get) uint32_t random_get(void *, uint32_t);
WASI("wasi_unstable", clock_time_get) uint32_t clock_time_get_legacy(uint32_t, uint64_t, uint64_t *);
WASI("wasi_snapshot_preview1", path_open) uint32_t path_open(uint32_t);
#ifdef ABI_V010
IMPORT(proxy_get_configuration) uint32_t proxy_get_configuration(char **p, size_t *l);
#endif

#define S(lit) lit, sizeof lit - 1

#ifdef REACTOR_MAIN_VOID
/* A reactor whose main is __main_void (what newer wasi-libc emits): the host runs
 * _initialize, then __main_void; test_init_steps shows the order (12). */
static uint32_t init_steps;
EXPORT(_initialize) void initialize(void) { init_steps = init_steps * 10 + 1; }
EXPORT(__main_void) int main_void(void) { init_steps = init_steps * 10 + 2; return 0; }
EXPORT(test_init_steps) uint32_t test_init_steps(void) { return init_steps; }
#endif

static char mode[32];
static size_t mode_len;
static uint32_t ticks_metric, tick_count;
static uint32_t pending_token, pending_ctx, pending_response;
static uint32_t deferred_ctx;
/* What proxy_send_local_response answered in on_vm_start (no stream there). */
static uint32_t vm_start_local_status = 99;

static int is(const char *m) { return bytes_eq(mode, mode_len, m, cstrlen(m)); }

static size_t utoa(uint64_t v, char *out) {
  char tmp[24];
  size_t n = 0;
  do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  return n;
}

/* "seq": every HTTP callback logs "seq <callback> <size or count> <end_of_stream>" so a test can
 * assert the exact order Envoy calls them in; body callbacks hold the body
 * (StopIterationAndBuffer) until end of stream, as the Go SDK's http_body example does. */
static void seq(const char *what, size_t wl, uint64_t n, uint32_t eos) {
  char line[64];
  size_t k = 0;
  for (const char *p = "seq "; *p; p++) line[k++] = *p;
  for (size_t i = 0; i < wl && k < 32; i++) line[k++] = what[i];
  line[k++] = ' ';
  k += utoa(n, line + k);
  line[k++] = ' ';
  line[k++] = eos ? '1' : '0';
  proxy_log(LOG_INFO, line, k);
}

static void set_req(const char *k, size_t kl, const char *v, size_t vl) {
  proxy_add_header_map_value(HTTP_REQUEST_HEADERS, k, kl, v, vl);
}

static void set_req_num(const char *k, size_t kl, uint64_t v) {
  char buf[24];
  set_req(k, kl, buf, utoa(v, buf));
}

/* Property value into a request header; integers (8 bytes) printed in decimal when asked. */
static void prop(const char *path, size_t pl, const char *hdr, size_t hl, int as_int) {
  char *v = 0;
  size_t vl = 0;
  uint32_t st = proxy_get_property(path, pl, &v, &vl);
  if (st != OK) { set_req_num(hdr, hl, 1000 + st); return; }
  if (as_int) set_req_num(hdr, hl, vl == 8 ? *(uint64_t *)v : vl == 1 ? (uint8_t)v[0] : 999);
  else set_req(hdr, hl, v, vl);
}

EXPORT(proxy_on_context_create) void on_context_create(uint32_t ctx, uint32_t parent) {
  (void)ctx; (void)parent;
}

EXPORT(proxy_on_vm_start) uint32_t on_vm_start(uint32_t ctx, uint32_t size) {
  (void)ctx;
  vm_start_local_status = proxy_send_local_response(500, S("vm_start"), S("no stream"), 0, 0, -1);
#ifndef ABI_V010
  char *cfg = 0;
  size_t len = 0;
  /* A VM configuration starting with 'r' ("reject") refuses the VM. */
  if (size && proxy_get_buffer_bytes(VM_CONFIGURATION, 0, size, &cfg, &len) == OK && len && cfg[0] == 'r')
    return 0;
  /* "trap": die during VM start (the import report must already be out). */
  if (len && cfg[0] == 't') __builtin_trap();
  /* "loop": never return from VM start (the start-up budget must stop it). */
  if (len && cfg[0] == 'l') for (volatile int i = 0;; i++) {}
#else
  (void)size;
#endif
  return 1;
}

EXPORT(proxy_on_configure) uint32_t on_configure(uint32_t ctx, uint32_t size) {
  (void)ctx;
  arena_reset();
  char *cfg = 0;
  size_t len = 0;
#ifdef ABI_V010
  if (size && proxy_get_configuration(&cfg, &len) != OK) return 0;
#else
  if (size && proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, size, &cfg, &len) != OK) return 0;
#endif
  char flag[16];
  if (json_string(cfg, len, "reject", flag, sizeof flag)) return 0;
  if (json_string(cfg, len, "tick", flag, sizeof flag)) {
    proxy_define_metric(METRIC_COUNTER, S("test_filter_ticks_total"), &ticks_metric);
    proxy_set_tick_period_milliseconds(1);
  }
  return 1;
}

EXPORT(proxy_on_tick) void on_tick(uint32_t ctx) {
  (void)ctx;
  proxy_increment_metric(ticks_metric, 1);
  if (++tick_count >= 3) proxy_set_tick_period_milliseconds(0);
}

/* Shared queues across VMs: "queue-owner" registers "q" (this VM is woken by on_queue_ready),
 * "queue-send" resolves it by this plugin's vm_id and enqueues, "queue-last" shows what the
 * owner dequeued; "shared-read" reads key "k" written by any VM of the same vm_id. */
static char last_item[32];
static size_t last_len;

EXPORT(proxy_on_queue_ready) void on_queue_ready(uint32_t root, uint32_t id) {
  (void)root;
  char *v = 0;
  size_t vl = 0;
  if (proxy_dequeue_shared_queue(id, &v, &vl) != OK) return;
  last_len = vl < sizeof last_item ? vl : sizeof last_item;
  for (size_t i = 0; i < last_len; i++) last_item[i] = v[i];
}

/* gRPC: "grpc" calls test.Echo/Say on cluster "grpc" with metadata x-md: v and waits (a 10 s
 * deadline: the first call on a loaded box spends seconds connecting);
 * "grpc-nowhere" names an undeclared cluster (PARSE_FAILURE). The reply becomes x-grpc-* request
 * headers, then the request continues. */
static uint32_t grpc_ctx, grpc_token, grpc_md_count;
static char grpc_msg[64];
static size_t grpc_msg_len;

static uint32_t grpc_start(uint32_t ctx, int nowhere) {
  static const char md[] = "\x01\0\0\0" "\x04\0\0\0\x01\0\0\0" "x-md\0v\0";
  uint32_t st = nowhere
    ? proxy_grpc_call(S("nowhere"), S("test.Echo"), S("Say"), md, sizeof md - 1, S("ping"), 10000, &grpc_token)
    : proxy_grpc_call(S("grpc"), S("test.Echo"), S("Say"), md, sizeof md - 1, S("ping"), 10000, &grpc_token);
  if (st != OK) {
    set_req_num(S("x-grpc-call-status"), st);
    return CONTINUE;
  }
  grpc_ctx = ctx;
  grpc_md_count = 0;
  grpc_msg_len = 0;
  return PAUSE;
}

/* "grpc-stream": a stream to test.Echo/Chat; sends "a", then "b" with end_of_stream, and a third
 * send after the end (refused); every reply is appended to x-grpc-message, comma separated.
 * "grpc-stream-close": sends "a" then half-closes with proxy_grpc_close. */
static uint32_t grpc_stream_start(uint32_t ctx) {
  static const char md[] = "\x01\0\0\0" "\x04\0\0\0\x01\0\0\0" "x-md\0v\0";
  uint32_t st = proxy_grpc_stream(S("grpc"), S("test.Echo"), S("Chat"), md, sizeof md - 1, &grpc_token);
  if (st != OK) {
    set_req_num(S("x-grpc-call-status"), st);
    return CONTINUE;
  }
  grpc_ctx = ctx;
  grpc_md_count = 0;
  grpc_msg_len = 0;
  set_req_num(S("x-grpc-send-1"), proxy_grpc_send(grpc_token, S("a"), 0));
  if (is("grpc-stream-close")) {
    set_req_num(S("x-grpc-close"), proxy_grpc_close(grpc_token));
  } else {
    set_req_num(S("x-grpc-send-2"), proxy_grpc_send(grpc_token, S("b"), 1));
    set_req_num(S("x-grpc-send-3"), proxy_grpc_send(grpc_token, S("c"), 0));
  }
  return PAUSE;
}

EXPORT(proxy_on_grpc_receive_initial_metadata)
void on_grpc_initial(uint32_t root, uint32_t token, uint32_t n) {
  (void)root;
  if (token == grpc_token) grpc_md_count = n;
}

static uint32_t grpc_deliveries;
EXPORT(test_grpc_deliveries) uint32_t test_grpc_deliveries(void) { return grpc_deliveries; }
EXPORT(proxy_on_grpc_receive) void on_grpc_receive(uint32_t root, uint32_t token, uint32_t size) {
  (void)root;
  grpc_deliveries++;
  if (token != grpc_token) return;
  char *b = 0;
  size_t bl = 0;
  if (proxy_get_buffer_bytes(5 /* GRPC_CALL_MESSAGE */, 0, size, &b, &bl) != OK) return;
  if (is("grpc-stream") || is("grpc-stream-close")) { /* append, comma separated */
    if (grpc_msg_len && grpc_msg_len < sizeof grpc_msg) grpc_msg[grpc_msg_len++] = ',';
    for (size_t i = 0; i < bl && grpc_msg_len < sizeof grpc_msg; i++) grpc_msg[grpc_msg_len++] = b[i];
    return;
  }
  grpc_msg_len = bl < sizeof grpc_msg ? bl : sizeof grpc_msg;
  for (size_t i = 0; i < grpc_msg_len; i++) grpc_msg[i] = b[i];
}

EXPORT(proxy_on_grpc_close) void on_grpc_close(uint32_t root, uint32_t token, uint32_t status) {
  (void)root;
  grpc_deliveries++;
  if (token != grpc_token) return;
  proxy_set_effective_context(grpc_ctx);
  uint32_t code = 99;
  char *msg = 0;
  size_t ml = 0;
  proxy_get_status(&code, &msg, &ml);
  set_req_num(S("x-grpc-status"), status);
  set_req_num(S("x-grpc-get-status"), code);
  set_req_num(S("x-grpc-initial-count"), grpc_md_count);
  set_req(S("x-grpc-message"), grpc_msg, grpc_msg_len);
  proxy_continue_stream(STREAM_HTTP_REQUEST);
}

static void queue_modes(void) {
  uint32_t id = 0;
  if (is("queue-owner")) set_req_num(S("x-queue-status"), proxy_register_shared_queue(S("q"), &id));
  if (is("queue-send")) {
    char *vm = 0;
    size_t vml = 0;
    proxy_get_property(S("plugin_vm_id"), &vm, &vml);
    uint32_t st = proxy_resolve_shared_queue(vm, vml, S("q"), &id);
    if (st == OK) st = proxy_enqueue_shared_queue(id, S("hello-from-another-vm"));
    set_req_num(S("x-queue-status"), st);
  }
  if (is("queue-last")) set_req(S("x-queue-last"), last_item, last_len);
  if (is("shared-read")) {
    char *v = 0;
    size_t vl = 0;
    uint32_t cas = 0;
    if (proxy_get_shared_data(S("k"), &v, &vl, &cas) == OK) set_req(S("x-shared-k"), v, vl);
  }
}

static void shared_sequence(void) {
  char *v = 0;
  size_t vl = 0;
  uint32_t cas = 0;
  char out[64];
  size_t n = 0;
  n += utoa(proxy_set_shared_data(S("k"), S("v1"), 0), out + n); out[n++] = ',';
  n += utoa(proxy_get_shared_data(S("k"), &v, &vl, &cas), out + n); out[n++] = ',';
  n += utoa(proxy_set_shared_data(S("k"), S("v2"), cas + 7), out + n); out[n++] = ',';
  n += utoa(proxy_set_shared_data(S("k"), S("v3"), cas), out + n); out[n++] = ',';
  n += utoa(proxy_get_shared_data(S("k"), &v, &vl, &cas), out + n); out[n++] = ',';
  for (size_t i = 0; i < vl; i++) out[n++] = v[i];
  set_req(S("x-shared"), out, n);
}

static void metrics_sequence(void) {
  uint32_t c, g, h;
  uint64_t value = 0;
  proxy_define_metric(METRIC_COUNTER, S("test_filter_requests_total"), &c);
  proxy_define_metric(METRIC_GAUGE, S("test_filter.inflight"), &g);
  proxy_define_metric(METRIC_HISTOGRAM, S("test_filter_latency_ms"), &h);
  proxy_increment_metric(c, 2);
  proxy_record_metric(g, 42);
  proxy_record_metric(h, 7);
  set_req_num(S("x-counter-decrement"), proxy_increment_metric(c, -1));
  proxy_get_metric(g, &value);
  set_req_num(S("x-gauge"), value);
}

static uint32_t callout(uint32_t ctx) {
  static const char hdrs[] = "\x03\0\0\0" "\x07\0\0\0\x04\0\0\0" "\x05\0\0\0\x06\0\0\0"
                             "\x0a\0\0\0\x05\0\0\0"
                             ":method\0POST\0:path\0/check\0:authority\0authz\0";
  char *who = 0;
  size_t wl = 0;
  proxy_get_header_map_value(HTTP_REQUEST_HEADERS, S("x-user"), &who, &wl);
  uint32_t st = proxy_http_call(S("authz"), hdrs, sizeof hdrs - 1, who, wl, 0, 0, 2000,
                                &pending_token);
  if (st != OK) {
    set_req_num(S("x-callout-status"), st);
    return CONTINUE;
  }
  pending_ctx = ctx;
  pending_response = 0;
  return PAUSE;
}

static uint32_t callout_responses;
EXPORT(test_callout_responses) uint32_t test_callout_responses(void) { return callout_responses; }
EXPORT(proxy_on_http_call_response)
void on_http_call_response(uint32_t root, uint32_t token, uint32_t nh, uint32_t bs, uint32_t nt) {
  (void)root; (void)nt;
  callout_responses++;
  if (token != pending_token) return;
  proxy_set_effective_context(pending_ctx);
  char *st = 0, *body = 0;
  size_t sl = 0, bl = 0;
  if (nh == 0) {
    proxy_send_local_response(503, S("callout_failed"), S("callout failed"), 0, 0, -1);
    return;
  }
  proxy_get_header_map_value(HTTP_CALL_RESPONSE_HEADERS, S(":status"), &st, &sl);
  proxy_get_buffer_bytes(HTTP_CALL_RESPONSE_BODY, 0, bs, &body, &bl);
  if (pending_response) {
    proxy_add_header_map_value(HTTP_RESPONSE_HEADERS, S("x-late-authz"), body, bl);
    proxy_continue_stream(STREAM_HTTP_RESPONSE);
    return;
  }
  if (bytes_eq(st, sl, S("200"))) {
    set_req(S("x-authz-body"), body, bl);
    proxy_continue_stream(STREAM_HTTP_REQUEST);
  } else {
    proxy_send_local_response(403, S("callout_denied"), body, bl, 0, 0, -1);
  }
}

static void wasi_sequence(void) {
  uint32_t count = 0, size = 0;
  environ_sizes_get(&count, &size);
  set_req_num(S("x-env-count"), count);
  char *ptrs[4];
  char buf[128];
  if (count > 0 && count <= 4 && size <= sizeof buf && environ_get(ptrs, buf) == 0)
    set_req(S("x-env-first"), ptrs[0], cstrlen(ptrs[0]));
  uint64_t rnd = 0, now = 0;
  set_req_num(S("x-random-status"), random_get(&rnd, sizeof rnd));
  set_req_num(S("x-clock-status"), clock_time_get_legacy(0, 1, &now));
  set_req_num(S("x-clock-after-2020"), now > 1577836800000000000ull);
  struct { const char *p; uint32_t l; } iov = { "hello stdout\n", 13 };
  uint32_t written = 0;
  fd_write(1, &iov, 1, &written);
  set_req_num(S("x-written"), written);
  set_req_num(S("x-path-open"), path_open(0));
}

/* "abuse": host functions called with what an attacker or a buggy guest passes (unknown map and
 * buffer types, pointers past the end of memory, huge lengths, wrong context); the statuses go
 * back comma-separated in x-abuse. */
static void abuse_sequence(void) {
  char out[160];
  size_t k = 0;
  char *p = 0;
  size_t l = 0;
  uint32_t u = 0;
  char *const far = (char *)0xfffffff0u;
  uint32_t st[24];
  size_t n = 0;
  st[n++] = proxy_get_header_map_pairs(99, &p, &l);
  st[n++] = proxy_get_header_map_value(99, S("a"), &p, &l);
  st[n++] = proxy_add_header_map_value(99, S("a"), S("b"));
  st[n++] = proxy_get_buffer_bytes(99, 0, 10, &p, &l);
  st[n++] = proxy_get_buffer_status(99, &l, &u);
  st[n++] = proxy_set_buffer_bytes(99, 0, 0, S("x"));
  st[n++] = proxy_get_header_map_value(HTTP_REQUEST_HEADERS, far, 100, &p, &l);
  st[n++] = proxy_log(LOG_INFO, far, 1000);
  st[n++] = proxy_get_property(S("request\0path"), (char **)far, &l);
  st[n++] = proxy_log(9, S("bad level"));
  st[n++] = proxy_set_effective_context(12345);
  st[n++] = proxy_done();
  struct { const char *p; uint32_t l; } iov = { "x", 1 };
  st[n++] = fd_write(7, &iov, 1, &u);
  st[n++] = proxy_get_header_map_value(HTTP_REQUEST_HEADERS, 0, 0xffffffffu, &p, &l);
  st[n++] = proxy_continue_stream(7);
  st[n++] = proxy_get_buffer_bytes(VM_CONFIGURATION, 0, 10, &p, &l);
  uint64_t t = 0;
  st[n++] = clock_time_get_legacy(5, 1, &t);
  st[n++] = vm_start_local_status;
  st[n++] = fd_write(1, 0, 50000000u, &u); /* 50 M iovecs (400 MB) from address 0 */
  for (size_t i = 0; i < n; i++) {
    if (i) out[k++] = ',';
    k += utoa(st[i], out + k);
  }
  set_req(S("x-abuse"), out, k);
}

static void pairs_roundtrip(void) {
  char *p = 0;
  size_t l = 0;
  proxy_get_header_map_pairs(HTTP_REQUEST_HEADERS, &p, &l);
  proxy_set_header_map_pairs(HTTP_REQUEST_HEADERS, p, l);
  proxy_remove_header_map_value(HTTP_REQUEST_HEADERS, S("x-remove-me"));
  proxy_replace_header_map_value(HTTP_REQUEST_HEADERS, S("x-replace-me"), S("replaced"));
  set_req_num(S("x-pairs-bytes"), l);
}

#ifdef ABI_V010
EXPORT(proxy_on_request_headers) uint32_t on_request_headers(uint32_t ctx, uint32_t n) {
#else
EXPORT(proxy_on_request_headers) uint32_t on_request_headers(uint32_t ctx, uint32_t n, uint32_t eos) {
  set_req_num(S("x-eos"), eos);
#endif
  arena_reset();
  char *m = 0;
  mode_len = 0;
  if (proxy_get_header_map_value(HTTP_REQUEST_HEADERS, S("x-test"), &m, &mode_len) != OK) mode_len = 0;
  if (mode_len > sizeof mode) mode_len = sizeof mode;
  for (size_t i = 0; i < mode_len; i++) mode[i] = m[i];
  set_req_num(S("x-header-count"), n);
#ifndef ABI_V010
  if (is("seq")) seq(S("request-headers"), n, eos);
#endif
  char *path = 0;
  size_t path_len = 0;
  proxy_get_header_map_value(HTTP_REQUEST_HEADERS, S(":path"), &path, &path_len);
  if (is("trap") || bytes_eq(path, path_len, S("/trap"))) __builtin_trap();
  if (bytes_eq(path, path_len, S("/deny"))) {
    proxy_send_local_response(403, S("denied_by_path"), S("denied\n"), 0, 0, -1);
    return PAUSE;
  }
  if (is("loop")) for (volatile int i = 0;; i++) {}
  if (is("grow") && __builtin_wasm_memory_grow(0, 128) == (size_t)-1) __builtin_trap(); /* 8 MiB */
  /* A runaway allocator: 1 MiB at a time until growth fails, then abort (only run sandboxed:
   * the sandbox clamps the maximum). */
  if (is("grow-loop")) {
    while (__builtin_wasm_memory_grow(0, 16) != (size_t)-1) {}
    __builtin_trap();
  }
  if (is("unimplemented")) set_req_num(S("x-unimplemented-status"), proxy_weft_no_such_function(1));
  if (is("missing")) {
    char *v = 0;
    size_t vl = 0;
    set_req_num(S("x-missing-status"), proxy_get_header_map_value(HTTP_REQUEST_HEADERS, S("x-absent"), &v, &vl));
  }
  if (is("local")) {
    static const char hdrs[] = "\x01\0\0\0" "\x07\0\0\0\x03\0\0\0" "x-local\0yes\0";
    proxy_send_local_response(418, S("test_local_reply"), S("short and stout"), hdrs,
                              sizeof hdrs - 1, -1);
    return PAUSE;
  }
  if (is("props")) {
    prop(S("plugin_name"), S("x-plugin-name"), 0);
    prop(S("plugin_root_id"), S("x-root-id"), 0);
    prop(S("plugin_vm_id"), S("x-vm-id"), 0);
    prop(S("request\0path"), S("x-path"), 0);
    prop(S("request\0method"), S("x-method"), 0);
    prop(S("source\0address"), S("x-source-address"), 0);
    prop(S("destination\0port"), S("x-destination-port"), 1);
    prop(S("source\0principal"), S("x-source-principal"), 0);
    prop(S("connection\0mtls"), S("x-mtls"), 1);
    prop(S("node\0metadata\0NAME"), S("x-node-name"), 0);
    prop(S("xds\0node\0metadata\0NAMESPACE"), S("x-node-namespace"), 0);
    prop(S("no\0such\0thing"), S("x-unknown-prop"), 0);
  }
  if (is("shared")) shared_sequence();
  queue_modes();
  if (is("metrics")) metrics_sequence();
  if (is("pairs")) pairs_roundtrip();
  if (is("abuse")) abuse_sequence();
  if (is("wasi")) wasi_sequence();
  if (is("log")) {
    uint32_t level = 99;
    proxy_get_log_level(&level);
    set_req_num(S("x-log-level"), level);
    proxy_log(LOG_INFO, S("hello from the test filter"));
  }
  if (is("callout")) return callout(ctx);
  if (is("grpc")) return grpc_start(ctx, 0);
  if (is("grpc-nowhere")) return grpc_start(ctx, 1);
  if (is("grpc-stream") || is("grpc-stream-close")) return grpc_stream_start(ctx);
  if (is("callout-pause")) {
    /* A filter that ignores the refusal and waits anyway (the host must not hang it). */
    static const char h[] = "\x03\0\0\0" "\x07\0\0\0\x03\0\0\0" "\x05\0\0\0\x01\0\0\0"
                            "\x0a\0\0\0\x01\0\0\0" ":method\0GET\0:path\0/\0:authority\0x\0";
    uint32_t token = 0;
    proxy_http_call(S("nowhere"), h, sizeof h - 1, 0, 0, 0, 0, 1000, &token);
    return PAUSE;
  }
  if (is("hold")) return PAUSE; /* and never continue */
  if (is("deferdone")) deferred_ctx = ctx;
  return CONTINUE;
}

/* "chunks" (streamed bodies, Envoy's per-chunk calls): a buffer starting with 'h' is held
 * (StopIterationAndBuffer) until the end of stream; one starting with 'w' is held at the end
 * too, until the test calls test_continue_body; everything else is prefixed with
 * "<body_buffer_length>:" ("!" instead of ":" at end of stream) and continues. */
static uint32_t chunk_ctx;
static uint32_t chunks(uint32_t buffer, uint32_t ctx, uint32_t size, uint32_t eos) {
  arena_reset(); /* nothing from earlier callbacks is kept: a long body stays in bounded memory */
  char *b = 0;
  size_t bl = 0;
  if (proxy_get_buffer_bytes(buffer, 0, size, &b, &bl) != OK) return CONTINUE;
  if (bl != size) return CONTINUE;
  if (bl > 0 && b[0] == 'h' && !eos) return PAUSE;
  if (bl > 0 && b[0] == 'w' && eos) {
    chunk_ctx = ctx;
    return PAUSE;
  }
  char tag[24];
  size_t n = utoa(size, tag);
  tag[n++] = eos ? '!' : ':';
  proxy_set_buffer_bytes(buffer, 0, 0, tag, n);
  return CONTINUE;
}

EXPORT(test_continue_body) uint32_t test_continue_body(uint32_t stream) {
  proxy_set_effective_context(chunk_ctx);
  return proxy_continue_stream(stream);
}

EXPORT(proxy_on_request_body) uint32_t on_request_body(uint32_t ctx, uint32_t size, uint32_t eos) {
  if (is("seq")) {
    seq(S("request-body"), size, eos);
    return eos ? CONTINUE : PAUSE;
  }
  if (is("chunks")) return chunks(HTTP_REQUEST_BODY, ctx, size, eos);
  if (!is("body")) return CONTINUE;
  char *b = 0;
  size_t bl = 0;
  proxy_get_buffer_bytes(HTTP_REQUEST_BODY, 0, size, &b, &bl);
  proxy_set_buffer_bytes(HTTP_REQUEST_BODY, 0, 0, S("seen:"));
  set_req_num(S("x-body-size"), bl);
  return CONTINUE;
}

EXPORT(proxy_on_response_body) uint32_t on_response_body(uint32_t ctx, uint32_t size, uint32_t eos) {
  if (is("seq")) {
    seq(S("response-body"), size, eos);
    return eos ? CONTINUE : PAUSE;
  }
  if (is("chunks")) return chunks(1 /* HTTP_RESPONSE_BODY */, ctx, size, eos);
  return CONTINUE;
}

#ifdef ABI_V010
EXPORT(proxy_on_response_headers) uint32_t on_response_headers(uint32_t ctx, uint32_t n) {
#else
EXPORT(proxy_on_response_headers) uint32_t on_response_headers(uint32_t ctx, uint32_t n, uint32_t eos) {
  if (is("status")) proxy_add_header_map_value(HTTP_RESPONSE_HEADERS, S("x-response-eos"), eos ? "1" : "0", 1);
#endif
#ifndef ABI_V010
  if (is("seq")) seq(S("response-headers"), n, eos);
#endif
  (void)ctx;
  char *v = 0;
  size_t vl = 0;
  proxy_get_header_map_value(HTTP_RESPONSE_HEADERS, S(":status"), &v, &vl);
  proxy_add_header_map_value(HTTP_RESPONSE_HEADERS, S("x-seen-status"), v, vl);
  char buf[24];
  proxy_add_header_map_value(HTTP_RESPONSE_HEADERS, S("x-response-header-count"), buf, utoa(n, buf));
  if (is("status")) proxy_replace_header_map_value(HTTP_RESPONSE_HEADERS, S(":status"), S("299"));
  if (is("callout-response")) {
    static const char hdrs[] = "\x03\0\0\0" "\x07\0\0\0\x04\0\0\0" "\x05\0\0\0\x06\0\0\0"
                               "\x0a\0\0\0\x05\0\0\0"
                               ":method\0POST\0:path\0/check\0:authority\0authz\0";
    if (proxy_http_call(S("authz"), hdrs, sizeof hdrs - 1, S("alice"), 0, 0, 2000, &pending_token) != OK)
      return CONTINUE;
    pending_ctx = ctx;
    pending_response = 1;
    return PAUSE;
  }
  return CONTINUE;
}

/* "trailers": reads x-sum from the request trailers and adds x-wasm-sum (+ the count it was
 * told); on the response, round-trips the pairs, replaces x-checksum, removes x-drop, adds the
 * count and a forbidden content-length (the host must not send it). */
/* "trailers-local": a local 403 from the trailers callback; "trailers-pause": PAUSE (after
 * adding x-paused) until the test calls test_continue_body. */
static uint32_t trailers_hold(uint32_t map, uint32_t ctx) {
  if (is("trailers-local")) {
    proxy_send_local_response(403, S("trailers_denied"), S("denied by trailers\n"), 0, 0, -1);
    return PAUSE;
  }
  if (is("trailers-pause")) {
    chunk_ctx = ctx;
    proxy_add_header_map_value(map, S("x-paused"), S("1"));
    return PAUSE;
  }
  return CONTINUE;
}

EXPORT(proxy_on_request_trailers) uint32_t on_request_trailers(uint32_t ctx, uint32_t n) {
  if (is("seq")) {
    seq(S("request-trailers"), n, 0);
    return CONTINUE;
  }
  if (!is("trailers")) return trailers_hold(HTTP_REQUEST_TRAILERS, ctx);
  char *v = 0;
  size_t vl = 0;
  if (proxy_get_header_map_value(HTTP_REQUEST_TRAILERS, S("x-sum"), &v, &vl) != OK) return CONTINUE;
  proxy_add_header_map_value(HTTP_REQUEST_TRAILERS, S("x-wasm-sum"), v, vl);
  char buf[24];
  proxy_add_header_map_value(HTTP_REQUEST_TRAILERS, S("x-wasm-count"), buf, utoa(n, buf));
  /* Request headers are not writable here: this must fail. */
  if (proxy_add_header_map_value(HTTP_REQUEST_HEADERS, S("x-late"), S("1")) == OK)
    proxy_add_header_map_value(HTTP_REQUEST_TRAILERS, S("x-late-header-written"), S("1"));
  return CONTINUE;
}

EXPORT(proxy_on_response_trailers) uint32_t on_response_trailers(uint32_t ctx, uint32_t n) {
  if (is("seq")) {
    seq(S("response-trailers"), n, 0);
    return CONTINUE;
  }
  if (!is("trailers")) return trailers_hold(HTTP_RESPONSE_TRAILERS, ctx);
  char *p = 0;
  size_t l = 0;
  proxy_get_header_map_pairs(HTTP_RESPONSE_TRAILERS, &p, &l);
  proxy_set_header_map_pairs(HTTP_RESPONSE_TRAILERS, p, l);
  proxy_replace_header_map_value(HTTP_RESPONSE_TRAILERS, S("x-checksum"), S("wasm"));
  proxy_remove_header_map_value(HTTP_RESPONSE_TRAILERS, S("x-drop"));
  char buf[24];
  proxy_add_header_map_value(HTTP_RESPONSE_TRAILERS, S("x-wasm-response-count"), buf, utoa(n, buf));
  proxy_add_header_map_value(HTTP_RESPONSE_TRAILERS, S("content-length"), S("1"));
  return CONTINUE;
}

EXPORT(proxy_on_done) uint32_t on_done(uint32_t ctx) {
  if (is("deferdone") && ctx == deferred_ctx) return 0;
  return 1;
}

/* proxy_done twice for the same stream: the second finds nothing waiting (NOT_FOUND). */
EXPORT(test_finish_deferred_twice) uint32_t test_finish_deferred_twice(void) {
  proxy_set_effective_context(deferred_ctx);
  uint32_t a = proxy_done();
  return a * 100 + proxy_done();
}

/* Finishes a deferred stream: the test calls it through an export on the root's behalf. */
EXPORT(test_finish_deferred) uint32_t test_finish_deferred(void) {
  proxy_set_effective_context(deferred_ctx);
  return proxy_done();
}

static uint32_t logged;
EXPORT(proxy_on_log) void on_log(uint32_t ctx) { (void)ctx; logged++; }
EXPORT(test_logged_count) uint32_t test_logged_count(void) { return logged; }
