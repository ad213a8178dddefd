/* The simulator's Batch API: POST /v1/batches, GET /v1/batches[/{id}] and
 * POST /v1/batches/{id}/cancel, with the input, output and error files of
 * sim_files.c. Shapes follow OpenAI's Batch API reference: the Batch
 * object (status, request_counts {total, completed, failed}, *_at times,
 * errors {object: "list", data: [{code, message, param, line}]},
 * output_file_id, error_file_id, metadata), output lines {id, custom_id,
 * response {status_code, request_id, body}, error} and error lines whose
 * error.code is batch_expired or batch_cancelled. Validation error codes
 * (invalid_json_line, duplicate_custom_id, url_mismatch, model_mismatch,
 * empty_file, too_many_tasks) are the documented ones; "invalid_request"
 * (a line without custom_id, method or body) is the simulator's own.
 *
 * Time: a batch of turnaround T (config batch_turnaround_s, or the header
 * x-sim-batch-turnaround-s when it is created; unset, 2 s, or 0 under the
 * zero profile, server-wide or x-sim-profile) is validating for its first
 * 0.1 T, in_progress until 0.9 T (its lines answered in proportion to the
 * time passed), finalizing until T, then completed. A batch not past
 * in_progress when batch_expire_s have passed expires: lines done stay in
 * the output file, the others get batch_expired. A cancel moves it to
 * cancelling for 0.05 T, then cancelled, with the same split. Nothing
 * runs on a timer: each request that touches a batch brings it up to
 * date first (advance), so an idle batch costs nothing.
 *
 * Lines are answered by the chat endpoint's parser and model
 * (sim_chat_answer_body), so a batch gives the answers the synchronous
 * endpoint would. batch_fail_rate (or x-sim-batch-fail-rate) makes that
 * share of lines fail with a 500, chosen by a hash of the seed and the
 * line's custom_id: the same lines fail every time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_batch.h"
#include "sim_internal.h"

enum { B_VALIDATING, B_FAILED, B_IN_PROGRESS, B_FINALIZING, B_COMPLETED, B_EXPIRED,
       B_CANCELLING, B_CANCELLED };
static const char *const status_names[] = {"validating", "failed", "in_progress", "finalizing",
                                           "completed", "expired", "cancelling", "cancelled"};

#define MAX_ERRORS 10     /* validation errors reported per batch */
#define ENDPOINT "/v1/chat/completions"

typedef struct line { size_t at, len; } line;

struct sim_batch {
  char id[40], input_file_id[40], output_file_id[40], error_file_id[40];
  char *metadata;            /* the metadata object as JSON text, or NULL */
  char model[128];
  int status;
  int64_t t0;                /* monotonic ns at creation */
  int64_t created_at;        /* Unix seconds */
  double turnaround_s, expire_s, fail_rate, cancel_el;
  /* Unix times of the transitions; 0: not (yet) */
  int64_t in_progress_at, finalizing_at, completed_at, failed_at, expired_at, cancelling_at,
    cancelled_at;
  char *input;               /* the input file's copy while lines are answered */
  line *lines;
  size_t nlines, next, completed, failed;
  llm_buf out, err;         /* output and error file lines so far */
  llm_buf errors;           /* validation errors: the items of errors.data */
  int nerrors;
};

/* ---- the store ---------------------------------------------------------------------- */

static void batch_free(sim_batch *b)
{
  free(b->metadata);
  free(b->input);
  free(b->lines);
  llm_buf_free(&b->out);
  llm_buf_free(&b->err);
  llm_buf_free(&b->errors);
  free(b);
}

void sim_batches_clear(sim_batches *b)
{
  if (!b)
    return;
  for (size_t i = 0; i < b->nbatches; i++)
    batch_free(b->batches[i]);
  free(b->batches);
  b->batches = NULL;
  b->nbatches = b->capbatches = 0;
  sim_msgbatches_free_all(b);
  sim_files_free_all(b);
  atomic_store(&b->files_uploaded, 0);
  atomic_store(&b->batches_created, 0);
  atomic_store(&b->batches_cancelled, 0);
  atomic_store(&b->lines_answered, 0);
  atomic_store(&b->lines_failed, 0);
  atomic_store(&b->lines_expired, 0);
  atomic_store(&b->msg_batches_created, 0);
  atomic_store(&b->msg_batches_canceled, 0);
  atomic_store(&b->msg_requests_answered, 0);
  atomic_store(&b->msg_requests_errored, 0);
  atomic_store(&b->msg_requests_not_run, 0);
}

