/* _llm.metrics: histograms, call collectors and bootstrap comparisons.
 *
 *   metrics.hist([exact_max]) -> hist
 *     hist:add(v) -> true | false (refused: NaN, infinite, negative)
 *     hist:percentile(p) -> number | nil     hist:summary() -> table
 *     hist:count()  hist:reset()  hist:close()
 *   metrics.collector([keep_max]) -> collector
 *     collector:add(flags, latency, ttft, cost, start, prompt, completion,
 *                   cached, retries, case)        (numbers may be nil)
 *     collector:totals() -> {calls=, ok=, errors=, ..., latency={p50=...}}
 *     collector:quantiles(column, {p...}) -> {v...}
 *     collector:histogram(column, lo, hi, nbins) -> {count...}
 *     collector:calls()  collector:sampled()  collector:reset()  collector:close()
 *   metrics.compare(a, b, opts) -> {a=, b=, effect=, lo=, hi=, paired=, ...}
 *   metrics.ci(a, opts) -> estimate, lo, hi
 *     an arm is a collector (opts.column names the column) or a table of
 *     numbers with an optional .cases list of case ids beside it.
 *     opts: stat ("mean" | "sum" | "quantile"), q, diff, pair, reps, level,
 *     seed, max_n.
 *   metrics.OK, ERROR, PARTIAL, HIT: collector flags; metrics.error_bound
 *
 * NaN and infinities never reach Lua from here: unknown values are nil. */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"
#include "lmod_util.h"
#include "lmod_metrics.h"

#define HIST_MT "llm.hist"
#define ARM_MT "llm.metrics.arm" /* frees a comparison's arrays if an error cuts it short */

static const char *const column_names[] = {"latency", "ttft", "lookup", "cost", "tokens",
                                           "prompt", "completion", "error", "hit", NULL};

static void push_summary(lua_State *L, const llm_summary *s)
{
  lua_createtable(L, 0, 11);
  llm_set_integer(L, "count", (lua_Integer)(double)s->count);
  llm_set_number(L, "min", s->min);
  llm_set_number(L, "max", s->max);
  llm_set_number(L, "mean", s->mean);
  llm_set_number(L, "stdev", s->stdev);
  llm_set_number(L, "p50", s->p50);
  llm_set_number(L, "p90", s->p90);
  llm_set_number(L, "p95", s->p95);
  llm_set_number(L, "p99", s->p99);
  lua_pushboolean(L, s->exact);
  lua_setfield(L, -2, "exact");
  if (s->rejected)
    llm_set_integer(L, "rejected", (lua_Integer)(double)s->rejected);
}

/* ---- hist ----------------------------------------------------------------- */

typedef struct { llm_hist *h; } hist_ud;

static llm_hist *check_hist(lua_State *L)
{
  return llm_check_open(L, 1, HIST_MT, "histogram");
}

static int l_hist(lua_State *L)
{
  lua_Integer exact_max = luaL_optinteger(L, 1, 0);
  hist_ud *u;
  luaL_argcheck(L, exact_max >= 0, 1, "exact_max must be >= 0");
  u = llm_new_object(L, sizeof *u, HIST_MT);
  u->h = llm_hist_new((size_t)exact_max);
  if (!u->h)
    return luaL_error(L, "out of memory");
  return 1;
}

static int h_add(lua_State *L)
{
  llm_hist *h = check_hist(L);
  lua_pushboolean(L, llm_hist_add(h, luaL_checknumber(L, 2)) == 0);
  return 1;
}

static int h_percentile(lua_State *L)
{
  llm_hist *h = check_hist(L);
  double p = luaL_checknumber(L, 2), v;
  luaL_argcheck(L, p >= 0 && p <= 100, 2, "percentile must be in [0, 100]");
  v = llm_hist_percentile(h, p);
  if (isnan(v))
    return 0;
  lua_pushnumber(L, v);
  return 1;
}

static int h_summary(lua_State *L)
{
  llm_summary s;
  llm_hist_summary(check_hist(L), &s);
  push_summary(L, &s);
  return 1;
}

static int h_count(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)llm_hist_count(check_hist(L)));
  return 1;
}

static int h_reset(lua_State *L)
{
  llm_hist_reset(check_hist(L));
  return 0;
}

static int h_close(lua_State *L)
{
  hist_ud *u = luaL_checkudata(L, 1, HIST_MT);
  llm_hist_free(u->h);
  u->h = NULL;
  return 0;
}

