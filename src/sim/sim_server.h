/* Shared between the simulator's files (sim*.c), not part of its API:
 * the server and request structures, timers, the prefix cache, the rate
 * limiter, and the helpers each endpoint uses to answer. Everything here
 * runs on the server thread unless it says otherwise. */
#ifndef LLMRUN_SIM_SERVER_H
#define LLMRUN_SIM_SERVER_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "json.h"
#include "sim.h"
#include "sim_model.h"

#define SIM_NS 1000000000LL

/* CLOCK_MONOTONIC in nanoseconds: every delay is scheduled on it. */
int64_t sim_now_ns(void);

/* ---- timers: a binary min-heap, O(log n) arm and disarm ------------------------------------ */

typedef struct sim_timer {
  int64_t deadline;
  size_t index;                        /* position in the heap; SIZE_MAX: not armed */
  void (*fire)(struct sim_timer *t);
} sim_timer;

typedef struct sim_timers {
  sim_timer **heap;
  size_t n, cap;
} sim_timers;

void sim_timers_free(sim_timers *ts);
int sim_timer_arm(sim_timers *ts, sim_timer *t, int64_t deadline); /* re-arms if armed */
void sim_timer_disarm(sim_timers *ts, sim_timer *t);
/* The earliest timer due at now (removed from the heap), or NULL. */
sim_timer *sim_timers_pop_due(sim_timers *ts, int64_t now);
int64_t sim_timers_next(const sim_timers *ts); /* INT64_MAX when empty */

/* ---- prefix cache ---------------------------------------------------------------------- */

typedef struct sim_cache sim_cache;
sim_cache *sim_cache_new(void);
void sim_cache_free(sim_cache *c);
void sim_cache_clear(sim_cache *c);
/* cached_tokens for req (prompt_tokens long), then remembers its prefixes. */
int sim_cache_lookup(sim_cache *c, const sim_request *req, int prompt_tokens,
                     int64_t now, double ttl_s);
/* Explicit entries with a TTL each (Anthropic's cache breakpoints):
 * whether key is alive at now (refresh: restart its TTL, as a read does),
 * and storing it for ttl_ns. */
int sim_cache_alive(sim_cache *c, uint64_t key, int64_t now, int refresh);
void sim_cache_put(sim_cache *c, uint64_t key, int64_t now, int64_t ttl_ns);

/* ---- attempts of a logical request (x-sim-fault-attempts) -------------------------------- */

typedef struct sim_attempts sim_attempts;
sim_attempts *sim_attempts_new(void);
void sim_attempts_free(sim_attempts *a);
void sim_attempts_clear(sim_attempts *a);
/* How many earlier attempts carried this key (then counts this one). */
int sim_attempts_seen(sim_attempts *a, uint64_t key, int64_t now);

/* ---- rate limits ---------------------------------------------------------------------------- */

typedef struct sim_bucket {
  double level;      /* what may still be used now */
  int64_t last;      /* when level was last refilled */
} sim_bucket;

typedef struct sim_ratelimit {
  sim_bucket requests, tokens;
} sim_ratelimit;

/* ---- per-request knobs ------------------------------------------------------------------------ */

typedef struct sim_plan {
  char profile[64];
  double ttft_ms, tokens_per_s, jitter, prefill_ms_per_1k;
  sim_fault fault;
  sim_fault_params fp;
  uint64_t rng;      /* this request's random stream (jitter) */
} sim_plan;

/* ---- the server ----------------------------------------------------------------------------- */

typedef struct sim_req sim_req;

/* Slots of sim_server.fault_counts: a kind, or STATUS_BASE + status - 400. */
#define SIM_FAULT_SLOT_STATUS_BASE SIM_FAULT_NKINDS
#define SIM_FAULT_SLOTS (SIM_FAULT_NKINDS + 200)

struct sim_server {
  struct MHD_Daemon *mhd;
  pthread_t thread;
  int ep;            /* our epoll: MHD's epoll fd, the timerfd, the wake eventfd,
                        and the sockets of requests we wait on */
  int timerfd, wakefd;
  int port;
  char url[96];

  /* commands from other threads, under mu; the server thread acknowledges
   * each by bumping done_seq and signalling cv */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  sim_config *pending_cfg;
  int pending_reset, pending_stop;
  uint64_t cmd_seq, done_seq;

  /* owned by the server thread */
  sim_config cfg;
  sim_timers timers;
  sim_cache *cache;
  sim_attempts *attempts;
  sim_ratelimit rl;
  struct sim_batches *batches; /* files and batches of the Batch API (sim_batch.c) */
  struct sim_tasks *tasks;     /* labelled tasks (sim_tasks.h): own lock, any thread */
  uint64_t rng;
  uint64_t next_id;
  uint64_t id_nonce;    /* from getrandom() at start: ids differ across processes */
  sim_req *suspended; /* every suspended request, so stop can resume them */
  int stopping;
  int64_t started;
  int64_t pass_start;   /* when the current MHD_run began */

