/* The cache store's statistics: counters kept in memory per namespace
 * and written with the next write transaction (so a hit costs no write),
 * their totals per namespace, and facts about the file. */
#include "cache_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- counting ---------------------------------------------------------------------------- */

/* Writes the pending counts inside the open write transaction;
 * cache_commit forgets them once they are on disk. */
int cache_write_stats(llm_cache *c)
{
  for (int i = 0; i < c->npending; i++) {
    pending_stats *p = &c->pending[i];
    sqlite3_stmt *st;
    int status;
    if (!p->dirty)
      continue;
    if (!(st = cache_stmt(c, S_STATS_UPSERT)))
      return LLM_CACHE_EIO;
    sqlite3_bind_text(st, 1, p->ns, -1, SQLITE_STATIC);
    for (int k = 0; k < LLM_CC_COUNT; k++)
      sqlite3_bind_double(st, 2 + k, p->counts.v[k]);
    if ((status = cache_run(c, st, "writing statistics")) != LLM_CACHE_OK)
      return status;
    c->stats_in_txn = 1;
  }
  return LLM_CACHE_OK;
}


static const char *const counter_names[LLM_CC_COUNT] = {
  "hits_exact", "hits_semantic", "hits_shared", "misses", "stores", "skipped",
  "errors", "tokens_saved", "cost_saved", "time_saved_ms",
};

const char *llm_cache_counter_name(int counter)
{
  return counter >= 0 && counter < LLM_CC_COUNT ? counter_names[counter] : NULL;
}

static pending_stats *pending_for(llm_cache *c, const char *ns, int create)
{
  pending_stats *p;
  for (int i = 0; i < c->npending; i++)
    if (strcmp(c->pending[i].ns, ns) == 0)
      return &c->pending[i];
  if (!create)
    return NULL;
  p = realloc(c->pending, (size_t)(c->npending + 1) * sizeof *p);
  if (!p)
    return NULL;
  c->pending = p;
  p = &c->pending[c->npending];
  memset(p, 0, sizeof *p);
  if (!(p->ns = strdup(ns)))
    return NULL;
  c->npending++;
  return p;
}

int llm_cache_count(llm_cache *c, const char *ns, int counter, double amount)
{
  pending_stats *p;
  if (counter < 0 || counter >= LLM_CC_COUNT || !isfinite(amount))
    return cache_error(c, LLM_CACHE_EMISUSE, "bad counter");
  if (!(p = pending_for(c, ns, 1)))
    return cache_error(c, LLM_CACHE_ENOMEM, "out of memory");
  p->counts.v[counter] += amount;
  p->dirty = 1;
  return LLM_CACHE_OK;
}

int llm_cache_flush(llm_cache *c)
{
  int dirty = 0, status = llm_cache_write_deferred(c);
  if (status != LLM_CACHE_OK)
    return status;
  for (int i = 0; i < c->npending; i++)
    dirty |= c->pending[i].dirty;
  if (!dirty || c->readonly)
    return LLM_CACHE_OK;
  if ((status = cache_begin(c)) != LLM_CACHE_OK)
    return status;
  if ((status = cache_write_stats(c)) != LLM_CACHE_OK) {
    cache_rollback(c);
    return status;
  }
  return cache_commit(c);
}

/* ---- reading statistics --------------------------------------------------------------- */

