/* The labelled-task skill: a prompt that contains a case registered with
 * llm.sim.task (sim_tasks.h) is answered with the case's right answer with
 * a probability set by the rules below, else with a plausible wrong one.
 * So classification, extraction and short-answer tasks give meaningful
 * model and prompt comparisons offline. These are the simulator's rules
 * (README "The simulator's model"), not real model behaviour:
 *
 * - The case asked: the last registered case whose text is in the last
 *   user message (else the last one in the prompt that is not followed by
 *   its answer). Its text may be cut (truncated head or tail): the share
 *   of it present is f, when at least 64 bytes of it are there (a shorter
 *   piece is no evidence: other questions start the same way).
 * - Error rate e = task_err(tier) (0.04 frontier, 0.08 strong, 0.14
 *   middle, 0.22 small) x the temperature factor x the reasoning effort's
 *   factor (as for every skill), x 0.8 when the prompt asks to explain or
 *   to go step by step, x 2 when the instructions are missing (a
 *   classification task: not every option is named in the prompt outside
 *   the case's text; a task with `instructions`: not every keyword is),
 *   x 0.85 per few-shot example (up to 5: another case of the task in the
 *   prompt with its answer after it). e is at most 0.95.
 * - P(right) = (1 - e)^d for difficulty d (the case's, else the task's,
 *   else 1). With part of the text cut away: chance + (P - chance) x f,
 *   chance being 1/(number of options) for classification and 0
 *   otherwise; an extraction task (the answer is a span of the case's
 *   text) keeps P when the span is in the part present and has 0 when not.
 * - The draw depends on (model, seed, choice, the case), not on the rest
 *   of the prompt: two prompts for the same case share their luck, so a
 *   better prompt is right on a superset of the cases (paired comparisons).
 * - A wrong answer: another option (a neighbour in the list half the
 *   time); else, for an answer with a digit, the answer with one digit
 *   changed; for a span of the case's text, the neighbouring span of as
 *   many words; else another case's answer; else "I don't know.".
 * - The answer is the bare label or value; a prompt that asks to explain
 *   gets a few sentences and "The answer is X.". */
#include "sim_internal.h"
#include "sim_tasks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EXAMPLES 5
#define EXAMPLE_WINDOW 200   /* bytes after an example in which its answer counts */
/* A cut case counts when this much of it is there: a shorter match is as
 * likely another question that starts (or ends) the same way ("How do I
 * print my ..." invoice or receipt) as a truncated one. */
#define MIN_PART (2 * SIM_TASK_ANCHOR)
static const char dont_know[] = "I don't know.";

/* ---- the prompt, normalised ------------------------------------------------------------- */

/* Every message's text normalised, separated by '\x01' (so no case spans
 * two messages); [*from, *to) is the last user message. */
int sim_task_prompt(const sim_request *req, llm_buf *b, size_t *from, size_t *to)
{
  size_t last = req->nmessages - 1;
  for (size_t i = 0; i < req->nmessages; i++)
    if (req->messages[i].role && strcmp(req->messages[i].role, "user") == 0)
      last = i;
  *from = *to = 0;
  for (size_t i = 0; i < req->nmessages; i++) {
    if (i > 0)
      llm_buf_putc(b, '\x01');
    if (i == last)
      *from = b->len;
    sim_tasks_normalize(b, req->messages[i].content, req->messages[i].content_len);
    sim_tasks_trim(b);
    if (i == last)
      *to = b->len;
  }
  return b->failed ? -1 : 0;
}

/* ---- which case is asked ------------------------------------------------------------------ */

typedef struct target {
  const sim_task_seen *seen;   /* where it is */
  double share;                /* f: the share of its text present */
  size_t head, tail;           /* bytes present from its start / at its end */
} target;

static int answer_follows(const char *s, size_t n, const sim_task_seen *v, size_t nv, size_t k)
{
  const sim_task_seen *e = &v[k];
  size_t from = e->at + e->covered, to = from + EXAMPLE_WINDOW;
  for (size_t j = k + 1; j < nv; j++)
    if (v[j].at >= from && v[j].at < to)
      to = v[j].at;
  if (to > n)
    to = n;
  return sim_tasks_find_words(s, from, to, e->item->answer_norm, e->item->answer_norm_len) !=
         (size_t)-1;
}

static int whole(const sim_task_seen *e) { return e->covered == e->item->len; }

