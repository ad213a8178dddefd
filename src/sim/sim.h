/* The built-in simulator: an OpenAI- and Anthropic-compatible HTTP/1.1
 * server on loopback that runs on its own thread inside llmrun (or
 * stand-alone through `llmrun serve --sim`). Every simulated call goes
 * through the same curl, SSE and retry path as a real provider.
 *
 * Endpoints: POST /v1/chat/completions (JSON and SSE), POST /v1/messages
 * (Anthropic's Messages API, JSON and SSE), POST /v1/embeddings,
 * GET /v1/models, GET /v1/models/{id}, GET /sim/stats, and OpenAI's Batch
 * API: /v1/files and /v1/batches (sim_files.c, sim_batch.c). What the answers
 * say comes from sim_model.h; this engine decides when bytes go out (per
 * model latency profiles with jitter), which faults to inject, and how
 * the usage, prefix-cache and rate-limit numbers look.
 *
 * Threading: sim_server_start() binds and starts the server thread; every
 * other function may be called from any thread. No lua.h here. */
#ifndef LLMRUN_SIM_H
#define LLMRUN_SIM_H

#include <stddef.h>
#include <stdint.h>

/* ---- latency profiles ------------------------------------------------------ */

/* How fast a model answers. A request's profile is, in order: the
 * per-request override (header x-sim-profile or body sim.profile), the
 * server's forced profile (sim_config.profile), the profile whose name
 * equals the model, the longest profile name that prefixes the model
 * ("gpt-4o-mini" serves "gpt-4o-mini-2024-07-18"), the profile named
 * "default", else the zero profile. Model names are compared lower-case
 * and without a "provider/" prefix, as llm.sim_profiles.lookup does.
 * "zero" always exists: no delay. */
typedef struct sim_profile {
  char *name;
  double ttft_ms;      /* mean time to first token */
  double tokens_per_s; /* mean generation speed after it; <= 0: instant */
  double jitter;       /* sigma of a log-normal factor with mean 1 applied to
                          the TTFT and to each token gap; 0: exact */
  double prefill_ms_per_1k; /* TTFT added per 1,000 prompt tokens beyond the
                          first 1,000 that the prefix cache did not serve */
} sim_profile;

/* ---- faults ------------------------------------------------------------------ */

typedef enum sim_fault_kind {
  SIM_FAULT_NONE,
  SIM_FAULT_STATUS,             /* an HTTP error status (400..599) with its body */
  SIM_FAULT_RATE_LIMIT,         /* 429 rate_limit_exceeded + retry-after headers */
  SIM_FAULT_QUOTA,              /* 429 insufficient_quota (retrying is useless) */
  SIM_FAULT_DROP_BEFORE_HEADERS,/* close the connection without any response */
  SIM_FAULT_DROP_BEFORE_BODY,   /* send the headers, then close */
  SIM_FAULT_DROP_MID_STREAM,    /* send part of the body, then close */
  SIM_FAULT_MALFORMED_JSON,     /* a 200 whose JSON (or one SSE event) is broken */
  SIM_FAULT_ERROR_CHUNK,        /* SSE: data: {"error":{...}} mid-stream, then end */
  SIM_FAULT_STALL,              /* send part of the body, then nothing (stall_ms) */
  SIM_FAULT_SLOW_HEADERS,       /* hold everything back header_delay_ms first */
  SIM_FAULT_NKINDS
} sim_fault_kind;

typedef struct sim_fault {
  sim_fault_kind kind;
  int status; /* SIM_FAULT_STATUS: 400..599 */
} sim_fault;

/* Names: "429" (rate limit), "insufficient_quota", any other status
 * "400".."599", "drop_before_headers" (alias "drop"), "drop_before_body",
 * "drop_mid_stream", "malformed_json", "error_chunk", "stall",
 * "slow_headers", "none". 0, or -1 for an unknown name. */
int sim_fault_parse(const char *name, sim_fault *out);
/* The canonical name ("429", "drop_mid_stream"...), in buf. */
const char *sim_fault_name(const sim_fault *f, char *buf, size_t n);

/* How faults look; each may also be set per request. */
typedef struct sim_fault_params {
  char retry_after[64];  /* retry-after header value on 429/503 faults; "" none */
  int retry_after_ms;    /* retry-after-ms header value; < 0: none */
  int should_retry;      /* x-should-retry on error responses: -1 none, 0, 1 */
  int header_delay_ms;   /* slow_headers delay */
  int stall_ms;          /* stall: how long before the server gives up and closes */
  int after_tokens;      /* mid-stream faults strike after this many tokens;
                            < 0: after half of them */
  int error_body;        /* 0: JSON (502 defaults to HTML, as from a CDN),
                            1: JSON, 2: HTML, 3: empty */
  char message[256];     /* a JSON error's message instead of the usual one; ""
                            none (per request only: x-sim-error-message /
                            sim.error_message, which llm.sim.responder sends) */
} sim_fault_params;

typedef struct sim_fault_rate {
  sim_fault fault;
  double rate;          /* probability per request, 0..1 */
} sim_fault_rate;

/* ---- configuration (replaceable while running) ------------------------------------ */

