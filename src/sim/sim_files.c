/* The simulator's Files API, as the Batch API needs it: POST /v1/files
 * (multipart/form-data with the fields "purpose" and "file"), GET
 * /v1/files, GET /v1/files/{id}, GET /v1/files/{id}/content and DELETE
 * /v1/files/{id}. Files live in memory until the server is reset or
 * stopped; batch output and error files are added here by sim_batch.c.
 * Shapes: OpenAI's API reference for the File object ({id, object:
 * "file", bytes, created_at, filename, purpose}) and its list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "sim_batch.h"
#include "sim_internal.h"

/* ---- the store ------------------------------------------------------------------------ */

void sim_batch_new_id(sim_batches *b, const char *prefix, char *out, size_t n)
{
  static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  uint64_t x = sim_mix64(b->salt ^ sim_mix64(++b->next_id));
  uint64_t y = sim_mix64(x ^ b->salt);
  size_t k = (size_t)snprintf(out, n, "%s", prefix);
  for (int i = 0; i < 22 && k + 1 < n; i++) {
    uint64_t *w = i < 11 ? &x : &y;
    out[k++] = alnum[*w % (sizeof alnum - 1)];
    *w /= sizeof alnum - 1;
  }
  out[k < n ? k : n - 1] = '\0';
}

sim_file *sim_files_add(sim_batches *b, const char *filename, const char *purpose, char *data,
                        size_t len)
{
  sim_file *f = calloc(1, sizeof *f);
  if (!f || !(f->filename = strdup(filename ? filename : "file"))) {
    free(f);
    free(data);
    return NULL;
  }
  if (llm_grow(&b->files, &b->capfiles, b->nfiles + 1, sizeof *b->files) != 0) {
    free(f->filename);
    free(f);
    free(data);
    return NULL;
  }
  sim_batch_new_id(b, "file-", f->id, sizeof f->id);
  snprintf(f->purpose, sizeof f->purpose, "%s", purpose);
  f->data = data;
  f->len = len;
  f->created_at = (int64_t)time(NULL);
  b->files[b->nfiles++] = f;
  return f;
}

sim_file *sim_files_find(sim_batches *b, const char *id)
{
  for (size_t i = 0; i < b->nfiles; i++)
    if (strcmp(b->files[i]->id, id) == 0)
      return b->files[i];
  return NULL;
}

static void file_free(sim_file *f)
{
  free(f->filename);
  free(f->data);
  free(f);
}

static int files_remove(sim_batches *b, const char *id)
{
  for (size_t i = 0; i < b->nfiles; i++)
    if (strcmp(b->files[i]->id, id) == 0) {
      file_free(b->files[i]);
      memmove(&b->files[i], &b->files[i + 1], (b->nfiles - i - 1) * sizeof *b->files);
      b->nfiles--;
      return 1;
    }
  return 0;
}

void sim_file_put_json(const sim_file *f, llm_buf *b)
{
  llm_buf_printf(b, "{\"id\":\"%s\",\"object\":\"file\",\"bytes\":%zu,\"created_at\":%lld,\"filename\":",
            f->id, f->len, (long long)f->created_at);
  json_put_cstring(b, f->filename);
  llm_buf_puts(b, ",\"purpose\":");
  json_put_cstring(b, f->purpose);
  llm_buf_puts(b, ",\"status\":\"processed\",\"expires_at\":null,\"status_details\":null}");
}

/* ---- the batches' life cycle hooks (sim.c) ----------------------------------------------- */

sim_batches *sim_batches_new(void)
{
  sim_batches *b = calloc(1, sizeof *b);
  if (!b)
    return NULL;
  /* ids must not repeat after a restart of the server with the same seed:
   * a client resuming a recorded batch id would find another batch */
  if (getrandom(&b->salt, sizeof b->salt, GRND_NONBLOCK) != (ssize_t)sizeof b->salt)
    b->salt = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)b;
  return b;
}

/* ---- requests ----------------------------------------------------------------------------- */

const char *sim_query(sim_req *r, const char *name)
{
  return r->conn ? MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name) : NULL;
}

static void reply_missing(sim_req *r, const char *id)
{
  sim_reply_error(r, 404, "invalid_request_error", "id", NULL, "No such File object: %.64s", id);
}

/* One part of a multipart/form-data body. */
typedef struct part {
  char name[32], filename[256];
  const char *data;
  size_t len;
} part;

