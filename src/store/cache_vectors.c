/* The cache store's vectors: embeddings by (model, dimensions, text),
 * semantic-cache prompt vectors with their in-memory index, and the audit
 * records of semantic hits. Vectors are stored as float32 blobs in the
 * machine's byte order (little-endian wherever llmrun builds). */
#include "cache_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- embeddings ---------------------------------------------------------------------- */

int llm_cache_embed_get(llm_cache *c, const char *model, int dims,
                        const uint8_t text_hash[LLM_CACHE_KEY_SIZE], double now,
                        const float **vec, int *dim)
{
  sqlite3_stmt *st = cache_stmt(c, S_EMB_GET);
  int rc;
  (void)now;
  if (!st)
    return LLM_CACHE_EIO;
  sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, dims);
  sqlite3_bind_blob(st, 3, text_hash, LLM_CACHE_KEY_SIZE, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    size_t len = (size_t)sqlite3_column_bytes(st, 0);
    const char *data = cache_keep(c, sqlite3_column_blob(st, 0), len);
    sqlite3_reset(st);
    if (!data)
      return cache_error(c, LLM_CACHE_ENOMEM, "out of memory");
    if (len == 0 || len % sizeof(float) != 0)
      return cache_error(c, LLM_CACHE_ECORRUPT, "an embedding of %zu bytes in %s", len, c->path);
    *vec = (const float *)(const void *)data; /* c->buf.data comes from malloc: aligned */
    *dim = (int)(len / sizeof(float));
    c->disk_hits++;
    return LLM_CACHE_OK;
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return cache_fail(c, rc, "looking up an embedding");
  c->misses++;
  return LLM_CACHE_MISS;
}

int llm_cache_embed_put(llm_cache *c, const char *model, int dims, int n,
                        const uint8_t (*text_hashes)[LLM_CACHE_KEY_SIZE],
                        const float *const *vecs, const int *lens, double now)
{
  sqlite3_stmt *st;
  int status = cache_begin(c);
  if (status != LLM_CACHE_OK)
    return status;
  for (int i = 0; i < n; i++) {
    if (!(st = cache_stmt(c, S_EMB_PUT))) {
      status = LLM_CACHE_EIO;
      goto fail;
    }
    sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, dims);
    sqlite3_bind_blob(st, 3, text_hashes[i], LLM_CACHE_KEY_SIZE, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 4, vecs[i], (sqlite3_uint64)lens[i] * sizeof(float), SQLITE_STATIC);
    sqlite3_bind_double(st, 5, now);
    sqlite3_step(st);
    if ((status = sqlite3_reset(st)) != SQLITE_OK) {
      status = cache_fail(c, status, "storing an embedding");
      goto fail;
    }
  }
  if ((status = cache_before_commit(c, now)) != LLM_CACHE_OK)
    goto fail;
  return cache_commit(c);
fail:
  cache_rollback(c);
  return status;
}

/* ---- semantic spaces in memory ----------------------------------------------------------- */

void cache_drop_spaces(llm_cache *c)
{
  for (int i = 0; i < c->nspaces; i++) {
    free(c->spaces[i].ns);
    free(c->spaces[i].space);
    llm_vecindex_free(c->spaces[i].ix);
  }
  free(c->spaces);
  c->spaces = NULL;
  c->nspaces = 0;
}

static sem_space *find_space(llm_cache *c, const char *ns, const char *space)
{
  for (int i = 0; i < c->nspaces; i++)
    if (strcmp(c->spaces[i].ns, ns) == 0 && strcmp(c->spaces[i].space, space) == 0)
      return &c->spaces[i];
  return NULL;
}

static sem_space *new_space(llm_cache *c, const char *ns, const char *space, int dim)
{
  sem_space *s = realloc(c->spaces, (size_t)(c->nspaces + 1) * sizeof *s);
  if (!s)
    return NULL;
  c->spaces = s;
  s = &c->spaces[c->nspaces];
  s->ns = strdup(ns);
  s->space = strdup(space);
  s->ix = llm_vecindex_new(dim);
  s->loaded_upto = 0;
  if (!s->ns || !s->space || !s->ix) {
    free(s->ns);
    free(s->space);
    llm_vecindex_free(s->ix);
    return NULL;
  }
  c->nspaces++;
  return s;
}

