/* Shared by the cache engine's files (cache.c: statements, transactions
 * and responses; cache_open.c: opening, the schema, closing;
 * cache_stats.c: statistics; cache_vectors.c: embeddings, semantic
 * vectors and audits; cache_defer.c: stores waiting for their batch).
 * Not for other code: use cache.h. */
#ifndef LLMRUN_CACHE_INTERNAL_H
#define LLMRUN_CACHE_INTERNAL_H

#include <sqlite3.h>

#include "buf.h"
#include "cache.h"
#include "cache_lru.h"
#include "vecindex.h"

/* Prepared statements, made on first use (an old schema under test lacks
 * the tables of later migrations). */
enum cache_stmt {
  S_BEGIN, S_COMMIT, S_ROLLBACK,
  S_GET, S_PUT, S_DELETE, S_DATA_VERSION, S_GENERATION, S_BUMP_GENERATION,
  S_TOTAL_BYTES, S_PURGE_EXPIRED, S_OLDEST_ENTRY, S_OLDEST_EMBEDDING,
  S_EVICT_ENTRIES, S_EVICT_EMBEDDINGS, S_STATS_UPSERT,
  S_EMB_GET, S_EMB_PUT,
  S_SEM_ADD, S_SEM_LOAD, S_SEM_DELETE, S_AUDIT_ADD,
  S_COUNT
};

typedef struct pending_stats {
  char *ns;
  llm_cache_counts counts;
  int dirty;
} pending_stats;

/* A response store waiting to be written (cache_defer.c). */
typedef struct deferred_put {
  char *ns;
  uint8_t key[LLM_CACHE_KEY_SIZE];
  char *data;
  size_t len;
  double created, expires;
} deferred_put;

/* One semantic space loaded in memory. */
typedef struct sem_space {
  char *ns, *space;
  llm_vecindex *ix;
  int64_t loaded_upto;      /* highest row id read from sqlite */
} sem_space;

struct llm_cache {
  sqlite3 *db;
  char *path;
  int readonly, schema;
  char readonly_why[512];   /* why a store opened for writing is read-only; "" if asked */
  sqlite3_stmt *st[S_COUNT];
  llm_lru *lru;
  int64_t max_bytes;
  size_t max_entry_bytes;
  llm_buf buf;              /* results handed to the caller */
  pending_stats *pending;
  int npending;
  int stats_in_txn;         /* pending counts were written in the open transaction */
  sem_space *spaces;
  int nspaces;
  int64_t data_version, generation;
  double last_shared_check;  /* monotonic seconds of the last look for other processes' clears */
  double last_purge;
  int64_t memory_hits, disk_hits, misses;
  int defer_puts;           /* puts wait for llm_cache_write_deferred */
  deferred_put *deferred;
  size_t cap_deferred, deferred_bytes;
  int ndeferred, writing_deferred;
  long deferred_failures;
  char deferred_why[512];   /* why the last batch could not be written (errmsg's size) */
  char errmsg[512];
};

/* The statement, prepared and reset, or NULL (errmsg set). */
sqlite3_stmt *cache_stmt(llm_cache *c, int id);
/* Maps a sqlite result code to a status and records a message. */
int cache_fail(llm_cache *c, int rc, const char *what);
/* Sets errmsg from a format; returns status. */
int cache_error(llm_cache *c, int status, const char *fmt, ...);
/* BEGIN IMMEDIATE (refused on a read-only store). */
int cache_begin(llm_cache *c);
/* Runs a statement that returns no rows (or ignores them), then resets it. */
int cache_run(llm_cache *c, sqlite3_stmt *st, const char *what);
/* The first column of the first row as an integer (def when no row). */
int64_t cache_scalar(llm_cache *c, sqlite3_stmt *st, int64_t def, int *status);
/* Writes the pending statistics in the open write transaction. */
int cache_write_stats(llm_cache *c);
/* Eviction and pending statistics, inside the write transaction. */
int cache_before_commit(llm_cache *c, double now);
int cache_commit(llm_cache *c);
void cache_rollback(llm_cache *c);
/* Inserts or replaces a response row in the open write transaction. */
int cache_insert(llm_cache *c, const char *ns, const uint8_t key[LLM_CACHE_KEY_SIZE],
                 const void *data, size_t len, double now, double expires);
/* Deferred puts (cache_defer.c): keep one (written at once past the
 * batch's bounds), find a waiting one, forget them all. */
int cache_defer_add(llm_cache *c, const char *ns, const uint8_t key[LLM_CACHE_KEY_SIZE],
                    const void *data, size_t len, double now, double expires);
const deferred_put *cache_defer_find(const llm_cache *c, const char *ns,
                                     const uint8_t key[LLM_CACHE_KEY_SIZE]);
void cache_defer_free(llm_cache *c);
/* Copies len bytes into c->buf (NUL-terminated); NULL when out of memory. */
char *cache_keep(llm_cache *c, const void *data, size_t len);
/* Empties the memory layer when another process cleared the store. */
void cache_check_generation(llm_cache *c);
void cache_drop_spaces(llm_cache *c);

#endif