typedef struct sim_config {
  sim_profile *profiles;
  size_t nprofiles;
  char *profile;         /* every request uses this profile unless it names one */
  double ttft_ms;        /* server-wide overrides of the profile; < 0: unset */
  double tokens_per_s;
  double jitter;
  sim_fault_rate *faults;
  size_t nfaults;
  sim_fault_params fault_params;
  int strict;            /* unknown model -> 404 model_not_found */
  char **models;         /* extra ids for /v1/models and strict mode */
  size_t nmodels;
  uint64_t seed;         /* the server's random stream (jitter, fault draws) */
  double cache_ttl_s;    /* prefix cache: idle entries expire after this */
  int rate_rpm, rate_tpm;/* simulated rate limits per minute; 0: none */
  int rate_count_usage;  /* 1: a request's tokens are its prompt plus the completion it gets
                            (known before it is admitted: the answer is made first); 0: its
                            prompt plus max_tokens, OpenAI's documented estimate */
  size_t max_body_bytes; /* larger request bodies get 413 */
  /* the Batch API (sim_batch.c) */
  double batch_turnaround_s; /* creation to completion; < 0: 2 s, or 0 when the
                                forced profile is "zero" */
  double batch_expire_s;     /* a batch not done this long after creation expires
                                (the 24 h completion window) */
  double batch_fail_rate;    /* share of lines answered with a simulated 500 */
} sim_config;

/* Defaults: no profiles (everything is immediate), no faults, not strict,
 * seed 0, cache TTL 300 s, no rate limits, 32 MiB bodies, retry-after "1",
 * batches done in 2 s (0 under the zero profile), expiring after 24 h,
 * with no failed lines. */
void sim_config_init(sim_config *c);
void sim_config_free(sim_config *c);
/* Deep copy into an uninitialised dst. 0, or -1 when out of memory. */
int sim_config_copy(sim_config *dst, const sim_config *src);
/* Append or replace (by name); prefill_ms_per_1k starts at 0. The
 * profile (valid until the next add), or NULL when out of memory. */
sim_profile *sim_config_add_profile(sim_config *c, const char *name, double ttft_ms,
                                    double tokens_per_s, double jitter);
/* Other functions return 0, or -1 when out of memory. */
int sim_config_add_fault_rate(sim_config *c, const sim_fault *f, double rate);
int sim_config_add_model(sim_config *c, const char *id);
int sim_config_set_profile(sim_config *c, const char *name); /* NULL clears */
/* The profile for a model name following the rules above (never NULL). */
const sim_profile *sim_config_find_profile(const sim_config *c, const char *model);
/* Strict mode's test: the model is in c->models, or a profile other than
 * "default" and "zero" matches it by name or prefix. */
int sim_config_knows_model(const sim_config *c, const char *model);
/* Whether a profile name is a model id for /v1/models: not "zero" or
 * "default", and not a prefix entry ending in '-' or '.' ("claude-"). */
int sim_config_is_model_name(const char *name);

/* ---- the server --------------------------------------------------------------- */

typedef struct sim_options {
  const char *host;     /* "127.0.0.1" (default), "::1", "localhost"... */
  int port;             /* 0: an ephemeral port */
  int allow_remote;     /* permit a non-loopback host */
  int idle_timeout_s;   /* close keep-alive connections idle this long; 0: 300 */
} sim_options;

typedef struct sim_server sim_server;

/* Binds, raises RLIMIT_NOFILE's soft limit to the hard one, and starts
 * the server thread. NULL with a message in err on failure. */
sim_server *sim_server_start(const sim_options *opt, const sim_config *cfg,
                             char *err, size_t errlen);
/* "http://127.0.0.1:PORT" (no trailing slash, no /v1). */
const char *sim_server_url(const sim_server *s);
int sim_server_port(const sim_server *s);
/* Replaces the configuration; requests that arrive after it returns see
 * the new one. 0, or -1 when out of memory. */
int sim_server_configure(sim_server *s, const sim_config *cfg);
/* Clears the counters (not the connection gauges), the prefix cache, the
 * rate-limit windows and the attempt counts, and restarts the random
 * stream from the seed. */
void sim_server_reset(sim_server *s);
/* The server's labelled tasks (sim_tasks.h: add and remove them from any
 * thread; requests that arrive after a change see it). */
struct sim_tasks *sim_server_tasks(sim_server *s);
/* Resumes and closes every connection, stops the thread, frees s. */
void sim_server_stop(sim_server *s);

typedef struct sim_stats {
  uint64_t requests;          /* requests received (any path) */
  uint64_t responses_2xx, responses_4xx, responses_5xx;
  uint64_t chat, streams, embeddings;
  uint64_t messages;          /* POST /v1/messages (Anthropic), not in chat */
  uint64_t streams_completed; /* SSE streams that reached their end */
  uint64_t client_disconnects;/* clients gone before the response ended */
  uint64_t rate_limited;      /* 429s from the simulated rate limits */
  uint64_t faults_total;
  uint64_t prompt_tokens, completion_tokens, cached_tokens;
  uint64_t connections_open, connections_peak, connections_total;
  uint64_t nofile_limit;      /* RLIMIT_NOFILE soft limit after start */
  /* streams: how much later than planned the first token left (the
   * server's own lateness under load; x-sim-ttft-ms reports the actual) */
  double ttft_late_mean_ms, ttft_late_max_ms;
  double uptime_s;
} sim_stats;

void sim_server_stats(sim_server *s, sim_stats *out);
/* The stats as the JSON object GET /sim/stats returns, with "faults":
 * {"429": n, "drop_mid_stream": n, ...}. malloc'd; NULL when out of memory. */
char *sim_server_stats_json(sim_server *s, size_t *len);

#endif
