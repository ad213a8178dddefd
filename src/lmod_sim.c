/* _llm.sim: the Lua face of the simulator's server (sim.h). Thin: it turns
 * a Lua configuration table into a sim_config and a server into typed
 * userdata. Which profiles, defaults and environment variables apply is
 * policy, in lualib/llm/sim.lua.
 *
 *   local srv = _llm.sim.start{host=, port=, allow_remote=, idle_timeout_s=}, config
 *     -> server | nil, err (an llm.error of kind "sim": the port is taken...)
 *   srv:url()  srv:port()  srv:configure(config)  srv:stats()  srv:reset()  srv:close()
 *   srv:add_task{name=, difficulty=, options={...}, instructions={...},
 *                cases={{input=, answer=, difficulty=, group=}, ...}} -> number of cases
 *     -- a labelled task (sim_tasks.h; a task of the same name is replaced);
 *     -- raises on a bad spec. llm.sim.task builds the spec (lualib/llm/sim_task.lua)
 *   srv:remove_tasks([name]) -> how many tasks were removed (no name: all)
 *   local tokens, effort, family = _llm.sim.reasoning(model [, effort [, budget_tokens]])
 *     -- the reasoning tokens a request of typical difficulty spends under
 *     -- the simulator's rule (sim_reasoning.c): 0 for a model that does not
 *     -- reason; effort defaults to the model's; budget_tokens: Claude thinking
 *
 * config = {profiles = {[name] = {ttft_ms=, tokens_per_s=, jitter=, prefill_ms_per_1k=}},
 *   profile=,
 *   ttft_ms=, tokens_per_s=, jitter=, faults = {[fault] = rate}, retry_after=,
 *   retry_after_ms=, should_retry=, header_delay_ms=, stall_ms=, fault_after=,
 *   error_body=, strict=, models = {ids}, seed=, cache_ttl_s=,
 *   rate_limit = {rpm=, tpm=, count="max_tokens"|"usage"}, max_body_bytes=, batch_turnaround_s=, batch_expire_s=,
 *   batch_fail_rate=} */
#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "lmod_json.h"
#include "lmod_util.h"
#include "sim/sim.h"
#include "sim/sim_model.h"
#include "sim/sim_tasks.h"

#define SERVER_METATABLE "llm.sim.server"

typedef struct lserver {
  sim_server *s;
} lserver;

/* ---- the configuration table ---------------------------------------------------------- */

static const char *const config_keys[] = {
  "profiles", "profile", "ttft_ms", "tokens_per_s", "jitter", "faults", "retry_after",
  "retry_after_ms", "should_retry", "header_delay_ms", "stall_ms", "fault_after", "error_body",
  "strict", "models", "seed", "cache_ttl_s", "rate_limit", "max_body_bytes",
  "batch_turnaround_s", "batch_expire_s", "batch_fail_rate", NULL,
};

#define INT_OPT_MAX 2e9 /* integer settings: milliseconds, token counts, rates */

static int opt_int(const llm_opts *o, const char *k, int def)
{
  return (int)llm_opt_number(o, k, def, 0, INT_OPT_MAX);
}