static int h_tostring(lua_State *L)
{
  hist_ud *u = luaL_checkudata(L, 1, HIST_MT);
  if (!u->h)
    lua_pushliteral(L, "histogram (closed)");
  else
    lua_pushfstring(L, "histogram (%I values)", (lua_Integer)llm_hist_count(u->h));
  return 1;
}

/* ---- collector --------------------------------------------------------------- */

typedef struct { llm_callstats *cs; } collector_ud;

static llm_callstats *check_collector_at(lua_State *L, int idx)
{
  return llm_check_open(L, idx, LLM_COLLECTOR_MT, "collector");
}

void llm_push_collector(lua_State *L, llm_callstats *cs)
{
  collector_ud *u = llm_new_object(L, sizeof *u, LLM_COLLECTOR_MT);
  u->cs = cs;
}

static int l_collector(lua_State *L)
{
  lua_Integer keep = luaL_optinteger(L, 1, 0);
  collector_ud *u;
  luaL_argcheck(L, keep >= 0, 1, "keep_max must be >= 0");
  u = llm_new_object(L, sizeof *u, LLM_COLLECTOR_MT);
  u->cs = llm_callstats_new((size_t)keep);
  if (!u->cs)
    return luaL_error(L, "out of memory");
  return 1;
}

static double opt_num(lua_State *L, int idx)
{
  return lua_type(L, idx) == LUA_TNUMBER ? lua_tonumber(L, idx) : NAN;
}

/* Hot path (one call per finished model call): positional arguments. */
static int c_add(lua_State *L)
{
  llm_callstats *cs = check_collector_at(L, 1);
  llm_call_sample s;
  s.flags = (unsigned)luaL_checkinteger(L, 2);
  s.latency_ms = opt_num(L, 3);
  s.ttft_ms = opt_num(L, 4);
  s.cost = opt_num(L, 5);
  s.start = opt_num(L, 6);
  s.prompt_tokens = opt_num(L, 7);
  s.completion_tokens = opt_num(L, 8);
  s.cached_tokens = opt_num(L, 9);
  s.retries = opt_num(L, 10);
  s.case_id = lua_type(L, 11) == LUA_TNIL ? NULL : luaL_tolstring(L, 11, &s.case_len);
  if (llm_callstats_add(cs, &s) != 0)
    return luaL_error(L, "out of memory");
  return 0;
}

static int c_totals(lua_State *L)
{
  llm_callstats_totals t;
  llm_callstats_summary(check_collector_at(L, 1), &t);
  lua_createtable(L, 0, 16);
  llm_set_integer(L, "calls", (lua_Integer)(double)t.calls);
  llm_set_integer(L, "ok", (lua_Integer)(double)t.ok);
  llm_set_integer(L, "errors", (lua_Integer)(double)t.errors);
  llm_set_integer(L, "partial", (lua_Integer)(double)t.partial);
  llm_set_integer(L, "hits", (lua_Integer)(double)t.hits);
  llm_set_integer(L, "retries", (lua_Integer)(double)t.retries);
  llm_set_integer(L, "cost_unknown", (lua_Integer)(double)t.cost_unknown);
  llm_set_number(L, "cost", t.cost);
  lua_createtable(L, 0, 3);
  llm_set_integer(L, "prompt", (lua_Integer)t.prompt_tokens);
  llm_set_integer(L, "completion", (lua_Integer)t.completion_tokens);
  llm_set_integer(L, "cached", (lua_Integer)t.cached_tokens);
  lua_setfield(L, -2, "tokens");
  llm_set_number(L, "first_start", t.first_start);
  llm_set_number(L, "last_end", t.last_end);
  push_summary(L, &t.latency);
  lua_setfield(L, -2, "latency");
  push_summary(L, &t.ttft);
  lua_setfield(L, -2, "ttft");
  push_summary(L, &t.lookup);
  lua_setfield(L, -2, "lookup");
  return 1;
}

