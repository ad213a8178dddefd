/* _llm.sim: the Lua face of the simulator's server (sim.h). Thin: it turns
 * a Lua configuration table into a sim_config and a server into typed
 * userdata. Which profiles, defaults and environment variables apply is
 * policy, in lualib/llm/sim.lua.
 *
 *   local srv = _llm.sim.start{host=, port=, allow_remote=, idle_timeout_s=}, config
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
 *   rate_limit = {rpm=, tpm=}, max_body_bytes=, batch_turnaround_s=, batch_expire_s=,
 *   batch_fail_rate=} */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "sim.h"
#include "sim_model.h"
#include "sim_tasks.h"

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

/* Reads field k of the table at idx as a number >= 0, if present. */
static int opt_number(lua_State *L, int idx, const char *k, double *out)
{
  int t = lua_getfield(L, idx, k);
  if (t != LUA_TNIL) {
    int isnum;
    double d = lua_tonumberx(L, -1, &isnum);
    if (!isnum || d < 0 || d != d)
      return luaL_error(L, "sim config: '%s' must be a number >= 0", k);
    *out = d;
  }
  lua_pop(L, 1);
  return t != LUA_TNIL;
}

static int opt_int(lua_State *L, int idx, const char *k, int *out)
{
  double d = 0;
  if (!opt_number(L, idx, k, &d))
    return 0;
  if (d > 2e9)
    return luaL_error(L, "sim config: '%s' is too large", k);
  *out = (int)d;
  return 1;
}

static void read_profiles(lua_State *L, int idx, sim_config *c)
{
  if (lua_getfield(L, idx, "profiles") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  luaL_argcheck(L, lua_istable(L, -1), 1, "sim config: 'profiles' must be a table");
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    int p = lua_gettop(L);
    double ttft = 0, tps = 0, jitter = 0, prefill = 0;
    sim_profile *prof;
    if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, p))
      luaL_error(L, "sim config: 'profiles' maps a model name to {ttft_ms=, tokens_per_s=, "
                    "jitter=, prefill_ms_per_1k=}");
    opt_number(L, p, "ttft_ms", &ttft);
    opt_number(L, p, "tokens_per_s", &tps);
    opt_number(L, p, "jitter", &jitter);
    opt_number(L, p, "prefill_ms_per_1k", &prefill);
    prof = sim_config_add_profile(c, lua_tostring(L, -2), ttft, tps, jitter);
    if (!prof)
      luaL_error(L, "sim config: out of memory");
    prof->prefill_ms_per_1k = prefill;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void read_faults(lua_State *L, int idx, sim_config *c)
{
  if (lua_getfield(L, idx, "faults") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  luaL_argcheck(L, lua_istable(L, -1), 1, "sim config: 'faults' must be a table");
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

static void read_models(lua_State *L, int idx, sim_config *c)
{
  if (lua_getfield(L, idx, "models") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  luaL_argcheck(L, lua_istable(L, -1), 1, "sim config: 'models' must be a list of names");
  for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "sim config: 'models' must be a list of names");
    if (sim_config_add_model(c, lua_tostring(L, -1)) != 0)
      luaL_error(L, "sim config: out of memory");
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

static void read_fault_params(lua_State *L, int idx, sim_fault_params *fp)
{
  int t = lua_getfield(L, idx, "retry_after");
  if (t == LUA_TSTRING || t == LUA_TNUMBER)
    snprintf(fp->retry_after, sizeof fp->retry_after, "%s", lua_tostring(L, -1));
  else if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1))
    fp->retry_after[0] = '\0'; /* false: send no retry-after */
  else if (t != LUA_TNIL)
    luaL_error(L, "sim config: 'retry_after' must be a string, a number or false");
  lua_pop(L, 1);
  opt_int(L, idx, "retry_after_ms", &fp->retry_after_ms);
  if (lua_getfield(L, idx, "should_retry") != LUA_TNIL)
    fp->should_retry = lua_toboolean(L, -1);
  lua_pop(L, 1);
  opt_int(L, idx, "header_delay_ms", &fp->header_delay_ms);
  opt_int(L, idx, "stall_ms", &fp->stall_ms);
  opt_int(L, idx, "fault_after", &fp->after_tokens);
  if (lua_getfield(L, idx, "error_body") != LUA_TNIL) {
    static const char *const bodies[] = {"default", "json", "html", "empty", NULL};
    fp->error_body = luaL_checkoption(L, -1, NULL, bodies);
  }
  lua_pop(L, 1);
}

/* Fills *c (initialised) from the table at idx; raises on misuse. Runs
 * under lua_pcall by the caller so *c can be freed after an error. */
static void read_config(lua_State *L, int idx, sim_config *c)
{
  double d = 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t k = 0;
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    while (key && config_keys[k] && strcmp(config_keys[k], key) != 0)
      k++;
    if (!key || !config_keys[k])
      luaL_error(L, "sim config: unknown key '%s'", key ? key : luaL_typename(L, -2));
    lua_pop(L, 1);
  }
  read_profiles(L, idx, c);
  read_faults(L, idx, c);
  read_models(L, idx, c);
  read_fault_params(L, idx, &c->fault_params);
  /* profile = false (or nil): no forced profile */
  if (lua_getfield(L, idx, "profile") != LUA_TNIL && lua_toboolean(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "sim config: 'profile' must be a profile name or false");
    if (sim_config_set_profile(c, lua_tostring(L, -1)) != 0)
      luaL_error(L, "sim config: out of memory");
  }
  lua_pop(L, 1);
  opt_number(L, idx, "ttft_ms", &c->ttft_ms);
  opt_number(L, idx, "tokens_per_s", &c->tokens_per_s);
  opt_number(L, idx, "jitter", &c->jitter);
  opt_number(L, idx, "cache_ttl_s", &c->cache_ttl_s);
  if (opt_number(L, idx, "max_body_bytes", &d))
    c->max_body_bytes = (size_t)d;
  opt_number(L, idx, "batch_turnaround_s", &c->batch_turnaround_s);
  opt_number(L, idx, "batch_expire_s", &c->batch_expire_s);
  if (opt_number(L, idx, "batch_fail_rate", &c->batch_fail_rate) && c->batch_fail_rate > 1)
    luaL_error(L, "sim config: 'batch_fail_rate' must be from 0 to 1");
  if (lua_getfield(L, idx, "strict") != LUA_TNIL)
    c->strict = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "seed") != LUA_TNIL)
    c->seed = (uint64_t)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "rate_limit") != LUA_TNIL) {
    luaL_argcheck(L, lua_istable(L, -1), 1, "sim config: 'rate_limit' must be {rpm=, tpm=}");
    opt_int(L, lua_gettop(L), "rpm", &c->rate_rpm);
    opt_int(L, lua_gettop(L), "tpm", &c->rate_tpm);
  }
  lua_pop(L, 1);
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

