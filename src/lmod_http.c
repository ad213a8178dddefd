/* _llm.http: HTTP transfers for Lua tasks.
 *
 *   http.request(spec [, url [, body [, extra_header]]])
 *     spec: {method=, url=, headers={...}, extra_header=, body=, timeout=,
 *            connect_timeout=, max_body=, max_idle_reuse=, insecure=, ca_file=}
 *     -> {status=, headers={name=value}, body=, t_start=, t_headers=,
 *         t_first_byte=, t_end=}  |  nil, err
 *     (headers: all of an error response's; of a success only request ids,
 *     openai-processing-ms, rate-limit and retry-after headers)
 *   http.stream(spec [, url [, body [, extra_header]]])
 *     spec: {... same ..., stall_timeout=, framing="sse"|"ndjson"|"raw"}
 *     -> stream (after the response headers)  |  nil, err
 *   The spec is read as it is, so a model hands its network table (its
 *   `net`: llm.transport) straight over; url, body and extra_header given
 *   as arguments take the place of the spec's for this request (the body
 *   and the per-attempt Idempotency-Key line of a model's call).
 *   record = true in the spec (either call): keep every raw body chunk
 *     with its arrival time, for llm.record: a request's result then has
 *     chunks= (below), a stream answers stream:recording()
 *   stream:next() -> event {data=, type=, id=, t=} | nil (clean end) | nil, err
 *   stream:read_all([max]) -> the rest of the body (or its next max bytes at
 *     least, when max is given) as one string | nil, err
 *   stream:head() -> as request's result, without body; first_bytes= the
 *     body's first 256 bytes as they came
 *   stream:peek(n) -> the body's first n (<= 256) bytes, waiting for them
 *     (fewer if the body ends first); the stream still yields them
 *   stream:close()
 *   stream:recording() -> {body=, chunks=} (record = true): every body byte
 *     received so far, and chunks = '[[t_ms,bytes],...]', each piece's
 *     arrival in ms after the transfer started (JSON text, as a cassette
 *     stores it)
 *   http.parse_date(s) -> epoch seconds | nil
 *   http.max_host_connections([n]) -> the previous limit (0: none); sets it
 *     (default 1000, or LLMRUN_MAX_HOST_CONNECTIONS; src/loop.h says why)
 *
 * A waiting task yields; curl's callbacks only fill C buffers and wake it.
 * Errors are llm.error tables: kind "transport" or "timeout" (with
 * stalled=true for a stream that stopped sending), message, curl_code. */
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "curl_lazy.h"
#include "http.h"
#include "lmod_util.h"
#include "stream_framing.h"
#include "task.h"

#define TRANSFER_MT "llm.http.transfer"
#define SCHED(L) ((llm_sched *)lua_touserdata(L, lua_upvalueindex(1)))

/* Stop reading from the socket while this much parsed data waits for the
 * task to take it; resume below half of it. */
#define QUEUE_HIGH (1u << 20)

enum want { WANT_NOTHING, WANT_HEADERS, WANT_EVENT, WANT_DONE, WANT_BYTES, WANT_SNIFF };

/* The first body bytes of a stream are kept to say what came back when
 * it turns out not to be a stream (an HTML page, a JSON answer). */
#define SNIFF_MAX 256

typedef struct transfer {
  llm_wait wait;          /* the waiting task's wait; cancel aborts */
  llm_sched *s;
  llm_http *h;
  llm_task *waiter;
  int want;
  int streaming;
  int self_idx;           /* stack slot of this userdata in the calling task */
  size_t want_bytes;      /* WANT_BYTES: this many queued bytes will do */
  llm_framing framing;    /* stream body -> queued events */
  size_t sniff_len;
  char sniff[SNIFF_MAX];
  struct recording *rec;  /* record = true: raw chunks and their times */
} transfer;

/* What record = true keeps: the body bytes as they came and, per piece
 * curl handed over, its arrival time and size. */
typedef struct piece {
  double t;
  size_t len;
} piece;

typedef struct recording {
  llm_buf body;
  piece *pieces;
  size_t n, npcap;
  int failed;             /* out of memory: the recording is incomplete */
} recording;