/* The case asked, or 0 when the prompt holds none. */
static int find_target(const char *s, size_t n, const sim_task_seen *v, size_t nv, size_t ufrom,
                       size_t uto, target *t)
{
  long best = -1;
  memset(t, 0, sizeof *t);
  /* a whole case in the last user message: the last one */
  for (size_t k = 0; k < nv; k++)
    if (whole(&v[k]) && v[k].at >= ufrom && v[k].at + v[k].covered <= uto)
      best = (long)k;
  /* else the last whole case not followed by its answer (not an example) */
  for (size_t k = nv; best < 0 && k-- > 0;)
    if (whole(&v[k]) && !answer_follows(s, n, v, nv, k))
      best = (long)k;
  if (best >= 0) {
    t->seen = &v[best];
    t->share = 1.0;
    t->head = t->tail = v[best].item->len;
    return 1;
  }
  /* else a cut case, preferring the last user message: the one with most
   * of its text present (what its first and last anchors found) */
  for (int pass = 0; pass < 2 && !t->seen; pass++) {
    for (size_t k = 0; k < nv; k++) {
      const sim_task_seen *e = &v[k];
      size_t head = 0, tail = 0;
      double share;
      if ((pass == 0 && (e->at < ufrom || e->at >= uto)) || e->covered < MIN_PART)
        continue;
      for (size_t j = 0; j < nv; j++) {
        if (v[j].item != e->item || (pass == 0 && (v[j].at < ufrom || v[j].at >= uto)))
          continue;
        if (v[j].from == 0 && v[j].covered > head)
          head = v[j].covered;
        if (v[j].from > 0 && v[j].covered > tail)
          tail = v[j].covered;
      }
      share = (double)(head + tail) / (double)e->item->len;
      if (share > 1.0)
        share = 1.0;
      if (share > t->share) {
        t->seen = e;
        t->share = share;
        t->head = head;
        t->tail = tail;
      }
    }
  }
  return t->seen != NULL;
}

/* Few-shot examples: other cases of the task, whole, with their answers
 * right after them. */
static int count_examples(const char *s, size_t n, const sim_task_seen *v, size_t nv,
                          const target *t)
{
  const sim_task_item *seen[MAX_EXAMPLES];
  int count = 0;
  for (size_t k = 0; k < nv && count < MAX_EXAMPLES; k++) {
    const sim_task_seen *e = &v[k];
    int dup = 0;
    if (e->task != t->seen->task || e->item == t->seen->item || !whole(e))
      continue;
    for (int j = 0; j < count; j++)
      dup |= seen[j] == e->item;
    if (!dup && answer_follows(s, n, v, nv, k))
      seen[count++] = e->item;
  }
  return count;
}

/* The words w occur outside the case asked (its text does not count as
 * instructions: a review that says "positive" names no label set). */
static int said_outside(const char *s, size_t n, const target *t, const char *w)
{
  size_t a = t->seen->at, b = t->seen->at + t->seen->covered, wn = strlen(w);
  return sim_tasks_find_words(s, 0, a, w, wn) != (size_t)-1 ||
         sim_tasks_find_words(s, b, n, w, wn) != (size_t)-1;
}

static int instructed(const char *s, size_t n, const target *t)
{
  const sim_task *task = t->seen->task;
  for (size_t i = 0; i < task->noptions; i++)
    if (!said_outside(s, n, t, task->options_norm[i]))
      return 0;
  for (size_t i = 0; i < task->ninstructions; i++)
    if (!said_outside(s, n, t, task->instructions[i]))
      return 0;
  return 1;
}

/* ---- wrong answers ----------------------------------------------------------------------------- */