static lserver *check_server(lua_State *L)
{
  lserver *ls = luaL_checkudata(L, 1, SERVER_METATABLE);
  if (!ls->s)
    luaL_error(L, "attempt to use a closed simulator server");
  return ls;
}

static int l_start(lua_State *L)
{
  sim_options o = {0};
  sim_config c;
  char err[256];
  lserver *ls;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "host");
    o.host = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 1, "port");
    o.port = (int)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 1, "allow_remote");
    o.allow_remote = lua_toboolean(L, -1);
    lua_getfield(L, 1, "idle_timeout_s");
    o.idle_timeout_s = (int)luaL_optinteger(L, -1, 0);
    lua_pop(L, 3); /* host stays on the stack while o.host is used */
    luaL_argcheck(L, o.port >= 0 && o.port <= 65535, 1, "port must be from 0 to 65535");
  }
  config_from(L, 2, &c);
  ls = lua_newuserdatauv(L, sizeof *ls, 0);
  ls->s = NULL;
  luaL_setmetatable(L, SERVER_METATABLE);
  ls->s = sim_server_start(&o, &c, err, sizeof err);
  sim_config_free(&c);
  if (!ls->s) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

static int s_url(lua_State *L)
{
  lua_pushstring(L, sim_server_url(check_server(L)->s));
  return 1;
}

static int s_port(lua_State *L)
{
  lua_pushinteger(L, sim_server_port(check_server(L)->s));
  return 1;
}

static int s_configure(lua_State *L)
{
  lserver *ls = check_server(L);
  sim_config c;
  config_from(L, 2, &c);
  if (sim_server_configure(ls->s, &c) != 0) {
    sim_config_free(&c);
    return luaL_error(L, "sim configure: out of memory");
  }
  sim_config_free(&c);
  return 0;
}

static int s_reset(lua_State *L)
{
  sim_server_reset(check_server(L)->s);
  return 0;
}

/* A parsed JSON value as Lua: integers stay integers (cjson would make
 * every count a float). */