static int rec_add(void *ud, const char *data, size_t len, double now)
{
  transfer *t = ud;
  recording *r = t->rec;
  if (!r || r->failed)
    return 1;
  if (llm_grow(&r->pieces, &r->npcap, r->n + 1, sizeof *r->pieces) != 0) {
    r->failed = 1;
    return 1;
  }
  llm_buf_put(&r->body, data, len);
  if (r->body.failed) {
    r->failed = 1;
    return 1;
  }
  r->pieces[r->n].t = now;
  r->pieces[r->n].len = len;
  r->n++;
  return 1;
}

static void rec_free(transfer *t)
{
  if (t->rec) {
    llm_buf_free(&t->rec->body);
    free(t->rec->pieces);
    free(t->rec);
    t->rec = NULL;
  }
}

/* The pieces as '[[t_ms,bytes],...]', t_ms after the transfer started. */
static void push_chunks(lua_State *L, transfer *t)
{
  luaL_Buffer b;
  double start = llm_http_timing(t->h).start;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '[');
  for (size_t i = 0; t->rec && i < t->rec->n; i++) {
    char item[64];
    double ms = (t->rec->pieces[i].t - start) * 1000.0;
    snprintf(item, sizeof item, "%s[%.3f,%zu]", i ? "," : "", ms > 0 ? ms : 0.0, t->rec->pieces[i].len);
    luaL_addstring(&b, item);
  }
  luaL_addchar(&b, ']');
  luaL_pushresult(&b);
}

static transfer *check_transfer(lua_State *L)
{
  return luaL_checkudata(L, 1, TRANSFER_MT);
}

/* ---- waking the task ------------------------------------------------------ */

static int satisfied(transfer *t)
{
  int state = llm_http_state(t->h);
  switch (t->want) {
  case WANT_HEADERS: return llm_http_headers_done(t->h) || state != LLM_HTTP_RUNNING;
  case WANT_EVENT: return llm_framing_pending(&t->framing) || state != LLM_HTTP_RUNNING;
  case WANT_DONE: return state != LLM_HTTP_RUNNING;
  case WANT_BYTES:
    return llm_framing_queued_bytes(&t->framing) >= t->want_bytes || state != LLM_HTTP_RUNNING;
  case WANT_SNIFF: return t->sniff_len >= t->want_bytes || state != LLM_HTTP_RUNNING;
  default: return 0;
  }
}

static void maybe_wake(transfer *t)
{
  if (t->waiter && satisfied(t)) {
    llm_task *w = t->waiter;
    t->waiter = NULL;
    t->want = WANT_NOTHING;
    llm_task_wake(t->s, w);
  }
}

static void on_headers(void *ud, llm_http *h)
{
  transfer *t = ud;
  /* an error response is a plain body, whatever framing was asked for */
  long status = llm_http_status(h);
  if (t->streaming && (status < 200 || status >= 300))
    llm_framing_set_raw(&t->framing);
  maybe_wake(t);
}

static void on_done(void *ud, llm_http *h)
{
  transfer *t = ud;
  (void)h;
  llm_framing_finish(&t->framing);
  maybe_wake(t);
}

static int on_body(void *ud, const char *data, size_t len, double now)
{
  transfer *t = ud;
  size_t events = t->framing.count;
  if (llm_framing_queued_bytes(&t->framing) >= QUEUE_HIGH)
    return 0; /* back-pressure: the reader is behind */
  if (t->sniff_len < SNIFF_MAX) {
    size_t n = len < SNIFF_MAX - t->sniff_len ? len : SNIFF_MAX - t->sniff_len;
    memcpy(t->sniff + t->sniff_len, data, n);
    t->sniff_len += n;
  }
  llm_framing_feed(&t->framing, data, len, now);
  /* a whole event is progress; bytes alone (SSE comments) are not */
  if (t->framing.count > events && t->h) /* t->h is unset while the transfer starts */
    llm_http_touch(t->h, now);
  maybe_wake(t);
  return 1;
}

/* A task cancelled while waiting takes its transfer down with it. */
static void cancel_wait(llm_wait *w)
{
  transfer *t = (transfer *)w;
  t->waiter = NULL;
  t->want = WANT_NOTHING;
  if (t->h)
    llm_http_abort(t->h);
}

