/* The simulator's Anthropic Message Batches: POST /v1/messages/batches,
 * GET /v1/messages/batches[/{id}[/results]], POST .../{id}/cancel and
 * DELETE .../{id}, so that llm.batch on a Claude model (and Anthropic's
 * own SDKs) run offline as they would against the real API.
 *
 * Shapes, from Anthropic's API reference (Create / Retrieve / List /
 * Cancel / Delete a Message Batch, Retrieve Message Batch results) and the
 * SDKs' types (anthropic-sdk-python src/anthropic/types/messages/
 * message_batch*.py, anthropic-sdk-ruby's models): the MessageBatch object
 * {id "msgbatch_01...", type "message_batch", processing_status
 * in_progress | canceling | ended, request_counts {processing, succeeded,
 * errored, canceled, expired}, ended_at, created_at, expires_at,
 * cancel_initiated_at, archived_at, results_url}, the times RFC 3339
 * strings ("2024-08-20T18:37:24.100435Z"), results_url set once it has
 * ended; the list {data, has_more, first_id, last_id}, newest first, paged
 * with before_id / after_id and limit (default 20, 1 to 1,000); the
 * deleted object {id, type "message_batch_deleted"}, only for a batch that
 * has ended; results as JSONL lines {custom_id, result: {type succeeded,
 * message} | {type errored, error: {type "error", error {type, message},
 * request_id}} | {type canceled} | {type expired}}. The create body is
 * {requests: [{custom_id matching ^[a-zA-Z0-9_-]{1,64}$, params}]}, at most
 * 100,000 requests; the shape is checked at once (a 400 in the Messages
 * API's words), each params when it runs, as the batch processing guide
 * says validation happens asynchronously: a bad params is an errored
 * result. The wording of a duplicate custom_id, of cancelling or deleting
 * in the wrong state and of results asked for too early is the
 * simulator's own.
 *
 * Time is sim_batch.c's, with its knobs (batch_turnaround_s, batch_expire_s,
 * batch_fail_rate and the x-sim-batch-* headers): a batch of turnaround T
 * is in_progress from its creation, its requests answered in proportion
 * to the time between 0.1 T and 0.9 T, and ends at T. Not ended after
 * batch_expire_s (24 h, the documented expiry), it ends then: the
 * requests not run are expired. A cancel makes it canceling for 0.05 T,
 * then it ends with the requests not run canceled. Each request that
 * touches a batch brings it up to date first; nothing runs on a timer.
 *
 * Each params is answered by the Messages endpoint's own parser, model and
 * prompt cache (sim_messages_answer_body), under the anthropic-version the
 * batch was created with: answers, usage, thinking, tools and errors are
 * the Messages API's. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_batch.h"
#include "sim_internal.h"

#define PATH "/v1/messages/batches"
#define MAX_REQUESTS 100000
#define ID_PATTERN "^[a-zA-Z0-9_-]{1,64}$"

enum { M_IN_PROGRESS, M_CANCELING, M_ENDED };
static const char *const status_names[] = {"in_progress", "canceling", "ended"};

struct sim_msgbatch {
  char id[48];
  char version[32];          /* anthropic-version at creation */
  int status;
  int64_t t0;                /* monotonic ns at creation */
  int64_t created_us;        /* Unix microseconds */
  double turnaround_s, expire_s, fail_rate;
  double cancel_el, ended_el;  /* seconds after creation; < 0: not (yet) */
  json_doc *doc;             /* the create body, until the batch has ended */
  const json_value *reqs;    /* its requests array */
  size_t n, next, succeeded, errored, canceled, expired;
  llm_buf results;           /* JSONL, in the order the requests ended */
};

/* ---- the store --------------------------------------------------------------------------- */

static void mb_free(sim_msgbatch *b)
{
  json_free(b->doc);
  llm_buf_free(&b->results);
  free(b);
}