void sim_batches_free(sim_batches *b)
{
  sim_batches_clear(b);
  free(b);
}

static sim_batch *find(sim_batches *bs, const char *id)
{
  for (size_t i = 0; i < bs->nbatches; i++)
    if (strcmp(bs->batches[i]->id, id) == 0)
      return bs->batches[i];
  return NULL;
}

int sim_batch_route(const char *url)
{
  return (strncmp(url, "/v1/files", 9) == 0 && (url[9] == '\0' || url[9] == '/')) ||
         (strncmp(url, "/v1/batches", 11) == 0 && (url[11] == '\0' || url[11] == '/'));
}

void sim_batch_stats_json(sim_server *s, llm_buf *out)
{
  sim_batches *b = s->batches;
  llm_buf_printf(out, ",\"batch\":{\"files_uploaded\":%llu,\"batches_created\":%llu,"
                 "\"batches_cancelled\":%llu,\"lines_answered\":%llu,\"lines_failed\":%llu,"
                 "\"lines_expired\":%llu,\"message_batches_created\":%llu,"
                 "\"message_batches_canceled\":%llu,\"message_requests_answered\":%llu,"
                 "\"message_requests_errored\":%llu,\"message_requests_not_run\":%llu}",
            (unsigned long long)atomic_load(&b->files_uploaded),
            (unsigned long long)atomic_load(&b->batches_created),
            (unsigned long long)atomic_load(&b->batches_cancelled),
            (unsigned long long)atomic_load(&b->lines_answered),
            (unsigned long long)atomic_load(&b->lines_failed),
            (unsigned long long)atomic_load(&b->lines_expired),
            (unsigned long long)atomic_load(&b->msg_batches_created),
            (unsigned long long)atomic_load(&b->msg_batches_canceled),
            (unsigned long long)atomic_load(&b->msg_requests_answered),
            (unsigned long long)atomic_load(&b->msg_requests_errored),
            (unsigned long long)atomic_load(&b->msg_requests_not_run));
}

/* ---- validation ------------------------------------------------------------------------ */

static void add_error(sim_batch *b, const char *code, const char *msg, const char *param,
                      long line_no)
{
  if (b->nerrors++ >= MAX_ERRORS)
    return;
  if (b->errors.len)
    llm_buf_putc(&b->errors, ',');
  llm_buf_puts(&b->errors, "{\"code\":");
  json_put_cstring(&b->errors, code);
  llm_buf_puts(&b->errors, ",\"message\":");
  json_put_cstring(&b->errors, msg);
  llm_buf_puts(&b->errors, ",\"param\":");
  json_put_cstring(&b->errors, param);
  llm_buf_puts(&b->errors, ",\"line\":");
  if (line_no > 0)
    json_put_int(&b->errors, line_no);
  else
    llm_buf_puts(&b->errors, "null");
  llm_buf_putc(&b->errors, '}');
}

typedef struct cid_key { uint64_t h; const char *s; size_t len; size_t line; } cid_key;

static int cmp_cid(const void *a, const void *b)
{
  const cid_key *x = a, *y = b;
  if (x->h != y->h)
    return x->h < y->h ? -1 : 1;
  if (x->len != y->len)
    return x->len < y->len ? -1 : 1;
  return memcmp(x->s, y->s, x->len);
}

/* One line's checks; a good line's custom_id goes to key (a copy). 0 when
 * the line is good. */