/* The value of attr="..." in a Content-Disposition header line. */
static void disposition_attr(const char *h, size_t hlen, const char *attr, char *out, size_t n)
{
  size_t alen = strlen(attr);
  out[0] = '\0';
  for (size_t i = 0; i + alen + 2 <= hlen; i++) {
    if ((i == 0 || h[i - 1] == ' ' || h[i - 1] == ';') && strncasecmp(h + i, attr, alen) == 0 &&
        h[i + alen] == '=' && h[i + alen + 1] == '"') {
      const char *v = h + i + alen + 2, *end = memchr(v, '"', hlen - (size_t)(v - h));
      if (end)
        snprintf(out, n, "%.*s", (int)(end - v), v);
      return;
    }
  }
}

/* Splits body into its parts (at most max). -1 when it is not multipart. */
static int multipart(const char *ctype, const char *body, size_t len, part *parts, int max)
{
  char delim[128];
  const char *bnd, *p, *end = body + len;
  size_t blen, dlen;
  int n = 0;
  if (!ctype || strncasecmp(ctype, "multipart/form-data", 19) != 0 ||
      !(bnd = strcasestr(ctype, "boundary=")))
    return -1;
  bnd += 9;
  blen = *bnd == '"' ? strcspn(bnd + 1, "\"") : strcspn(bnd, "; \t");
  if (*bnd == '"')
    bnd++;
  if (blen == 0 || blen > 100)
    return -1;
  dlen = (size_t)snprintf(delim, sizeof delim, "\r\n--%.*s", (int)blen, bnd);
  /* the first delimiter may open the body (no CRLF before it) */
  if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0)
    p = body + dlen - 2;
  else if ((p = memmem(body, len, delim, dlen)) != NULL)
    p += dlen;
  else
    return -1;
  while (n < max && p + 2 <= end && memcmp(p, "--", 2) != 0) {
    const char *head, *hend, *dend;
    if (memcmp(p, "\r\n", 2) != 0)
      return -1;
    head = p + 2;
    if (!(hend = memmem(head, (size_t)(end - head), "\r\n\r\n", 4)) ||
        !(dend = memmem(hend + 4, (size_t)(end - hend - 4), delim, dlen)))
      return -1;
    memset(&parts[n], 0, sizeof parts[n]);
    for (const char *line = head; line < hend;) {
      const char *eol = memmem(line, (size_t)(hend + 2 - line), "\r\n", 2);
      size_t ll = (size_t)((eol ? eol : hend) - line);
      if (ll > 20 && strncasecmp(line, "content-disposition:", 20) == 0) {
        disposition_attr(line + 20, ll - 20, "name", parts[n].name, sizeof parts[n].name);
        disposition_attr(line + 20, ll - 20, "filename", parts[n].filename,
                         sizeof parts[n].filename);
      }
      line += ll + 2;
    }
    parts[n].data = hend + 4;
    parts[n].len = (size_t)(dend - parts[n].data);
    n++;
    p = dend + dlen;
  }
  return n;
}