static int ns_stats(llm_cache *c, const char *ns, llm_cache_ns_stats *s)
{
  sqlite3_stmt *st;
  pending_stats *p;
  int rc;
  memset(s, 0, sizeof *s);
  s->ns = ns;
  rc = sqlite3_prepare_v2(c->db, "SELECT hits_exact, hits_semantic, hits_shared, misses, stores, "
                          "skipped, errors, tokens_saved, cost_saved, time_saved_ms FROM stats "
                          "WHERE ns = ?1", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return cache_fail(c, rc, "reading statistics");
  sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
  if ((rc = sqlite3_step(st)) == SQLITE_ROW)
    for (int k = 0; k < LLM_CC_COUNT; k++)
      s->counts.v[k] = sqlite3_column_double(st, k);
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return cache_fail(c, rc, "reading statistics");
  if ((p = pending_for(c, ns, 0)))
    for (int k = 0; k < LLM_CC_COUNT; k++)
      s->counts.v[k] += p->counts.v[k];
  rc = sqlite3_prepare_v2(c->db, "SELECT count(*), coalesce(sum(size), 0) FROM entries WHERE ns = ?1",
                          -1, &st, NULL);
  if (rc != SQLITE_OK)
    return cache_fail(c, rc, "reading statistics");
  sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
  if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    s->entries = sqlite3_column_int64(st, 0);
    s->bytes = sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW)
    return cache_fail(c, rc, "reading statistics");
  if (c->schema >= 3) {
    rc = sqlite3_prepare_v2(c->db, "SELECT count(*) FROM semantic WHERE ns = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
      return cache_fail(c, rc, "reading statistics");
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
      s->vectors = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
      return cache_fail(c, rc, "reading statistics");
  }
  return LLM_CACHE_OK;
}

int llm_cache_stats(llm_cache *c, const char *ns,
                    int (*fn)(void *ud, const llm_cache_ns_stats *s), void *ud)
{
  llm_cache_ns_stats s;
  sqlite3_stmt *st;
  int rc, status = llm_cache_write_deferred(c); /* entries waiting count too */
  if (status != LLM_CACHE_OK)
    return status;
  if (ns) {
    if ((status = ns_stats(c, ns, &s)) == LLM_CACHE_OK)
      fn(ud, &s);
    return status;
  }
  /* every namespace on disk, plus those only counted in memory so far */
  if (sqlite3_exec(c->db, "CREATE TEMP TABLE IF NOT EXISTS pending_ns (ns TEXT PRIMARY KEY);"
                   "DELETE FROM pending_ns", NULL, NULL, NULL) != SQLITE_OK)
    return cache_fail(c, sqlite3_errcode(c->db), "listing namespaces");
  rc = sqlite3_prepare_v2(c->db, "INSERT OR IGNORE INTO pending_ns VALUES (?1)", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return cache_fail(c, rc, "listing namespaces");
  for (int i = 0; i < c->npending; i++) {
    sqlite3_bind_text(st, 1, c->pending[i].ns, -1, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  rc = sqlite3_prepare_v2(c->db, "SELECT ns FROM stats UNION SELECT ns FROM entries "
                          "UNION SELECT ns FROM temp.pending_ns ORDER BY 1", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return cache_fail(c, rc, "listing namespaces");
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    char *name = strdup((const char *)sqlite3_column_text(st, 0));
    if (!name) {
      status = LLM_CACHE_ENOMEM;
      break;
    }
    status = ns_stats(c, name, &s);
    if (status == LLM_CACHE_OK && fn(ud, &s) != 0) {
      free(name);
      break;
    }
    free(name);
    if (status != LLM_CACHE_OK)
      break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE && status == LLM_CACHE_OK)
    status = cache_fail(c, rc, "listing namespaces");
  sqlite3_finalize(st);
  return status;
}

static int64_t count_rows(llm_cache *c, const char *text, int *status)
{
  sqlite3_stmt *st;
  int64_t v = 0;
  int rc = sqlite3_prepare_v2(c->db, text, -1, &st, NULL);
  if (rc != SQLITE_OK) {
    *status = cache_fail(c, rc, "counting");
    return 0;
  }
  v = cache_scalar(c, st, 0, status);
  sqlite3_finalize(st);
  return v;
}

int llm_cache_info_get(llm_cache *c, llm_cache_info *out)
{
  int status = llm_cache_write_deferred(c); /* entries waiting count too */
  memset(out, 0, sizeof *out);
  if (status != LLM_CACHE_OK)
    return status;
  out->bytes = count_rows(c, "SELECT bytes FROM totals WHERE id = 1", &status);
  if (status == LLM_CACHE_OK)
    out->entries = count_rows(c, "SELECT count(*) FROM entries", &status);
  if (status == LLM_CACHE_OK && c->schema >= 2)
    out->embeddings = count_rows(c, "SELECT count(*) FROM embeddings", &status);
  if (status == LLM_CACHE_OK && c->schema >= 3)
    out->vectors = count_rows(c, "SELECT count(*) FROM semantic", &status);
  if (status == LLM_CACHE_OK && c->schema >= 3)
    out->audits = count_rows(c, "SELECT count(*) FROM audit", &status);
  if (c->lru) {
    out->memory_bytes = llm_lru_bytes(c->lru);
    out->memory_entries = llm_lru_count(c->lru);
    out->memory_budget = llm_lru_budget(c->lru);
  }
  out->memory_hits = c->memory_hits;
  out->disk_hits = c->disk_hits;
  out->misses = c->misses;
  return status;
}

int llm_cache_integrity(llm_cache *c, char *out, size_t n)
{
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(c->db, "PRAGMA integrity_check", -1, &st, NULL);
  if (rc != SQLITE_OK) {
    snprintf(out, n, "%s", sqlite3_errmsg(c->db));
    return cache_fail(c, rc, "checking integrity");
  }
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
  else
    snprintf(out, n, "%s", sqlite3_errmsg(c->db));
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? LLM_CACHE_OK : cache_fail(c, rc, "checking integrity");
}
