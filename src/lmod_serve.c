/* _llm.serve: an HTTP server whose requests are answered by Lua tasks, on
 * the same event loop as everything else (the engine is serve.c).
 *
 *   serve.listen{host=, port=, max_connections=, max_header_bytes=,
 *                max_body_bytes=, header_timeout=, body_timeout=,
 *                idle_timeout=, write_timeout=, high_water=}
 *     -> server | nil, err (kind "serve": the address is taken or unknown)
 *   server:accept() -> request | nil (the server was closed); waits
 *   server:port(), server:stats() -> {connections=, requests=, ...}
 *   server:close()
 *   request:info() -> {method=, target=, path=, query=, version=,
 *                      headers={lower-case name = value}, body=, client=}
 *   request:header(name) -> value | nil      request:body() -> string
 *   request:respond(status, headers, body) -> true | nil, err
 *   request:start(status, headers) -> true | nil, err
 *   request:write(data) -> true | nil, err   (waits while the client
 *                                              is slow: back-pressure)
 *   request:finish() -> true | nil, err
 *   request:aborted() -> the client left before the answer was complete
 *   request:bind(task) -> the task to cancel if the client leaves
 *   request:close()  (also __gc, __close) -> gives the request back; an
 *                    unanswered one gets a 500
 *
 * headers: {Name = value} or a list of "Name: value" lines. err: an
 * llm.error of kind "serve" (lmod_util.h), status "closed" when the client
 * has left; a wrong option or argument raises.
 * Callbacks from the engine never run Lua: they queue requests, wake
 * waiting tasks, and post the cancellation of a departed client's task to
 * the loop's ready queue. The policy (routing, errors, a task per
 * request) is lualib/llm/serve.lua. */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lmod_util.h"
#include "serve.h"
#include "task.h"

#define SERVER_MT "llm.serve.server"
#define REQUEST_MT "llm.serve.request"
#define SCHED(L) ((llm_sched *)lua_touserdata(L, lua_upvalueindex(1)))
#define MAX_RESPONSE_HEADERS 64

typedef struct srvbox srvbox;

/* A task waiting in accept() or write(), embedded in its owner. */
typedef struct waiter {
  llm_wait base;
  llm_task *task;          /* NULL: nobody waits */
  int woken;
} waiter;

struct srvbox {
  llm_server *srv;
  llm_sched *s;
  lua_State *L;            /* the main state */
  llm_sreq **queue;        /* complete requests no task has taken yet */
  size_t qhead, qlen, qcap;
  waiter acceptor;
  int closed;
};

typedef struct reqbox {
  llm_sreq *r;             /* NULL once given back */
  srvbox *sb;
  llm_sched *s;
  lua_State *L;            /* the main state: a task is held there across a post */
  int bound_ref;           /* registry ref of the task to cancel, or LUA_NOREF */
  llm_task *bound;
  waiter writer;
} reqbox;

/* ---- waits ------------------------------------------------------------------------- */

static void waiter_cancel(llm_wait *w)
{
  waiter *wt = (waiter *)w;
  wt->task = NULL;
}

static void waiter_wake(llm_sched *s, waiter *w)
{
  if (w->task && !w->woken) {
    w->woken = 1;
    llm_task_wake(s, w->task);
  }
}

static int wait_here(lua_State *L, llm_sched *s, waiter *w, const char *what, lua_KFunction k,
                     lua_KContext ctx)
{
  w->task = llm_task_check_can_wait(L, s, what);
  w->woken = 0;
  w->base.cancel = waiter_cancel;
  return llm_task_suspend(L, s, &w->base, ctx, k);
}

/* ---- engine callbacks (loop context, no Lua) ----------------------------------------------- */

static void queue_push(srvbox *sb, llm_sreq *r)
{
  if (sb->qlen == sb->qcap) {
    size_t cap = sb->qcap ? sb->qcap * 2 : 64;
    llm_sreq **q = malloc(cap * sizeof *q);
    if (!q) {
      llm_sreq_release(r); /* answered 500 */
      return;
    }
    for (size_t i = 0; i < sb->qlen; i++)
      q[i] = sb->queue[(sb->qhead + i) % sb->qcap];
    free(sb->queue);
    sb->queue = q;
    sb->qhead = 0;
    sb->qcap = cap;
  }
  sb->queue[(sb->qhead + sb->qlen) % sb->qcap] = r;
  sb->qlen++;
}