static void push_json(lua_State *L, const json_value *v)
{
  int64_t i;
  switch (v->type) {
  case JSON_NULL: lua_pushnil(L); break;
  case JSON_TRUE: lua_pushboolean(L, 1); break;
  case JSON_FALSE: lua_pushboolean(L, 0); break;
  case JSON_NUMBER:
    if (json_int64(v, &i))
      lua_pushinteger(L, (lua_Integer)i);
    else
      lua_pushnumber(L, v->u.number.value);
    break;
  case JSON_STRING: lua_pushlstring(L, v->u.string.ptr, v->u.string.len); break;
  case JSON_ARRAY:
    lua_createtable(L, (int)v->u.array.n, 0);
    for (size_t k = 0; k < v->u.array.n; k++) {
      push_json(L, &v->u.array.items[k]);
      lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    break;
  case JSON_OBJECT:
    lua_createtable(L, 0, (int)v->u.object.n);
    for (size_t k = 0; k < v->u.object.n; k++) {
      push_json(L, &v->u.object.members[k].value);
      lua_setfield(L, -2, v->u.object.members[k].key);
    }
    break;
  }
}

/* The stats as a table: the same fields GET /sim/stats returns. */
static int s_stats(lua_State *L)
{
  lserver *ls = check_server(L);
  size_t len;
  json_doc *doc;
  const json_value *root;
  char *js = sim_server_stats_json(ls->s, &len);
  root = js ? json_parse(js, len, &doc, NULL) : NULL;
  free(js);
  if (!root)
    return luaL_error(L, "sim stats: out of memory");
  lua_checkstack(L, 8);
  push_json(L, root);
  json_free(doc);
  return 1;
}

/* ---- labelled tasks ------------------------------------------------------------------ */

/* A list of strings at field k of the table at idx, as a userdata-held
 * array of pointers (the strings stay in the table). */
static const char **string_list(lua_State *L, int idx, const char *k, size_t *n)
{
  const char **v;
  *n = 0;
  if (lua_getfield(L, idx, k) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushnil(L); /* keeps the stack shape: one slot per list */
    return NULL;
  }
  luaL_argcheck(L, lua_istable(L, -1), 2, "task: options and instructions must be lists of strings");
  *n = (size_t)luaL_len(L, -1);
  v = lua_newuserdatauv(L, (*n ? *n : 1) * sizeof *v, 0);
  for (size_t i = 0; i < *n; i++) {
    if (lua_rawgeti(L, -2, (lua_Integer)i + 1) != LUA_TSTRING)
      luaL_error(L, "task: %s[%d] must be a string", k, (int)i + 1);
    v[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_remove(L, -2); /* the userdata stays; the list is kept alive by the spec */
  return v;
}

static int s_add_task(lua_State *L)
{
  lserver *ls = check_server(L);
  sim_task_spec spec;
  sim_task_case *cases;
  size_t n;
  char err[256];
  memset(&spec, 0, sizeof spec);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "name");
  spec.name = luaL_checkstring(L, -1);
  lua_getfield(L, 2, "difficulty");
  spec.difficulty = luaL_optnumber(L, -1, 1.0);
  spec.options = string_list(L, 2, "options", &spec.noptions);
  spec.instructions = string_list(L, 2, "instructions", &spec.ninstructions);
  luaL_argcheck(L, lua_getfield(L, 2, "cases") == LUA_TTABLE, 2, "task: cases must be a list");
  n = (size_t)luaL_len(L, -1);
  cases = lua_newuserdatauv(L, (n ? n : 1) * sizeof *cases, 0);
  for (size_t i = 0; i < n; i++) {
    int c;
    lua_rawgeti(L, -2, (lua_Integer)i + 1);
    c = lua_gettop(L);
    if (!lua_istable(L, c))
      return luaL_error(L, "task: cases[%d] must be a table {input=, answer=}", (int)i + 1);
    lua_getfield(L, c, "input");
    lua_getfield(L, c, "answer");
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "task: cases[%d] needs string input and answer", (int)i + 1);
    cases[i].input = lua_tolstring(L, -2, &cases[i].input_len);
    cases[i].answer = lua_tolstring(L, -1, &cases[i].answer_len);
    lua_getfield(L, c, "difficulty");
    cases[i].difficulty = luaL_optnumber(L, -1, 0);
    if (lua_getfield(L, c, "group") == LUA_TSTRING)
      cases[i].group = lua_tolstring(L, -1, &cases[i].group_len);
    else
      cases[i].group = NULL;
    lua_settop(L, c - 1); /* the strings live on in the case table */
  }
  if (sim_tasks_add(sim_server_tasks(ls->s), &spec, cases, n, err, sizeof err) != 0)
    return luaL_error(L, "task %s: %s", spec.name, err);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static int s_remove_tasks(lua_State *L)
{
  lserver *ls = check_server(L);
  const char *name = luaL_optstring(L, 2, NULL);
  lua_pushinteger(L, (lua_Integer)sim_tasks_remove(sim_server_tasks(ls->s), name));
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
  {"__index", NULL},
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
  luaL_newmetatable(L, SERVER_METATABLE);
  luaL_setfuncs(L, server_metamethods, 0);
  luaL_newlibtable(L, server_methods);
  luaL_setfuncs(L, server_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
