/* The simulator's Batch APIs: OpenAI's Files (/v1/files) and Batches
 * (/v1/batches) endpoints, shared by sim_files.c (the file store, uploads
 * and downloads) and sim_batch.c (batches, their status transitions and
 * answers), and Anthropic's Message Batches (/v1/messages/batches,
 * sim_msgbatch.c) on the same clock and knobs. Private to the simulator;
 * everything here runs on the server thread, except the counters, which
 * any thread may read.
 *
 * A batch moves on with time, looked at lazily: each request that touches
 * it first brings it up to date (sim_batch.c says how). Its lines are
 * answered by the chat endpoint's own parser and model
 * (sim_chat_answer_body), a few at a time as the batch progresses. */
#ifndef LLMRUN_SIM_BATCH_H
#define LLMRUN_SIM_BATCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_server.h"
#include "buf.h"

/* The length of a body without its trailing line end and spaces: an
 * answer that goes inside a JSONL line. */
static inline size_t sim_batch_trimmed(const llm_buf *b)
{
  size_t n = b->len;
  while (n && (b->data[n - 1] == '\n' || b->data[n - 1] == ' '))
    n--;
  return n;
}

/* OpenAI's documented limits for a batch input file (Batch API reference,
 * "input_file_id": up to 50,000 requests, up to 200 MB). */
#define SIM_BATCH_MAX_LINES 50000
#define SIM_BATCH_MAX_FILE_BYTES ((size_t)200 << 20)

typedef struct sim_file {
  char id[40];          /* "file-..." */
  char *filename;
  char purpose[24];     /* "batch", "batch_output", ... */
  char *data;
  size_t len;
  int64_t created_at;   /* Unix seconds */
} sim_file;

typedef struct sim_batch sim_batch;
typedef struct sim_batches sim_batches;
typedef struct sim_msgbatch sim_msgbatch;

struct sim_batches {
  sim_file **files;
  size_t nfiles, capfiles;
  sim_batch **batches;
  size_t nbatches, capbatches;
  sim_msgbatch **mbatches;  /* Anthropic's, oldest first */
  size_t nmbatches, capmbatches;
  uint64_t salt, next_id;   /* ids stay unique across server restarts */
  _Atomic uint64_t files_uploaded, batches_created, batches_cancelled, lines_answered,
    lines_failed, lines_expired;
  /* Anthropic's: batches created and canceled, requests answered (errored
   * ones too), errored, and ended without running (canceled or expired) */
  _Atomic uint64_t msg_batches_created, msg_batches_canceled, msg_requests_answered,
    msg_requests_errored, msg_requests_not_run;
};

sim_batches *sim_batches_new(void);
void sim_batches_free(sim_batches *b);
/* Forgets every file and batch and zeroes the counters (sim_server_reset). */
void sim_batches_clear(sim_batches *b);

/* 1 when the URL path belongs to the Batch API. */
int sim_batch_route(const char *url);
/* Answers a request routed here (faults first, then the endpoint). */
void sim_batch_handle(sim_req *r);
/* Appends ,"batch":{...counters...} to the stats object being written. */
void sim_batch_stats_json(sim_server *s, llm_buf *out);

/* What both APIs share (sim_batch.c). The knobs of a batch being created:
 * the server's config, then the x-sim-batch-* headers; 0, or -1 after a
 * 400. */
int sim_batch_knobs(sim_req *r, double *turnaround, double *expire, double *fail);
/* How many of n requests are answered t seconds after creation, when they
 * are answered in proportion to the time between v and p. */
size_t sim_batch_due(size_t n, double t, double v, double p);
/* 1 when the request with this custom_id fails at this rate (a hash of
 * the seed and the id: the same requests fail every time). */
int sim_batch_line_fails(sim_server *s, double rate, const char *custom_id);

/* sim_msgbatch.c: Anthropic's Message Batches */
int sim_msgbatch_route(const char *url);
void sim_msgbatch_handle(sim_req *r);
void sim_msgbatches_free_all(sim_batches *b);

/* sim_files.c */
/* A new random id with this prefix ("file-", "batch_"...) into out. */
void sim_batch_new_id(sim_batches *b, const char *prefix, char *out, size_t n);
/* Stores a file, taking data (malloc'd). NULL when out of memory. */
sim_file *sim_files_add(sim_batches *b, const char *filename, const char *purpose, char *data,
                        size_t len);
sim_file *sim_files_find(sim_batches *b, const char *id);
void sim_file_put_json(const sim_file *f, llm_buf *out);
/* /v1/files[/{id}[/content]]: rest is what follows "/v1/files". */
void sim_files_handle(sim_req *r, const char *rest);
/* Frees every file (the batches go first: sim_batches_clear). */
void sim_files_free_all(sim_batches *b);
/* The query parameter of the request, or NULL. */
const char *sim_query(sim_req *r, const char *name);

/* sim_chat.c: one chat request body answered at once, as the endpoint
 * would answer it (the completion or OpenAI's error object) into out;
 * returns the HTTP status. *skill: the skill that answered (what the
 * endpoint's x-sim-skill header says; a static string), NULL on an error. */
unsigned sim_chat_answer_body(sim_server *s, const json_value *body, llm_buf *out,
                              const char **skill);
/* sim_messages.c: the same for a Messages API request (params of a
 * Message Batch) under the anthropic-version its batch was created with:
 * the Message, or Anthropic's error object (request_id rid). */
/* 0 when the request's anthropic-version header is one the Messages API
 * takes; -1 after its 400. */
int sim_messages_check_version(sim_req *r);
unsigned sim_messages_answer_body(sim_server *s, const json_value *params, const char *version,
                                  const char *rid, llm_buf *out);

#endif