static void read_profiles(const llm_opts *o, sim_config *c)
{
  lua_State *L = o->L;
  if (!llm_opt_table(o, "profiles"))
    return;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    llm_opts po;
    sim_profile *prof;
    double ttft, tps, jitter;
    if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1))
      luaL_error(L, "sim config: 'profiles' maps a model name to {ttft_ms=, tokens_per_s=, "
                    "jitter=, prefill_ms_per_1k=}");
    po = llm_opts_at(L, -1, "sim config: profile");
    ttft = llm_opt_number(&po, "ttft_ms", 0, 0, HUGE_VAL);
    tps = llm_opt_number(&po, "tokens_per_s", 0, 0, HUGE_VAL);
    jitter = llm_opt_number(&po, "jitter", 0, 0, HUGE_VAL);
    prof = sim_config_add_profile(c, lua_tostring(L, -2), ttft, tps, jitter);
    if (!prof)
      luaL_error(L, "sim config: out of memory");
    prof->prefill_ms_per_1k = llm_opt_number(&po, "prefill_ms_per_1k", 0, 0, HUGE_VAL);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void read_faults(const llm_opts *o, sim_config *c)
{
  lua_State *L = o->L;
  if (!llm_opt_table(o, "faults"))
    return;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    sim_fault f;
    double rate;
    int isnum;
    const char *name;
    lua_pushvalue(L, -2);
    name = lua_tostring(L, -1); /* a number key (429) names its status */
    if (!name || sim_fault_parse(name, &f) != 0)
      luaL_error(L, "sim config: unknown fault '%s'", name ? name : "?");
    rate = lua_tonumberx(L, -2, &isnum);
    if (!isnum || rate < 0 || rate > 1)
      luaL_error(L, "sim config: the rate of fault '%s' must be from 0 to 1", name);
    if (sim_config_add_fault_rate(c, &f, rate) != 0)
      luaL_error(L, "sim config: out of memory");
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

static void read_models(const llm_opts *o, sim_config *c)
{
  lua_State *L = o->L;
  if (!llm_opt_table(o, "models"))
    return;
  for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "sim config: 'models' must be a list of names");
    if (sim_config_add_model(c, lua_tostring(L, -1)) != 0)
      luaL_error(L, "sim config: out of memory");
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

static void read_fault_params(const llm_opts *o, sim_fault_params *fp)
{
  static const char *const bodies[] = {"default", "json", "html", "empty", NULL};
  lua_State *L = o->L;
  int t = lua_getfield(L, o->t, "retry_after");
  if (t == LUA_TSTRING || t == LUA_TNUMBER)
    snprintf(fp->retry_after, sizeof fp->retry_after, "%s", lua_tostring(L, -1));
  else if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1))
    fp->retry_after[0] = '\0'; /* false: send no retry-after */
  else if (t != LUA_TNIL)
    luaL_error(L, "sim config: 'retry_after' must be a string, a number or false");
  lua_pop(L, 1);
  fp->retry_after_ms = opt_int(o, "retry_after_ms", fp->retry_after_ms);
  fp->should_retry = llm_opt_boolean(o, "should_retry", fp->should_retry);
  fp->header_delay_ms = opt_int(o, "header_delay_ms", fp->header_delay_ms);
  fp->stall_ms = opt_int(o, "stall_ms", fp->stall_ms);
  fp->after_tokens = opt_int(o, "fault_after", fp->after_tokens);
  fp->error_body = llm_opt_choice(o, "error_body", fp->error_body, bodies);
}

/* Fills *c (initialised) from the table at idx; raises on misuse. Runs
 * under lua_pcall by the caller so *c can be freed after an error. */
static void read_config(lua_State *L, int idx, sim_config *c)
{
  llm_opts o;
  luaL_checktype(L, idx, LUA_TTABLE);
  o = llm_opts_at(L, idx, "sim config");
  llm_opts_only(&o, config_keys);
  read_profiles(&o, c);
  read_faults(&o, c);
  read_models(&o, c);
  read_fault_params(&o, &c->fault_params);
  /* profile = false (or nil): no forced profile */
  if (llm_opt_boolean(&o, "profile", 0)) {
    if (lua_getfield(L, o.t, "profile") != LUA_TSTRING)
      luaL_error(L, "sim config: 'profile' must be a profile name or false");
    if (sim_config_set_profile(c, lua_tostring(L, -1)) != 0)
      luaL_error(L, "sim config: out of memory");
    lua_pop(L, 1);
  }
  c->ttft_ms = llm_opt_number(&o, "ttft_ms", c->ttft_ms, 0, HUGE_VAL);
  c->tokens_per_s = llm_opt_number(&o, "tokens_per_s", c->tokens_per_s, 0, HUGE_VAL);
  c->jitter = llm_opt_number(&o, "jitter", c->jitter, 0, HUGE_VAL);
  c->cache_ttl_s = llm_opt_number(&o, "cache_ttl_s", c->cache_ttl_s, 0, HUGE_VAL);
  c->max_body_bytes = (size_t)llm_opt_number(&o, "max_body_bytes", (double)c->max_body_bytes, 0,
                                             HUGE_VAL);
  c->batch_turnaround_s = llm_opt_number(&o, "batch_turnaround_s", c->batch_turnaround_s, 0,
                                         HUGE_VAL);
  c->batch_expire_s = llm_opt_number(&o, "batch_expire_s", c->batch_expire_s, 0, HUGE_VAL);
  c->batch_fail_rate = llm_opt_number(&o, "batch_fail_rate", c->batch_fail_rate, 0, 1);
  c->strict = llm_opt_boolean(&o, "strict", c->strict);
  c->seed = (uint64_t)llm_opt_integer(&o, "seed", (lua_Integer)c->seed, LUA_MININTEGER,
                                      LUA_MAXINTEGER);
  if (llm_opt_table(&o, "rate_limit")) {
    llm_opts ro = llm_opts_at(L, -1, "sim config: rate_limit");
    c->rate_rpm = opt_int(&ro, "rpm", c->rate_rpm);
    c->rate_tpm = opt_int(&ro, "tpm", c->rate_tpm);
    lua_getfield(L, -1, "count");
    if (!lua_isnil(L, -1)) {
      const char *cnt = lua_tostring(L, -1);
      if (!cnt || (strcmp(cnt, "usage") != 0 && strcmp(cnt, "max_tokens") != 0))
        luaL_error(L, "sim config: rate_limit.count must be \"usage\" or \"max_tokens\"");
      c->rate_count_usage = strcmp(cnt, "usage") == 0;
    }
    lua_pop(L, 1);
    lua_pop(L, 1);
  }
}