  /* counters: written by the server thread, read by any */
  _Atomic uint64_t requests, r2xx, r4xx, r5xx, chat, messages, streams, embeddings,
    streams_completed, client_disconnects, rate_limited, faults_total,
    prompt_tokens, completion_tokens, cached_tokens, conn_open, conn_peak, conn_total,
    ttft_late_us_sum, ttft_late_us_max, ttft_late_n;
  _Atomic uint64_t fault_counts[SIM_FAULT_SLOTS];
  uint64_t nofile;
};

/* ---- a request ---------------------------------------------------------------------------------- */

typedef enum sim_endpoint {
  SIM_EP_UNKNOWN, SIM_EP_CHAT, SIM_EP_EMBEDDINGS, SIM_EP_MODELS, SIM_EP_MODEL, SIM_EP_STATS,
  SIM_EP_MESSAGES,
  SIM_EP_BATCH,   /* /v1/files and /v1/batches: sim_batch.c routes them further */
  SIM_EP_MSGBATCH /* /v1/messages/batches...: sim_msgbatch.c */
} sim_endpoint;

/* Which API's conventions a response follows (error bodies, headers). */
typedef enum sim_wire_kind { SIM_WIRE_OPENAI, SIM_WIRE_ANTHROPIC } sim_wire_kind;

/* What the response body is, when it is not a plain buffer. */
typedef struct sim_body sim_body;

struct sim_req {
  sim_server *srv;
  struct MHD_Connection *conn;
  sim_endpoint ep;
  sim_wire_kind wire;
  const char *method, *url;  /* MHD's, valid for the request's life */
  const char *want_method;   /* what the endpoint takes: "GET" or "POST" */
  int64_t t0;                /* when the request head arrived */
  char id[40];               /* x-request-id (OpenAI) / request-id (Anthropic) */

  /* the request body */
  llm_buf body;
  int bad_content_type, too_large;
  /* set for a request answered inside the server (a batch line): replies
   * are written here instead of going out (sim_reply_json) */
  llm_buf *capture;
  /* a Message Batch request: the anthropic-version header its batch was
   * created with, what sim_header answers for that name */
  const char *line_version;

  /* the response, queued at send_at */
  struct MHD_Response *resp;
  unsigned status;
  int64_t send_at;
  int64_t ttft_at;           /* streams: when the first token is due (the header) */
  int drop;                  /* close at send_at without a response */
  int fault_close;           /* the body was cut on purpose (not a disconnect) */
  int queued;
  sim_body *bodysrc;         /* for streamed or faulty bodies */

  /* waiting */
  sim_timer timer;
  int suspended;
  int fd, watched;           /* socket, registered in srv->ep for hang-ups */
  int client_gone;
  sim_req *snext, *sprev;    /* srv->suspended */
};

/* sim.c: pause the request until `at` (a timer resumes it) or until its
 * client hangs up; returns MHD_YES for the handler to return. */
enum MHD_Result sim_req_wait_until(sim_req *r, int64_t at);
/* sim.c: the request will wait again (a streaming body): watch its socket. */
void sim_req_watch(sim_req *r);
/* sim.c: forget the request's timer, socket watch and suspension. */
void sim_req_release_wait(sim_req *r);
void sim_count_fault(sim_server *s, const sim_fault *f);

/* sim_http.c: the access handler and completion callback given to MHD. */
enum MHD_Result sim_http_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version,
                                const char *upload_data, size_t *upload_size, void **con_cls);
void sim_http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe);
void sim_req_free(sim_req *r);

/* sim_http.c: answering. Each sets r->resp/status/send_at (the response
 * goes out at send_at: now for errors, later for simulated latency).
 * sim_reply_error writes the request's wire's error shape: OpenAI's
 * {"error":{message,type,param,code}}, or Anthropic's {"type":"error",
 * "error":{type,message},"request_id":...} with the type its docs give
 * for the status (type, param and code are then not used). */
void sim_reply_json(sim_req *r, unsigned status, llm_buf *b, int64_t send_at);
/* A 200 with a copy of len bytes (what they belong to may go, a reset,
 * while the response is sent) and that Content-Type; a 500 when out of
 * memory. */
void sim_reply_copy(sim_req *r, const void *data, size_t len, const char *content_type);
void sim_reply_error(sim_req *r, unsigned status, const char *type, const char *param,
                     const char *code, const char *fmt, ...)
  __attribute__((format(printf, 6, 7)));
/* A 400 invalid_request_error with no param or code (the Anthropic
 * endpoints' checks); returns -1, what those checks return. */
