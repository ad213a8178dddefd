/* One HTTP transfer on the loop's shared curl multi handle.
 *
 * Connections are kept alive and reused across transfers by the multi
 * handle; HTTP/2 is used when a TLS server offers it. The transfer either
 * buffers the whole body (up to a cap) or hands body bytes to a sink as
 * they arrive, for streams; a sink may refuse bytes for now (back-pressure)
 * and the owner resumes the transfer later. Timing is taken at the moment
 * bytes arrive, inside the callbacks, so it does not depend on how soon the
 * waiting task runs.
 *
 * Timeouts: connect_timeout bounds the TCP/TLS connect; timeout bounds the
 * wait for the response headers, and for buffered transfers the whole
 * transfer; stall_timeout aborts a transfer that receives nothing for that
 * long once the response headers are in (so the wait for the first body
 * byte counts). A long, healthy stream is never killed by a total
 * timeout. */
#ifndef LLMRUN_HTTP_H
#define LLMRUN_HTTP_H

#include <stddef.h>

#include "loop.h"

typedef struct llm_http llm_http;

/* Body sink for streaming transfers: take the bytes and return 1, or
 * return 0 to refuse them all for now (the transfer pauses; call
 * llm_http_resume when ready, and the same bytes come again). */
typedef int (*llm_http_sink)(void *ud, const char *data, size_t len, double now);
/* Called (from loop callbacks, never from Lua) when headers are complete
 * and when the transfer ends. */
typedef void (*llm_http_notify)(void *ud, llm_http *h);

typedef struct llm_http_request {
  const char *method;          /* "GET", "POST"... */
  const char *url;
  int url_checked;             /* the caller ran llm_http_check_url on url */
  const char *const *headers;  /* "Name: value" strings, NULL-terminated */
  const char *extra_header;    /* one more line, or NULL (per-attempt headers) */
  const char *body;            /* copied; may be NULL */
  size_t body_len;
  double connect_timeout;      /* seconds, 0: 5 */
  double timeout;              /* seconds, 0: none */
  double stall_timeout;        /* seconds, 0: none */
  int stall_on_touch;          /* the stall clock restarts only at llm_http_touch
                                  (the owner saw progress, e.g. a whole event),
                                  not at every body byte: a server that sends
                                  only SSE comments stalls out */
  size_t max_body;             /* buffered transfers: cap, 0: 64 MiB */
  double max_idle_reuse;       /* seconds a kept-alive connection may have been
                                  idle and still carry this request, 0: curl's
                                  118 (CURLOPT_MAXAGE_CONN): below a server's
                                  idle close, a stale connection is not tried */
  int insecure;                /* skip TLS verification (loud opt-in) */
  const char *ca_file;         /* extra CA bundle, or NULL */
  llm_http_sink sink;          /* NULL: buffer the body */
  llm_http_sink tap;           /* optional: sees every body byte the transfer
                                  takes (buffered, or accepted by the sink),
                                  once, with its arrival time; its return
                                  value is ignored (llm.record keeps the raw
                                  chunks and their times this way) */
  llm_http_notify on_headers;  /* optional */
  llm_http_notify on_done;     /* required */
  void *ud;
} llm_http_request;

enum llm_http_state { LLM_HTTP_RUNNING, LLM_HTTP_DONE, LLM_HTTP_FAILED, LLM_HTTP_ABORTED };

/* Error classes for a failed transfer. */
enum llm_http_error {
  LLM_HTTP_OK = 0,
  LLM_HTTP_E_TRANSPORT,  /* refused, reset, DNS, TLS, ... */
  LLM_HTTP_E_TIMEOUT,    /* connect or header timeout */
  LLM_HTTP_E_STALLED,    /* no bytes for stall_timeout */
  LLM_HTTP_E_TOO_LARGE,  /* buffered body over max_body */
  LLM_HTTP_E_MEMORY
};

/* 0 when url is an http:// or https:// URL that curl can parse, else -1
 * with the reason in err. Loads libcurl (call llm_curl_load first). A
 * transfer to any other URL does not start. */
int llm_http_check_url(const char *url, char *err, size_t errlen);
/* Starts a transfer; NULL with a message in err when it cannot start. */
llm_http *llm_http_start(llm_loop *loop, const llm_http_request *req, char *err, size_t errlen);
/* Aborts if running (no notification), then frees. */
void llm_http_free(llm_http *h);
/* Frees the easy handles kept for reuse (at exit, before curl cleanup). */
void llm_http_pool_drain(void);
/* Stops a running transfer now; on_done is not called. */
void llm_http_abort(llm_http *h);
/* Progress on a stall_on_touch transfer: restarts its stall clock. */
void llm_http_touch(llm_http *h, double now);
/* Un-pauses a transfer whose sink refused bytes. */
void llm_http_resume(llm_http *h);

int llm_http_state(const llm_http *h);
int llm_http_headers_done(const llm_http *h);
long llm_http_status(const llm_http *h);
/* Response headers of the final response, names lower-cased, in order. */
size_t llm_http_header_count(const llm_http *h);
void llm_http_header_at(const llm_http *h, size_t i, const char **name, const char **value);
/* The last value of a header (name in lower case), or NULL. */
const char *llm_http_header(const llm_http *h, const char *name);
const char *llm_http_body(const llm_http *h, size_t *len);
int llm_http_error(const llm_http *h);
/* A human message for a failure, naming the curl error where there is one. */
const char *llm_http_error_message(const llm_http *h);
int llm_http_curl_code(const llm_http *h);
/* How many times the request went out (0: never reached the network). */
int llm_http_sent(const llm_http *h);

/* Monotonic timestamps (llm_now): start, response headers complete, first
 * body byte, end; 0 when not reached. */
typedef struct llm_http_times {
  double start, headers, first_byte, end;
} llm_http_times;
llm_http_times llm_http_timing(const llm_http *h);

#endif