/* Fetches a column as arrays; frees them on a Lua error via the caller. */
static void get_column(lua_State *L, llm_callstats *cs, int idx, double **v, uint64_t **k, size_t *n)
{
  llm_column col = (llm_column)luaL_checkoption(L, idx, NULL, column_names);
  if (llm_callstats_column(cs, col, v, k, n) != 0)
    luaL_error(L, "out of memory");
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int c_quantiles(lua_State *L)
{
  llm_callstats *cs = check_collector_at(L, 1);
  llm_column col = (llm_column)luaL_checkoption(L, 2, NULL, column_names);
  llm_hist *h = llm_callstats_hist(cs, col);
  lua_Integer np;
  luaL_checktype(L, 3, LUA_TTABLE);
  np = luaL_len(L, 3);
  lua_createtable(L, (int)np, 0);
  if (h) {
    /* latency-like columns: the histogram answers, exact or within its bound */
    for (lua_Integer i = 1; i <= np; i++) {
      double p, v;
      lua_geti(L, 3, i);
      p = lua_tonumber(L, -1);
      lua_pop(L, 1);
      v = p >= 0 && p <= 100 ? llm_hist_percentile(h, p) : NAN;
      if (isnan(v))
        lua_pushboolean(L, 0);
      else
        lua_pushnumber(L, v);
      lua_seti(L, -2, i);
    }
    return 1;
  }
  {
    double *v;
    uint64_t *k;
    size_t n;
    get_column(L, cs, 2, &v, &k, &n);
    free(k);
    qsort(v, n, sizeof *v, cmp_double);
    for (lua_Integer i = 1; i <= np; i++) {
      double p;
      lua_geti(L, 3, i);
      p = lua_tonumber(L, -1);
      lua_pop(L, 1);
      if (n == 0 || !(p >= 0 && p <= 100))
        lua_pushboolean(L, 0);
      else
        lua_pushnumber(L, v[llm_nearest_rank(p, n) - 1]);
      lua_seti(L, -2, i);
    }
    free(v);
  }
  return 1;
}

static int c_histogram(lua_State *L)
{
  llm_callstats *cs = check_collector_at(L, 1);
  double lo = luaL_checknumber(L, 3), hi = luaL_checknumber(L, 4);
  lua_Integer nb = luaL_checkinteger(L, 5);
  double *v;
  uint64_t *k;
  size_t n;
  lua_Integer *counts;
  luaL_argcheck(L, nb >= 1 && nb <= 10000, 5, "between 1 and 10000 bins expected");
  luaL_argcheck(L, isfinite(lo) && isfinite(hi) && hi > lo, 4, "hi must be above lo");
  counts = lua_newuserdatauv(L, (size_t)nb * sizeof *counts, 0);
  memset(counts, 0, (size_t)nb * sizeof *counts);
  get_column(L, cs, 2, &v, &k, &n);
  free(k);
  for (size_t i = 0; i < n; i++) {
    lua_Integer b = (lua_Integer)floor((v[i] - lo) / (hi - lo) * (double)nb);
    if (b < 0)
      b = 0;
    if (b >= nb)
      b = nb - 1;
    counts[b]++;
  }
  free(v);
  lua_createtable(L, (int)nb, 0);
  for (lua_Integer i = 0; i < nb; i++) {
    lua_pushinteger(L, counts[i]);
    lua_seti(L, -2, i + 1);
  }
  return 1;
}

static int c_calls(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)llm_callstats_calls(check_collector_at(L, 1)));
  return 1;
}

static int c_sampled(lua_State *L)
{
  lua_pushboolean(L, llm_callstats_sampled(check_collector_at(L, 1)));
  return 1;
}

static int c_reset(lua_State *L)
{
  llm_callstats_reset(check_collector_at(L, 1));
  return 0;
}

static int c_close(lua_State *L)
{
  collector_ud *u = luaL_checkudata(L, 1, LLM_COLLECTOR_MT);
  llm_callstats_free(u->cs);
  u->cs = NULL;
  return 0;
}

static int c_tostring(lua_State *L)
{
  collector_ud *u = luaL_checkudata(L, 1, LLM_COLLECTOR_MT);
  if (!u->cs)
    lua_pushliteral(L, "collector (closed)");
  else
    lua_pushfstring(L, "collector (%I calls)", (lua_Integer)llm_callstats_calls(u->cs));
  return 1;
}

/* ---- comparisons ------------------------------------------------------------------ */

/* An arm's arrays live in a userdata on the stack, so a Lua error while
 * reading a table leaves nothing to leak. */
typedef struct arm_buf {
  double *v;
  uint64_t *k;
  size_t n;
  int keyed;
  double weight;
} arm_buf;

static int arm_gc(lua_State *L)
{
  arm_buf *b = lua_touserdata(L, 1);
  free(b->v);
  free(b->k);
  b->v = NULL;
  b->k = NULL;
  return 0;
}