void sim_msgbatches_free_all(sim_batches *bs)
{
  for (size_t i = 0; i < bs->nmbatches; i++)
    mb_free(bs->mbatches[i]);
  free(bs->mbatches);
  bs->mbatches = NULL;
  bs->nmbatches = bs->capmbatches = 0;
}

static size_t find(sim_batches *bs, const char *id)
{
  for (size_t i = 0; i < bs->nmbatches; i++)
    if (strcmp(bs->mbatches[i]->id, id) == 0)
      return i;
  return SIZE_MAX;
}

int sim_msgbatch_route(const char *url)
{
  return strncmp(url, PATH, sizeof PATH - 1) == 0 &&
         (url[sizeof PATH - 1] == '\0' || url[sizeof PATH - 1] == '/');
}

/* ---- answering ---------------------------------------------------------------------------- */

static const char *custom_id(const sim_msgbatch *b, size_t i)
{
  return json_get(&b->reqs->u.array.items[i], "custom_id")->u.string.ptr; /* checked */
}

static void put_head(const sim_msgbatch *b, size_t i, llm_buf *out)
{
  llm_buf_puts(out, "{\"custom_id\":");
  json_put_cstring(out, custom_id(b, i));
  llm_buf_puts(out, ",\"result\":");
}

static void answer(sim_server *s, sim_msgbatch *b, size_t i)
{
  char rid[40];
  llm_buf body;
  unsigned status;
  llm_buf_init(&body);
  sim_new_id(s, "req_011C", 20, rid, sizeof rid);
  if (sim_batch_line_fails(s, b->fail_rate, custom_id(b, i))) {
    status = 500;
    llm_buf_puts(&body, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
                        "\"Internal server error (simulated batch request failure)\"},"
                        "\"request_id\":");
    json_put_cstring(&body, rid);
    llm_buf_putc(&body, '}');
  } else {
    status = sim_messages_answer_body(s, json_get(&b->reqs->u.array.items[i], "params"),
                                      b->version, rid, &body);
  }
  put_head(b, i, &b->results);
  llm_buf_puts(&b->results, status == 200 ? "{\"type\":\"succeeded\",\"message\":"
                                          : "{\"type\":\"errored\",\"error\":");
  if (body.data && !body.failed)
    llm_buf_put(&b->results, body.data, sim_batch_trimmed(&body));
  else
    llm_buf_puts(&b->results, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                              "\"message\":\"Out of memory.\"}}");
  llm_buf_puts(&b->results, "}}\n");
  llm_buf_free(&body);
  if (status == 200) {
    b->succeeded++;
  } else {
    b->errored++;
    atomic_fetch_add(&s->batches->msg_requests_errored, 1);
  }
  atomic_fetch_add(&s->batches->msg_requests_answered, 1);
}

static void answer_until(sim_server *s, sim_msgbatch *b, double el)
{
  double t = b->turnaround_s;
  size_t due = sim_batch_due(b->n, el, 0.1 * t, 0.9 * t);
  while (b->next < due)
    answer(s, b, b->next++);
}

/* The end at el seconds: the requests not run get `kind`. */
static void end(sim_server *s, sim_msgbatch *b, double el, const char *kind)
{
  for (; b->next < b->n; b->next++) {
    put_head(b, b->next, &b->results);
    llm_buf_printf(&b->results, "{\"type\":\"%s\"}}\n", kind);
    if (kind[0] == 'c')
      b->canceled++;
    else
      b->expired++;
    atomic_fetch_add(&s->batches->msg_requests_not_run, 1);
  }
  b->status = M_ENDED;
  b->ended_el = el;
  json_free(b->doc);
  b->doc = NULL;
  b->reqs = NULL;
}