/* me: the waiting task, from llm_task_check_can_wait (done by the caller,
 * once, before anything starts). */
static int wait_for(lua_State *L, transfer *t, llm_task *me, int want, lua_KFunction k)
{
  if (t->waiter)
    return luaL_error(L, "another task is already waiting on this transfer");
  t->want = want;
  if (satisfied(t)) {
    t->want = WANT_NOTHING;
    return k(L, LUA_OK, (lua_KContext)t);
  }
  t->waiter = me;
  return llm_task_suspend(L, t->s, &t->wait, (lua_KContext)t, k);
}

/* ---- building requests -------------------------------------------------------------- */

static double opt_number(lua_State *L, int idx, const char *field, double def)
{
  double v;
  lua_getfield(L, idx, field);
  v = luaL_optnumber(L, -1, def);
  lua_pop(L, 1);
  if (v == HUGE_VAL)
    return 0; /* math.huge: no limit (0 means none, or the default size cap) */
  /* a finite bound: the engine converts seconds and sizes to integers */
  if (!(v >= 0 && v <= 1e9))
    luaL_error(L, "%s must be a number from 0 to 1e9, or math.huge", field);
  return v;
}

/* Was argument arg given (and not nil)? nargs: the call's argument count,
 * taken before anything was pushed (a pushed field must not pass for an
 * argument). */
static int given(lua_State *L, int nargs, int arg)
{
  return arg <= nargs && !lua_isnil(L, arg);
}

/* A string option of the spec, or argument arg when that is given. The
 * value stays on the stack (a field is pushed), keeping the string alive. */
static const char *opt_string(lua_State *L, int nargs, int arg, const char *field,
                              const char *def)
{
  if (given(L, nargs, arg))
    return luaL_checkstring(L, arg);
  lua_getfield(L, 1, field);
  return luaL_optstring(L, -1, def);
}

/* Reads a request: the spec at index 1, and the url, body and extra
 * header line at 2, 3 and 4 when given (see the top of this file). The
 * options a stream alone has (stall_timeout) are read for streams only,
 * so a model's spec serves both. Strings stay valid while the values
 * are on the stack; header lines are collected in a userdata array. */
static void read_request(lua_State *L, llm_http_request *req, int streaming)
{
  size_t n = 0;
  const char **lines;
  int nargs = lua_gettop(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(req, 0, sizeof *req);
  req->url = opt_string(L, nargs, 2, "url", NULL);
  if (!req->url)
    luaL_error(L, "http request: url (string) expected");
  {
    /* a URL that is not http(s), or that curl cannot parse, is misuse:
     * raised here, never sent, never retried */
    char err[160];
    if (llm_curl_load(NULL, 0) == 0) {
      if (llm_http_check_url(req->url, err, sizeof err) != 0)
        luaL_error(L, "http request: %s", err);
      req->url_checked = 1; /* llm_http_start need not check it again */
    }
  }
  lua_getfield(L, 1, "method");
  req->method = luaL_optstring(L, -1, "GET");
  if (given(L, nargs, 3)) {
    req->body = luaL_checklstring(L, 3, &req->body_len);
  } else {
    lua_getfield(L, 1, "body");
    if (!lua_isnil(L, -1))
      req->body = luaL_checklstring(L, -1, &req->body_len);
  }
  lua_getfield(L, 1, "ca_file");
  req->ca_file = luaL_optstring(L, -1, NULL);
  lua_getfield(L, 1, "insecure");
  req->insecure = lua_toboolean(L, -1);
  lua_pop(L, 1);
  req->extra_header = opt_string(L, nargs, 4, "extra_header", NULL);
  /* url, method, body, ca_file and extra_header stay on the stack to keep
   * their strings alive (a number is converted in its stack slot only) */

  req->timeout = opt_number(L, 1, "timeout", 0);
  req->connect_timeout = opt_number(L, 1, "connect_timeout", 0);
  req->max_idle_reuse = opt_number(L, 1, "max_idle_reuse", 0);
  if (streaming)
    req->stall_timeout = opt_number(L, 1, "stall_timeout", 0);
  else
    req->max_body = (size_t)opt_number(L, 1, "max_body", 0);

  lua_getfield(L, 1, "headers");
  if (!lua_isnil(L, -1)) {
    luaL_checktype(L, -1, LUA_TTABLE);
    n = lua_rawlen(L, -1);
  }
  lines = lua_newuserdatauv(L, (n + 1) * sizeof *lines, 0);
  for (size_t i = 0; i < n; i++) {
    /* strings only: lua_tostring would convert a number in the stack slot,
     * and that new string dies with the pop below */
    if (lua_rawgeti(L, -2, (lua_Integer)i + 1) != LUA_TSTRING)
      luaL_error(L, "http request: headers must be a list of \"Name: value\" strings");
    lines[i] = lua_tostring(L, -1);
    lua_pop(L, 1); /* the string is still referenced by the headers table */
  }
  lines[n] = NULL;
  req->headers = lines;
}

static void push_error(lua_State *L, const char *kind, const char *msg, int curl_code, int stalled)
{
  llm_push_error(L, kind, NULL, "%s", msg);
  if (curl_code) {
    lua_pushinteger(L, curl_code);
    lua_setfield(L, -2, "curl_code");
  }
  if (stalled) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "stalled");
  }
}