static llm_sreq *queue_pop(srvbox *sb)
{
  llm_sreq *r;
  if (sb->qlen == 0)
    return NULL;
  r = sb->queue[sb->qhead];
  sb->qhead = (sb->qhead + 1) % sb->qcap;
  sb->qlen--;
  return r;
}

static void on_request(void *ud, llm_sreq *r)
{
  srvbox *sb = ud;
  queue_push(sb, r);
  waiter_wake(sb->s, &sb->acceptor);
}

typedef struct cancel_job {
  llm_sched *s;
  lua_State *L;
  int ref;
} cancel_job;

static void run_cancel(void *ud)
{
  cancel_job *j = ud;
  lua_State *L = j->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, j->ref);
  llm_task *t = luaL_testudata(L, -1, LLM_TASK_METATABLE);
  if (t && !llm_task_finished(t))
    llm_task_cancel(j->s, t);
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, j->ref);
  free(j);
}

static void on_abort(void *ud, llm_sreq *r)
{
  reqbox *box = llm_sreq_ud(r);
  (void)ud;
  if (!box)
    return; /* still queued: accept() skips it */
  waiter_wake(box->s, &box->writer);
  if (box->bound && box->bound_ref != LUA_NOREF && !llm_task_finished(box->bound) &&
      box->bound != llm_sched_current(box->s)) {
    /* the running task learns it from the failed write or answer */
    cancel_job *j = malloc(sizeof *j);
    lua_State *L = box->L;
    if (!j)
      return;
    j->s = box->s;
    j->L = L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, box->bound_ref); /* the job holds the task */
    j->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (llm_loop_post(llm_sched_loop(box->s), run_cancel, j) != 0) {
      luaL_unref(L, LUA_REGISTRYINDEX, j->ref);
      free(j);
    }
  }
}

static void on_drain(void *ud, llm_sreq *r)
{
  reqbox *box = llm_sreq_ud(r);
  (void)ud;
  if (box)
    waiter_wake(box->s, &box->writer);
}

/* ---- the server -------------------------------------------------------------------------- */

static srvbox *check_server(lua_State *L)
{
  srvbox *sb = luaL_checkudata(L, 1, SERVER_MT);
  return sb;
}

static const char *const listen_keys[] = {
  "host", "port", "max_connections", "max_header_bytes", "max_body_bytes", "header_timeout",
  "body_timeout", "idle_timeout", "write_timeout", "high_water", NULL,
};

/* A limit in bytes or connections; 0 (the default): the engine's own. */
static size_t opt_size(const llm_opts *o, const char *name)
{
  return (size_t)llm_opt_integer(o, name, 0, 0, LUA_MAXINTEGER);
}

/* A timeout in seconds; 0 (the default): the engine's own. */
static double opt_seconds(const llm_opts *o, const char *name)
{
  return llm_opt_number(o, name, 0, 0, HUGE_VAL);
}