/* Reads the rows added since the last look (by us or another process). */
static int load_space(llm_cache *c, sem_space *s)
{
  sqlite3_stmt *st = cache_stmt(c, S_SEM_LOAD);
  int rc, dim = llm_vecindex_dim(s->ix);
  if (!st)
    return LLM_CACHE_EIO;
  sqlite3_bind_text(st, 1, s->ns, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, s->space, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, s->loaded_upto);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    uint64_t scope = (uint64_t)sqlite3_column_int64(st, 1);
    const void *blob = sqlite3_column_blob(st, 2);
    int bytes = sqlite3_column_bytes(st, 2);
    s->loaded_upto = id;
    if (bytes != dim * (int)sizeof(float))
      continue; /* another dimension under the same name: not comparable */
    float tmp[1024], *v = tmp;
    if (dim > 1024 && !(v = malloc((size_t)bytes))) {
      sqlite3_reset(st);
      return cache_error(c, LLM_CACHE_ENOMEM, "out of memory");
    }
    memcpy(v, blob, (size_t)bytes); /* the blob need not be aligned */
    /* a zero vector is skipped: it matches nothing */
    llm_vecindex_add(s->ix, id, scope, v);
    if (v != tmp)
      free(v);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return cache_fail(c, rc, "loading semantic vectors");
  return LLM_CACHE_OK;
}

static int open_space(llm_cache *c, const char *ns, const char *space, int dim, sem_space **out)
{
  sem_space *s = find_space(c, ns, space);
  if (s && llm_vecindex_dim(s->ix) != dim)
    return cache_error(c, LLM_CACHE_EMISUSE, "semantic space %s has %d dimensions, not %d",
                       space, llm_vecindex_dim(s->ix), dim);
  if (!s && !(s = new_space(c, ns, space, dim)))
    return cache_error(c, LLM_CACHE_ENOMEM, "out of memory");
  *out = s;
  return load_space(c, s);
}

int llm_cache_sem_add(llm_cache *c, const char *ns, const char *space, uint64_t scope,
                      const uint8_t key[LLM_CACHE_KEY_SIZE], const float *vec, int dim,
                      const char *prompt, double now, int64_t *id)
{
  sqlite3_stmt *st;
  sem_space *s;
  int status;
  if (dim <= 0)
    return cache_error(c, LLM_CACHE_EMISUSE, "empty vector");
  if (c->schema < 3)
    return cache_error(c, LLM_CACHE_EMISUSE, "the semantic cache needs schema 3");
  cache_check_generation(c);
  if ((status = open_space(c, ns, space, dim, &s)) != LLM_CACHE_OK)
    return status;
  if ((status = cache_begin(c)) != LLM_CACHE_OK)
    return status;
  if (!(st = cache_stmt(c, S_SEM_ADD))) {
    status = LLM_CACHE_EIO;
    goto fail;
  }
  sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, space, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)scope);
  sqlite3_bind_blob(st, 4, key, LLM_CACHE_KEY_SIZE, SQLITE_STATIC);
  sqlite3_bind_blob64(st, 5, vec, (sqlite3_uint64)dim * sizeof(float), SQLITE_STATIC);
  if (prompt)
    sqlite3_bind_text(st, 6, prompt, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 6);
  sqlite3_bind_double(st, 7, now);
  if ((status = sqlite3_step(st)) != SQLITE_DONE) {
    sqlite3_reset(st);
    status = cache_fail(c, status, "storing a semantic vector");
    goto fail;
  }
  sqlite3_reset(st);
  int64_t rowid = sqlite3_last_insert_rowid(c->db);
  if ((status = cache_before_commit(c, now)) != LLM_CACHE_OK)
    goto fail;
  if ((status = cache_commit(c)) != LLM_CACHE_OK)
    return status;
  /* reads our row back, with any that other processes added meanwhile */
  if ((status = load_space(c, s)) != LLM_CACHE_OK)
    return status;
  if (id)
    *id = rowid;
  return LLM_CACHE_OK;
fail:
  cache_rollback(c);
  return status;
}