static int check_line(sim_batch *b, const char *text, size_t len, size_t no, cid_key *key)
{
  json_doc *doc;
  const json_value *root = json_parse(text, len, &doc, NULL), *v, *body, *model;
  char msg[256];
  int bad = 1;
  memset(key, 0, sizeof *key);
  if (!root || root->type != JSON_OBJECT) {
    add_error(b, "invalid_json_line", "This line is not parseable as valid JSON.", NULL,
              (long)no);
    goto out;
  }
  v = json_get(root, "custom_id");
  if (!json_is_string(v) || v->u.string.len == 0) {
    add_error(b, "invalid_request", "Each line needs a custom_id string.", "custom_id", (long)no);
    goto out;
  }
  if (!(key->s = strndup(v->u.string.ptr, v->u.string.len))) {
    add_error(b, "invalid_request", "Out of memory.", NULL, (long)no);
    goto out;
  }
  key->len = v->u.string.len;
  key->h = sim_hash_bytes(SIM_HASH_INIT, key->s, key->len);
  key->line = no;
  if (!json_is_string(v = json_get(root, "method")) || strcmp(v->u.string.ptr, "POST") != 0) {
    add_error(b, "invalid_request", "The method must be POST.", "method", (long)no);
    goto out;
  }
  if (!json_is_string(v = json_get(root, "url")) || strcmp(v->u.string.ptr, ENDPOINT) != 0) {
    add_error(b, "url_mismatch", "The url of this line does not match the batch's endpoint ("
              ENDPOINT ").", "url", (long)no);
    goto out;
  }
  body = json_get(root, "body");
  model = json_get(body, "model");
  if (!body || body->type != JSON_OBJECT || !json_is_string(model)) {
    add_error(b, "invalid_request", "Each line needs a body object with a model.", "body",
              (long)no);
    goto out;
  }
  if (!b->model[0]) {
    snprintf(b->model, sizeof b->model, "%s", model->u.string.ptr);
  } else if (strcmp(b->model, model->u.string.ptr) != 0) {
    snprintf(msg, sizeof msg, "All lines of a batch must use the same model: this one asks for "
             "'%.60s', the first for '%.60s'.", model->u.string.ptr, b->model);
    add_error(b, "model_mismatch", msg, "body.model", (long)no);
    goto out;
  }
  bad = 0;
out:
  json_free(doc);
  return bad;
}

/* Room for one more line and its key. 0, or -1 when out of memory. */
static int grow_lines(sim_batch *b, cid_key **keys, size_t *lines_cap, size_t *keys_cap)
{
  if (llm_grow(&b->lines, lines_cap, b->nlines + 1, sizeof *b->lines) != 0 ||
      llm_grow(keys, keys_cap, b->nlines + 1, sizeof **keys) != 0)
    return -1;
  return 0;
}

/* Splits and checks the input file. 0 when the batch may run. */
static int validate(sim_server *s, sim_batch *b)
{
  sim_file *f = sim_files_find(s->batches, b->input_file_id);
  cid_key *keys = NULL;
  size_t lines_cap = 0, keys_cap = 0, start = 0;
  if (!f) {
    add_error(b, "invalid_request", "The input file no longer exists.", "input_file_id", 0);
    return -1;
  }
  if (!(b->input = malloc(f->len + 1))) {
    add_error(b, "invalid_request", "Out of memory.", NULL, 0);
    return -1;
  }
  memcpy(b->input, f->data, f->len);
  b->input[f->len] = '\0';
  while (start < f->len) {
    char *nl = memchr(b->input + start, '\n', f->len - start);
    size_t end = nl ? (size_t)(nl - b->input) : f->len, len = end - start;
    while (len && (b->input[start + len - 1] == '\r' || b->input[start + len - 1] == ' '))
      len--;
    if (len) {
      if (grow_lines(b, &keys, &lines_cap, &keys_cap) != 0) {
        add_error(b, "invalid_request", "Out of memory.", NULL, 0);
        break;
      }
      b->lines[b->nlines].at = start;
      b->lines[b->nlines].len = len;
      b->input[start + len] = '\0'; /* each line its own string */
      check_line(b, b->input + start, len, b->nlines + 1, &keys[b->nlines]);
      b->nlines++;
    }
    start = end + 1;
  }
  if (b->nlines == 0 && b->nerrors == 0)
    add_error(b, "empty_file", "The input file is empty.", "input_file_id", 0);
  else if (b->nlines > SIM_BATCH_MAX_LINES) {
    char msg[128];
    snprintf(msg, sizeof msg, "A batch can have at most %d requests; this file has %zu.",
             SIM_BATCH_MAX_LINES, b->nlines);
    add_error(b, "too_many_tasks", msg, "input_file_id", 0);
  }
  if (b->nerrors == 0 && b->nlines > 1) {
    qsort(keys, b->nlines, sizeof *keys, cmp_cid);
    for (size_t i = 1; i < b->nlines && b->nerrors < MAX_ERRORS; i++)
      if (cmp_cid(&keys[i], &keys[i - 1]) == 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "The custom_id '%.64s' appears more than once.", keys[i].s);
        add_error(b, "duplicate_custom_id", msg, "custom_id",
                  (long)(keys[i].line > keys[i - 1].line ? keys[i].line : keys[i - 1].line));
      }
  }
  for (size_t i = 0; i < b->nlines && keys; i++)
    free((char *)keys[i].s);
  free(keys);
  return b->nerrors ? -1 : 0;
}