static int l_listen(lua_State *L)
{
  llm_server_opts o;
  llm_opts opts;
  char err[256];
  srvbox *sb;
  luaL_checktype(L, 1, LUA_TTABLE);
  opts = llm_opts_at(L, 1, "serve.listen");
  llm_opts_only(&opts, listen_keys);
  memset(&o, 0, sizeof o);
  o.host = llm_opt_string(&opts, "host", "127.0.0.1", NULL); /* the table keeps it */
  o.port = (int)llm_opt_integer(&opts, "port", 0, 0, 65535);
  o.max_connections = opt_size(&opts, "max_connections");
  o.max_header_bytes = opt_size(&opts, "max_header_bytes");
  o.max_body_bytes = opt_size(&opts, "max_body_bytes");
  o.high_water = opt_size(&opts, "high_water");
  o.header_timeout = opt_seconds(&opts, "header_timeout");
  o.body_timeout = opt_seconds(&opts, "body_timeout");
  o.idle_timeout = opt_seconds(&opts, "idle_timeout");
  o.write_timeout = opt_seconds(&opts, "write_timeout");
  o.on_request = on_request;
  o.on_abort = on_abort;
  o.on_drain = on_drain;
  /* closing a server that never started is harmless, so the class is set
   * at once */
  sb = llm_new_object(L, sizeof *sb, SERVER_MT);
  sb->s = SCHED(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  sb->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  o.ud = sb;
  sb->srv = llm_server_start(llm_sched_loop(sb->s), &o, err, sizeof err);
  if (!sb->srv)
    return llm_fail(L, "serve", NULL, "%s", err);
  return 1;
}

static void push_request(lua_State *L, srvbox *sb, llm_sreq *r)
{
  reqbox *box = llm_new_object(L, sizeof *box, REQUEST_MT);
  box->r = r;
  box->sb = sb;
  box->s = sb->s;
  box->L = sb->L;
  box->bound_ref = LUA_NOREF;
  llm_sreq_set_ud(r, box);
}

static int accept_k(lua_State *L, int status, lua_KContext ctx)
{
  srvbox *sb = (srvbox *)ctx;
  llm_sreq *r;
  (void)status;
  sb->acceptor.task = NULL;
  while ((r = queue_pop(sb)) != NULL) {
    if (!llm_sreq_aborted(r)) {
      push_request(L, sb, r);
      return 1;
    }
    llm_sreq_release(r);
  }
  if (sb->closed || !sb->srv)
    return 0;
  return wait_here(L, sb->s, &sb->acceptor, "server:accept", accept_k, ctx);
}

static int s_accept(lua_State *L)
{
  srvbox *sb = check_server(L);
  if (sb->acceptor.task)
    return luaL_error(L, "server:accept: another task is already accepting");
  return accept_k(L, LUA_OK, (lua_KContext)sb);
}

static int s_port(lua_State *L)
{
  srvbox *sb = check_server(L);
  if (!sb->srv)
    return 0;
  lua_pushinteger(L, llm_server_port(sb->srv));
  return 1;
}

static int s_stats(lua_State *L)
{
  srvbox *sb = check_server(L);
  llm_server_stats st;
  if (!sb->srv)
    return 0;
  llm_server_get_stats(sb->srv, &st);
  lua_createtable(L, 0, 11);
#define F(name) llm_set_integer(L, #name, (lua_Integer)st.name)
  F(connections_total); F(requests); F(responses); F(refused_busy); F(refused_limit);
  F(timeouts); F(aborted); F(connections); F(connections_peak); F(in_flight);
#undef F
  llm_set_integer(L, "queued", (lua_Integer)sb->qlen);
  return 1;
}

static int s_close(lua_State *L)
{
  srvbox *sb = luaL_checkudata(L, 1, SERVER_MT);
  llm_sreq *r;
  if (sb->closed)
    return 0;
  sb->closed = 1;
  while ((r = queue_pop(sb)) != NULL)
    llm_sreq_release(r);
  free(sb->queue);
  sb->queue = NULL;
  sb->qcap = 0;
  if (sb->srv) {
    llm_server_free(sb->srv);
    sb->srv = NULL;
  }
  waiter_wake(sb->s, &sb->acceptor);
  return 0;
}

static int s_tostring(lua_State *L)
{
  srvbox *sb = check_server(L);
  if (sb->srv)
    lua_pushfstring(L, "server on port %d", llm_server_port(sb->srv));
  else
    lua_pushliteral(L, "server (closed)");
  return 1;
}

/* ---- requests --------------------------------------------------------------------------- */

static reqbox *check_request(lua_State *L)
{
  llm_check_open(L, 1, REQUEST_MT, "request");
  return lua_touserdata(L, 1);
}

static int r_info(lua_State *L)
{
  reqbox *box = check_request(L);
  llm_sreq *r = box->r;
  const char *target = llm_sreq_target(r), *q = strchr(target, '?');
  size_t n = llm_sreq_header_count(r), blen;
  const char *body = llm_sreq_body(r, &blen);
  lua_createtable(L, 0, 9);
  lua_pushstring(L, llm_sreq_method(r));
  lua_setfield(L, -2, "method");
  lua_pushstring(L, target);
  lua_setfield(L, -2, "target");
  lua_pushlstring(L, target, q ? (size_t)(q - target) : strlen(target));
  lua_setfield(L, -2, "path");
  if (q) {
    lua_pushstring(L, q + 1);
    lua_setfield(L, -2, "query");
  }
  lua_pushfstring(L, "HTTP/1.%d", llm_sreq_minor_version(r));
  lua_setfield(L, -2, "version");
  lua_createtable(L, 0, (int)n);
  for (size_t i = 0; i < n; i++) {
    const char *name, *value;
    llm_sreq_header_at(r, i, &name, &value);
    if (lua_getfield(L, -1, name) == LUA_TSTRING) {
      /* a repeated field: its values joined, as RFC 9110 5.3 allows */
      lua_pushliteral(L, ", ");
      lua_pushstring(L, value);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushstring(L, value);
    }
    lua_setfield(L, -2, name);
  }
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, body, blen);
  lua_setfield(L, -2, "body");
  lua_pushstring(L, llm_sreq_client(r));
  lua_setfield(L, -2, "client");
  lua_pushnumber(L, llm_sreq_received_at(r));
  lua_setfield(L, -2, "received_at");
  return 1;
}