/* read_config under a protected call, so the sim_config never leaks */
static int read_config_p(lua_State *L)
{
  sim_config *c = lua_touserdata(L, 2);
  read_config(L, 1, c);
  return 0;
}

static void config_from(lua_State *L, int idx, sim_config *c)
{
  sim_config_init(c);
  if (lua_isnoneornil(L, idx))
    return;
  lua_pushcfunction(L, read_config_p);
  lua_pushvalue(L, idx);
  lua_pushlightuserdata(L, c);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    sim_config_free(c);
    lua_error(L);
  }
}

/* ---- the server ---------------------------------------------------------------------- */

static sim_server *check_server(lua_State *L)
{
  return llm_check_open(L, 1, SERVER_METATABLE, "simulator server");
}

static int l_start(lua_State *L)
{
  llm_opts lo = llm_opts_at(L, 1, "sim.start");
  sim_options o = {0};
  sim_config c;
  char err[256];
  lserver *ls;
  o.host = llm_opt_string(&lo, "host", NULL, NULL);
  o.port = (int)llm_opt_integer(&lo, "port", 0, 0, 65535);
  o.allow_remote = llm_opt_boolean(&lo, "allow_remote", 0);
  o.idle_timeout_s = (int)llm_opt_integer(&lo, "idle_timeout_s", 0, 0, INT_MAX);
  config_from(L, 2, &c);
  ls = llm_new_object(L, sizeof *ls, SERVER_METATABLE);
  ls->s = sim_server_start(&o, &c, err, sizeof err);
  sim_config_free(&c);
  if (!ls->s)
    return llm_fail(L, "sim", NULL, "%s", err);
  return 1;
}

static int s_url(lua_State *L)
{
  lua_pushstring(L, sim_server_url(check_server(L)));
  return 1;
}

static int s_port(lua_State *L)
{
  lua_pushinteger(L, sim_server_port(check_server(L)));
  return 1;
}

static int s_configure(lua_State *L)
{
  sim_server *srv = check_server(L);
  sim_config c;
  config_from(L, 2, &c);
  if (sim_server_configure(srv, &c) != 0) {
    sim_config_free(&c);
    return luaL_error(L, "sim configure: out of memory");
  }
  sim_config_free(&c);
  return 0;
}

static int s_reset(lua_State *L)
{
  sim_server_reset(check_server(L));
  return 0;
}

/* The stats as a table: the same fields GET /sim/stats returns. */
static int s_stats(lua_State *L)
{
  size_t len;
  json_doc *doc;
  const json_value *root;
  char *js = sim_server_stats_json(check_server(L), &len);
  root = js ? json_parse(js, len, &doc, NULL) : NULL;
  free(js);
  if (!root)
    return luaL_error(L, "sim stats: out of memory");
  llm_push_json(L, root, 1);
  json_free(doc);
  return 1;
}

/* ---- labelled tasks ------------------------------------------------------------------ */

/* The list of strings at field k of the options, as a userdata-held array
 * of pointers (the strings stay in the list, which the spec keeps alive).
 * Leaves one slot on the stack per list (the array, or nil). */