static int has_digit(const char *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (v[i] >= '0' && v[i] <= '9')
      return 1;
  return 0;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static size_t find_ci(const char *s, size_t n, const char *w, size_t wn)
{
  for (size_t i = 0; wn && i + wn <= n; i++) {
    size_t j = 0;
    while (j < wn && lower((unsigned char)s[i + j]) == lower((unsigned char)w[j]))
      j++;
    if (j == wn)
      return i;
  }
  return (size_t)-1;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_edge_punct(char c) { return c && strchr(".,;:!?\"'()[]", c) != NULL; }

/* The span of as many words as the answer, one word to the right in the
 * case's text (to the left at its end). 1 when written. */
static int neighbour_span(llm_buf *out, const sim_task_item *it)
{
  enum { MAXW = 512 };
  size_t ws[MAXW], we[MAXW], nw = 0, at = find_ci(it->input, it->input_len, it->answer,
                                                  it->answer_len);
  size_t first = 0, last = 0, k, from, to;
  if (at == (size_t)-1)
    return 0;
  for (size_t i = 0; i < it->input_len && nw < MAXW;) {
    while (i < it->input_len && is_space(it->input[i]))
      i++;
    if (i >= it->input_len)
      break;
    ws[nw] = i;
    while (i < it->input_len && !is_space(it->input[i]))
      i++;
    we[nw++] = i;
  }
  while (first < nw && we[first] <= at)
    first++;
  last = first;
  while (last + 1 < nw && ws[last + 1] < at + it->answer_len)
    last++;
  if (first >= nw)
    return 0;
  k = last - first + 1;
  if (last + 1 < nw)
    from = first + 1;
  else if (first > 0)
    from = first - 1;
  else
    return 0;
  to = from + k - 1;
  {
    size_t a = ws[from], b = we[to];
    while (a < b && is_edge_punct(it->input[a]))
      a++;
    while (b > a && is_edge_punct(it->input[b - 1]))
      b--;
    if (a == b)
      return 0;
    sim_put_utf8(out, it->input + a, b - a);
  }
  return 1;
}

static void wrong_answer(llm_buf *out, const sim_task *task, const sim_task_item *it,
                         sim_rng *rng)
{
  if (task->noptions > 1) {
    size_t k = task->noptions, o = (size_t)it->option, pick;
    if (sim_rng_unit(rng) < 0.5 && k > 2) { /* a neighbour in the list */
      pick = o == 0 ? 1 : o == k - 1 ? k - 2 : (sim_rng_unit(rng) < 0.5 ? o - 1 : o + 1);
    } else {
      pick = sim_rng_below(rng, (uint32_t)(k - 1));
      if (pick >= o)
        pick++;
    }
    sim_put_utf8(out, task->options[pick], strlen(task->options[pick]));
    return;
  }
  if (task->noptions == 1) {
    llm_buf_puts(out, dont_know);
    return;
  }
  if (has_digit(it->answer, it->answer_len)) {
    sim_perturb_digit(out, it->answer, it->answer_len, rng);
    return;
  }
  if (neighbour_span(out, it))
    return;
  if (task->nitems > 1) { /* another case's answer, if one differs */
    size_t start = sim_rng_below(rng, (uint32_t)task->nitems);
    for (size_t i = 0; i < task->nitems; i++) {
      const sim_task_item *o = &task->items[(start + i) % task->nitems];
      if (strcmp(o->answer_norm, it->answer_norm) != 0) {
        sim_put_utf8(out, o->answer, o->answer_len);
        return;
      }
    }
  }
  llm_buf_puts(out, dont_know);
}

/* ---- the skill ------------------------------------------------------------------------------ */

/* Whether the answer of an extraction case is in the part of its text
 * that is present (head bytes from the start, tail bytes at the end). */
static int span_visible(const sim_task_item *it, const target *t, int *is_span)
{
  size_t at = sim_tasks_find_words(it->text, 0, it->len, it->answer_norm, it->answer_norm_len);
  *is_span = at != (size_t)-1;
  if (!*is_span)
    return 0;
  return at + it->answer_norm_len <= t->head || at >= it->len - t->tail;
}

int sim_skill_task(const sim_request *req, const sim_prompt *p, uint64_t key,
                   sim_skill_out *out)
{
  llm_buf s = {0};
  sim_task_seen *v = NULL;
  size_t nv = 0, ufrom, uto;
  target t;
  int found = 0;
  if (!req->tasks || sim_tasks_cases(req->tasks) == 0 || sim_task_prompt(req, &s, &ufrom, &uto) != 0) {
    llm_buf_free(&s);
    return 0;
  }
  sim_tasks_rdlock(req->tasks);
  if (sim_tasks_scan(req->tasks, s.data, s.len, &v, &nv) == 0 && nv > 0 &&
      find_target(s.data, s.len, v, nv, ufrom, uto, &t)) {
    const sim_task *task = t.seen->task;
    const sim_task_item *it = t.seen->item;
    const sim_tier *tier = sim_tier_of(req->model, NULL);
    int examples = count_examples(s.data, s.len, v, nv, &t);
    double err = tier->task_err * sim_temperature_factor(req->temperature) *
                 (p->err_scale > 0 ? p->err_scale : 1.0);
    double p_right, d = it->difficulty;
    uint64_t qkey = sim_hash_u64(sim_hash_str(key, "task"), it->ident);
    int right, is_span;
    sim_rng rng;
    if (p->verbose)
      err *= 0.8;
    if (!instructed(s.data, s.len, &t))
      err *= 2.0;
    for (int i = 0; i < examples; i++)
      err *= 0.85;
    if (err > 0.95)
      err = 0.95;
    p_right = pow(1.0 - err, d);
    if (t.share < 1.0) {
      int visible = span_visible(it, &t, &is_span);
      if (!task->noptions && is_span)
        p_right = visible ? p_right : 0.0;
      else {
        double chance = task->noptions ? 1.0 / (double)task->noptions : 0.0;
        p_right = chance + (p_right - chance) * t.share;
      }
    }
    right = sim_unit_of(qkey) < p_right;
    memset(out, 0, sizeof *out);
    out->kind = SIM_SKILL_TASK;
    out->outcome = right ? SIM_RIGHT : SIM_WRONG;
    out->conf_z = sim_confidence_z(qkey, out->outcome);
    out->difficulty = 0.5 + 0.5 * d;
    if (p->verbose) {
      sim_rng_init(&rng, sim_hash_str(qkey, "explain"));
      sim_text_generate(&out->text, &rng, (int)(30 + 10 * d), NULL, 0);
      llm_buf_puts(&out->text, " The answer is ");
    }
    out->answer_at = out->text.len;
    if (right) {
      const char *a = it->option >= 0 ? task->options[it->option] : it->answer;
      sim_put_utf8(&out->text, a, it->option >= 0 ? strlen(a) : it->answer_len);
    } else {
      sim_rng_init(&rng, sim_hash_str(qkey, "wrong"));
      wrong_answer(&out->text, task, it, &rng);
    }
    if (p->verbose)
      llm_buf_putc(&out->text, '.');
    found = 1;
  }
  sim_tasks_unlock(req->tasks);
  free(v);
  llm_buf_free(&s);
  return found;
}
