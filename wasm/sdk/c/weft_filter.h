/*
 * weft C SDK for the `weft:filter/http-filter` worlds: 0.1.0 (wasm/filter.wit), 0.2.0 with
 * -DWEFT_FILTER_V2 (bodies, wasm/filter_0_2_0.wit), 0.3.0 with -DWEFT_FILTER_V3 (bodies and
 * trailers, wasm/filter_0_3_0.wit).
 *
 * Hand-written canonical-ABI glue: no wit-bindgen, no libc. Build (see plugins/examples/c_*):
 *   clang --target=wasm32-unknown-unknown -O2 -nostdlib -mbulk-memory -Wl,--no-entry \
 *     -Wl,--export-dynamic -I wasm/sdk/c wasm/sdk/c/weft_filter.c your_filter.c -o core.wasm
 * then componentEmbed(wit, world "http-filter") + componentNew (`deno task plugin:build <dir>`).
 *
 * A filter defines the three functions declared at the bottom. Memory: everything the SDK
 * hands you during a hook (header values, properties, weft_alloc) lives in a per-call arena that
 * is reset when the next hook starts; memory allocated during weft_configure is kept for the
 * life of the instance (copy config into it there).
 */
#ifndef WEFT_FILTER_H
#define WEFT_FILTER_H

/* 0.3.0 (-DWEFT_FILTER_V3, plugin.json "wit": "0.3.0") is 0.2.0 plus trailers. */
#if defined(WEFT_FILTER_V3) && !defined(WEFT_FILTER_V2)
#define WEFT_FILTER_V2
#endif

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *ptr;
  size_t len;
} weft_str;

typedef enum {
  WEFT_REQUEST_HEADERS = 0,
  WEFT_RESPONSE_HEADERS = 1,
#ifdef WEFT_FILTER_V3
  /* 0.3.0: the trailers, during their own hook only. */
  WEFT_REQUEST_TRAILERS = 2,
  WEFT_RESPONSE_TRAILERS = 3,
#endif
} weft_map;

typedef enum {
  WEFT_LOG_TRACE = 0,
  WEFT_LOG_DEBUG = 1,
  WEFT_LOG_INFO = 2,
  WEFT_LOG_WARN = 3,
  WEFT_LOG_ERROR = 4
} weft_log_level;

/* ---- memory ---------------------------------------------------------------------------- */
void *weft_alloc(size_t size);
size_t weft_strlen(const char *s);
int weft_str_eq(weft_str a, const char *b);
weft_str weft_cstr(const char *s);

/* ---- host calls ------------------------------------------------------------------------ */
/* Returns 1 and fills *out when present; 0 when absent. */
int weft_get_header(weft_map map, const char *name, weft_str *out);
/* The same with the name's length given (no strlen per call: hot paths with fixed names). */
int weft_get_header_n(weft_map map, weft_str name, weft_str *out);
void weft_set_header(weft_map map, const char *name, const char *value);
void weft_set_header_n(weft_map map, weft_str name, weft_str value);
void weft_add_header(weft_map map, const char *name, const char *value);
void weft_remove_header(weft_map map, const char *name);
/* "name\0value\0" repeated. */
weft_str weft_get_headers(weft_map map);
int weft_get_property(const char *name, weft_str *out);
int weft_get_property_n(weft_str name, weft_str *out);
void weft_set_state(const char *key, const char *value);
void weft_log(weft_log_level level, const char *message);
void weft_log_n(weft_log_level level, weft_str message);
void weft_counter_add(const char *name, uint64_t delta);
uint64_t weft_now_ns(void);
uint64_t weft_monotonic_ns(void);
uint64_t weft_random_u64(void);

/* ---- hook results ---------------------------------------------------------------------- */
#define WEFT_MAX_RESPONSE_HEADERS 16

typedef enum {
  WEFT_ACTION_CONTINUE = 0,
  WEFT_ACTION_RESPOND = 1,
  WEFT_ACTION_DELAY = 2,
  WEFT_ACTION_ROUTE = 3
} weft_action_kind;

typedef struct {
  weft_action_kind kind;
  uint16_t status;                                  /* respond */
  uint32_t header_count;                            /* respond */
  weft_str headers[WEFT_MAX_RESPONSE_HEADERS][2];   /* respond: name, value */
  weft_str body;                                    /* respond */
  weft_str details;                                 /* respond */
  uint32_t delay_ms;                                /* delay */
  weft_str service;                                 /* route */
  int has_subset;                                   /* route */
  weft_str subset;                                  /* route */
} weft_action;

weft_action weft_continue(void);
weft_action weft_respond(uint16_t status, const char *body, const char *details);
/* Adds a header to a respond action (ignored past WEFT_MAX_RESPONSE_HEADERS). */
void weft_respond_header(weft_action *action, const char *name, const char *value);
weft_action weft_delay(uint32_t ms);
/* subset may be NULL. */
weft_action weft_route(const char *service, const char *subset);

#ifdef WEFT_FILTER_V2
/* ---- 0.2.0: body phases (build with -DWEFT_FILTER_V2; plugin.json "wit": "0.2.0") --------- */
typedef enum { WEFT_BODY_NONE = 0, WEFT_BODY_BUFFERED = 1, WEFT_BODY_STREAMED = 2 } weft_body_mode;
typedef struct {
  weft_body_mode request;
  weft_body_mode response;
} weft_body_modes;
typedef enum { WEFT_BODY_CONTINUE = 0, WEFT_BODY_REPLACE = 1, WEFT_BODY_RESPOND = 2 } weft_body_kind;
typedef struct {
  weft_body_kind kind;
  weft_str body;          /* replace: the new bytes (weft_alloc'd or static) */
  weft_action response;   /* respond: built with weft_respond() */
} weft_body_action;
weft_body_action weft_body_continue(void);
weft_body_action weft_body_replace(weft_str body);
weft_body_action weft_body_respond(weft_action response);
#endif

/* ---- implemented by the filter --------------------------------------------------------- */
/* Return 0 to accept the config; otherwise set *error (a static string or weft_alloc'd). */
#ifdef WEFT_FILTER_V2
/* 0.2.0: also say which bodies you want and how (both default to WEFT_BODY_NONE). */
int weft_configure(weft_str config, weft_str *error, weft_body_modes *modes);
/* Buffered: once, the whole body, end_of_stream 1. Streamed: each chunk; the last call has
 * end_of_stream 1 (its chunk may be empty). */
weft_body_action weft_on_request_body(weft_str body, int end_of_stream);
weft_body_action weft_on_response_body(weft_str body, int end_of_stream);
#else
int weft_configure(weft_str config, weft_str *error);
#endif
weft_action weft_on_request_headers(void);
weft_action weft_on_response_headers(void);
#ifdef WEFT_FILTER_V3
/* 0.3.0: called after the body when the message has trailers (read and change them through
 * WEFT_REQUEST_TRAILERS / WEFT_RESPONSE_TRAILERS). Return weft_continue() or a
 * weft_respond(...) (a request is answered; a response only while none of it has left weft,
 * else it is reset). Optional: the SDK's weak defaults continue. */
weft_action weft_on_request_trailers(void);
weft_action weft_on_response_trailers(void);
#endif

#endif