/* ---- answering ------------------------------------------------------------------------------ */

/* The line's custom_id as a JSON string, into out. */
static void put_custom_id(const json_value *root, llm_buf *out)
{
  const json_value *v = json_get(root, "custom_id");
  json_put_cstring(out, json_is_string(v) ? v->u.string.ptr : NULL);
}

static void put_line_head(sim_batches *bs, const json_value *root, llm_buf *out)
{
  char id[40];
  sim_batch_new_id(bs, "batch_req_", id, sizeof id);
  llm_buf_printf(out, "{\"id\":\"%s\",\"custom_id\":", id);
  put_custom_id(root, out);
}

static void answer_line(sim_server *s, sim_batch *b, size_t i)
{
  const line *ln = &b->lines[i];
  json_doc *doc;
  const json_value *root = json_parse(b->input + ln->at, ln->len, &doc, NULL), *cid;
  llm_buf body, *out;
  const char *skill = NULL;
  unsigned status;
  char rid[40];
  llm_buf_init(&body);
  cid = json_get(root, "custom_id");
  if (sim_batch_line_fails(s, b->fail_rate, json_is_string(cid) ? cid->u.string.ptr : "")) {
    status = 500;
    llm_buf_puts(&body, "{\"error\":{\"message\":\"The server had an error while processing your "
                   "request. Sorry about that! (simulated batch line failure)\",\"type\":"
                   "\"server_error\",\"param\":null,\"code\":null}}");
  } else {
    status = sim_chat_answer_body(s, json_get(root, "body"), &body, &skill);
  }
  out = status == 200 ? &b->out : &b->err;
  sim_batch_new_id(s->batches, "req_", rid, sizeof rid);
  put_line_head(s->batches, root, out);
  llm_buf_printf(out, ",\"response\":{\"status_code\":%u,\"request_id\":\"%s\",", status, rid);
  /* the skill that answered, as the endpoint's x-sim-skill header says it,
   * so that a batch arm's filler answers are told apart too */
  if (status == 200 && skill)
    llm_buf_printf(out, "\"headers\":{\"x-sim-skill\":\"%s\"},", skill);
  llm_buf_puts(out, "\"body\":");
  llm_buf_put(out, body.data ? body.data : "null", body.data ? sim_batch_trimmed(&body) : 4);
  llm_buf_puts(out, "},\"error\":null}\n");
  llm_buf_free(&body);
  json_free(doc);
  if (status == 200)
    b->completed++;
  else
    b->failed++;
  atomic_fetch_add(&s->batches->lines_answered, 1);
  if (status != 200)
    atomic_fetch_add(&s->batches->lines_failed, 1);
}

int sim_batch_line_fails(sim_server *s, double rate, const char *custom_id)
{
  return sim_unit_of(sim_mix64(sim_hash_str(sim_hash_u64(SIM_HASH_INIT, s->cfg.seed),
                                            custom_id))) < rate;
}

size_t sim_batch_due(size_t n, double t, double v, double p)
{
  size_t target = n;
  if (p > v && t < p)
    target = t <= v ? 0 : (size_t)((double)n * (t - v) / (p - v));
  return target > n ? n : target;
}

