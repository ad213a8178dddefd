/* _llm.redis: the Redis client (src/redis_client.h) for Lua tasks.
 *
 *   redis.connect(url [, {connect_timeout=, backoff_min=, backoff_max=}]) -> client
 *       (a malformed URL raises; nothing connects until the first command)
 *   redis.available() -> true | false, message (can libhiredis be loaded?)
 *   redis.parse_url(url) -> {host=, port=, socket=, db=, user=, has_password=,
 *       display=} | nil, err (kind "redis", status "url"; never the password)
 *
 *   client:call(timeout, cmd, arg...) -> reply | nil, err     (waits: yields the task)
 *   client:call_at(slot, timeout, cmd, arg...)  (on the cluster node holding
 *       slot, whatever the keys: to reach each node; as call on one server)
 *   client:shard_slots() -> {slot...}: one slot per cluster node holding any
 *       ({} for a single server, or before the client knows the cluster)
 *   client:pipeline(timeout, {{cmd, arg...}, ...}) -> {reply...} | nil, err
 *       (one round trip; an element is an llm.error where that command
 *       got an error reply)
 *   client:send(cmd, arg...) -> ticket | nil, err   (does not wait)
 *       ticket:status() -> "pending" | "ok" | "error" [, message]
 *   client:every(interval, cmd, arg...) -> repeater (repeater:stop())
 *   client:drain(timeout) -> commands still pending (blocks: for the end of a run)
 *   client:info() -> {where=, connected=, pending=, last_error=, commands=,
 *       replies=, failed=, timeouts=, refused=, connects=, disconnects=,
 *       cluster=, and for a Redis Cluster: nodes=, moved=, asks=, map_refreshes=}
 *   redis.key_slot(key) -> the key's Redis Cluster slot (0..16383)
 *   client:close()
 *
 * Replies: a string or status is a string, an integer an integer, nil is
 * false (so it can sit in a list), an array a list. Failures: nil, err
 * with err.kind "transport" (unreachable, connection lost), "timeout", or
 * "redis" (an error reply; err.message is Redis's), llm.error tables
 * (lmod_util.h). Arguments are strings or numbers; a wrong argument or
 * option raises. */
#include <hiredis/hiredis.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hiredis_lazy.h"
#include "lmod_util.h"
#include "redis_client.h"
#include "task.h"

#define CLIENT_MT "llm.redis.client"
#define TICKET_MT "llm.redis.ticket"
#define REPEAT_MT "llm.redis.repeater"
#define SCHED(L) ((llm_sched *)lua_touserdata(L, lua_upvalueindex(1)))
#define MAX_ARGS 1024

typedef struct client {
  llm_redis *r; /* NULL once closed */
} client;

static client *check_client(lua_State *L, int idx)
{
  llm_check_open(L, idx, CLIENT_MT, "Redis client");
  return lua_touserdata(L, idx);
}

static const char *status_kind(int status)
{
  return status == LLM_REDIS_ETIMEOUT ? "timeout" : "transport";
}

/* ---- replies: copied out of hiredis (it frees its own after the callback) ---- */

typedef struct rnode {
  int type;
  long long integer;
  size_t len;      /* string bytes, or elements */
  char *str;
  struct rnode **el;
} rnode;

static void rnode_free(rnode *n)
{
  if (!n)
    return;
  if (n->el) {
    for (size_t i = 0; i < n->len; i++)
      rnode_free(n->el[i]);
    free(n->el);
  }
  free(n->str);
  free(n);
}

static rnode *rnode_copy(const redisReply *r)
{
  rnode *n = calloc(1, sizeof *n);
  if (!n)
    return NULL;
  n->type = r->type;
  n->integer = r->integer;
  if (r->type == REDIS_REPLY_ARRAY) {
    n->len = r->elements;
    n->el = calloc(r->elements ? r->elements : 1, sizeof *n->el);
    if (!n->el)
      goto oom;
    for (size_t i = 0; i < r->elements; i++)
      if (!(n->el[i] = rnode_copy(r->element[i])))
        goto oom;
  } else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
             r->type == REDIS_REPLY_ERROR) {
    n->len = r->len;
    n->str = malloc(r->len + 1);
    if (!n->str)
      goto oom;
    memcpy(n->str, r->str, r->len);
    n->str[r->len] = '\0';
  }
  return n;
oom:
  rnode_free(n);
  return NULL;
}