static arm_buf *new_arm(lua_State *L)
{
  return llm_new_object(L, sizeof(arm_buf), ARM_MT);
}

/* Reads the arm at idx (collector + column, or a table of numbers with an
 * optional .cases list) into a new arm_buf pushed on the stack. */
static arm_buf *read_arm(lua_State *L, int idx, const char *column)
{
  arm_buf *b;
  idx = lua_absindex(L, idx);
  b = new_arm(L);
  if (luaL_testudata(L, idx, LLM_COLLECTOR_MT)) {
    llm_callstats *cs = check_collector_at(L, idx);
    llm_column col;
    if (!column)
      luaL_error(L, "comparing collectors needs opts.column");
    lua_pushstring(L, column);
    col = (llm_column)luaL_checkoption(L, -1, NULL, column_names);
    lua_pop(L, 1);
    if (llm_callstats_column(cs, col, &b->v, &b->k, &b->n) != 0)
      luaL_error(L, "out of memory");
    b->weight = llm_callstats_weight(cs);
    b->keyed = 1;
    for (size_t i = 0; i < b->n; i++)
      if (b->k[i] == 0)
        b->keyed = 0;
    return b;
  }
  luaL_checktype(L, idx, LUA_TTABLE);
  {
    lua_Integer len = luaL_len(L, idx);
    int has_cases;
    lua_getfield(L, idx, "cases");
    has_cases = lua_type(L, -1) == LUA_TTABLE;
    b->v = malloc(((size_t)len + 1) * sizeof *b->v);
    b->k = malloc(((size_t)len + 1) * sizeof *b->k);
    if (!b->v || !b->k)
      luaL_error(L, "out of memory");
    b->keyed = has_cases;
    for (lua_Integer i = 1; i <= len; i++) {
      double x;
      lua_geti(L, idx, i);
      x = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : NAN;
      lua_pop(L, 1);
      if (!isfinite(x))
        continue; /* unknown values are left out */
      b->v[b->n] = x;
      b->k[b->n] = 0;
      if (has_cases) {
        size_t len2;
        const char *id;
        lua_geti(L, -1, i);
        if (lua_isnil(L, -1)) {
          b->keyed = 0;
        } else {
          id = luaL_tolstring(L, -1, &len2);
          b->k[b->n] = llm_case_key(id, len2);
          lua_pop(L, 1);
        }
        lua_pop(L, 1);
      }
      b->n++;
    }
    lua_pop(L, 1);
  }
  return b;
}

static const char *read_opts(lua_State *L, int idx, llm_boot_opts *o)
{
  static const char *const stats[] = {"mean", "sum", "quantile", NULL};
  const char *column = NULL;
  memset(o, 0, sizeof *o);
  o->pair = -1;
  if (lua_isnoneornil(L, idx))
    return NULL;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "stat");
  o->stat = (llm_stat)luaL_checkoption(L, -1, "mean", stats);
  lua_getfield(L, idx, "q");
  o->q = luaL_optnumber(L, -1, 50);
  lua_getfield(L, idx, "diff");
  o->diff = lua_toboolean(L, -1);
  lua_getfield(L, idx, "pair");
  o->pair = lua_isnil(L, -1) ? -1 : lua_toboolean(L, -1) ? -1 : 0;
  lua_getfield(L, idx, "reps");
  o->reps = (int)luaL_optinteger(L, -1, 0);
  lua_getfield(L, idx, "level");
  o->level = luaL_optnumber(L, -1, 0);
  lua_getfield(L, idx, "seed");
  o->seed = (uint64_t)luaL_optinteger(L, -1, 0x5eed);
  lua_getfield(L, idx, "max_n");
  o->max_n = (size_t)luaL_optinteger(L, -1, 0);
  lua_getfield(L, idx, "column");
  column = lua_tostring(L, -1);
  lua_pop(L, 9);
  if (o->reps < 0 || o->reps > 1000000)
    luaL_error(L, "reps must be between 1 and 1000000");
  if (!(o->q >= 0 && o->q <= 100))
    luaL_error(L, "q must be a percentile in [0, 100]");
  return column;
}

