/* The record of submitted Batch API jobs, so that a script killed while
 * its batch runs finds the batch again when it is rerun instead of paying
 * for a second one. One sqlite file, $XDG_DATA_HOME/llmrun/batches.db by
 * default (lualib/llm/batch_store.lua decides where), beside the call log
 * but not in it: this record must be written at once and always (the call
 * log is off in dry runs and with LLMRUN_LOG=0, and its writer thread
 * commits rows a quarter of a second late), and it is small.
 *
 * A row is one batch: its id at the provider, the content hash of the
 * requests it carries (the key a rerun looks it up by), where it was sent
 * (provider, base URL, model), how many requests, its last known status.
 * Rows hold no API key and no request text.
 *
 * Safe for several processes: WAL, a busy timeout, one statement per
 * change; the file is created 0600 in a 0700 directory. The schema
 * version is PRAGMA user_version; a newer one is refused. */
#ifndef LLMRUN_BATCHSTORE_H
#define LLMRUN_BATCHSTORE_H

#include <stddef.h>
#include <stdint.h>

#define LLM_BATCHSTORE_SCHEMA 1

typedef struct llm_batchstore llm_batchstore;

typedef struct llm_batch_rec {
  const char *batch_id;   /* the provider's id */
  const char *hash;       /* content hash of the requests (hex) */
  const char *provider, *base_url, *model;
  const char *input_file; /* OpenAI: the uploaded input file */
  const char *status;     /* the provider's last status seen */
  const char *script, *run_id;
  int64_t requests;       /* how many requests it carries */
  int64_t first;          /* index of its first request in its llm.batch call */
  double created_at, updated_at; /* epoch seconds */
  int forgotten;          /* a rerun will not resume it */
} llm_batch_rec;

/* Opens (creating it and its directory if needed). NULL with a message. */
llm_batchstore *llm_batchstore_open(const char *path, char *err, size_t n);
void llm_batchstore_close(llm_batchstore *s);

/* Records a batch (replacing the row of the same batch_id and base_url).
 * 0, or -1 with a message. */
int llm_batchstore_put(llm_batchstore *s, const llm_batch_rec *r, char *err, size_t n);
/* Sets the status of a recorded batch. 1 when a row changed, 0 when none
 * matched, -1 on an error. */
int llm_batchstore_set_status(llm_batchstore *s, const char *batch_id, const char *base_url,
                              const char *status, double now, char *err, size_t n);
/* Marks every row with this hash forgotten (a fresh submission follows). */
int llm_batchstore_forget(llm_batchstore *s, const char *hash, char *err, size_t n);

typedef enum llm_batch_query {
  LLM_BATCH_BY_HASH,   /* rows not forgotten with this hash, newest first */
  LLM_BATCH_BY_ID,     /* rows with this batch id (or a unique prefix), newest first */
  LLM_BATCH_ALL        /* every row, newest first */
} llm_batch_query;

/* Calls fn for each row (strings valid during the call) until fn returns
 * non-zero or limit rows were seen (0: no limit). 0, or -1 with a message. */
int llm_batchstore_query(llm_batchstore *s, llm_batch_query q, const char *arg, int64_t limit,
                         int (*fn)(void *ud, const llm_batch_rec *r), void *ud, char *err,
                         size_t n);

#endif