/* Answers the lines due by t seconds after creation: in proportion to
 * the time spent in progress, [v, p). */
static void answer_until(sim_server *s, sim_batch *b, double t, double v, double p)
{
  size_t target = sim_batch_due(b->nlines, t, v, p);
  while (b->next < target)
    answer_line(s, b, b->next++);
}

static int64_t stamp(const sim_batch *b, double el)
{
  return b->created_at + (int64_t)floor(el);
}

static void put_file(sim_server *s, sim_batch *b, llm_buf *lines, const char *kind,
                     char *id_out)
{
  char name[96];
  size_t len;
  char *data;
  sim_file *f;
  if (lines->len == 0)
    return;
  snprintf(name, sizeof name, "%s_%s.jsonl", b->id, kind);
  data = llm_buf_take(lines, &len);
  if ((f = sim_files_add(s->batches, name, "batch_output", data, len)) != NULL)
    snprintf(id_out, 40, "%s", f->id);
}

/* The end of a batch (completed, expired or cancelled at el seconds):
 * lines not answered get the error `code`, the files are written. */
static void end_batch(sim_server *s, sim_batch *b, int status, double el, const char *code,
                      const char *message)
{
  for (; b->next < b->nlines; b->next++) {
    const line *ln = &b->lines[b->next];
    json_doc *doc;
    const json_value *root = json_parse(b->input + ln->at, ln->len, &doc, NULL);
    put_line_head(s->batches, root, &b->err);
    llm_buf_puts(&b->err, ",\"response\":null,\"error\":{\"code\":");
    json_put_cstring(&b->err, code);
    llm_buf_puts(&b->err, ",\"message\":");
    json_put_cstring(&b->err, message);
    llm_buf_puts(&b->err, "}}\n");
    json_free(doc);
    b->failed++;
    atomic_fetch_add(&s->batches->lines_expired, 1);
  }
  put_file(s, b, &b->out, "output", b->output_file_id);
  put_file(s, b, &b->err, "error", b->error_file_id);
  b->status = status;
  if (status == B_COMPLETED)
    b->completed_at = stamp(b, el);
  else if (status == B_EXPIRED)
    b->expired_at = stamp(b, el);
  else
    b->cancelled_at = stamp(b, el);
  free(b->input);
  free(b->lines);
  b->input = NULL;
  b->lines = NULL;
}

/* Brings the batch up to now (see the top of this file). */
static void advance(sim_server *s, sim_batch *b)
{
  double el = (double)(sim_now_ns() - b->t0) / 1e9;
  double t = b->turnaround_s, v = 0.1 * t, p = 0.9 * t, x = b->expire_s;
  if (b->status == B_VALIDATING) {
    double tv = v < x ? v : x;
    if (el < tv)
      return;
    if (validate(s, b) != 0) {
      b->status = B_FAILED;
      b->failed_at = stamp(b, tv);
      b->nlines = 0;
      free(b->input);
      free(b->lines);
      b->input = NULL;
      b->lines = NULL;
      return;
    }
    b->status = B_IN_PROGRESS;
    b->in_progress_at = stamp(b, tv);
  }
  if (b->status == B_IN_PROGRESS || b->status == B_CANCELLING) {
    double stop = p < x ? p : x;
    if (b->status == B_CANCELLING && b->cancel_el < stop)
      stop = b->cancel_el;
    answer_until(s, b, el < stop ? el : stop, v, p);
    if (b->status == B_CANCELLING) {
      double done = b->cancel_el + 0.05 * t;
      if (el >= done)
        end_batch(s, b, B_CANCELLED, done, "batch_cancelled",
                  "This request was not executed: the batch was cancelled.");
      return;
    }
    if (x < p && el >= x) {
      end_batch(s, b, B_EXPIRED, x, "batch_expired",
                "This request could not be executed before the completion window expired.");
      return;
    }
    if (el < p)
      return;
    answer_until(s, b, p, v, p);
    b->status = B_FINALIZING;
    b->finalizing_at = stamp(b, p);
  }
  if (b->status == B_FINALIZING && el >= t)
    end_batch(s, b, B_COMPLETED, t, NULL, NULL);
}