static int l_compare(lua_State *L)
{
  llm_boot_opts o;
  const char *column = read_opts(L, 3, &o);
  arm_buf *a, *b;
  llm_boot_arm A, B;
  llm_boot_result r;
  if (column) {
    lua_pushstring(L, column); /* keep it alive: read_opts popped its table slot */
    column = lua_tostring(L, -1);
  }
  a = read_arm(L, 1, column);
  b = read_arm(L, 2, column);
  A = (llm_boot_arm){a->v, a->keyed ? a->k : NULL, a->n, a->weight};
  B = (llm_boot_arm){b->v, b->keyed ? b->k : NULL, b->n, b->weight};
  if (llm_boot_compare(&A, &B, &o, &r) != 0)
    return luaL_error(L, "out of memory");
  lua_createtable(L, 0, 10);
  llm_set_number(L, "a", r.a);
  llm_set_number(L, "b", r.b);
  llm_set_number(L, "effect", r.effect);
  llm_set_number(L, "lo", r.lo);
  llm_set_number(L, "hi", r.hi);
  llm_set_integer(L, "n_a", (lua_Integer)(double)A.n);
  llm_set_integer(L, "n_b", (lua_Integer)(double)B.n);
  llm_set_boolean(L, "paired", r.paired);
  if (r.paired)
    llm_set_integer(L, "cases", (lua_Integer)(double)r.clusters);
  llm_set_integer(L, "reps", (lua_Integer)r.reps_used);
  llm_set_boolean(L, "subsampled", r.subsampled);
  return 1;
}

static int l_ci(lua_State *L)
{
  llm_boot_opts o;
  const char *column = read_opts(L, 2, &o);
  arm_buf *a;
  llm_boot_arm A;
  double est, lo, hi;
  if (column) {
    lua_pushstring(L, column);
    column = lua_tostring(L, -1);
  }
  a = read_arm(L, 1, column);
  A = (llm_boot_arm){a->v, NULL, a->n, a->weight};
  if (llm_boot_ci(&A, &o, &est, &lo, &hi) != 0)
    return luaL_error(L, "out of memory");
  if (isfinite(est)) lua_pushnumber(L, est); else lua_pushnil(L);
  if (isfinite(lo)) lua_pushnumber(L, lo); else lua_pushnil(L);
  if (isfinite(hi)) lua_pushnumber(L, hi); else lua_pushnil(L);
  return 3;
}

/* ---- tables ------------------------------------------------------------------------ */

static const luaL_Reg hist_methods[] = {
  {"add", h_add},
  {"percentile", h_percentile},
  {"summary", h_summary},
  {"count", h_count},
  {"reset", h_reset},
  {"close", h_close},
  {NULL, NULL}
};

static const luaL_Reg hist_metamethods[] = {
  {"__gc", h_close},
  {"__close", h_close},
  {"__tostring", h_tostring},
  {"__index", NULL},
  {NULL, NULL}
};

static const luaL_Reg collector_methods[] = {
  {"add", c_add},
  {"totals", c_totals},
  {"quantiles", c_quantiles},
  {"histogram", c_histogram},
  {"calls", c_calls},
  {"sampled", c_sampled},
  {"reset", c_reset},
  {"close", c_close},
  {NULL, NULL}
};

static const luaL_Reg collector_metamethods[] = {
  {"__gc", c_close},
  {"__close", c_close},
  {"__tostring", c_tostring},
  {"__index", NULL},
  {NULL, NULL}
};

static const luaL_Reg arm_metamethods[] = {
  {"__gc", arm_gc},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"hist", l_hist},
  {"collector", l_collector},
  {"compare", l_compare},
  {"ci", l_ci},
  {NULL, NULL}
};

int luaopen__llm_metrics(lua_State *L)
{
  llm_class_register(L, HIST_MT, hist_metamethods, hist_methods, NULL);
  llm_class_register(L, LLM_COLLECTOR_MT, collector_metamethods, collector_methods, NULL);
  llm_class_register(L, ARM_MT, arm_metamethods, NULL, NULL);
  luaL_newlib(L, funcs);
  lua_pushinteger(L, LLM_CALL_OK);
  lua_setfield(L, -2, "OK");
  lua_pushinteger(L, LLM_CALL_ERROR);
  lua_setfield(L, -2, "ERROR");
  lua_pushinteger(L, LLM_CALL_PARTIAL);
  lua_setfield(L, -2, "PARTIAL");
  lua_pushinteger(L, LLM_CALL_HIT);
  lua_setfield(L, -2, "HIT");
  lua_pushnumber(L, llm_hist_error_bound());
  lua_setfield(L, -2, "error_bound");
  return 1;
}