static int r_header(lua_State *L)
{
  reqbox *box = check_request(L);
  const char *v = llm_sreq_header(box->r, luaL_checkstring(L, 2));
  if (!v)
    return 0;
  lua_pushstring(L, v);
  return 1;
}

static int r_body(lua_State *L)
{
  reqbox *box = check_request(L);
  size_t len;
  const char *b = llm_sreq_body(box->r, &len);
  lua_pushlstring(L, b, len);
  return 1;
}

static int r_client(lua_State *L)
{
  reqbox *box = check_request(L);
  lua_pushstring(L, llm_sreq_client(box->r));
  return 1;
}

static void check_header_text(lua_State *L, const char *s, int name)
{
  for (; *s; s++)
    if (*s == '\r' || *s == '\n' || (name && (*s == ':' || *s == ' ')))
      luaL_error(L, "response header %s contains a line break%s", name ? "name" : "value",
                 name ? ", a colon or a space" : "");
}

/* Header lines from a table at idx into lines[] (strings kept alive on the
 * stack in a table at the top). Returns the count. */
static int collect_headers(lua_State *L, int idx, const char **lines)
{
  int n = 0;
  if (lua_isnoneornil(L, idx))
    return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_newtable(L); /* keeps the joined lines alive */
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (n == MAX_RESPONSE_HEADERS)
      luaL_error(L, "too many response headers (at most %d)", MAX_RESPONSE_HEADERS);
    if (lua_type(L, -2) == LUA_TNUMBER) {
      const char *line = luaL_checkstring(L, -1);
      const char *colon = strchr(line, ':');
      if (!colon || colon == line)
        luaL_error(L, "response header '%s' is not \"Name: value\"", line);
      check_header_text(L, line, 0);
      lua_pushvalue(L, -1);
    } else {
      const char *name = luaL_checkstring(L, -2), *value = luaL_tolstring(L, -1, NULL);
      check_header_text(L, name, 1);
      check_header_text(L, value, 0);
      lua_pushfstring(L, "%s: %s", name, value);
      lua_remove(L, -2); /* the tolstring copy */
    }
    lines[n] = lua_tostring(L, -1);
    lua_rawseti(L, -4, n + 1);
    lua_pop(L, 1);
    n++;
  }
  lines[n] = NULL;
  return n;
}

static int closed_result(lua_State *L)
{
  return llm_fail(L, "serve", "closed", "the client has left");
}

static int check_status(lua_State *L, int idx)
{
  lua_Integer st = luaL_checkinteger(L, idx);
  luaL_argcheck(L, st >= 200 && st <= 599, idx, "status must be from 200 to 599");
  return (int)st;
}