/* Failures a retry cannot fix: the body is too large, or memory ran out. */
static void mark_final(lua_State *L, int error)
{
  if (error == LLM_HTTP_E_TOO_LARGE || error == LLM_HTTP_E_MEMORY) {
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "retryable");
  }
}

static int push_failure(lua_State *L, transfer *t)
{
  int e = llm_http_error(t->h);
  const char *kind = (e == LLM_HTTP_E_TIMEOUT || e == LLM_HTTP_E_STALLED) ? "timeout" : "transport";
  if (llm_http_state(t->h) == LLM_HTTP_ABORTED) {
    luaL_pushfail(L);
    push_error(L, "cancelled", "transfer aborted", 0, 0);
    return 2;
  }
  luaL_pushfail(L);
  push_error(L, kind, llm_http_error_message(t->h), llm_http_curl_code(t->h),
             e == LLM_HTTP_E_STALLED);
  mark_final(L, e);
  return 2;
}

/* On a success only the headers something reads are copied to Lua (every
 * string is garbage to collect later): request ids, the content type,
 * timing, rate limits and the simulator's x-sim-skill (which skill
 * answered). An error response gets all of them. */
static int kept_on_success(const char *name)
{
  switch (name[0]) { /* most names are ruled out by their first letter */
  case 'x':
    return strcmp(name, "x-request-id") == 0 || strcmp(name, "x-sim-skill") == 0 ||
           strncmp(name, "x-ratelimit-", 12) == 0;
  case 'r': return strcmp(name, "request-id") == 0 || strncmp(name, "retry-after", 11) == 0;
  case 'c': return strcmp(name, "content-type") == 0;
  case 'o': return strcmp(name, "openai-processing-ms") == 0;
  case 'a': return strncmp(name, "anthropic-ratelimit-", 20) == 0;
  default: return 0;
  }
}

static void push_headers(lua_State *L, transfer *t)
{
  size_t n = llm_http_header_count(t->h);
  long status = llm_http_status(t->h);
  int all = status < 200 || status >= 300;
  lua_createtable(L, 0, all ? (int)n : 4);
  for (size_t i = 0; i < n; i++) {
    const char *name, *value;
    llm_http_header_at(t->h, i, &name, &value);
    if (!all && !kept_on_success(name))
      continue;
    lua_pushstring(L, value);
    lua_setfield(L, -2, name);
  }
}

static void set_number(lua_State *L, const char *k, double v)
{
  if (v > 0) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
  }
}

/* The response summary shared by requests and streams. */
static void push_response_head(lua_State *L, transfer *t)
{
  llm_http_times tm = llm_http_timing(t->h);
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, llm_http_status(t->h));
  lua_setfield(L, -2, "status");
  push_headers(L, t);
  lua_setfield(L, -2, "headers");
  set_number(L, "t_start", tm.start);
  set_number(L, "t_headers", tm.headers);
  set_number(L, "t_first_byte", tm.first_byte);
  set_number(L, "t_end", tm.end);
}