static const char **string_list(const llm_opts *o, const char *k, size_t *n)
{
  lua_State *L = o->L;
  const char **v;
  *n = 0;
  if (!llm_opt_table(o, k)) {
    lua_pushnil(L);
    return NULL;
  }
  *n = (size_t)luaL_len(L, -1);
  v = lua_newuserdatauv(L, (*n ? *n : 1) * sizeof *v, 0);
  for (size_t i = 0; i < *n; i++) {
    if (lua_rawgeti(L, -2, (lua_Integer)i + 1) != LUA_TSTRING)
      luaL_error(L, "task: %s[%d] must be a string", k, (int)i + 1);
    v[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_remove(L, -2);
  return v;
}

/* Misuse raises: llm.sim.task (lualib/llm/sim_task.lua) checks a user's
 * spec first, so a bad spec here is the library's own bug. */
static int s_add_task(lua_State *L)
{
  sim_server *srv = check_server(L);
  sim_task_spec spec;
  sim_task_case *cases;
  llm_opts o;
  size_t n;
  int list;
  char err[256];
  memset(&spec, 0, sizeof spec);
  luaL_checktype(L, 2, LUA_TTABLE);
  o = llm_opts_at(L, 2, "task");
  spec.name = llm_opt_string(&o, "name", NULL, NULL);
  luaL_argcheck(L, spec.name != NULL, 2, "task: name expected");
  spec.difficulty = llm_opt_number(&o, "difficulty", 1.0, -HUGE_VAL, HUGE_VAL);
  spec.options = string_list(&o, "options", &spec.noptions);
  spec.instructions = string_list(&o, "instructions", &spec.ninstructions);
  luaL_argcheck(L, llm_opt_table(&o, "cases"), 2, "task: cases must be a list");
  list = lua_gettop(L);
  n = (size_t)luaL_len(L, list);
  cases = lua_newuserdatauv(L, (n ? n : 1) * sizeof *cases, 0);
  for (size_t i = 0; i < n; i++) {
    llm_opts co;
    int c;
    lua_rawgeti(L, list, (lua_Integer)i + 1);
    c = lua_gettop(L);
    if (!lua_istable(L, c))
      return luaL_error(L, "task: cases[%d] must be a table {input=, answer=}", (int)i + 1);
    co = llm_opts_at(L, c, "task case");
    cases[i].input = llm_opt_string(&co, "input", NULL, &cases[i].input_len);
    cases[i].answer = llm_opt_string(&co, "answer", NULL, &cases[i].answer_len);
    if (!cases[i].input || !cases[i].answer)
      return luaL_error(L, "task: cases[%d] needs string input and answer", (int)i + 1);
    cases[i].difficulty = llm_opt_number(&co, "difficulty", 0, -HUGE_VAL, HUGE_VAL);
    cases[i].group = llm_opt_string(&co, "group", NULL, &cases[i].group_len);
    lua_settop(L, c - 1); /* the strings live on in the case table */
  }
  if (sim_tasks_add(sim_server_tasks(srv), &spec, cases, n, err, sizeof err) != 0)
    return luaL_error(L, "task %s: %s", spec.name, err);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static int s_remove_tasks(lua_State *L)
{
  sim_server *srv = check_server(L);
  const char *name = luaL_optstring(L, 2, NULL);
  lua_pushinteger(L, (lua_Integer)sim_tasks_remove(sim_server_tasks(srv), name));
  return 1;
}

static int s_close(lua_State *L)
{
  lserver *ls = luaL_checkudata(L, 1, SERVER_METATABLE);
  if (ls->s) {
    sim_server_stop(ls->s);
    ls->s = NULL;
  }
  return 0;
}

static int s_tostring(lua_State *L)
{
  lserver *ls = luaL_checkudata(L, 1, SERVER_METATABLE);
  if (ls->s)
    lua_pushfstring(L, "sim.server (%s)", sim_server_url(ls->s));
  else
    lua_pushliteral(L, "sim.server (closed)");
  return 1;
}

static const luaL_Reg server_methods[] = {
  {"url", s_url},
  {"port", s_port},
  {"configure", s_configure},
  {"reset", s_reset},
  {"stats", s_stats},
  {"add_task", s_add_task},
  {"remove_tasks", s_remove_tasks},
  {"close", s_close},
  {NULL, NULL}
};

static const luaL_Reg server_metamethods[] = {
  {"__gc", s_close},
  {"__close", s_close},
  {"__tostring", s_tostring},
  {NULL, NULL}
};

static int l_reasoning(lua_State *L)
{
  const char *model = luaL_checkstring(L, 1);
  const char *effort = luaL_optstring(L, 2, NULL);
  lua_Integer budget = luaL_optinteger(L, 3, 0);
  const sim_reasoning_rules *r = sim_reasoning_rules_of(model);
  int e;
  if (budget > 0) {
    lua_pushinteger(L, sim_thinking_expected(budget > 1 << 30 ? 1 << 30 : (int)budget, 0));
    lua_pushliteral(L, "thinking");
    lua_pushnil(L);
    return 3;
  }
  if (!r->family) {
    lua_pushinteger(L, 0);
    return 1;
  }
  e = effort ? sim_effort_parse(effort) : r->default_effort;
  if (e < 0)
    return luaL_argerror(L, 2, "reasoning effort: none, minimal, low, medium, high or xhigh");
  lua_pushinteger(L, sim_reasoning_expected(e));
  lua_pushstring(L, sim_effort_name(e));
  lua_pushstring(L, r->family);
  return 3;
}

static const luaL_Reg funcs[] = {
  {"start", l_start},
  {"reasoning", l_reasoning},
  {NULL, NULL}
};

int luaopen__llm_sim(lua_State *L)
{
  llm_class_register(L, SERVER_METATABLE, server_metamethods, server_methods, NULL);
  luaL_newlib(L, funcs);
  return 1;
}