static int r_respond(lua_State *L)
{
  reqbox *box = check_request(L);
  int status = check_status(L, 2);
  const char *lines[MAX_RESPONSE_HEADERS + 1] = {NULL};
  size_t len = 0;
  const char *body = luaL_optlstring(L, 4, "", &len);
  collect_headers(L, 3, lines);
  if (llm_sreq_respond(box->r, status, lines, body, len) != 0)
    return closed_result(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int r_start(lua_State *L)
{
  reqbox *box = check_request(L);
  int status = check_status(L, 2);
  const char *lines[MAX_RESPONSE_HEADERS + 1] = {NULL};
  collect_headers(L, 3, lines);
  if (llm_sreq_start(box->r, status, lines) != 0)
    return closed_result(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int write_k(lua_State *L, int status, lua_KContext ctx)
{
  reqbox *box = (reqbox *)ctx;
  (void)status;
  box->writer.task = NULL;
  if (!box->r || llm_sreq_aborted(box->r))
    return closed_result(L);
  if (llm_sreq_blocked(box->r))
    return wait_here(L, box->s, &box->writer, "request:write", write_k, ctx);
  lua_pushboolean(L, 1);
  return 1;
}

static int r_write(lua_State *L)
{
  reqbox *box = check_request(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  if (llm_sreq_write(box->r, data, len) != 0)
    return closed_result(L);
  if (llm_sreq_blocked(box->r) && lua_isyieldable(L))
    return wait_here(L, box->s, &box->writer, "request:write", write_k, (lua_KContext)box);
  lua_pushboolean(L, 1);
  return 1;
}

static int r_finish(lua_State *L)
{
  reqbox *box = check_request(L);
  if (llm_sreq_end(box->r) != 0)
    return closed_result(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int r_aborted(lua_State *L)
{
  reqbox *box = luaL_checkudata(L, 1, REQUEST_MT);
  lua_pushboolean(L, !box->r || llm_sreq_aborted(box->r));
  return 1;
}

static void unbind(lua_State *L, reqbox *box)
{
  if (box->bound_ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, box->bound_ref);
    box->bound_ref = LUA_NOREF;
  }
  box->bound = NULL;
}

static int r_bind(lua_State *L)
{
  reqbox *box = check_request(L);
  llm_task *t = llm_task_check(L, 2);
  unbind(L, box);
  lua_pushvalue(L, 2);
  box->bound_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  box->bound = t;
  return 0;
}

static int r_close(lua_State *L)
{
  reqbox *box = luaL_checkudata(L, 1, REQUEST_MT);
  unbind(L, box);
  if (box->r) {
    llm_sreq *r = box->r;
    box->r = NULL;
    llm_sreq_set_ud(r, NULL);
    llm_sreq_release(r);
  }
  return 0;
}

static int r_tostring(lua_State *L)
{
  reqbox *box = luaL_checkudata(L, 1, REQUEST_MT);
  if (box->r)
    lua_pushfstring(L, "request %s %s from %s", llm_sreq_method(box->r),
                    llm_sreq_target(box->r), llm_sreq_client(box->r));
  else
    lua_pushliteral(L, "request (closed)");
  return 1;
}

static int l_error_body(lua_State *L)
{
  size_t len = 0;
  char *b = llm_serve_error_body(luaL_optstring(L, 1, NULL), (int)luaL_checkinteger(L, 2),
                                 luaL_checkstring(L, 3), luaL_checkstring(L, 4), &len);
  if (!b)
    return luaL_error(L, "out of memory");
  lua_pushlstring(L, b, len);
  free(b);
  return 1;
}

static const luaL_Reg server_methods[] = {
  {"accept", s_accept},
  {"port", s_port},
  {"stats", s_stats},
  {"close", s_close},
  {NULL, NULL}
};

static const luaL_Reg server_meta[] = {
  {"__gc", s_close},
  {"__close", s_close},
  {"__tostring", s_tostring},
  {NULL, NULL}
};

static const luaL_Reg request_methods[] = {
  {"info", r_info},
  {"header", r_header},
  {"body", r_body},
  {"client", r_client},
  {"respond", r_respond},
  {"start", r_start},
  {"write", r_write},
  {"finish", r_finish},
  {"aborted", r_aborted},
  {"bind", r_bind},
  {"close", r_close},
  {NULL, NULL}
};

static const luaL_Reg request_meta[] = {
  {"__gc", r_close},
  {"__close", r_close},
  {"__tostring", r_tostring},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"listen", l_listen},
  {"error_body", l_error_body},
  {NULL, NULL}
};

int luaopen__llm_serve(lua_State *L)
{
  llm_class_register(L, SERVER_MT, server_meta, server_methods, llm_sched_of(L));
  llm_class_register(L, REQUEST_MT, request_meta, request_methods, llm_sched_of(L));
  lua_newtable(L);
  lua_pushlightuserdata(L, llm_sched_of(L));
  luaL_setfuncs(L, funcs, 1);
  return 1;
}