/* framing: NULL buffers the body; else the stream's framing, set up
 * before the transfer starts because curl may deliver the first bytes
 * from inside llm_http_start. */
static transfer *new_transfer(lua_State *L, llm_http_request *req, const char *framing)
{
  llm_sched *s = SCHED(L);
  transfer *t = llm_new_object(L, sizeof *t, TRANSFER_MT);
  char err[256];
  t->wait.cancel = cancel_wait;
  t->s = s;
  t->streaming = framing != NULL;
  if (framing && llm_framing_init(&t->framing, framing) != 0)
    luaL_error(L, "out of memory");
  req->on_headers = on_headers;
  req->on_done = on_done;
  req->ud = t;
  if (framing)
    req->sink = on_body;
  lua_getfield(L, 1, "record");
  if (lua_toboolean(L, -1)) {
    if (!(t->rec = calloc(1, sizeof *t->rec)))
      luaL_error(L, "out of memory");
    req->tap = rec_add;
  }
  lua_pop(L, 1);
  t->h = llm_http_start(llm_sched_loop(s), req, err, sizeof err);
  if (!t->h) {
    rec_free(t);
    lua_pop(L, 1);
    luaL_pushfail(L);
    push_error(L, "transport", err, 0, 0);
    lua_pushboolean(L, 0); /* libcurl missing, or no memory: a retry cannot help */
    lua_setfield(L, -2, "retryable");
    return NULL;
  }
  return t;
}

/* ---- http.request: buffered ------------------------------------------------------------ */

/* The transfer is over once its result is built: its curl handle goes
 * back to the pool now, not when the collector gets to the userdata
 * (with 64 calls in flight the pool would run dry meanwhile, and every
 * call would pay curl_easy_init and its large allocations). */
static void release(transfer *t)
{
  llm_http_free(t->h);
  t->h = NULL;
}

static int request_done(lua_State *L, int status, lua_KContext ctx)
{
  transfer *t = (transfer *)ctx;
  size_t len;
  const char *body;
  (void)status;
  if (llm_http_state(t->h) != LLM_HTTP_DONE) {
    int n = push_failure(L, t);
    release(t);
    return n;
  }
  push_response_head(L, t);
  body = llm_http_body(t->h, &len);
  lua_pushlstring(L, body, len);
  lua_setfield(L, -2, "body");
  if (t->rec) {
    push_chunks(L, t);
    lua_setfield(L, -2, "chunks");
  }
  release(t);
  return 1;
}

static int l_request(lua_State *L)
{
  llm_http_request req;
  transfer *t;
  llm_task *me;
  read_request(L, &req, 0);
  me = llm_task_check_can_wait(L, SCHED(L), "http request");
  t = new_transfer(L, &req, NULL);
  if (!t)
    return 2;
  return wait_for(L, t, me, WANT_DONE, request_done);
}

/* ---- http.stream ------------------------------------------------------------------------------ */

static int stream_opened(lua_State *L, int status, lua_KContext ctx)
{
  transfer *t = (transfer *)ctx;
  (void)status;
  if (!llm_http_headers_done(t->h))
    return push_failure(L, t);
  /* a continuation sees the stack as it was when the task yielded */
  lua_pushvalue(L, t->self_idx);
  return 1;
}

static int l_stream(lua_State *L)
{
  llm_http_request req;
  transfer *t;
  const char *framing;
  llm_task *me;
  read_request(L, &req, 1);
  lua_getfield(L, 1, "framing");
  framing = luaL_optstring(L, -1, "raw");
  if (strcmp(framing, "sse") != 0 && strcmp(framing, "ndjson") != 0 && strcmp(framing, "raw") != 0)
    return luaL_error(L, "unknown framing '%s' (sse, ndjson or raw)", framing);
  /* events, not bytes, prove a framed stream alive (src/http.h) */
  req.stall_on_touch = strcmp(framing, "raw") != 0;
  me = llm_task_check_can_wait(L, SCHED(L), "http stream");
  t = new_transfer(L, &req, framing);
  if (!t)
    return 2;
  t->self_idx = lua_absindex(L, -1);
  return wait_for(L, t, me, WANT_HEADERS, stream_opened);
}

