/* The registry of labelled tasks and the scan that finds their cases in a
 * prompt (sim_tasks.h says what and why). */
#include "sim_tasks.h"
#include "errmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_BASE 1000003ULL

/* An anchor: the first (last = 0) or last (last = 1) len bytes of a case. */
typedef struct anchor {
  uint64_t hash;
  uint32_t len, task, item;
  int last;
} anchor;

struct sim_tasks {
  pthread_rwlock_t lock;
  sim_task **tasks;
  size_t ntasks, cap;
  /* the anchor index: open addressing over anchors, rebuilt on change */
  anchor *slots;
  size_t nslots, nanchors;
  uint32_t lens[SIM_TASK_ANCHOR + 1]; /* distinct anchor lengths, ascending */
  size_t nlens;
  size_t ncases;
};

/* ---- text ----------------------------------------------------------------------------- */

static int is_space(unsigned char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_alnum(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

void sim_tasks_normalize(llm_buf *b, const char *s, size_t n)
{
  int space = b->len == 0 || b->data[b->len - 1] == ' ' || b->data[b->len - 1] == '\x01';
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (is_space(c)) {
      if (!space)
        llm_buf_putc(b, ' ');
      space = 1;
      continue;
    }
    space = 0;
    llm_buf_putc(b, (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
  }
}

void sim_tasks_trim(llm_buf *b)
{
  while (b->len > 0 && b->data[b->len - 1] == ' ')
    b->len--;
}

size_t sim_tasks_find_words(const char *s, size_t from, size_t to, const char *w, size_t wn)
{
  if (wn == 0 || to < from || to - from < wn)
    return (size_t)-1;
  for (size_t i = from; i + wn <= to; i++) {
    if (s[i] != w[0] || memcmp(s + i, w, wn) != 0)
      continue;
    /* a word boundary on both sides, unless the word itself ends there in
     * punctuation ("positive." is the option "positive") */
    if (i > 0 && is_alnum((unsigned char)s[i - 1]) && is_alnum((unsigned char)w[0]))
      continue;
    if (i + wn < to && is_alnum((unsigned char)s[i + wn]) && is_alnum((unsigned char)w[wn - 1]))
      continue;
    return i;
  }
  return (size_t)-1;
}

/* A normalised, trimmed, NUL-terminated copy of s[0..n): *out, *outlen. */
static int norm_copy(const char *s, size_t n, char **out, size_t *outlen)
{
  llm_buf b = {0};
  sim_tasks_normalize(&b, s, n);
  sim_tasks_trim(&b);
  llm_buf_putc(&b, '\0');
  if (b.failed) {
    llm_buf_free(&b);
    return -1;
  }
  *out = b.data;
  *outlen = b.len - 1;
  return 0;
}

static char *dup_n(const char *s, size_t n)
{
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

/* ---- hashing ----------------------------------------------------------------------------- */

static uint64_t poly_hash(const char *s, size_t n)
{
  uint64_t h = 0;
  for (size_t i = 0; i < n; i++)
    h = h * HASH_BASE + (unsigned char)s[i];
  return h;
}

static size_t slot_of(uint64_t hash, uint32_t len, size_t nslots)
{
  return (size_t)sim_mix64(hash ^ ((uint64_t)len << 56)) & (nslots - 1);
}

static const char *anchor_bytes(const sim_tasks *t, const anchor *a)
{
  const sim_task_item *it = &t->tasks[a->task]->items[a->item];
  return a->last ? it->text + it->len - a->len : it->text;
}

/* ---- the registry ---------------------------------------------------------------------------- */

sim_tasks *sim_tasks_new(void)
{
  sim_tasks *t = calloc(1, sizeof *t);
  if (t && pthread_rwlock_init(&t->lock, NULL) != 0) {
    free(t);
    return NULL;
  }
  return t;
}

static void free_strs(char **v, size_t n)
{
  for (size_t i = 0; v && i < n; i++)
    free(v[i]);
  free(v);
}

static void task_free(sim_task *k)
{
  if (!k)
    return;
  for (size_t i = 0; k->items && i < k->nitems; i++) {
    free(k->items[i].text);
    free(k->items[i].input);
    free(k->items[i].answer);
    free(k->items[i].answer_norm);
  }
  free(k->items);
  free_strs(k->options, k->noptions);
  free_strs(k->options_norm, k->noptions);
  free_strs(k->instructions, k->ninstructions);
  free(k->name);
  free(k);
}

void sim_tasks_free(sim_tasks *t)
{
  if (!t)
    return;
  for (size_t i = 0; i < t->ntasks; i++)
    task_free(t->tasks[i]);
  free(t->tasks);
  free(t->slots);
  pthread_rwlock_destroy(&t->lock);
  free(t);
}

void sim_tasks_rdlock(sim_tasks *t) { pthread_rwlock_rdlock(&t->lock); }
void sim_tasks_unlock(sim_tasks *t) { pthread_rwlock_unlock(&t->lock); }

static void add_len(sim_tasks *t, uint32_t len)
{
  size_t i = 0;
  while (i < t->nlens && t->lens[i] < len)
    i++;
  if (i < t->nlens && t->lens[i] == len)
    return;
  memmove(t->lens + i + 1, t->lens + i, (t->nlens - i) * sizeof *t->lens);
  t->lens[i] = len;
  t->nlens++;
}

static void put_anchor(sim_tasks *t, const anchor *a)
{
  size_t h = slot_of(a->hash, a->len, t->nslots);
  while (t->slots[h].len)
    h = (h + 1) & (t->nslots - 1);
  t->slots[h] = *a;
  add_len(t, a->len);
}

/* Rebuilds the anchor index of every task. 0, or -1 when out of memory
 * (the old index is kept). */
static int reindex(sim_tasks *t)
{
  size_t need = 0, nslots = 16;
  anchor *slots;
  for (size_t k = 0; k < t->ntasks; k++)
    need += 2 * t->tasks[k]->nitems;
  while (nslots < need * 2)
    nslots *= 2;
  slots = calloc(nslots, sizeof *slots);
  if (!slots)
    return -1;
  free(t->slots);
  t->slots = slots;
  t->nslots = nslots;
  t->nlens = 0;
  t->nanchors = 0;
  t->ncases = 0;
  for (size_t k = 0; k < t->ntasks; k++) {
    const sim_task *task = t->tasks[k];
    t->ncases += task->nitems;
    for (size_t i = 0; i < task->nitems; i++) {
      const sim_task_item *it = &task->items[i];
      uint32_t len = (uint32_t)(it->len < SIM_TASK_ANCHOR ? it->len : SIM_TASK_ANCHOR);
      anchor a = {poly_hash(it->text, len), len, (uint32_t)k, (uint32_t)i, 0};
      put_anchor(t, &a);
      t->nanchors++;
      if (it->len > len) {
        anchor b = {poly_hash(it->text + it->len - len, len), len, (uint32_t)k, (uint32_t)i, 1};
        put_anchor(t, &b);
        t->nanchors++;
      }
    }
  }
  return 0;
}

static int copy_list(const char *const *src, size_t n, char ***plain, char ***norm)
{
  *plain = calloc(n ? n : 1, sizeof **plain);
  if (norm)
    *norm = calloc(n ? n : 1, sizeof **norm);
  if (!*plain || (norm && !*norm))
    return -1;
  for (size_t i = 0; i < n; i++) {
    size_t len;
    if (norm_copy(src[i], strlen(src[i]), &(*plain)[i], &len) != 0)
      return -1;
    if (norm) {
      (*norm)[i] = (*plain)[i];
      if (!((*plain)[i] = strdup(src[i])))
        return -1;
    }
  }
  return 0;
}

static int build_task(const sim_task_spec *spec, const sim_task_case *cases, size_t n,
                      sim_task **out, char *err, size_t errlen)
{
  sim_task *k = calloc(1, sizeof *k);
  if (!k)
    goto oom;
  *out = k;
  k->name = strdup(spec->name ? spec->name : "task");
  k->difficulty = spec->difficulty > 0 ? spec->difficulty : 1.0;
  k->noptions = spec->noptions;
  k->ninstructions = spec->ninstructions;
  k->items = calloc(n ? n : 1, sizeof *k->items);
  if (!k->name || !k->items ||
      copy_list(spec->options, spec->noptions, &k->options, &k->options_norm) != 0 ||
      copy_list(spec->instructions, spec->ninstructions, &k->instructions, NULL) != 0)
    goto oom;
  for (size_t i = 0; i < k->noptions; i++) {
    if (!k->options_norm[i][0]) {
      llm_errf(err, errlen, "option %zu is empty", i + 1);
      return -1;
    }
  }
  for (size_t i = 0; i < n; i++) {
    sim_task_item *it = &k->items[i];
    const sim_task_case *c = &cases[i];
    k->nitems = i + 1;
    it->option = -1;
    if (norm_copy(c->input, c->input_len, &it->text, &it->len) != 0 ||
        norm_copy(c->answer, c->answer_len, &it->answer_norm, &it->answer_norm_len) != 0 ||
        !(it->input = dup_n(c->input, c->input_len)) ||
        !(it->answer = dup_n(c->answer, c->answer_len)))
      goto oom;
    it->input_len = c->input_len;
    it->answer_len = c->answer_len;
    if (it->len == 0) {
      llm_errf(err, errlen, "case %zu: the input text is empty", i + 1);
      return -1;
    }
    if (it->answer_norm_len == 0) {
      llm_errf(err, errlen, "case %zu: the answer is empty", i + 1);
      return -1;
    }
    it->difficulty = c->difficulty > 0 ? c->difficulty : k->difficulty;
    it->ident = c->group ? sim_hash_bytes(sim_hash_str(SIM_HASH_INIT, k->name), c->group, c->group_len) ^
                           0x9e3779b97f4a7c15ULL
                         : sim_hash_bytes(sim_hash_str(SIM_HASH_INIT, k->name), it->text, it->len);
    for (size_t o = 0; o < k->noptions; o++)
      if (strcmp(k->options_norm[o], it->answer_norm) == 0)
        it->option = (int)o;
    if (k->noptions && it->option < 0) {
      llm_errf(err, errlen, "case %zu: the answer \"%.60s\" is not one of the options", i + 1,
          it->answer);
      return -1;
    }
  }
  return 0;
oom:
  llm_errf(err, errlen, "out of memory");
  return -1;
}

int sim_tasks_add(sim_tasks *t, const sim_task_spec *spec, const sim_task_case *cases,
                  size_t ncases, char *err, size_t errlen)
{
  sim_task *k = NULL, *old = NULL;
  size_t at;
  if (build_task(spec, cases, ncases, &k, err, errlen) != 0) {
    task_free(k);
    return -1;
  }
  pthread_rwlock_wrlock(&t->lock);
  for (at = 0; at < t->ntasks; at++)
    if (strcmp(t->tasks[at]->name, k->name) == 0)
      break;
  if (at == t->ntasks) {
    if (llm_grow(&t->tasks, &t->cap, t->ntasks + 1, sizeof *t->tasks) != 0)
      goto oom;
    t->tasks[t->ntasks++] = k;
  } else {
    old = t->tasks[at];
    t->tasks[at] = k;
  }
  if (reindex(t) != 0) {
    if (old)
      t->tasks[at] = old;
    else
      t->ntasks--;
    old = NULL;
    goto oom;
  }
  pthread_rwlock_unlock(&t->lock);
  task_free(old);
  return 0;
oom:
  pthread_rwlock_unlock(&t->lock);
  task_free(k);
  llm_errf(err, errlen, "out of memory");
  return -1;
}

size_t sim_tasks_remove(sim_tasks *t, const char *name)
{
  size_t removed = 0, j = 0;
  pthread_rwlock_wrlock(&t->lock);
  for (size_t i = 0; i < t->ntasks; i++) {
    if (!name || strcmp(t->tasks[i]->name, name) == 0) {
      task_free(t->tasks[i]);
      removed++;
    } else {
      t->tasks[j++] = t->tasks[i];
    }
  }
  t->ntasks = j;
  if (reindex(t) != 0) { /* out of memory: an index that finds nothing */
    free(t->slots);
    t->slots = NULL;
    t->nslots = t->nlens = t->nanchors = 0;
  }
  pthread_rwlock_unlock(&t->lock);
  return removed;
}

size_t sim_tasks_cases(sim_tasks *t)
{
  size_t n;
  pthread_rwlock_rdlock(&t->lock);
  n = t->ncases;
  pthread_rwlock_unlock(&t->lock);
  return n;
}

/* ---- the scan --------------------------------------------------------------------------------- */

typedef struct seen_list {
  sim_task_seen *v;
  size_t n, cap;
} seen_list;

static int push_seen(seen_list *l, const sim_task_seen *s)
{
  if (llm_grow(&l->v, &l->cap, l->n + 1, sizeof *l->v) != 0)
    return -1;
  l->v[l->n++] = *s;
  return 0;
}

static int by_position(const void *a, const void *b)
{
  const sim_task_seen *x = a, *y = b;
  if (x->at != y->at)
    return x->at < y->at ? -1 : 1;
  return x->covered > y->covered ? -1 : x->covered < y->covered;
}

/* The sighting an anchor hit at s[i..i+a->len) makes, extended as far as
 * the text agrees; 0 when it adds nothing (a whole case seen from its last
 * anchor is seen from its first one too). */
static int extend(const sim_tasks *t, const anchor *a, const char *s, size_t n, size_t i,
                  sim_task_seen *out)
{
  const sim_task *task = t->tasks[a->task];
  const sim_task_item *it = &task->items[a->item];
  size_t m = 0;
  out->task = task;
  out->item = it;
  if (!a->last) {
    while (m < it->len && i + m < n && s[i + m] == it->text[m])
      m++;
    out->at = i;
    out->covered = m;
    out->from = 0;
    return 1;
  }
  {
    size_t e = i + a->len;
    while (m < it->len && m < e && s[e - 1 - m] == it->text[it->len - 1 - m])
      m++;
    if (m == it->len)
      return 0;
    out->at = e - m;
    out->covered = m;
    out->from = it->len - m;
  }
  return 1;
}

/* A part of one case inside the whole text of another (cases that share
 * an ending: "... all in all.") says nothing: it goes. */
static void drop_shadowed(seen_list *l)
{
  size_t j = 0;
  for (size_t i = 0; i < l->n; i++) {
    const sim_task_seen *e = &l->v[i];
    int shadowed = 0;
    if (e->covered < e->item->len) {
      for (size_t k = 0; k < l->n && !shadowed; k++) {
        const sim_task_seen *w = &l->v[k];
        shadowed = w->covered == w->item->len && w->at <= e->at &&
                   e->at + e->covered <= w->at + w->covered;
      }
    }
    if (!shadowed)
      l->v[j++] = *e;
  }
  l->n = j;
}

int sim_tasks_scan(sim_tasks *t, const char *s, size_t n, sim_task_seen **out, size_t *nout)
{
  seen_list l = {0};
  uint64_t *prefix = NULL, pw[SIM_TASK_ANCHOR + 1];
  *out = NULL;
  *nout = 0;
  if (t->nanchors == 0 || n == 0)
    return 0;
  prefix = malloc((n + 1) * sizeof *prefix);
  if (!prefix)
    return -1;
  prefix[0] = 0;
  for (size_t i = 0; i < n; i++)
    prefix[i + 1] = prefix[i] * HASH_BASE + (unsigned char)s[i];
  pw[0] = 1;
  for (int i = 1; i <= SIM_TASK_ANCHOR; i++)
    pw[i] = pw[i - 1] * HASH_BASE;
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < t->nlens; k++) {
      uint32_t len = t->lens[k];
      uint64_t h;
      size_t slot;
      if (i + len > n)
        break;
      h = prefix[i + len] - prefix[i] * pw[len];
      slot = slot_of(h, len, t->nslots);
      for (; t->slots[slot].len; slot = (slot + 1) & (t->nslots - 1)) {
        const anchor *a = &t->slots[slot];
        sim_task_seen seen;
        if (a->hash != h || a->len != len || memcmp(anchor_bytes(t, a), s + i, len) != 0)
          continue;
        if (extend(t, a, s, n, i, &seen) && push_seen(&l, &seen) != 0) {
          free(prefix);
          free(l.v);
          return -1;
        }
      }
    }
  }
  free(prefix);
  if (l.n > 1)
    qsort(l.v, l.n, sizeof *l.v, by_position);
  drop_shadowed(&l);
  *out = l.v;
  *nout = l.n;
  return 0;
}
