/* The judge skill: a simulated model asked to grade an answer the way
 * llm.check.judge asks (lualib/llm/check_judge.lua: a prompt holding the
 * markers "VERDICT:" and "SCORE:", and a user message with "Task:",
 * "Reference answer:" and "Answer to grade:" sections) grades it against
 * the right answer and replies in the three lines asked for:
 *
 *   VERDICT: PASS | FAIL
 *   SCORE: <0..scale>        (pass: 70-100% of the scale, fail: 0-30%)
 *   REASON: <one sentence>
 *
 * The simulator's rules (README "The simulator's model"):
 * - The right answer: that of the registered case (llm.sim.task) whose
 *   text is in the Task section; else the reference answer; with
 *   neither, this is no judge prompt the simulator can grade (free text).
 * - The graded answer is right when, normalised, it equals the right
 *   answer, or names it as whole words (and, for a classification task,
 *   names no other option).
 * - The verdict agrees with that with probability judge_acc(tier) (0.97
 *   frontier, 0.94 strong, 0.90 middle, 0.85 small); its error is scaled
 *   by temperature and reasoning effort as every skill's is. The draw
 *   depends on the model, the seed, the task and the graded answer. */
#include "sim_internal.h"
#include "sim_tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *find_last(const char *s, size_t n, const char *w, size_t from)
{
  size_t k = strlen(w);
  const char *hit = NULL;
  for (size_t i = from; i + k <= n; i++)
    if (s[i] == w[0] && memcmp(s + i, w, k) == 0)
      hit = s + i;
  return hit;
}

static int contains(const char *s, size_t n, const char *w)
{
  return find_last(s, n, w, 0) != NULL;
}

typedef struct section {
  const char *p;
  size_t n;
} section;

/* The judge prompt's parts: 1 when the prompt is one. */
static int parse(const sim_request *req, const sim_prompt *p, section *task, section *ref,
                 section *answer, int *scale)
{
  const char *u = p->last_user, *ans, *end, *refh, *taskh, *to;
  size_t n = p->last_user_len;
  int marked = 0;
  for (size_t i = 0; i < req->nmessages && !marked; i++) {
    const sim_message *m = &req->messages[i];
    if (contains(m->content, m->content_len, "VERDICT:") &&
        contains(m->content, m->content_len, "SCORE:")) {
      const char *sc = find_last(m->content, m->content_len, "from 0 to ", 0);
      marked = 1;
      if (sc && sc + 10 < m->content + m->content_len)
        *scale = atoi(sc + 10);
    }
  }
  if (!marked || !u || !(ans = find_last(u, n, "Answer to grade:", 0)))
    return 0;
  if (*scale <= 0 || *scale > 1000)
    *scale = 10;
  answer->p = ans + strlen("Answer to grade:");
  end = find_last(u, n, "Grade the answer to grade.", (size_t)(answer->p - u));
  answer->n = (size_t)((end ? end : u + n) - answer->p);
  refh = find_last(u, (size_t)(ans - u), "Reference answer:", 0);
  to = refh ? refh : ans;
  memset(ref, 0, sizeof *ref);
  if (refh) {
    ref->p = refh + strlen("Reference answer:");
    ref->n = (size_t)(ans - ref->p);
  }
  memset(task, 0, sizeof *task);
  taskh = find_last(u, (size_t)(to - u), "Task:", 0);
  if (taskh) {
    task->p = taskh + strlen("Task:");
    task->n = (size_t)(to - task->p);
  }
  return 1;
}

static int norm(const char *s, size_t n, llm_buf *b)
{
  sim_tasks_normalize(b, s, n);
  sim_tasks_trim(b);
  while (b->len > 0 && strchr(".!", b->data[b->len - 1]))
    b->len--;
  llm_buf_putc(b, '\0');
  b->len--;
  return b->failed ? -1 : 0;
}

/* Is the graded answer (normalised) the right one? options: the task's
 * labels, when it is a classification. */
static int agrees(const char *got, size_t gn, const char *want, size_t wn, const sim_task *task)
{
  if (gn == wn && memcmp(got, want, wn) == 0)
    return 1;
  if (sim_tasks_find_words(got, 0, gn, want, wn) == (size_t)-1)
    return 0;
  for (size_t i = 0; task && i < task->noptions; i++) {
    const char *o = task->options_norm[i];
    if (strcmp(o, want) != 0 && sim_tasks_find_words(got, 0, gn, o, strlen(o)) != (size_t)-1)
      return 0;
  }
  return 1;
}

int sim_skill_judge(const sim_request *req, const sim_prompt *p, uint64_t key,
                    sim_skill_out *out)
{
  section task, ref, answer;
  llm_buf got = {0}, want = {0}, tn = {0};
  sim_task_seen *v = NULL;
  size_t nv = 0;
  const sim_task *known = NULL;
  int scale = 10, truth = -1;
  if (!parse(req, p, &task, &ref, &answer, &scale))
    return 0;
  if (norm(answer.p, answer.n, &got) != 0)
    goto done;
  if (req->tasks && task.p) {
    sim_tasks_rdlock(req->tasks);
    sim_tasks_normalize(&tn, task.p, task.n);
    sim_tasks_trim(&tn);
    if (!tn.failed && sim_tasks_scan(req->tasks, tn.data, tn.len, &v, &nv) == 0) {
      for (size_t k = nv; k-- > 0 && truth < 0;) {
        const sim_task_item *it = v[k].item;
        if (v[k].covered != it->len)
          continue;
        known = v[k].task;
        truth = agrees(got.data, got.len, it->answer_norm, it->answer_norm_len, known);
      }
    }
    sim_tasks_unlock(req->tasks);
  }
  if (truth < 0 && ref.p && ref.n) {
    if (norm(ref.p, ref.n, &want) != 0)
      goto done;
    if (want.len > 0)
      truth = agrees(got.data, got.len, want.data, want.len, NULL);
  }
  if (truth >= 0) {
    const sim_tier *tier = sim_tier_of(req->model, NULL);
    double err = (1.0 - tier->judge_acc) * sim_temperature_factor(req->temperature) *
                 (p->err_scale > 0 ? p->err_scale : 1.0);
    /* the luck of this grading: the answer graded and what it answers */
    uint64_t jkey = sim_hash_bytes(sim_hash_str(key, "judge"), got.data, got.len);
    jkey = sim_hash_bytes(jkey, task.p ? task.p : "", task.p ? task.n : 0);
    int correct = sim_unit_of(jkey) >= err;
    int pass = correct ? truth : !truth;
    sim_rng rng;
    char line[96];
    int score;
    sim_rng_init(&rng, sim_hash_str(jkey, "score"));
    score = (int)(scale * (pass ? 0.7 + 0.3 * sim_rng_unit(&rng) : 0.3 * sim_rng_unit(&rng)) + 0.5);
    memset(out, 0, sizeof *out);
    out->kind = SIM_SKILL_JUDGE;
    out->outcome = correct ? SIM_RIGHT : SIM_WRONG;
    out->conf_z = sim_confidence_z(jkey, out->outcome);
    out->difficulty = 1.0;
    out->answer_at = strlen("VERDICT: ");
    snprintf(line, sizeof line, "VERDICT: %s\nSCORE: %d\nREASON: ", pass ? "PASS" : "FAIL", score);
    llm_buf_puts(&out->text, line);
    llm_buf_puts(&out->text, pass ? "The answer agrees with the expected answer."
                                  : "The answer does not agree with the expected answer.");
  }
done:
  free(v);
  llm_buf_free(&got);
  llm_buf_free(&want);
  llm_buf_free(&tn);
  return truth >= 0;
}