static int s_status(lua_State *L)
{
  lua_pushinteger(L, llm_http_status(check_transfer(L)->h));
  return 1;
}

/* The response head, and for a stream the first bytes of its body
 * (up to 256) as they came. */
static int s_head(lua_State *L)
{
  transfer *t = check_transfer(L);
  push_response_head(L, t);
  if (t->streaming) {
    lua_pushlstring(L, t->sniff, t->sniff_len);
    lua_setfield(L, -2, "first_bytes");
  }
  return 1;
}

static int next_done(lua_State *L, int status, lua_KContext ctx)
{
  transfer *t = (transfer *)ctx;
  llm_event *ev = llm_framing_pop(&t->framing);
  (void)status;
  if (ev) {
    lua_createtable(L, 0, 4);
    lua_pushlstring(L, ev->data, ev->len);
    lua_setfield(L, -2, "data");
    if (ev->type) {
      lua_pushstring(L, ev->type);
      lua_setfield(L, -2, "type");
    }
    if (ev->id) {
      lua_pushstring(L, ev->id);
      lua_setfield(L, -2, "id");
    }
    lua_pushnumber(L, ev->t);
    lua_setfield(L, -2, "t");
    llm_event_free(ev);
    if (llm_framing_queued_bytes(&t->framing) < QUEUE_HIGH / 2)
      llm_http_resume(t->h);
    return 1;
  }
  if (llm_framing_error(&t->framing)) {
    luaL_pushfail(L);
    push_error(L, "parse", llm_framing_error(&t->framing), 0, 0);
    return 2;
  }
  if (llm_http_state(t->h) == LLM_HTTP_DONE) {
    if (llm_framing_truncated(&t->framing)) {
      luaL_pushfail(L);
      push_error(L, "transport", "the stream ended in the middle of an event", 0, 0);
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "truncated");
      return 2;
    }
    luaL_pushfail(L); /* clean end */
    return 1;
  }
  return push_failure(L, t);
}

static int s_next(lua_State *L)
{
  transfer *t = check_transfer(L);
  return wait_for(L, t, llm_task_check_can_wait(L, t->s, "stream:next"), WANT_EVENT, next_done);
}

static int read_all_done(lua_State *L, int status, lua_KContext ctx)
{
  transfer *t = (transfer *)ctx;
  luaL_Buffer b;
  llm_event *ev;
  (void)status;
  if (llm_http_state(t->h) != LLM_HTTP_DONE &&
      !(t->want_bytes && llm_framing_queued_bytes(&t->framing) >= t->want_bytes))
    return push_failure(L, t);
  luaL_buffinit(L, &b);
  while ((ev = llm_framing_pop(&t->framing)) != NULL) {
    luaL_addlstring(&b, ev->data, ev->len);
    llm_event_free(ev);
  }
  luaL_pushresult(&b);
  return 1;
}

/* Reads the rest of a (usually error) response: the framing is switched
 * to raw so the bytes arrive as they are. With max, returns once that
 * many bytes are in (or the body ended): a hostile body may never end.
 * The result can be a little longer than max; close the stream after. */
static int s_read_all(lua_State *L)
{
  transfer *t = check_transfer(L);
  lua_Integer max = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, max >= 0, 2, "a byte count >= 0 expected");
  t->want_bytes = (size_t)max;
  llm_framing_set_raw(&t->framing);
  llm_http_resume(t->h);
  return wait_for(L, t, llm_task_check_can_wait(L, t->s, "http request"),
                  max > 0 ? WANT_BYTES : WANT_DONE, read_all_done);
}

static int peek_done(lua_State *L, int status, lua_KContext ctx)
{
  transfer *t = (transfer *)ctx;
  (void)status;
  lua_pushlstring(L, t->sniff, t->sniff_len < t->want_bytes ? t->sniff_len : t->want_bytes);
  return 1;
}

/* The body's first n bytes (n <= 256), once they are in or the body
 * ended or failed (then fewer), without taking them from the stream. */