/* ---- the Batch object -------------------------------------------------------------------------- */

static void put_time(llm_buf *out, const char *key, int64_t t)
{
  llm_buf_printf(out, ",\"%s\":", key);
  if (t)
    json_put_int(out, t);
  else
    llm_buf_puts(out, "null");
}

static void put_batch(const sim_batch *b, llm_buf *out)
{
  llm_buf_printf(out, "{\"id\":\"%s\",\"object\":\"batch\",\"endpoint\":\"" ENDPOINT "\",\"model\":",
            b->id);
  json_put_cstring(out, b->model[0] ? b->model : NULL);
  llm_buf_puts(out, ",\"errors\":");
  if (b->nerrors) {
    llm_buf_puts(out, "{\"object\":\"list\",\"data\":[");
    llm_buf_put(out, b->errors.data, b->errors.len);
    llm_buf_puts(out, "]}");
  } else {
    llm_buf_puts(out, "null");
  }
  llm_buf_printf(out, ",\"input_file_id\":\"%s\",\"completion_window\":\"24h\",\"status\":\"%s\","
                 "\"output_file_id\":", b->input_file_id, status_names[b->status]);
  json_put_cstring(out, b->output_file_id[0] ? b->output_file_id : NULL);
  llm_buf_puts(out, ",\"error_file_id\":");
  json_put_cstring(out, b->error_file_id[0] ? b->error_file_id : NULL);
  llm_buf_printf(out, ",\"created_at\":%lld", (long long)b->created_at);
  put_time(out, "in_progress_at", b->in_progress_at);
  put_time(out, "expires_at", b->created_at + (int64_t)ceil(b->expire_s));
  put_time(out, "finalizing_at", b->finalizing_at);
  put_time(out, "completed_at", b->completed_at);
  put_time(out, "failed_at", b->failed_at);
  put_time(out, "expired_at", b->expired_at);
  put_time(out, "cancelling_at", b->cancelling_at);
  put_time(out, "cancelled_at", b->cancelled_at);
  llm_buf_printf(out, ",\"request_counts\":{\"total\":%zu,\"completed\":%zu,\"failed\":%zu}",
            b->nlines, b->completed, b->failed);
  llm_buf_puts(out, ",\"metadata\":");
  llm_buf_puts(out, b->metadata ? b->metadata : "null");
  llm_buf_putc(out, '}');
}

static void reply_batch(sim_req *r, const sim_batch *b)
{
  llm_buf out;
  llm_buf_init(&out);
  put_batch(b, &out);
  sim_reply_json(r, 200, &out, 0);
}

/* ---- endpoints ------------------------------------------------------------------------------------ */

/* A per-batch knob from a header: 1 set, 0 absent, -1 after a 400. */
static int knob(sim_req *r, const char *name, double max, double *out)
{
  const char *v = sim_header(r, name);
  char *end;
  double d;
  if (!v)
    return 0;
  d = strtod(v, &end);
  if (end == v || *end || !(d >= 0) || d > max) {
    sim_reply_error(r, 400, "invalid_request_error", NULL, "invalid_sim_knob",
                    "Invalid %s header: expected a number from 0 to %g.", name, max);
    return -1;
  }
  *out = d;
  return 1;
}

int sim_batch_knobs(sim_req *r, double *turnaround, double *expire, double *fail)
{
  sim_server *s = r->srv;
  *turnaround = s->cfg.batch_turnaround_s;
  *expire = s->cfg.batch_expire_s;
  *fail = s->cfg.batch_fail_rate;
  if (*turnaround < 0) { /* unset: 2 s, or none under the zero profile (the server's or
                             the request's, as a dry run asks for it) */
    const char *p = sim_header(r, "x-sim-profile");
    if (!p)
      p = s->cfg.profile;
    *turnaround = p && strcmp(p, "zero") == 0 ? 0 : 2;
  }
  if (knob(r, "x-sim-batch-turnaround-s", 86400 * 7, turnaround) < 0 ||
      knob(r, "x-sim-batch-expire-s", 86400 * 7, expire) < 0 ||
      knob(r, "x-sim-batch-fail-rate", 1, fail) < 0)
    return -1;
  return 0;
}