static int ends_with(const char *s, const char *suffix)
{
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

static void upload(sim_req *r)
{
  static const char *const purposes[] = {"batch", "fine-tune", "assistants", "vision",
                                         "user_data", "evals", NULL};
  sim_batches *b = r->srv->batches;
  part parts[8];
  const part *file = NULL, *purpose = NULL;
  char pname[24];
  size_t k = 0;
  char *data;
  sim_file *f;
  llm_buf out;
  int n = multipart(sim_header(r, MHD_HTTP_HEADER_CONTENT_TYPE), r->body.data ? r->body.data : "",
                    r->body.len, parts, 8);
  if (n < 0) {
    sim_reply_error(r, 400, "invalid_request_error", NULL, NULL,
                    "Uploads must be multipart/form-data with the fields 'purpose' and 'file'.");
    return;
  }
  for (int i = 0; i < n; i++) {
    if (strcmp(parts[i].name, "file") == 0)
      file = &parts[i];
    else if (strcmp(parts[i].name, "purpose") == 0)
      purpose = &parts[i];
  }
  if (!purpose) {
    sim_reply_error(r, 400, "invalid_request_error", "purpose", "missing_required_parameter",
                    "Missing required parameter: 'purpose'.");
    return;
  }
  if (!file) {
    sim_reply_error(r, 400, "invalid_request_error", "file", "missing_required_parameter",
                    "Missing required parameter: 'file'.");
    return;
  }
  snprintf(pname, sizeof pname, "%.*s", (int)(purpose->len < 23 ? purpose->len : 23),
           purpose->data);
  while (purposes[k] && strcmp(purposes[k], pname) != 0)
    k++;
  if (!purposes[k]) {
    sim_reply_error(r, 400, "invalid_request_error", "purpose", "invalid_value",
                    "Invalid value for 'purpose': '%s'.", pname);
    return;
  }
  if (strcmp(pname, "batch") == 0) {
    if (!ends_with(file->filename, ".jsonl")) {
      sim_reply_error(r, 400, "invalid_request_error", "file", "invalid_file_format",
                      "Invalid file format for Batch API. Must be .jsonl");
      return;
    }
    if (file->len > SIM_BATCH_MAX_FILE_BYTES) {
      sim_reply_error(r, 400, "invalid_request_error", "file", "file_too_large",
                      "A batch input file can be up to 200 MB; this one has %zu bytes.",
                      file->len);
      return;
    }
  }
  if (!(data = malloc(file->len + 1))) {
    sim_reply_error(r, 500, "server_error", NULL, NULL, "Out of memory.");
    return;
  }
  memcpy(data, file->data, file->len);
  data[file->len] = '\0';
  if (!(f = sim_files_add(b, file->filename, pname, data, file->len))) {
    sim_reply_error(r, 500, "server_error", NULL, NULL, "Out of memory.");
    return;
  }
  atomic_fetch_add(&b->files_uploaded, 1);
  llm_buf_init(&out);
  sim_file_put_json(f, &out);
  sim_reply_json(r, 200, &out, 0);
}

static void list_files(sim_req *r)
{
  sim_batches *b = r->srv->batches;
  const char *purpose = sim_query(r, "purpose");
  llm_buf out;
  int first = 1;
  llm_buf_init(&out);
  llm_buf_puts(&out, "{\"object\":\"list\",\"data\":[");
  for (size_t i = b->nfiles; i-- > 0;) { /* newest first */
    if (purpose && strcmp(purpose, b->files[i]->purpose) != 0)
      continue;
    if (!first)
      llm_buf_putc(&out, ',');
    sim_file_put_json(b->files[i], &out);
    first = 0;
  }
  llm_buf_puts(&out, "],\"has_more\":false}");
  sim_reply_json(r, 200, &out, 0);
}

static void content(sim_req *r, const sim_file *f)
{
  sim_reply_copy(r, f->data, f->len, "application/octet-stream");
}

void sim_files_handle(sim_req *r, const char *rest)
{
  sim_batches *b = r->srv->batches;
  const char *m = r->method;
  char id[64];
  size_t idlen;
  sim_file *f;
  llm_buf out;
  if (rest[0] == '\0') {
    if (strcmp(m, "POST") == 0)
      upload(r);
    else if (strcmp(m, "GET") == 0)
      list_files(r);
    else
      sim_reply_error(r, 405, "invalid_request_error", NULL, "method_not_allowed",
                      "Invalid method for URL (%s %s): use GET or POST", m, r->url);
    return;
  }
  idlen = strcspn(rest + 1, "/");
  snprintf(id, sizeof id, "%.*s", (int)(idlen < 63 ? idlen : 63), rest + 1);
  if (strcmp(rest + 1 + idlen, "/content") == 0) {
    if (strcmp(m, "GET") != 0) {
      sim_reply_error(r, 405, "invalid_request_error", NULL, "method_not_allowed",
                      "Invalid method for URL (%s %s): use GET", m, r->url);
      return;
    }
    if (!(f = sim_files_find(b, id)))
      reply_missing(r, id);
    else
      content(r, f);
    return;
  }
  if (rest[1 + idlen] != '\0') {
    sim_reply_error(r, 404, "invalid_request_error", NULL, NULL, "Invalid URL (%s %s)", m,
                    r->url);
    return;
  }
  if (strcmp(m, "GET") == 0) {
    if (!(f = sim_files_find(b, id))) {
      reply_missing(r, id);
      return;
    }
    llm_buf_init(&out);
    sim_file_put_json(f, &out);
    sim_reply_json(r, 200, &out, 0);
  } else if (strcmp(m, "DELETE") == 0) {
    if (!files_remove(b, id)) {
      reply_missing(r, id);
      return;
    }
    llm_buf_init(&out);
    llm_buf_printf(&out, "{\"id\":\"%s\",\"object\":\"file\",\"deleted\":true}", id);
    sim_reply_json(r, 200, &out, 0);
  } else {
    sim_reply_error(r, 405, "invalid_request_error", NULL, "method_not_allowed",
                    "Invalid method for URL (%s %s): use GET or DELETE", m, r->url);
  }
}

/* Freed here with the files; sim_batch.c frees the batches first. */
void sim_files_free_all(sim_batches *b)
{
  for (size_t i = 0; i < b->nfiles; i++)
    file_free(b->files[i]);
  free(b->files);
  b->files = NULL;
  b->nfiles = b->capfiles = 0;
}