static int s_peek(lua_State *L)
{
  transfer *t = check_transfer(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0 && n <= SNIFF_MAX, 2, "a byte count from 0 to 256 expected");
  t->want_bytes = (size_t)n;
  return wait_for(L, t, llm_task_check_can_wait(L, t->s, "http request"), WANT_SNIFF, peek_done);
}

static int s_recording(lua_State *L)
{
  transfer *t = check_transfer(L);
  if (!t->rec)
    return luaL_error(L, "stream:recording(): the stream was not opened with record = true");
  if (!t->h)
    return luaL_error(L, "stream:recording(): the transfer is freed");
  lua_createtable(L, 0, 3);
  lua_pushlstring(L, t->rec->body.data ? t->rec->body.data : "", t->rec->body.len);
  lua_setfield(L, -2, "body");
  push_chunks(L, t);
  lua_setfield(L, -2, "chunks");
  if (t->rec->failed) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "incomplete");
  }
  return 1;
}

static int s_close(lua_State *L)
{
  transfer *t = check_transfer(L);
  if (t->h)
    llm_http_abort(t->h);
  return 0;
}

static int s_gc(lua_State *L)
{
  transfer *t = check_transfer(L);
  if (t->h) {
    llm_http_free(t->h);
    t->h = NULL;
  }
  llm_framing_free(&t->framing);
  rec_free(t);
  return 0;
}

static int s_tostring(lua_State *L)
{
  transfer *t = check_transfer(L);
  lua_pushfstring(L, "http transfer (%s)",
                  !t->h ? "closed"
                  : llm_http_state(t->h) == LLM_HTTP_RUNNING ? "running" : "finished");
  return 1;
}

/* ---- helpers ------------------------------------------------------------------------------------ */

static int l_parse_date(lua_State *L)
{
  const char *s = luaL_checkstring(L, 1);
  time_t t;
  if (llm_curl_load(NULL, 0) != 0)
    return 0;
  t = curl_getdate(s, NULL);
  if (t == (time_t)-1)
    return 0;
  lua_pushinteger(L, (lua_Integer)t);
  return 1;
}

/* max_host_connections([n]) -> the limit before the call. The limit is
 * the loop's (every transfer shares it); 0 means none. */
static int l_max_host_connections(lua_State *L)
{
  llm_loop *loop = llm_sched_loop(SCHED(L));
  long before = llm_loop_max_host_connections(loop);
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 1000000, 1, "a connection count from 0 (no limit) to 1e6");
    llm_loop_set_max_host_connections(loop, (long)n);
  }
  lua_pushinteger(L, before);
  return 1;
}

static const luaL_Reg stream_methods[] = {
  {"next", s_next},
  {"status", s_status},
  {"head", s_head},
  {"read_all", s_read_all},
  {"peek", s_peek},
  {"recording", s_recording},
  {"close", s_close},
  {NULL, NULL}
};

static const luaL_Reg stream_metamethods[] = {
  {"__gc", s_gc},
  {"__close", s_close},
  {"__tostring", s_tostring},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"request", l_request},
  {"stream", l_stream},
  {"parse_date", l_parse_date},
  {"max_host_connections", l_max_host_connections},
  {NULL, NULL}
};

int luaopen__llm_http(lua_State *L)
{
  llm_sched *s = llm_sched_of(L);
  llm_class_register(L, TRANSFER_MT, stream_metamethods, stream_methods, s);

  luaL_newlibtable(L, funcs);
  lua_pushlightuserdata(L, s);
  luaL_setfuncs(L, funcs, 1);
  {
    /* LLMRUN_MAX_HOST_CONNECTIONS=N overrides the default (0: no limit) */
    const char *env = getenv("LLMRUN_MAX_HOST_CONNECTIONS");
    char *end;
    long n = env && *env ? strtol(env, &end, 10) : -1;
    if (env && *env && (*end != '\0' || n < 0))
      return luaL_error(L, "LLMRUN_MAX_HOST_CONNECTIONS must be a number >= 0 (0: no limit)");
    if (n >= 0)
      llm_loop_set_max_host_connections(llm_sched_loop(s), n);
  }
  return 1;
}
