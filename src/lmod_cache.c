/* _llm.cache: the cache store (src/store/cache.h) for Lua.
 *
 *   cache.open{path=, memory_bytes=, max_bytes=, max_entry_bytes=,
 *              busy_timeout_ms=, readonly=, write_delay=} -> store | nil, err
 *     write_delay: seconds a put may wait in memory so that the puts of
 *     that time are written in one transaction (cache_defer.c; default 0:
 *     each put written at once; the gateway uses 0.05, like the call log)
 *   cache.sha256(s) -> 32 raw bytes      cache.hex(s) -> lower-case hex
 *   cache.default_path() -> path | nil, err
 *   cache.kernel() -> the vector kernel in use ("avx2+fma" | "portable")
 *
 *   store:get(ns, key) -> value, created, expires, from_memory | nil (miss)
 *   store:put(ns, key, value [, ttl]) -> true
 *   store:delete(ns, key) -> true
 *   store:clear([ns [, expired_only]]) -> entries removed
 *   store:count(ns, counter, amount)     store:flush() -> true
 *   store:stats([ns]) -> {{namespace=, hits_exact=, ..., entries=, bytes=, vectors=}...}
 *   store:info() -> {bytes=, entries=, embeddings=, vectors=, audits=, memory_*=, *_hits=}
 *   store:integrity() -> "ok" or the first problem
 *   store:embed_get(model, dims, hash) -> {floats} | nil (miss)
 *   store:embed_put(model, dims, {hash...}, {vector...}) -> true
 *   store:sem_add(ns, space, scope, key, vector [, prompt]) -> id
 *   store:sem_search(ns, space, scope, vector) -> key, similarity, id, prompt | nil (miss)
 *   store:sem_remove(ns, space, id) -> true
 *   store:audit_add(ns, similarity, differs, weight) -> true
 *   store:audit_table(ns, {thresholds}) -> {{threshold=, samples=, differed=, false_hit_rate=}...}
 *   store:path(), store:readonly() -> bool [, why], store:schema(), store:close()
 *   store:lost() -> answers dropped by failed write_delay batches so far, and
 *     why the last batch failed (llm.cache counts them as errors and says so)
 *
 * Runtime failures (I/O, a full disk, a read-only file, corruption)
 * return nil, err: an llm.error of kind "cache" whose status names the
 * failure ("io", "busy", "readonly", "full", "corrupt", "newer_schema"...;
 * lmod_util.h); bad arguments raise. Times are the wall clock, in epoch
 * seconds. */
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "digest.h"
#include "lmod_util.h"
#include "loop.h"
#include "store/cache.h"
#include "store/vecindex.h"
#include "task.h"

#define STORE_MT "llm.cache.store"
#define DEFAULT_WRITE_DELAY 0.0

typedef struct store {
  llm_cache *c;
  llm_loop *loop;    /* NULL: puts are written at once */
  llm_timer *timer;  /* armed while puts wait */
  double delay;
} store;