static int bad(sim_req *r, const char *param, const char *code, const char *msg)
{
  sim_reply_error(r, 400, "invalid_request_error", param, code, "%s", msg);
  return -1;
}

/* The metadata object: at most 16 string values (keys <= 64 characters,
 * values <= 512), as the API documents. 0, or -1 after a 400. */
static int check_metadata(sim_req *r, const json_value *m)
{
  if (!m || m->type == JSON_NULL)
    return 0;
  if (m->type != JSON_OBJECT || m->u.object.n > 16)
    return bad(r, "metadata", "invalid_value", "Invalid 'metadata': expected an object of at "
               "most 16 string values.");
  for (size_t i = 0; i < m->u.object.n; i++) {
    const json_member *e = &m->u.object.members[i];
    if (e->key_len > 64 || e->value.type != JSON_STRING || e->value.u.string.len > 512)
      return bad(r, "metadata", "invalid_value", "Invalid 'metadata': keys up to 64 characters, "
                 "string values up to 512.");
  }
  return 0;
}

static void create(sim_req *r)
{
  sim_server *s = r->srv;
  sim_batches *bs = s->batches;
  json_doc *doc;
  json_error jerr;
  const json_value *root = json_parse(r->body.data ? r->body.data : "", r->body.len, &doc, &jerr), *v;
  sim_batch *b = NULL;
  sim_file *f;
  double turnaround, expire, fail;
  if (!root || root->type != JSON_OBJECT) {
    sim_reply_error(r, 400, "invalid_request_error", NULL, NULL,
                    "We could not parse the JSON body of your request.");
    goto done;
  }
  if (sim_batch_knobs(r, &turnaround, &expire, &fail) != 0)
    goto done;
  v = json_get(root, "input_file_id");
  if (!json_is_string(v)) {
    bad(r, "input_file_id", "missing_required_parameter",
        "Missing required parameter: 'input_file_id'.");
    goto done;
  }
  if (!(f = sim_files_find(bs, v->u.string.ptr))) {
    sim_reply_error(r, 404, "invalid_request_error", "input_file_id", NULL,
                    "No such File object: %.64s", v->u.string.ptr);
    goto done;
  }
  if (strcmp(f->purpose, "batch") != 0) {
    bad(r, "input_file_id", "invalid_value", "The input file must be uploaded with purpose "
        "'batch'.");
    goto done;
  }
  v = json_get(root, "endpoint");
  if (!json_is_string(v)) {
    bad(r, "endpoint", "missing_required_parameter", "Missing required parameter: 'endpoint'.");
    goto done;
  }
  if (strcmp(v->u.string.ptr, ENDPOINT) != 0) {
    bad(r, "endpoint", "invalid_value", "The simulator's Batch API supports the endpoint "
        ENDPOINT " only.");
    goto done;
  }
  v = json_get(root, "completion_window");
  if (!json_is_string(v) || strcmp(v->u.string.ptr, "24h") != 0) {
    bad(r, "completion_window", "invalid_value", "Invalid 'completion_window': only '24h' is "
        "supported.");
    goto done;
  }
  v = json_get(root, "metadata");
  if (check_metadata(r, v) != 0)
    goto done;
  if (!(b = calloc(1, sizeof *b))) {
    sim_reply_error(r, 500, "server_error", NULL, NULL, "Out of memory.");
    goto done;
  }
  llm_buf_init(&b->out);
  llm_buf_init(&b->err);
  llm_buf_init(&b->errors);
  if (v && v->type == JSON_OBJECT) {
    llm_buf m;
    llm_buf_init(&m);
    json_put_value(&m, v);
    b->metadata = llm_buf_take(&m, NULL);
  }
  if (llm_grow(&bs->batches, &bs->capbatches, bs->nbatches + 1, sizeof *bs->batches) != 0) {
    batch_free(b);
    sim_reply_error(r, 500, "server_error", NULL, NULL, "Out of memory.");
    goto done;
  }
  sim_batch_new_id(bs, "batch_", b->id, sizeof b->id);
  snprintf(b->input_file_id, sizeof b->input_file_id, "%s", f->id);
  b->status = B_VALIDATING;
  b->t0 = sim_now_ns();
  b->created_at = (int64_t)time(NULL);
  b->turnaround_s = turnaround;
  b->expire_s = expire;
  b->fail_rate = fail;
  b->cancel_el = -1;
  bs->batches[bs->nbatches++] = b;
  atomic_fetch_add(&bs->batches_created, 1);
  advance(s, b); /* a zero turnaround is done at once */
  reply_batch(r, b);
done:
  json_free(doc);
}