static void push_reply(lua_State *L, const rnode *n, int depth)
{
  luaL_checkstack(L, 4, "reply too deep");
  switch (n->type) {
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
    lua_pushlstring(L, n->str, n->len);
    break;
  case REDIS_REPLY_INTEGER:
    lua_pushinteger(L, (lua_Integer)n->integer);
    break;
  case REDIS_REPLY_ARRAY:
    lua_createtable(L, (int)n->len, 0);
    for (size_t i = 0; i < n->len; i++) {
      push_reply(L, n->el[i], depth + 1);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  case REDIS_REPLY_ERROR:
    llm_push_error(L, "redis", NULL, "%s", n->str); /* NUL-terminated by rnode_copy */
    break;
  default: /* nil */
    lua_pushboolean(L, 0);
  }
}

/* ---- waiting for replies: call and pipeline ------------------------------------- */

typedef struct slot {
  struct call_op *op;
  llm_redis_cmd *cmd; /* NULL once answered */
  rnode *reply;
  int status;
  char *message;
} slot;

typedef struct call_op {
  llm_wait base;
  llm_sched *s;
  llm_task *task;
  int n, left;
  int pipeline;
  slot slots[];
} call_op;

static void op_free(call_op *op)
{
  for (int i = 0; i < op->n; i++) {
    llm_redis_cmd_abandon(op->slots[i].cmd);
    rnode_free(op->slots[i].reply);
    free(op->slots[i].message);
  }
  free(op);
}

static void slot_done(void *ud, const redisReply *reply, int status, const char *message)
{
  slot *sl = ud;
  call_op *op = sl->op;
  sl->cmd = NULL;
  sl->status = status;
  if (status == LLM_REDIS_OK) {
    sl->reply = rnode_copy(reply);
    if (!sl->reply) {
      sl->status = LLM_REDIS_ETRANSPORT;
      sl->message = strdup("out of memory copying a reply");
    }
  } else {
    sl->message = strdup(message ? message : "failed");
  }
  if (--op->left == 0)
    llm_task_wake(op->s, op->task);
}

static void op_cancel(llm_wait *w) { op_free((call_op *)w); }

static int call_done(lua_State *L, int status, lua_KContext ctx)
{
  call_op *op = (call_op *)ctx;
  (void)status;
  /* a transport failure or timeout fails the whole request */
  for (int i = 0; i < op->n; i++) {
    slot *sl = &op->slots[i];
    if (sl->status != LLM_REDIS_OK) {
      int n = llm_fail(L, status_kind(sl->status), NULL, "%s",
                       sl->message ? sl->message : "failed");
      op_free(op);
      return n;
    }
  }
  if (op->pipeline) {
    lua_createtable(L, op->n, 0);
    for (int i = 0; i < op->n; i++) {
      push_reply(L, op->slots[i].reply, 0);
      lua_rawseti(L, -2, i + 1);
    }
    op_free(op);
    return 1;
  }
  if (op->slots[0].reply->type == REDIS_REPLY_ERROR) {
    lua_pushnil(L);
    push_reply(L, op->slots[0].reply, 0);
    op_free(op);
    return 2;
  }
  push_reply(L, op->slots[0].reply, 0);
  op_free(op);
  return 1;
}

/* Collects the command at table or stack positions into argv. */
static int collect_args(lua_State *L, int first, int last, const char **argv, size_t *lens)
{
  int n = last - first + 1;
  if (n < 1)
    return luaL_error(L, "a Redis command needs at least its name");
  if (n > MAX_ARGS)
    return luaL_error(L, "too many arguments for one Redis command (%d; at most %d)", n, MAX_ARGS);
  for (int i = 0; i < n; i++) {
    int t = lua_type(L, first + i);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      return luaL_argerror(L, first + i, "a string or number expected");
    argv[i] = lua_tolstring(L, first + i, &lens[i]);
  }
  return n;
}

static double check_timeout(lua_State *L, int idx)
{
  lua_Number t = luaL_checknumber(L, idx);
  luaL_argcheck(L, t >= 0 && t == t, idx, "a timeout in seconds >= 0 expected (0: none)");
  return (double)t;
}

/* Suspends the task until every command of op is answered. */
static int start_op(lua_State *L, call_op *op)
{
  op->base.cancel = op_cancel;
  op->s = SCHED(L);
  op->left = op->n;
  return llm_task_suspend(L, op->s, &op->base, (lua_KContext)op, call_done);
}

/* call (at -1: by the command's key) and call_at (the node of slot at) */
static int do_call(lua_State *L, int at, int first)
{
  client *c = check_client(L, 1);
  double timeout = check_timeout(L, first);
  const char *argv[MAX_ARGS];
  size_t lens[MAX_ARGS];
  char err[512];
  int argc = collect_args(L, first + 1, lua_gettop(L), argv, lens), rc;
  llm_task *t = llm_task_check_can_wait(L, SCHED(L), "redis call");
  call_op *op = calloc(1, sizeof *op + sizeof(slot));
  if (!op)
    return luaL_error(L, "redis call: out of memory");
  op->n = 1;
  op->task = t;
  op->slots[0].op = op;
  rc = at < 0 ? llm_redis_command(c->r, argc, argv, lens, timeout, slot_done, &op->slots[0],
                                  &op->slots[0].cmd, err, sizeof err)
              : llm_redis_command_at(c->r, at, argc, argv, lens, timeout, slot_done,
                                     &op->slots[0], &op->slots[0].cmd, err, sizeof err);
  if (rc != 0) {
    free(op);
    return llm_fail(L, "transport", NULL, "%s", err);
  }
  return start_op(L, op);
}

static int c_call(lua_State *L) { return do_call(L, -1, 2); }

static int c_call_at(lua_State *L)
{
  lua_Integer slot = luaL_checkinteger(L, 2);
  luaL_argcheck(L, slot >= 0 && slot < 16384, 2, "a cluster slot (0..16383) expected");
  return do_call(L, (int)slot, 3);
}

static int c_shard_slots(lua_State *L)
{
  client *c = check_client(L, 1);
  int slots[256];
  size_t n = llm_redis_shard_slots(c->r, slots, 256);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushinteger(L, slots[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int c_pipeline(lua_State *L)
{
  client *c = check_client(L, 1);
  double timeout = check_timeout(L, 2);
  int n, base;
  char err[512];
  llm_task *t;
  call_op *op;
  luaL_checktype(L, 3, LUA_TTABLE);
  n = (int)luaL_len(L, 3);
  luaL_argcheck(L, n >= 1, 3, "a non-empty list of commands expected");
  t = llm_task_check_can_wait(L, SCHED(L), "redis pipeline");
  /* every command is checked before the first is sent */
  base = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    lua_geti(L, 3, i);
    if (!lua_istable(L, -1))
      return luaL_error(L, "redis pipeline: command %d is not a list", i);
    lua_pop(L, 1);
  }
  op = calloc(1, sizeof *op + (size_t)n * sizeof(slot));
  if (!op)
    return luaL_error(L, "redis pipeline: out of memory");
  op->n = n;
  op->task = t;
  op->pipeline = 1;
  for (int i = 0; i < n; i++) {
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    int argc, m;
    lua_geti(L, 3, i + 1);
    m = (int)luaL_len(L, -1);
    if (m < 1 || m > MAX_ARGS) {
      op_free(op);
      return luaL_error(L, "redis pipeline: command %d has %d arguments", i + 1, m);
    }
    luaL_checkstack(L, m, "too many arguments");
    for (int j = 1; j <= m; j++)
      lua_geti(L, base + 1, j);
    for (int j = 0; j < m; j++) {
      int ty = lua_type(L, base + 2 + j);
      if (ty != LUA_TSTRING && ty != LUA_TNUMBER) {
        op_free(op);
        return luaL_error(L, "redis pipeline: command %d, argument %d is not a string or number",
                          i + 1, j + 1);
      }
      argv[j] = lua_tolstring(L, base + 2 + j, &lens[j]);
    }
    argc = m;
    op->slots[i].op = op;
    if (llm_redis_command(c->r, argc, argv, lens, timeout, slot_done, &op->slots[i],
                          &op->slots[i].cmd, err, sizeof err) != 0) {
      op_free(op);
      lua_settop(L, base);
      return llm_fail(L, "transport", NULL, "%s", err);
    }
    lua_settop(L, base);
  }
  return start_op(L, op);
}

/* ---- send: no waiting, a ticket to look at later ---------------------------------- */

typedef struct ticket_state {
  int refs;  /* the userdata and the pending command */
  int state; /* 0 pending, 1 ok, 2 error */
  char message[240];
} ticket_state;

static void ticket_release(ticket_state *ts)
{
  if (--ts->refs == 0)
    free(ts);
}

static void ticket_done(void *ud, const redisReply *reply, int status, const char *message)
{
  ticket_state *ts = ud;
  if (status != LLM_REDIS_OK) {
    ts->state = 2;
    snprintf(ts->message, sizeof ts->message, "%s", message ? message : "failed");
  } else if (reply->type == REDIS_REPLY_ERROR) {
    ts->state = 2;
    snprintf(ts->message, sizeof ts->message, "%s", reply->str);
  } else {
    ts->state = 1;
  }
  ticket_release(ts);
}

static int c_send(lua_State *L)
{
  client *c = check_client(L, 1);
  const char *argv[MAX_ARGS];
  size_t lens[MAX_ARGS];
  char err[512];
  int argc = collect_args(L, 2, lua_gettop(L), argv, lens);
  ticket_state **ud;
  ticket_state *ts = calloc(1, sizeof *ts);
  if (!ts)
    return luaL_error(L, "redis send: out of memory");
  ts->refs = 2;
  if (llm_redis_command(c->r, argc, argv, lens, 0, ticket_done, ts, NULL, err, sizeof err) != 0) {
    free(ts);
    return llm_fail(L, "transport", NULL, "%s", err);
  }
  ud = llm_new_object(L, sizeof *ud, TICKET_MT);
  *ud = ts;
  /* nobody waits for it: let it leave now, even if the task then blocks */
  llm_redis_flush(c->r);
  return 1;
}

static int t_status(lua_State *L)
{
  ticket_state *ts = *(ticket_state **)luaL_checkudata(L, 1, TICKET_MT);
  static const char *const names[] = {"pending", "ok", "error"};
  lua_pushstring(L, names[ts->state]);
  if (ts->state == 2) {
    lua_pushstring(L, ts->message);
    return 2;
  }
  return 1;
}

static int t_gc(lua_State *L)
{
  ticket_state **ud = luaL_checkudata(L, 1, TICKET_MT);
  if (*ud) {
    ticket_release(*ud);
    *ud = NULL;
  }
  return 0;
}

/* ---- repeaters ------------------------------------------------------------------------ */

typedef struct repeater {
  client *c; /* kept alive through the user value */
  llm_redis_every *e;
} repeater;

static int c_every(lua_State *L)
{
  client *c = check_client(L, 1);
  lua_Number interval = luaL_checknumber(L, 2);
  const char *argv[MAX_ARGS];
  size_t lens[MAX_ARGS];
  int argc;
  repeater *rp;
  luaL_argcheck(L, interval > 0 && interval < 1e6, 2, "an interval in seconds > 0 expected");
  argc = collect_args(L, 3, lua_gettop(L), argv, lens);
  rp = lua_newuserdatauv(L, sizeof *rp, 1);
  rp->c = c;
  rp->e = llm_redis_every_start(c->r, (double)interval, argc, argv, lens);
  if (!rp->e)
    return luaL_error(L, "redis every: out of memory");
  luaL_setmetatable(L, REPEAT_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static int rp_stop(lua_State *L)
{
  repeater *rp = luaL_checkudata(L, 1, REPEAT_MT);
  if (rp->e && rp->c->r) /* a closed client already stopped it */
    llm_redis_every_stop(rp->e);
  rp->e = NULL;
  return 0;
}

/* ---- the rest of the client --------------------------------------------------------------- */

static int c_drain(lua_State *L)
{
  client *c = check_client(L, 1);
  double timeout = check_timeout(L, 2);
  lua_pushinteger(L, (lua_Integer)llm_redis_drain(c->r, timeout));
  return 1;
}

static int c_info(lua_State *L)
{
  client *c = check_client(L, 1);
  llm_redis_stats st;
  llm_redis_get_stats(c->r, &st);
  lua_createtable(L, 0, 17);
  llm_set_string(L, "where", llm_redis_where(c->r));
  llm_set_boolean(L, "connected", llm_redis_connected(c->r));
  llm_set_integer(L, "pending", (lua_Integer)llm_redis_pending(c->r));
  if (llm_redis_last_error(c->r)[0])
    llm_set_string(L, "last_error", llm_redis_last_error(c->r));
  llm_set_integer(L, "commands", (lua_Integer)st.commands);
  llm_set_integer(L, "replies", (lua_Integer)st.replies);
  llm_set_integer(L, "failed", (lua_Integer)st.failed);
  llm_set_integer(L, "timeouts", (lua_Integer)st.timeouts);
  llm_set_integer(L, "refused", (lua_Integer)st.refused);
  llm_set_integer(L, "connects", (lua_Integer)st.connects);
  llm_set_integer(L, "disconnects", (lua_Integer)st.disconnects);
  llm_set_boolean(L, "cluster", llm_redis_is_cluster(c->r));
  if (llm_redis_is_cluster(c->r)) {
    llm_set_integer(L, "nodes", (lua_Integer)st.nodes);
    llm_set_integer(L, "moved", (lua_Integer)st.moved);
    llm_set_integer(L, "asks", (lua_Integer)st.asks);
    llm_set_integer(L, "map_refreshes", (lua_Integer)st.map_refreshes);
  }
  return 1;
}

static int c_close(lua_State *L)
{
  client *c = luaL_checkudata(L, 1, CLIENT_MT);
  if (c->r) {
    llm_redis *r = c->r;
    c->r = NULL;
    llm_redis_free(r);
  }
  return 0;
}

static int c_tostring(lua_State *L)
{
  client *c = luaL_checkudata(L, 1, CLIENT_MT);
  lua_pushfstring(L, "redis client %s%s", c->r ? llm_redis_where(c->r) : "",
                  c->r ? "" : "(closed)");
  return 1;
}

/* ---- module functions --------------------------------------------------------------------- */

static int l_connect(lua_State *L)
{
  const char *url = luaL_checkstring(L, 1);
  llm_redis_url u;
  char err[300];
  client *c;
  double connect_timeout, bmin, bmax;
  /* the table may carry llm.redis's own options (timeout) too */
  llm_opts o = llm_opts_at(L, 2, "redis.connect");
  connect_timeout = llm_opt_number(&o, "connect_timeout", 2.0, 0, HUGE_VAL);
  bmin = llm_opt_number(&o, "backoff_min", 0.05, 0, HUGE_VAL);
  bmax = llm_opt_number(&o, "backoff_max", 2.0, 0, HUGE_VAL);
  if (llm_redis_parse_url(url, &u, err, sizeof err) != 0)
    return luaL_error(L, "%s", err);
  c = llm_new_object(L, sizeof *c, CLIENT_MT);
  c->r = llm_redis_new(llm_sched_loop(SCHED(L)), &u, connect_timeout);
  memset(&u, 0, sizeof u);
  if (!c->r)
    return luaL_error(L, "redis.connect: out of memory");
  llm_redis_set_backoff(c->r, bmin, bmax);
  return 1;
}

static int l_available(lua_State *L)
{
  char err[300];
  if (llm_hiredis_load(err, sizeof err) != 0) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_parse_url(lua_State *L)
{
  llm_redis_url u;
  char err[300], shown[400];
  if (llm_redis_parse_url(luaL_checkstring(L, 1), &u, err, sizeof err) != 0)
    return llm_fail(L, "redis", "url", "%s", err);
  llm_redis_url_display(&u, shown, sizeof shown);
  lua_createtable(L, 0, 7);
  llm_set_string(L, "host", u.socket[0] ? "" : u.host);
  llm_set_integer(L, "port", u.port);
  llm_set_string(L, "socket", u.socket);
  llm_set_integer(L, "db", u.db);
  llm_set_boolean(L, "has_password", u.password[0] != '\0');
  llm_set_string(L, "user", u.user);
  llm_set_string(L, "display", shown);
  memset(&u, 0, sizeof u);
  return 1;
}

static int l_key_slot(lua_State *L)
{
  size_t len;
  const char *key = luaL_checklstring(L, 1, &len);
  lua_pushinteger(L, (lua_Integer)llm_redis_key_slot(key, len));
  return 1;
}

static const luaL_Reg client_methods[] = {
  {"call", c_call},
  {"call_at", c_call_at},
  {"shard_slots", c_shard_slots},
  {"pipeline", c_pipeline},
  {"send", c_send},
  {"every", c_every},
  {"drain", c_drain},
  {"info", c_info},
  {"close", c_close},
  {NULL, NULL}
};

static const luaL_Reg client_meta[] = {
  {"__gc", c_close},
  {"__close", c_close},
  {"__tostring", c_tostring},
  {NULL, NULL}
};

static const luaL_Reg ticket_methods[] = {
  {"status", t_status},
  {NULL, NULL}
};

static const luaL_Reg ticket_meta[] = {
  {"__gc", t_gc},
  {NULL, NULL}
};

static const luaL_Reg repeater_methods[] = {
  {"stop", rp_stop},
  {NULL, NULL}
};

static const luaL_Reg repeater_meta[] = {
  {"__gc", rp_stop},
  {"__close", rp_stop},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"connect", l_connect},
  {"available", l_available},
  {"parse_url", l_parse_url},
  {"key_slot", l_key_slot},
  {NULL, NULL}
};

int luaopen__llm_redis(lua_State *L)
{
  llm_sched *s = llm_sched_of(L);
  llm_class_register(L, CLIENT_MT, client_meta, client_methods, s);
  llm_class_register(L, TICKET_MT, ticket_meta, ticket_methods, NULL);
  llm_class_register(L, REPEAT_MT, repeater_meta, repeater_methods, NULL);
  luaL_newlibtable(L, funcs);
  lua_pushlightuserdata(L, s);
  luaL_setfuncs(L, funcs, 1);
  return 1;
}
