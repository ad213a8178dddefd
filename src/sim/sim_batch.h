/* The simulator's Batch API: OpenAI's Files (/v1/files) and Batches
 * (/v1/batches) endpoints, shared by sim_files.c (the file store, uploads
 * and downloads) and sim_batch.c (batches, their status transitions and
 * answers). Private to the simulator; everything here runs on the server
 * thread, except the counters, which any thread may read.
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

struct sim_batches {
  sim_file **files;
  size_t nfiles, capfiles;
  sim_batch **batches;
  size_t nbatches, capbatches;
  uint64_t salt, next_id;   /* ids stay unique across server restarts */
  _Atomic uint64_t files_uploaded, batches_created, batches_cancelled, lines_answered,
    lines_failed, lines_expired;
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

#endif