static void list(sim_req *r)
{
  sim_batches *bs = r->srv->batches;
  const char *after = sim_query(r, "after"), *lim = sim_query(r, "limit");
  long limit = lim ? strtol(lim, NULL, 10) : 20;
  size_t i = bs->nbatches, shown = 0;
  llm_buf out;
  if (limit < 1 || limit > 100)
    limit = limit < 1 ? 1 : 100;
  if (after) { /* newest first: continue below the one named */
    while (i > 0 && strcmp(bs->batches[i - 1]->id, after) != 0)
      i--;
    if (i > 0)
      i--;
  }
  llm_buf_init(&out);
  llm_buf_puts(&out, "{\"object\":\"list\",\"data\":[");
  for (; i > 0 && shown < (size_t)limit; i--, shown++) {
    sim_batch *b = bs->batches[i - 1];
    advance(r->srv, b);
    if (shown)
      llm_buf_putc(&out, ',');
    put_batch(b, &out);
  }
  llm_buf_printf(&out, "],\"has_more\":%s}", i > 0 ? "true" : "false");
  sim_reply_json(r, 200, &out, 0);
}

static void cancel(sim_req *r, sim_batch *b)
{
  sim_server *s = r->srv;
  advance(s, b);
  if (b->status != B_VALIDATING && b->status != B_IN_PROGRESS) {
    /* the simulator's choice of status and wording */
    sim_reply_error(r, 400, "invalid_request_error", NULL, NULL,
                    "Cannot cancel a batch with status '%s'.", status_names[b->status]);
    return;
  }
  b->status = B_CANCELLING;
  b->cancel_el = (double)(sim_now_ns() - b->t0) / 1e9;
  b->cancelling_at = (int64_t)time(NULL);
  atomic_fetch_add(&s->batches->batches_cancelled, 1);
  advance(s, b);
  reply_batch(r, b);
}

void sim_batch_handle(sim_req *r)
{
  sim_plan pl;
  const char *u = r->url, *m = r->method, *rest;
  char id[64];
  size_t idlen;
  sim_batch *b;
  /* faults apply here too: a 429 storm while a client polls */
  if (sim_plan_request(r, NULL, "batch", &pl) != 0 || sim_fault_reply(r, &pl))
    return;
  if (strncmp(u, "/v1/files", 9) == 0) {
    sim_files_handle(r, u + 9);
    return;
  }
  rest = u + 11;
  if (rest[0] == '\0') {
    if (strcmp(m, "POST") == 0)
      create(r);
    else if (strcmp(m, "GET") == 0)
      list(r);
    else
      sim_reply_error(r, 405, "invalid_request_error", NULL, "method_not_allowed",
                      "Invalid method for URL (%s %s): use GET or POST", m, u);
    return;
  }
  idlen = strcspn(rest + 1, "/");
  snprintf(id, sizeof id, "%.*s", (int)(idlen < 63 ? idlen : 63), rest + 1);
  if (!(b = find(r->srv->batches, id))) {
    sim_reply_error(r, 404, "invalid_request_error", "batch_id", NULL,
                    "No batch found with id '%.64s'.", id);
    return;
  }
  if (strcmp(rest + 1 + idlen, "/cancel") == 0 && strcmp(m, "POST") == 0) {
    cancel(r, b);
  } else if (rest[1 + idlen] == '\0' && strcmp(m, "GET") == 0) {
    advance(r->srv, b);
    reply_batch(r, b);
  } else {
    sim_reply_error(r, 404, "invalid_request_error", NULL, NULL, "Invalid URL (%s %s)", m, u);
  }
}