int sim_reply_bad(sim_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds the request id (x-request-id, or request-id for Anthropic), the
 * provider's version headers and server. */
void sim_add_common_headers(sim_req *r, struct MHD_Response *resp);
const char *sim_header(sim_req *r, const char *name);

/* sim_knobs.c: the plan for a request: its profile (and overrides from
 * the server config, headers x-sim-* and the body's "sim" object) and its
 * fault. 0, or -1 after replying 400 for a bad knob. */
int sim_plan_request(sim_req *r, const json_value *body, const char *model, sim_plan *p);
/* A log-normal factor with mean 1 and sigma jitter (1 when jitter is 0). */
double sim_jitter_factor(uint64_t *rng, double jitter);
uint64_t sim_rand(uint64_t *state);
double sim_rand01(uint64_t *state);

/* sim_faults.c: answers for status faults (429, 5xx...) and the simulated
 * rate limits. Both return 1 when they replied. */
int sim_fault_reply(sim_req *r, const sim_plan *p);
int sim_ratelimit_check(sim_req *r, const char *model, int tokens);
void sim_ratelimit_headers(sim_req *r, struct MHD_Response *resp);

/* The endpoints. */
void sim_chat_handle(sim_req *r, const json_value *body);
void sim_messages_handle(sim_req *r, const json_value *body);
void sim_embeddings_handle(sim_req *r, const json_value *body);
void sim_models_handle(sim_req *r, const char *id);
void sim_stats_handle(sim_req *r);

/* One answered, timed completion of either wire format, for sim_reply.c
 * to send as JSON or SSE: the answers of its n choices, and the stream as
 * steps. Step i is due at step_at[i]; which events a step carries is the
 * wire's business (OpenAI: token i of every choice; Anthropic: one piece
 * of one content block). */
typedef struct sim_chat sim_chat;

/* What differs between the wire formats: how a completion is written. */
typedef struct sim_wire {
  void (*put_step)(const sim_chat *c, size_t step, llm_buf *out);
  void (*put_tail)(const sim_chat *c, llm_buf *out);      /* after the last step */
  void (*put_error)(const sim_chat *c, llm_buf *out);     /* error_chunk fault */
  void (*put_malformed)(const sim_chat *c, llm_buf *out); /* malformed_json fault */
  void (*put_body)(const sim_chat *c, llm_buf *out);      /* the JSON response */
  void (*free_ext)(void *ext);
} sim_wire;

struct sim_chat {
  const sim_wire *wire;
  char *model;
  char id[48];               /* chatcmpl-... / msg_... */
  int64_t created;           /* Unix time */
  sim_answer *answers;
  int n;
  int prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens;
  int include_usage, logprobs;
  size_t nsteps;
  int64_t *step_at;
  double *step_cost;         /* tokens' worth of generation time before step i
                                (after the TTFT); NULL: 0 for step 0, 1 after */
  sim_fault_kind fault;      /* a mid-stream fault, struck before step fault_step */
  size_t fault_step;
  int stall_ms;
  void *ext;                 /* the wire's own state (freed with wire->free_ext) */
};

void sim_chat_free(sim_chat *c);
/* Answers choice 0..n-1 of req into a new chat (NULL when out of memory
 * or the model cannot answer): answers, completion and reasoning tokens,
 * the number of steps as the OpenAI wire counts them. */
sim_chat *sim_chat_answer(const sim_request *req, int n, const sim_wire *wire);
/* Times the chat with the plan and sends it (SSE when stream) or its
 * JSON, with the plan's faults; takes ownership of c. */
void sim_chat_send(sim_req *r, sim_chat *c, const sim_plan *pl, int stream);

/* sim_chat_request.c: a chat completion request, read and checked as
 * OpenAI does (reasoning models' parameters included). Strings point into
 * the parsed body, which must outlive it. */
#define SIM_MAX_STOP 4
typedef struct sim_chat_req {
  sim_request mr;           /* what the model sees */
  sim_message *msgs;
  char **owned;             /* concatenated content parts */
  size_t nowned;
  const char *stop[SIM_MAX_STOP];
  sim_tool *tools;
  int n, stream, include_usage;
  int tool_tokens;          /* prompt tokens of the tool definitions */
} sim_chat_req;

/* 0, or -1 after replying 400 (q is then still to be freed). */
int sim_chat_parse(sim_req *r, const json_value *body, sim_chat_req *q);
/* sim_mock.c: the request's scripted answer (mock_response: body field,
 * sim.mock_response, or header x-sim-mock-response) into mr->mock, and the
 * server's labelled tasks into mr->tasks. 0, or -1 after replying 400. */
int sim_mock_read(sim_req *r, const json_value *body, sim_request *mr);
void sim_chat_req_free(sim_chat_req *q);

/* sim_http.c: a new unique id, prefix then `len` base62 characters, from
 * the server's counter and a random nonce drawn at start (unique across
 * servers, processes and resets, unlike the seeded random stream). */
void sim_new_id(sim_server *s, const char *prefix, int len, char *out, size_t cap);
/* A base62 string of len characters derived from key (for ids that must
 * be unique when key is: a tool call's from its message id). */
void sim_base62(uint64_t key, int len, char *out);

/* sim_stream.c: bodies sent piece by piece. */
/* A fixed body cut at `cut` bytes, where the connection is closed
 * (stall_ms == 0) or left silent for stall_ms and then closed. */
struct MHD_Response *sim_body_cut(sim_req *r, char *data, size_t len, size_t cut, int stall_ms);
/* The SSE body of a chat stream (takes ownership of chat). */
struct MHD_Response *sim_body_sse(sim_req *r, struct sim_chat *chat);
void sim_body_free(sim_body *b);
/* Called when the request ends: was the streamed body complete? */
int sim_body_finished(const sim_body *b);

#endif
