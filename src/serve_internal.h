/* Shared between the server engine's two files, not part of its API:
 * serve.c (connections, reading and parsing requests, limits, timeouts)
 * and serve_answer.c (writing answers, output buffering, the request's
 * accessors). See serve.h for the contract. */
#ifndef LLMRUN_SERVE_INTERNAL_H
#define LLMRUN_SERVE_INTERNAL_H

#include <stddef.h>
#include <sys/uio.h>

#include "buf.h"
#include "serve.h"
#include "serve_parse.h"

#define READ_CHUNK 16384
/* While a request is being answered, its connection is read only this far
 * ahead (pipelined requests); past it a departure is noticed later. */
#define READ_AHEAD (64 * 1024)
/* Clients over the cap still get their 503 (their request is read first so
 * the answer is not lost to a reset), up to this many more. */
#define OVERFLOW_CONNECTIONS 64

enum phase { P_HEAD, P_BODY, P_BUSY, P_CLOSING };
enum rstate { R_READING, R_ACTIVE, R_STREAMING, R_DONE };

struct llm_sreq {
  llm_server *srv;
  struct conn *conn;       /* NULL once the connection is gone */
  char *buf;               /* head + body, owned once dispatched */
  llm_head head;
  size_t body_off, body_len;
  char client[64];
  double received_at;
  int state;
  int aborted, released, dispatched;
  int stream_chunked;      /* the streamed answer uses chunked coding */
  int head_only;           /* HEAD: no body bytes */
  void *ud;
};

typedef struct conn {
  llm_server *srv;
  int fd;
  int phase;
  unsigned watching;       /* LLM_IO_* we asked the loop for */
  char client[64];
  llm_buf in;              /* bytes read, not yet part of a dispatched request */
  size_t scan;
  llm_chunked chunked;
  llm_sreq *req;           /* being read, or being answered */
  llm_buf out;             /* output, of which the client has taken outoff bytes */
  size_t outoff;
  double deadline;         /* 0: none */
  int deadline_kind;       /* what happens when it passes */
  int close_after;         /* close once the output is flushed */
  int doomed;              /* over the connection cap: refuse its request */
  int blocked;             /* a writer waits for the output to drain */
  struct conn *prev, *next;
} conn;

enum { DL_NONE, DL_HEAD, DL_BODY, DL_IDLE, DL_WRITE };

struct llm_server {
  llm_loop *loop;
  llm_server_opts o;
  int fd;
  int port;
  conn *conns;
  llm_timer *tick;
  double tick_s;
  llm_server_stats st;
};

static inline size_t srv_pending_out(const conn *c) { return c->out.len - c->outoff; }

/* serve.c */
void srv_set_watch(conn *c);
void srv_set_deadline(conn *c, int kind, double seconds);
void srv_req_free(llm_sreq *r);
void srv_req_detach(llm_sreq *r);
void srv_conn_close(conn *c);
void srv_client_gone(conn *c);
void srv_process_input(conn *c);

/* serve_answer.c */
const char *srv_error_type(int status);
int srv_flush_out(conn *c);
int srv_send_iov(conn *c, struct iovec *iov, int n);
int srv_write_head(conn *c, llm_sreq *r, int status, const char *const *headers,
                   const char *framing, const char *body, size_t len);

#endif