/* Brings the batch up to now (see the top of this file). */
static void advance(sim_server *s, sim_msgbatch *b)
{
  double el = (double)(sim_now_ns() - b->t0) / 1e9;
  double t = b->turnaround_s, x = b->expire_s, stop = 0.9 * t < x ? 0.9 * t : x;
  if (b->status == M_ENDED)
    return;
  if (b->status == M_CANCELING && b->cancel_el < stop)
    stop = b->cancel_el;
  answer_until(s, b, el < stop ? el : stop);
  if (b->status == M_CANCELING) {
    double done = b->cancel_el + 0.05 * t;
    if (el >= done)
      end(s, b, done, "canceled");
  } else if (x < t && el >= x) {
    end(s, b, x, "expired");
  } else if (el >= t) {
    answer_until(s, b, t);
    end(s, b, t, "expired"); /* none left */
  }
}

/* ---- the MessageBatch object ------------------------------------------------------------------ */

static void put_time_us(llm_buf *out, int64_t us)
{
  time_t secs = (time_t)(us / 1000000);
  struct tm tm;
  char buf[40];
  gmtime_r(&secs, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  llm_buf_printf(out, "\"%s.%06lldZ\"", buf, (long long)(us % 1000000));
}

static void put_time(llm_buf *out, const char *key, const sim_msgbatch *b, double el)
{
  llm_buf_printf(out, ",\"%s\":", key);
  if (el < 0)
    llm_buf_puts(out, "null");
  else
    put_time_us(out, b->created_us + (int64_t)llround(el * 1e6));
}

/* The origin the client reached us at, for results_url (the SDKs fetch
 * that URL as it is). */
static void put_origin(sim_req *r, llm_buf *out)
{
  const char *host = sim_header(r, "Host");
  if (host && *host && strlen(host) < 200 && !strpbrk(host, " \"\\/")) {
    llm_buf_printf(out, "http://%s", host);
  } else {
    const char *u = r->srv->url;
    const char *v1 = strstr(u, "/v1");
    llm_buf_put(out, u, v1 ? (size_t)(v1 - u) : strlen(u));
  }
}

static void put_batch(sim_req *r, const sim_msgbatch *b, llm_buf *out)
{
  size_t processing = b->n - b->succeeded - b->errored - b->canceled - b->expired;
  llm_buf_printf(out, "{\"id\":\"%s\",\"type\":\"message_batch\",\"processing_status\":\"%s\","
                 "\"request_counts\":{\"processing\":%zu,\"succeeded\":%zu,\"errored\":%zu,"
                 "\"canceled\":%zu,\"expired\":%zu}",
                 b->id, status_names[b->status], processing, b->succeeded, b->errored,
                 b->canceled, b->expired);
  put_time(out, "ended_at", b, b->status == M_ENDED ? b->ended_el : -1);
  put_time(out, "created_at", b, 0);
  put_time(out, "expires_at", b, b->expire_s);
  put_time(out, "cancel_initiated_at", b, b->cancel_el);
  llm_buf_puts(out, ",\"archived_at\":null,\"results_url\":");
  if (b->status == M_ENDED) {
    llm_buf_putc(out, '"');
    put_origin(r, out);
    llm_buf_printf(out, PATH "/%s/results\"", b->id);
  } else {
    llm_buf_puts(out, "null");
  }
  llm_buf_putc(out, '}');
}

static void reply_batch(sim_req *r, const sim_msgbatch *b)
{
  llm_buf out;
  llm_buf_init(&out);
  put_batch(r, b, &out);
  sim_reply_json(r, 200, &out, 0);
}

/* ---- create ------------------------------------------------------------------------------------ */

static int id_ok(const json_value *v)
{
  if (v->u.string.len < 1 || v->u.string.len > 64)
    return 0;
  for (size_t i = 0; i < v->u.string.len; i++) {
    char c = v->u.string.ptr[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

typedef struct cid { uint64_t h; const char *s; } cid;

static int cmp_cid(const void *a, const void *b)
{
  const cid *x = a, *y = b;
  if (x->h != y->h)
    return x->h < y->h ? -1 : 1;
  return strcmp(x->s, y->s);
}

/* The create body's shape, in the words of the API's validation errors
 * ("requests.0.custom_id: Field required"). 0, or -1 after a 400. */
static int check_body(sim_req *r, const json_value *root)
{
  const json_value *reqs;
  cid *ids;
  size_t n;
  int dup = 0;
  for (size_t i = 0; i < root->u.object.n; i++)
    if (strcmp(root->u.object.members[i].key, "requests") != 0)
      return sim_reply_bad(r, "%.64s: Extra inputs are not permitted", root->u.object.members[i].key);
  if (!(reqs = json_get(root, "requests")))
    return sim_reply_bad(r, "requests: Field required");
  if (reqs->type != JSON_ARRAY)
    return sim_reply_bad(r, "requests: Input should be a valid list");
  if ((n = reqs->u.array.n) == 0)
    return sim_reply_bad(r, "requests: List should have at least 1 item after validation, not 0");
  if (n > MAX_REQUESTS)
    return sim_reply_bad(r, "requests: List should have at most %d items after validation, not %zu",
               MAX_REQUESTS, n);
  for (size_t i = 0; i < n; i++) {
    const json_value *q = &reqs->u.array.items[i], *v;
    if (q->type != JSON_OBJECT)
      return sim_reply_bad(r, "requests.%zu: Input should be a valid dictionary", i);
    for (size_t k = 0; k < q->u.object.n; k++) {
      const char *key = q->u.object.members[k].key;
      if (strcmp(key, "custom_id") != 0 && strcmp(key, "params") != 0)
        return sim_reply_bad(r, "requests.%zu.%.64s: Extra inputs are not permitted", i, key);
    }
    if (!(v = json_get(q, "custom_id")))
      return sim_reply_bad(r, "requests.%zu.custom_id: Field required", i);
    if (!json_is_string(v))
      return sim_reply_bad(r, "requests.%zu.custom_id: Input should be a valid string", i);
    if (!id_ok(v))
      return sim_reply_bad(r, "requests.%zu.custom_id: String should match pattern '" ID_PATTERN "'", i);
    if (!(v = json_get(q, "params")))
      return sim_reply_bad(r, "requests.%zu.params: Field required", i);
    if (v->type != JSON_OBJECT)
      return sim_reply_bad(r, "requests.%zu.params: Input should be a valid dictionary", i);
  }
  if (!(ids = malloc(n * sizeof *ids))) {
    sim_reply_error(r, 500, "api_error", NULL, NULL, "Out of memory.");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    ids[i].s = json_get(&reqs->u.array.items[i], "custom_id")->u.string.ptr;
    ids[i].h = sim_hash_str(SIM_HASH_INIT, ids[i].s);
  }
  qsort(ids, n, sizeof *ids, cmp_cid);
  for (size_t i = 1; i < n && !dup; i++)
    if (cmp_cid(&ids[i], &ids[i - 1]) == 0) {
      sim_reply_bad(r, "requests: custom_id '%s' appears more than once; each request of a Message Batch "
             "needs a unique custom_id.", ids[i].s);
      dup = 1;
    }
  free(ids);
  return dup ? -1 : 0;
}

static void create(sim_req *r)
{
  sim_server *s = r->srv;
  sim_batches *bs = s->batches;
  json_doc *doc = NULL;
  json_error jerr;
  const json_value *root;
  sim_msgbatch *b;
  double turnaround, expire, fail;
  struct timespec now;
  if (r->bad_content_type) {
    sim_reply_bad(r, "Invalid Content-Type: the body must be JSON.");
    return;
  }
  root = json_parse(r->body.data ? r->body.data : "", r->body.len, &doc, &jerr);
  if (!root) {
    sim_reply_bad(r, "We could not parse the JSON body of your request: %s at byte %zu.", jerr.message,
        jerr.offset);
    return;
  }
  if (root->type != JSON_OBJECT) {
    sim_reply_bad(r, "The request body must be a JSON object, not %s.", json_type_name(root->type));
    goto fail;
  }
  if (sim_batch_knobs(r, &turnaround, &expire, &fail) != 0 || check_body(r, root) != 0)
    goto fail;
  if (!(b = calloc(1, sizeof *b)) ||
      llm_grow(&bs->mbatches, &bs->capmbatches, bs->nmbatches + 1, sizeof *bs->mbatches) != 0) {
    free(b);
    sim_reply_error(r, 500, "api_error", NULL, NULL, "Out of memory.");
    goto fail;
  }
  llm_buf_init(&b->results);
  sim_batch_new_id(bs, "msgbatch_01", b->id, sizeof b->id);
  snprintf(b->version, sizeof b->version, "%s", sim_header(r, "anthropic-version"));
  b->status = M_IN_PROGRESS;
  b->t0 = sim_now_ns();
  clock_gettime(CLOCK_REALTIME, &now);
  b->created_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
  b->turnaround_s = turnaround;
  b->expire_s = expire;
  b->fail_rate = fail;
  b->cancel_el = b->ended_el = -1;
  b->doc = doc;
  b->reqs = json_get(root, "requests");
  b->n = b->reqs->u.array.n;
  bs->mbatches[bs->nmbatches++] = b;
  atomic_fetch_add(&bs->msg_batches_created, 1);
  advance(s, b); /* a zero turnaround is done at once */
  reply_batch(r, b);
  return;
fail:
  json_free(doc);
}

/* ---- the others ---------------------------------------------------------------------------------- */

/* limit: 1 to 1,000, default 20. -1 after a 400. */
static long list_limit(sim_req *r)
{
  const char *lim = sim_query(r, "limit");
  char *end;
  long v;
  if (!lim)
    return 20;
  v = strtol(lim, &end, 10);
  if (end == lim || *end)
    return sim_reply_bad(r, "limit: Input should be a valid integer, unable to parse string as an "
                  "integer");
  if (v < 1)
    return sim_reply_bad(r, "limit: Input should be greater than or equal to 1");
  if (v > 1000)
    return sim_reply_bad(r, "limit: Input should be less than or equal to 1000");
  return v;
}

/* Newest first: after_id pages on to older batches, before_id back to
 * newer ones (the page just before that one). */
static void list(sim_req *r)
{
  sim_batches *bs = r->srv->batches;
  const char *after = sim_query(r, "after_id"), *before = sim_query(r, "before_id");
  long limit = list_limit(r);
  size_t from, to, k; /* indexes into the oldest-first store: [from, to), shown newest first */
  int more;
  llm_buf out;
  if (limit < 0)
    return;
  if (after && before) {
    sim_reply_bad(r, "Only one of before_id and after_id may be given.");
    return;
  }
  if (before) {
    size_t at = find(bs, before);
    if (at == SIZE_MAX) {
      sim_reply_error(r, 404, "not_found_error", NULL, NULL, "before_id: no Message Batch '%.64s'",
                      before);
      return;
    }
    from = at + 1;
    to = bs->nmbatches - from > (size_t)limit ? from + (size_t)limit : bs->nmbatches;
    more = to < bs->nmbatches;
  } else {
    to = bs->nmbatches;
    if (after) {
      to = find(bs, after);
      if (to == SIZE_MAX) {
        sim_reply_error(r, 404, "not_found_error", NULL, NULL,
                        "after_id: no Message Batch '%.64s'", after);
        return;
      }
    }
    from = to > (size_t)limit ? to - (size_t)limit : 0;
    more = from > 0;
  }
  llm_buf_init(&out);
  llm_buf_puts(&out, "{\"data\":[");
  for (k = to; k > from; k--) {
    sim_msgbatch *b = bs->mbatches[k - 1];
    advance(r->srv, b);
    if (k != to)
      llm_buf_putc(&out, ',');
    put_batch(r, b, &out);
  }
  llm_buf_printf(&out, "],\"has_more\":%s,\"first_id\":", more ? "true" : "false");
  json_put_cstring(&out, to > from ? bs->mbatches[to - 1]->id : NULL);
  llm_buf_puts(&out, ",\"last_id\":");
  json_put_cstring(&out, to > from ? bs->mbatches[from]->id : NULL);
  llm_buf_putc(&out, '}');
  sim_reply_json(r, 200, &out, 0);
}

static void cancel(sim_req *r, sim_msgbatch *b)
{
  sim_server *s = r->srv;
  advance(s, b);
  if (b->status == M_ENDED) {
    sim_reply_bad(r, "Message Batch %s has already ended and cannot be canceled.", b->id);
    return;
  }
  if (b->status == M_IN_PROGRESS) {
    b->status = M_CANCELING;
    b->cancel_el = (double)(sim_now_ns() - b->t0) / 1e9;
    atomic_fetch_add(&s->batches->msg_batches_canceled, 1);
    advance(s, b);
  }
  reply_batch(r, b);
}

static void results(sim_req *r, sim_msgbatch *b)
{
  advance(r->srv, b);
  if (b->status != M_ENDED) {
    sim_reply_bad(r, "Message Batch %s has not ended yet: its results are available once its "
           "processing_status is 'ended'.", b->id);
    return;
  }
  sim_reply_copy(r, b->results.data, b->results.len, "application/binary");
}

static void delete(sim_req *r, size_t at)
{
  sim_batches *bs = r->srv->batches;
  sim_msgbatch *b = bs->mbatches[at];
  llm_buf out;
  advance(r->srv, b);
  if (b->status != M_ENDED) {
    sim_reply_bad(r, "Message Batch %s is still being processed: cancel it and delete it once it has "
           "ended.", b->id);
    return;
  }
  llm_buf_init(&out);
  llm_buf_printf(&out, "{\"id\":\"%s\",\"type\":\"message_batch_deleted\"}", b->id);
  mb_free(b);
  memmove(&bs->mbatches[at], &bs->mbatches[at + 1], (bs->nmbatches - at - 1) * sizeof *bs->mbatches);
  bs->nmbatches--;
  sim_reply_json(r, 200, &out, 0);
}

void sim_msgbatch_handle(sim_req *r)
{
  sim_plan pl;
  const char *m = r->method, *rest = r->url + sizeof PATH - 1, *tail;
  char id[64];
  size_t idlen, at;
  /* faults apply here too: a 429 storm while a client polls */
  if (sim_plan_request(r, NULL, "batch", &pl) != 0 || sim_fault_reply(r, &pl))
    return;
  if (sim_messages_check_version(r) != 0)
    return;
  if (rest[0] == '\0') {
    if (strcmp(m, "POST") == 0)
      create(r);
    else if (strcmp(m, "GET") == 0)
      list(r);
    else
      sim_reply_error(r, 405, "invalid_request_error", NULL, NULL,
                      "Invalid method for URL (%s %s): use GET or POST", m, r->url);
    return;
  }
  idlen = strcspn(rest + 1, "/");
  snprintf(id, sizeof id, "%.*s", (int)(idlen < 63 ? idlen : 63), rest + 1);
  tail = rest + 1 + idlen;
  if ((at = find(r->srv->batches, id)) == SIZE_MAX) {
    sim_reply_error(r, 404, "not_found_error", NULL, NULL, "message_batch_id: %.64s", id);
    return;
  }
  if (tail[0] == '\0' && strcmp(m, "GET") == 0) {
    advance(r->srv, r->srv->batches->mbatches[at]);
    reply_batch(r, r->srv->batches->mbatches[at]);
  } else if (tail[0] == '\0' && strcmp(m, "DELETE") == 0) {
    delete(r, at);
  } else if (strcmp(tail, "/cancel") == 0 && strcmp(m, "POST") == 0) {
    cancel(r, r->srv->batches->mbatches[at]);
  } else if (strcmp(tail, "/results") == 0 && strcmp(m, "GET") == 0) {
    results(r, r->srv->batches->mbatches[at]);
  } else {
    sim_reply_error(r, 404, "not_found_error", NULL, NULL, "Invalid URL (%s %s)", m, r->url);
  }
}
