/* An HTTP/1.1 server on the event loop, whose requests are answered by
 * someone else (for llmrun: Lua tasks, through lmod_serve.c).
 *
 * Why our own server and not libmicrohttpd: the gateway (llmrun serve
 * --proxy) answers each request with outgoing calls made on the same
 * loop, so the server must live on that loop (epoll, no thread hand-off:
 * two context switches per request cost more than the whole parse), must
 * let an answer be written piece by piece as an upstream stream arrives,
 * with back-pressure, and must say at once when a client goes away so its
 * upstream call can be cancelled. That is a few hundred lines here.
 *
 * The engine reads and parses requests (keep-alive, pipelining, chunked
 * bodies, Expect: 100-continue), enforces the limits (header and body
 * size, header and body time, idle time, stalled writes, a connection
 * cap) and answers what it refuses itself with an API-shaped JSON error:
 * OpenAI's {"error":{...}}, or Anthropic's {"type":"error",...} for paths
 * under /v1/messages. A complete request is handed to on_request; the
 * owner answers it with llm_sreq_respond, or llm_sreq_start + writes +
 * llm_sreq_end. While a request is being answered its connection is
 * still read (to notice a client that leaves); a client that leaves
 * calls on_abort. Requests on one connection are answered in order.
 *
 * Single-threaded: every function runs on the loop's thread. */
#ifndef LLMRUN_SERVE_H
#define LLMRUN_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"

typedef struct llm_server llm_server;
typedef struct llm_sreq llm_sreq;

typedef struct llm_server_opts {
  const char *host;          /* listen address; NULL: 127.0.0.1 */
  int port;                  /* 0: any free port */
  size_t max_connections;    /* 0: 1024; over it, new clients get 503 */
  size_t max_header_bytes;   /* request line + headers; 0: 64 KiB (431) */
  size_t max_body_bytes;     /* 0: 32 MiB (413) */
  double header_timeout;     /* s from a connection's (or request's) start to
                                the end of its headers; 0: 10 (408) */
  double body_timeout;       /* s from the end of the headers to the end of the
                                body; 0: 60 (408) */
  double idle_timeout;       /* s a kept-alive connection may wait; 0: 60 */
  double write_timeout;      /* s a client may take no bytes while output waits;
                                0: 60 (then the connection is dropped) */
  size_t high_water;         /* queued output bytes above which writes wait;
                                0: 256 KiB */
  /* A complete request, now owned by the caller until llm_sreq_release. */
  void (*on_request)(void *ud, llm_sreq *r);
  /* The client of r went away (or the connection failed) before r was
   * answered in full; r stays valid until released, writes now fail. */
  void (*on_abort)(void *ud, llm_sreq *r);
  /* r's queued output fell below half the high-water mark (or r was
   * aborted): a writer waiting on llm_sreq_blocked may go on. */
  void (*on_drain)(void *ud, llm_sreq *r);
  void *ud;
} llm_server_opts;

typedef struct llm_server_stats {
  uint64_t connections_total, requests, responses;
  uint64_t refused_busy;        /* 503: connection cap */
  uint64_t refused_limit;       /* 413, 431, 400, 408 and other refusals */
  uint64_t timeouts;            /* connections closed by a time limit */
  uint64_t aborted;             /* requests whose client left before the end */
  size_t connections, connections_peak, in_flight;
} llm_server_stats;

/* Listens and starts accepting; NULL with a message in err. */
llm_server *llm_server_start(llm_loop *loop, const llm_server_opts *opts, char *err, size_t errlen);
/* Stops listening and closes every connection; requests still held stay
 * valid (aborted, on_abort not called) until released. */
void llm_server_free(llm_server *srv);
int llm_server_port(const llm_server *srv);
void llm_server_get_stats(const llm_server *srv, llm_server_stats *out);

/* ---- a request ------------------------------------------------------------------ */

const char *llm_sreq_method(const llm_sreq *r);
/* The target as sent: path plus "?query". */
const char *llm_sreq_target(const llm_sreq *r);
int llm_sreq_minor_version(const llm_sreq *r); /* HTTP/1.x */
size_t llm_sreq_header_count(const llm_sreq *r);
/* Names are lower-cased. */
void llm_sreq_header_at(const llm_sreq *r, size_t i, const char **name, const char **value);
/* The first value of a header (name in lower case), or NULL. */
const char *llm_sreq_header(const llm_sreq *r, const char *name);
const char *llm_sreq_body(const llm_sreq *r, size_t *len);
/* "127.0.0.1:54321" ("[::1]:54321" for IPv6). */
const char *llm_sreq_client(const llm_sreq *r);
double llm_sreq_received_at(const llm_sreq *r); /* llm_now() when complete */
int llm_sreq_aborted(const llm_sreq *r);
/* The owner's pointer, for callbacks. */
void llm_sreq_set_ud(llm_sreq *r, void *ud);
void *llm_sreq_ud(const llm_sreq *r);

/* Answers. headers: "Name: value" lines without CRLF (NULL-terminated
 * list, may be NULL); Content-Length / Transfer-Encoding and Connection
 * are added here. Return 0, or -1 when the client is gone (or misuse: a
 * second answer). */
int llm_sreq_respond(llm_sreq *r, int status, const char *const *headers,
                     const char *body, size_t len);
/* A streamed answer: chunked transfer encoding (HTTP/1.1) or, for
 * HTTP/1.0 clients, the body until the connection closes. */
int llm_sreq_start(llm_sreq *r, int status, const char *const *headers);
int llm_sreq_write(llm_sreq *r, const char *data, size_t len);
int llm_sreq_end(llm_sreq *r);
/* More than the high-water mark of output waits for the client: a writer
 * should wait for on_drain before writing more. */
int llm_sreq_blocked(const llm_sreq *r);
/* Gives r back. An unanswered request on a live connection is answered
 * 500 first (its owner gave up on it). */
void llm_sreq_release(llm_sreq *r);

/* The JSON error body the engine sends for path (API-shaped; see top). */
char *llm_serve_error_body(const char *path, int status, const char *type,
                           const char *message, size_t *len);

#endif