static double wallclock(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static llm_cache *check_open(lua_State *L)
{
  return llm_check_open(L, 1, STORE_MT, "cache store");
}

/* nil, err {kind = "cache", status = the failure's name, message} */
static int fail(lua_State *L, llm_cache *c, int status)
{
  return llm_fail(L, "cache", llm_cache_status_name(status), "%s", llm_cache_errmsg(c));
}

static const uint8_t *check_key(lua_State *L, int idx)
{
  size_t len;
  const char *k = luaL_checklstring(L, idx, &len);
  if (len != LLM_CACHE_KEY_SIZE)
    luaL_argerror(L, idx, "a 32-byte key expected (cache.sha256 of something)");
  return (const uint8_t *)k;
}

/* A Lua list of numbers as floats (a userdata on the stack keeps them). */
static float *check_vector(lua_State *L, int idx, int *dim)
{
  lua_Integer n;
  float *v;
  luaL_checktype(L, idx, LUA_TTABLE);
  n = luaL_len(L, idx);
  if (n <= 0 || n > (1 << 20))
    luaL_argerror(L, idx, "a non-empty list of numbers expected");
  v = lua_newuserdatauv(L, (size_t)n * sizeof(float), 0);
  for (lua_Integer i = 1; i <= n; i++) {
    int isnum;
    lua_Number x = (lua_geti(L, idx, i), lua_tonumberx(L, -1, &isnum));
    lua_pop(L, 1);
    if (!isnum)
      luaL_argerror(L, idx, "a list of numbers expected");
    v[i - 1] = (float)x;
  }
  *dim = (int)n;
  return v;
}

static void push_vector(lua_State *L, const float *v, int dim)
{
  lua_createtable(L, dim, 0);
  for (int i = 0; i < dim; i++) {
    lua_pushnumber(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* ---- module functions ------------------------------------------------------------------ */

static int l_open(lua_State *L)
{
  llm_opts o;
  llm_cache_config cfg = {0};
  store *s;
  int status;
  char err[600];
  luaL_checktype(L, 1, LUA_TTABLE);
  o = llm_opts_at(L, 1, "cache.open");
  cfg.path = llm_opt_string(&o, "path", NULL, NULL);
  cfg.memory_bytes = (size_t)llm_opt_integer(&o, "memory_bytes", 0, 0, LUA_MAXINTEGER);
  cfg.max_bytes = (int64_t)llm_opt_integer(&o, "max_bytes", 0, 0, LUA_MAXINTEGER);
  cfg.max_entry_bytes = (size_t)llm_opt_integer(&o, "max_entry_bytes", 0, 0, LUA_MAXINTEGER);
  cfg.busy_timeout_ms = (int)llm_opt_integer(&o, "busy_timeout_ms", 0, 0, INT_MAX);
  cfg.schema_limit = (int)llm_opt_integer(&o, "schema_limit", 0, 0, INT_MAX);
  cfg.readonly = llm_opt_boolean(&o, "readonly", 0);
  double delay = llm_opt_number(&o, "write_delay", DEFAULT_WRITE_DELAY, 0, 60);
  llm_sched *sched = llm_sched_of(L);
  s = llm_new_object(L, sizeof *s, STORE_MT);
  s->loop = delay > 0 && sched ? llm_sched_loop(sched) : NULL;
  s->delay = delay;
  cfg.defer_puts = s->loop != NULL;
  s->c = llm_cache_open(&cfg, &status, err, sizeof err);
  if (!s->c)
    return llm_fail(L, "cache", llm_cache_status_name(status), "%s", err);
  return 1;
}

/* The timer: the puts of the last write_delay go to disk together. A
 * failure has no caller to return to: it is counted (store:lost), and
 * llm.cache reports it at its next store, its stats or the exit. */
static void write_deferred(void *ud)
{
  store *s = ud;
  s->timer = NULL;
  if (s->c)
    llm_cache_write_deferred(s->c);
}

static int s_lost(lua_State *L)
{
  llm_cache *c = check_open(L);
  lua_pushinteger(L, (lua_Integer)llm_cache_deferred_failures(c));
  lua_pushstring(L, llm_cache_deferred_error(c));
  return 2;
}

static int l_sha256(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  uint8_t d[LLM_SHA256_SIZE];
  llm_sha256(s, len, d);
  lua_pushlstring(L, (const char *)d, sizeof d);
  return 1;
}

static int l_hex(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, 2 * len + 1);
  llm_hex((const uint8_t *)s, len, out);
  luaL_pushresultsize(&b, 2 * len);
  return 1;
}

static int l_default_path(lua_State *L)
{
  char path[4096];
  if (llm_cache_default_path(path, sizeof path, 0) != 0)
    return llm_fail(L, "cache", "io", "the cache directory: %s", strerror(errno));
  lua_pushstring(L, path);
  return 1;
}

static int l_kernel(lua_State *L)
{
  lua_pushstring(L, llm_vec_kernel());
  return 1;
}

/* ---- responses ---------------------------------------------------------------------------- */

static int s_get(lua_State *L)
{
  llm_cache *c = check_open(L);
  const char *ns = luaL_checkstring(L, 2);
  const uint8_t *key = check_key(L, 3);
  llm_cache_hit h;
  int status = llm_cache_get(c, ns, key, wallclock(), &h);
  if (status == LLM_CACHE_MISS) {
    lua_pushnil(L);
    return 1;
  }
  if (status != LLM_CACHE_OK)
    return fail(L, c, status);
  lua_pushlstring(L, h.data, h.len);
  lua_pushnumber(L, h.created);
  lua_pushnumber(L, h.expires);
  lua_pushboolean(L, h.from_memory);
  return 4;
}

static int s_put(lua_State *L)
{
  store *s = luaL_checkudata(L, 1, STORE_MT);
  llm_cache *c = check_open(L);
  const char *ns = luaL_checkstring(L, 2);
  const uint8_t *key = check_key(L, 3);
  size_t len;
  const char *value = luaL_checklstring(L, 4, &len);
  lua_Number ttl = luaL_optnumber(L, 5, 0);
  int status;
  luaL_argcheck(L, ttl >= 0 && isfinite(ttl), 5, "a TTL in seconds >= 0 expected");
  status = llm_cache_put(c, ns, key, value, len, wallclock(), ttl);
  if (status != LLM_CACHE_OK)
    return fail(L, c, status);
  if (s->loop && !s->timer && llm_cache_deferred(c) > 0 &&
      !(s->timer = llm_timer_start(s->loop, s->delay, write_deferred, s))) {
    /* no timer (out of memory): no waiting either */
    if ((status = llm_cache_write_deferred(c)) != LLM_CACHE_OK)
      return fail(L, c, status);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int s_delete(lua_State *L)
{
  llm_cache *c = check_open(L);
  int status = llm_cache_delete(c, luaL_checkstring(L, 2), check_key(L, 3));
  if (status != LLM_CACHE_OK)
    return fail(L, c, status);
  lua_pushboolean(L, 1);
  return 1;
}

static int s_clear(lua_State *L)
{
  llm_cache *c = check_open(L);
  const char *ns = luaL_optstring(L, 2, NULL);
  int64_t removed = 0;
  int status = llm_cache_clear(c, ns, lua_toboolean(L, 3), wallclock(), &removed);
  if (status != LLM_CACHE_OK)
    return fail(L, c, status);
  lua_pushinteger(L, (lua_Integer)removed);
  return 1;
}

/* ---- statistics ----------------------------------------------------------------------------- */

static int counter_index(lua_State *L, int idx)
{
  const char *name = luaL_checkstring(L, idx);
  for (int i = 0; llm_cache_counter_name(i); i++)
    if (strcmp(llm_cache_counter_name(i), name) == 0)
      return i;
  return luaL_argerror(L, idx, lua_pushfstring(L, "unknown counter '%s'", name));
}

static int s_count(lua_State *L)
{
  llm_cache *c = check_open(L);
  const char *ns = luaL_checkstring(L, 2);
  int counter = counter_index(L, 3);
  lua_Number amount = luaL_optnumber(L, 4, 1);
  luaL_argcheck(L, isfinite(amount), 4, "a finite number expected");
  if (llm_cache_count(c, ns, counter, amount) != LLM_CACHE_OK)
    return luaL_error(L, "%s", llm_cache_errmsg(c));
  return 0;
}

static int s_flush(lua_State *L)
{
  llm_cache *c = check_open(L);
  int status = llm_cache_flush(c);
  if (status != LLM_CACHE_OK)
    return fail(L, c, status);
  lua_pushboolean(L, 1);
  return 1;
}

static int push_ns_stats(void *ud, const llm_cache_ns_stats *s)
{
  lua_State *L = ud;
  lua_createtable(L, 0, LLM_CC_COUNT + 4);
  lua_pushstring(L, s->ns);
  lua_setfield(L, -2, "namespace");
  for (int i = 0; i < LLM_CC_COUNT; i++)
    llm_set_count(L, llm_cache_counter_name(i), s->counts.v[i]);
  llm_set_integer(L, "entries", s->entries);
  llm_set_integer(L, "bytes", s->bytes);
  llm_set_integer(L, "vectors", s->vectors);
  lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
  return 0;
}

static int s_stats(lua_State *L)
{
  llm_cache *c = check_open(L);
  const char *ns = luaL_optstring(L, 2, NULL);
  int status;
  lua_newtable(L);
  status = llm_cache_stats(c, ns, push_ns_stats, L);
  if (status != LLM_CACHE_OK)
    return fail(L, c, status);
  return 1;
}

static int s_info(lua_State *L)
{
  llm_cache *c = check_open(L);
  llm_cache_info info;
  int status = llm_cache_info_get(c, &info);
  if (status != LLM_CACHE_OK)
    return fail(L, c, status);
  lua_createtable(L, 0, 12);
  llm_set_integer(L, "bytes", info.bytes);
  llm_set_integer(L, "entries", info.entries);
  llm_set_integer(L, "embeddings", info.embeddings);
  llm_set_integer(L, "vectors", info.vectors);
  llm_set_integer(L, "audits", info.audits);
  llm_set_integer(L, "memory_bytes", (lua_Integer)info.memory_bytes);
  llm_set_integer(L, "memory_entries", (lua_Integer)info.memory_entries);
  llm_set_integer(L, "memory_budget", (lua_Integer)info.memory_budget);
  llm_set_integer(L, "memory_hits", info.memory_hits);
  llm_set_integer(L, "disk_hits", info.disk_hits);
  llm_set_integer(L, "misses", info.misses);
  llm_set_integer(L, "schema", llm_cache_schema_version(c));
  return 1;
}

static int s_integrity(lua_State *L)
{
  llm_cache *c = check_open(L);
  char out[512];
  llm_cache_integrity(c, out, sizeof out);
  lua_pushstring(L, out);
  return 1;
}

/* ---- embeddings ----------------------------------------------------------------------------- */

static int s_embed_get(lua_State *L)
{
  llm_cache *c = check_open(L);
  const char *model = luaL_checkstring(L, 2);
  int dims = (int)luaL_checkinteger(L, 3);
  const uint8_t *hash = check_key(L, 4);
  const float *v;
  int dim, status = llm_cache_embed_get(c, model, dims, hash, wallclock(), &v, &dim);
  if (status == LLM_CACHE_MISS) {
    lua_pushnil(L);
    return 1;
  }
  if (status != LLM_CACHE_OK)
    return fail(L, c, status);
  push_vector(L, v, dim);
  return 1;
}

static int s_embed_put(lua_State *L)
{
  llm_cache *c = check_open(L);
  const char *model = luaL_checkstring(L, 2);
  int dims = (int)luaL_checkinteger(L, 3);
  lua_Integer n;
  luaL_checktype(L, 4, LUA_TTABLE);
  luaL_checktype(L, 5, LUA_TTABLE);
  n = luaL_len(L, 4);
  luaL_argcheck(L, n == luaL_len(L, 5), 5, "as many vectors as hashes expected");
  if (n == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  /* the arrays live in userdata so an error cannot leak them */
  uint8_t (*hashes)[LLM_CACHE_KEY_SIZE] = lua_newuserdatauv(L, (size_t)n * LLM_CACHE_KEY_SIZE, 0);
  const float **vecs = lua_newuserdatauv(L, (size_t)n * sizeof *vecs, 0);
  int *lens = lua_newuserdatauv(L, (size_t)n * sizeof *lens, 0);
  int top = lua_gettop(L);
  luaL_checkstack(L, (int)n + 4, "too many vectors");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 4, i);
    memcpy(hashes[i - 1], check_key(L, -1), LLM_CACHE_KEY_SIZE);
    lua_pop(L, 1);
    lua_geti(L, 5, i);
    vecs[i - 1] = check_vector(L, lua_gettop(L), &lens[i - 1]); /* userdata stays above top */
    /* drop the vector's table: only its float copy stays, one slot per
     * vector, as luaL_checkstack above reserved (two per vector overran
     * the stack from about 45 vectors on) */
    lua_remove(L, -2);
  }
  int status = llm_cache_embed_put(c, model, dims, (int)n, (const uint8_t (*)[LLM_CACHE_KEY_SIZE])hashes,
                                   vecs, lens, wallclock());
  lua_settop(L, top);
  if (status != LLM_CACHE_OK)
    return fail(L, c, status);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- semantic vectors and audits ---------------------------------------------------------------- */

static int s_sem_add(lua_State *L)
{
  llm_cache *c = check_open(L);
  const char *ns = luaL_checkstring(L, 2), *space = luaL_checkstring(L, 3);
  uint64_t scope = (uint64_t)luaL_checkinteger(L, 4);
  const uint8_t *key = check_key(L, 5);
  const char *prompt = luaL_optstring(L, 7, NULL);
  int dim;
  float *v = check_vector(L, 6, &dim);
  int64_t id;
  int status = llm_cache_sem_add(c, ns, space, scope, key, v, dim, prompt, wallclock(), &id);
  if (status != LLM_CACHE_OK)
    return fail(L, c, status);
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

static int s_sem_search(lua_State *L)
{
  llm_cache *c = check_open(L);
  const char *ns = luaL_checkstring(L, 2), *space = luaL_checkstring(L, 3);
  uint64_t scope = (uint64_t)luaL_checkinteger(L, 4);
  int dim;
  float *q = check_vector(L, 5, &dim);
  llm_cache_sem_hit hit;
  int status = llm_cache_sem_search(c, ns, space, scope, q, dim, &hit);
  if (status == LLM_CACHE_MISS) {
    lua_pushnil(L);
    return 1;
  }
  if (status == LLM_CACHE_EMISUSE)
    return luaL_error(L, "%s", llm_cache_errmsg(c));
  if (status != LLM_CACHE_OK)
    return fail(L, c, status);
  lua_pushlstring(L, (const char *)hit.key, LLM_CACHE_KEY_SIZE);
  lua_pushnumber(L, hit.similarity);
  lua_pushinteger(L, (lua_Integer)hit.id);
  if (hit.prompt)
    lua_pushstring(L, hit.prompt);
  else
    lua_pushnil(L);
  return 4;
}

static int s_sem_remove(lua_State *L)
{
  llm_cache *c = check_open(L);
  int status = llm_cache_sem_remove(c, luaL_checkstring(L, 2), luaL_checkstring(L, 3),
                                    (int64_t)luaL_checkinteger(L, 4));
  if (status != LLM_CACHE_OK)
    return fail(L, c, status);
  lua_pushboolean(L, 1);
  return 1;
}

static int s_audit_add(lua_State *L)
{
  llm_cache *c = check_open(L);
  const char *ns = luaL_checkstring(L, 2);
  lua_Number sim = luaL_checknumber(L, 3);
  int differs = lua_toboolean(L, 4);
  lua_Number weight = luaL_optnumber(L, 5, 1);
  int status = llm_cache_audit_add(c, ns, sim, differs, weight, wallclock());
  if (status != LLM_CACHE_OK)
    return fail(L, c, status);
  lua_pushboolean(L, 1);
  return 1;
}

static int s_audit_table(lua_State *L)
{
  llm_cache *c = check_open(L);
  const char *ns = luaL_checkstring(L, 2);
  lua_Integer n;
  luaL_checktype(L, 3, LUA_TTABLE);
  n = luaL_len(L, 3);
  luaL_argcheck(L, n > 0 && n <= 1000, 3, "a list of thresholds expected");
  double *th = lua_newuserdatauv(L, (size_t)n * sizeof *th, 0);
  llm_cache_audit_row *rows = lua_newuserdatauv(L, (size_t)n * sizeof *rows, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 3, i);
    th[i - 1] = luaL_checknumber(L, -1);
    lua_pop(L, 1);
  }
  int status = llm_cache_audit_table(c, ns, th, (int)n, rows);
  if (status != LLM_CACHE_OK)
    return fail(L, c, status);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 0; i < n; i++) {
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, rows[i].threshold); /* as given, even math.huge */
    lua_setfield(L, -2, "threshold");
    llm_set_integer(L, "samples", rows[i].samples);
    llm_set_integer(L, "differed", rows[i].differed);
    llm_set_number(L, "false_hit_rate", rows[i].false_hit_rate);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* ---- the userdata --------------------------------------------------------------------------------- */

static int s_path(lua_State *L)
{
  lua_pushstring(L, llm_cache_path(check_open(L)));
  return 1;
}

/* -> read-only?, and why when a store opened for writing is read-only */
static int s_readonly(lua_State *L)
{
  llm_cache *c = check_open(L);
  lua_pushboolean(L, llm_cache_is_readonly(c));
  if (llm_cache_is_readonly(c) && llm_cache_readonly_reason(c)[0]) {
    lua_pushstring(L, llm_cache_readonly_reason(c));
    return 2;
  }
  return 1;
}

static int s_schema(lua_State *L)
{
  lua_pushinteger(L, llm_cache_schema_version(check_open(L)));
  return 1;
}

/* __gc, __close and close: writes pending statistics; twice is harmless. */
static int s_close(lua_State *L)
{
  store *s = luaL_checkudata(L, 1, STORE_MT);
  if (s->timer) {
    llm_timer_stop(s->loop, s->timer);
    s->timer = NULL;
  }
  if (s->c) {
    llm_cache_close(s->c);
    s->c = NULL;
  }
  return 0;
}

static int s_tostring(lua_State *L)
{
  store *s = luaL_checkudata(L, 1, STORE_MT);
  if (s->c)
    lua_pushfstring(L, "cache store (%s)", llm_cache_path(s->c));
  else
    lua_pushliteral(L, "cache store (closed)");
  return 1;
}

static const luaL_Reg store_methods[] = {
  {"get", s_get},
  {"put", s_put},
  {"delete", s_delete},
  {"clear", s_clear},
  {"count", s_count},
  {"flush", s_flush},
  {"lost", s_lost},
  {"stats", s_stats},
  {"info", s_info},
  {"integrity", s_integrity},
  {"embed_get", s_embed_get},
  {"embed_put", s_embed_put},
  {"sem_add", s_sem_add},
  {"sem_search", s_sem_search},
  {"sem_remove", s_sem_remove},
  {"audit_add", s_audit_add},
  {"audit_table", s_audit_table},
  {"path", s_path},
  {"readonly", s_readonly},
  {"schema", s_schema},
  {"close", s_close},
  {NULL, NULL}
};

static const luaL_Reg store_metamethods[] = {
  {"__gc", s_close},
  {"__close", s_close},
  {"__tostring", s_tostring},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"open", l_open},
  {"sha256", l_sha256},
  {"hex", l_hex},
  {"default_path", l_default_path},
  {"kernel", l_kernel},
  {NULL, NULL}
};

int luaopen__llm_cache(lua_State *L)
{
  llm_class_register(L, STORE_MT, store_metamethods, store_methods, NULL);
  luaL_newlib(L, funcs);
  lua_pushinteger(L, LLM_CACHE_SCHEMA_VERSION);
  lua_setfield(L, -2, "SCHEMA_VERSION");
  return 1;
}