int llm_cache_sem_search(llm_cache *c, const char *ns, const char *space, uint64_t scope,
                         const float *q, int dim, llm_cache_sem_hit *hit)
{
  sqlite3_stmt *st;
  sem_space *s;
  int64_t id;
  float sim;
  int status, rc;
  if (c->schema < 3)
    return LLM_CACHE_MISS;
  cache_check_generation(c);
  if ((status = open_space(c, ns, space, dim, &s)) != LLM_CACHE_OK)
    return status;
  if (!llm_vecindex_search(s->ix, scope, q, &id, &sim))
    return LLM_CACHE_MISS;
  rc = sqlite3_prepare_v2(c->db, "SELECT key, prompt FROM semantic WHERE id = ?1", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return cache_fail(c, rc, "reading a semantic vector");
  sqlite3_bind_int64(st, 1, id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == LLM_CACHE_KEY_SIZE) {
    const char *prompt = (const char *)sqlite3_column_text(st, 1);
    memcpy(hit->key, sqlite3_column_blob(st, 0), LLM_CACHE_KEY_SIZE);
    hit->prompt = prompt ? cache_keep(c, prompt, strlen(prompt)) : NULL;
    hit->id = id;
    hit->similarity = sim;
    status = LLM_CACHE_OK;
  } else if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
    /* gone on disk (evicted, cleared by another process): forget it and look again */
    llm_vecindex_remove(s->ix, id);
    status = -100;
  } else {
    status = cache_fail(c, rc, "reading a semantic vector");
  }
  sqlite3_finalize(st);
  if (status == -100)
    return llm_cache_sem_search(c, ns, space, scope, q, dim, hit);
  return status;
}

int llm_cache_sem_remove(llm_cache *c, const char *ns, const char *space, int64_t id)
{
  sem_space *s = find_space(c, ns, space);
  sqlite3_stmt *st;
  int status;
  if (s)
    llm_vecindex_remove(s->ix, id);
  if ((status = cache_begin(c)) != LLM_CACHE_OK)
    return status;
  if (!(st = cache_stmt(c, S_SEM_DELETE))) {
    cache_rollback(c);
    return LLM_CACHE_EIO;
  }
  sqlite3_bind_int64(st, 1, id);
  sqlite3_step(st);
  if ((status = sqlite3_reset(st)) != SQLITE_OK) {
    status = cache_fail(c, status, "removing a semantic vector");
    cache_rollback(c);
    return status;
  }
  return cache_commit(c);
}

/* ---- audit ----------------------------------------------------------------------------- */

int llm_cache_audit_add(llm_cache *c, const char *ns, double similarity, int differs,
                        double weight, double now)
{
  sqlite3_stmt *st;
  int status;
  if (c->schema < 3)
    return cache_error(c, LLM_CACHE_EMISUSE, "audits need schema 3");
  if ((status = cache_begin(c)) != LLM_CACHE_OK)
    return status;
  if (!(st = cache_stmt(c, S_AUDIT_ADD))) {
    cache_rollback(c);
    return LLM_CACHE_EIO;
  }
  sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 2, similarity);
  sqlite3_bind_int(st, 3, differs != 0);
  sqlite3_bind_double(st, 4, weight > 0 ? weight : 1);
  sqlite3_bind_double(st, 5, now);
  sqlite3_step(st);
  if ((status = sqlite3_reset(st)) != SQLITE_OK) {
    status = cache_fail(c, status, "recording an audit");
    cache_rollback(c);
    return status;
  }
  if ((status = cache_before_commit(c, now)) != LLM_CACHE_OK) {
    cache_rollback(c);
    return status;
  }
  return cache_commit(c);
}

int llm_cache_audit_table(llm_cache *c, const char *ns, const double *thresholds, int n,
                          llm_cache_audit_row *rows)
{
  sqlite3_stmt *st;
  int rc;
  if (c->schema < 3) {
    for (int i = 0; i < n; i++)
      rows[i] = (llm_cache_audit_row){thresholds[i], 0, 0, NAN};
    return LLM_CACHE_OK;
  }
  rc = sqlite3_prepare_v2(c->db, "SELECT count(*), coalesce(sum(differs), 0), coalesce(sum(weight), 0), "
                          "coalesce(sum(weight * differs), 0) FROM audit "
                          "WHERE ns = ?1 AND similarity >= ?2", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return cache_fail(c, rc, "reading audits");
  for (int i = 0; i < n; i++) {
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, thresholds[i]);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
      sqlite3_finalize(st);
      return cache_fail(c, rc, "reading audits");
    }
    double w = sqlite3_column_double(st, 2), wd = sqlite3_column_double(st, 3);
    rows[i].threshold = thresholds[i];
    rows[i].samples = sqlite3_column_int64(st, 0);
    rows[i].differed = sqlite3_column_int64(st, 1);
    rows[i].false_hit_rate = w > 0 ? wd / w : NAN;
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  return LLM_CACHE_OK;
}
