/* Tests for labelled tasks on the simulator: the registry and its scan
 * (sim_tasks.c), the task skill's rules (sim_task_skill.c), the judge
 * (sim_judge.c) and scripted answers (mock_response). Rates are measured
 * over fixed cases and seeds, so they are deterministic; their bounds
 * state the design (README "The simulator's model"), with room for the
 * sampling of a few hundred cases. */
#include "check.h"
#include "sim/sim_internal.h"
#include "sim/sim_model.h"
#include "sim/sim_tasks.h"

#include <pthread.h>
#include <stdio.h>
/* snprintf into fixed buffers is the point (a cut prompt is fine), and GCC
 * sizes an element of inputs[][] as the whole array */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <stdlib.h>
#include <string.h>

#define NCASES 300

static const char *const labels[] = {"positive", "negative", "neutral"};
static char inputs[NCASES][200];
static sim_task_case cases[NCASES];

static sim_tasks *sentiment_task(void)
{
  sim_tasks *t = sim_tasks_new();
  sim_task_spec spec = {"sentiment", 1.0, labels, 3, NULL, 0};
  static const char *const moods[] = {"wonderful", "dreadful", "ordinary"};
  char err[128];
  for (int i = 0; i < NCASES; i++) {
    snprintf(inputs[i], sizeof inputs[i],
             "Order %d arrived on day %d, well packed, and the blender I bought with it was %s, "
             "wrote customer %d.", i, i % 28 + 1, moods[i % 3], 1000 + i);
    cases[i] = (sim_task_case){inputs[i], strlen(inputs[i]), labels[i % 3], strlen(labels[i % 3]), 0, NULL, 0};
  }
  CHECK(sim_tasks_add(t, &spec, cases, NCASES, err, sizeof err) == 0);
  return t;
}

static int answer(sim_tasks *t, const char *model, const char *system, const char *user,
                  char *out, size_t cap, const char **skill)
{
  sim_message msg[2];
  size_t n = 0;
  sim_request req;
  sim_answer a;
  memset(&req, 0, sizeof req);
  if (system)
    msg[n++] = (sim_message){"system", system, strlen(system), NULL, NULL};
  msg[n++] = (sim_message){"user", user, strlen(user), NULL, NULL};
  req.model = model;
  req.messages = msg;
  req.nmessages = n;
  req.temperature = 0.0;
  req.tasks = t;
  if (sim_model_answer(&req, 0, &a) != 0)
    return -1;
  snprintf(out, cap, "%.*s", (int)a.len, a.text);
  if (skill)
    *skill = a.skill;
  sim_answer_free(&a);
  return 0;
}

/* The share of cases answered right with the prompt fmt (%s: the case). */
static double accuracy(sim_tasks *t, const char *model, const char *fmt, int *others)
{
  int right = 0;
  for (int i = 0; i < NCASES; i++) {
    char prompt[1024], got[256];
    const char *skill = NULL;
    snprintf(prompt, sizeof prompt, fmt, inputs[i]);
    if (answer(t, model, NULL, prompt, got, sizeof got, &skill) != 0)
      return -1;
    if (strcmp(skill, "task") != 0)
      return -1;
    if (strcmp(got, labels[i % 3]) == 0)
      right++;
    else if (others && strcmp(got, "positive") && strcmp(got, "negative") && strcmp(got, "neutral"))
      (*others)++;
  }
  return (double)right / NCASES;
}

static void test_text_helpers(void)
{
  llm_buf b = {0};
  sim_tasks_normalize(&b, "  Hello\n\t World  ", 17);
  sim_tasks_trim(&b);
  CHECK_MEM(b.data, b.len, "hello world", 11);
  llm_buf_free(&b);
  CHECK_INT(sim_tasks_find_words("the positive one", 0, 16, "positive", 8), 4);
  CHECK(sim_tasks_find_words("unpositively", 0, 12, "positive", 8) == (size_t)-1);
  CHECK_INT(sim_tasks_find_words("label: positive.", 0, 16, "positive", 8), 7);
}

static void test_scan(void)
{
  sim_tasks *t = sentiment_task();
  const char *whole = "classify: order 7 arrived on day 8, well packed, and the blender i bought "
                      "with it was dreadful, wrote customer 1007. answer:";
  const char *tail_cut = "classify: order 7 arrived on day 8, well packed, and the blender";
  const char *head_cut = "... bought with it was dreadful, wrote customer 1007.";
  sim_task_seen *v;
  size_t n;
  sim_tasks_rdlock(t);
  CHECK(sim_tasks_scan(t, whole, strlen(whole), &v, &n) == 0);
  CHECK_INT(n, 1);
  if (n == 1) {
    CHECK_INT(v[0].at, 10);
    CHECK_INT(v[0].covered, v[0].item->len);
    CHECK_STR(v[0].item->answer, "negative");
  }
  free(v);
  CHECK(sim_tasks_scan(t, tail_cut, strlen(tail_cut), &v, &n) == 0);
  CHECK_INT(n, 1);
  if (n == 1) {
    CHECK_INT(v[0].from, 0);
    CHECK_INT(v[0].covered, strlen(tail_cut) - 10);
  }
  free(v);
  CHECK(sim_tasks_scan(t, head_cut, strlen(head_cut), &v, &n) == 0);
  CHECK_INT(n, 1);
  if (n == 1) {
    CHECK_INT(v[0].covered, strlen(head_cut) - 3); /* " bought ...": the space matches too */
    CHECK_INT(v[0].from + v[0].covered, v[0].item->len);
  }
  free(v);
  sim_tasks_unlock(t);
  CHECK_INT(sim_tasks_cases(t), NCASES);
  CHECK_INT(sim_tasks_remove(t, "nothing"), 0);
  CHECK_INT(sim_tasks_remove(t, "sentiment"), 1);
  CHECK_INT(sim_tasks_cases(t), 0);
  sim_tasks_free(t);
}

static void test_bad_specs(void)
{
  sim_tasks *t = sim_tasks_new();
  sim_task_spec spec = {"bad", 1.0, labels, 3, NULL, 0};
  sim_task_case c = {"some text here", 14, "maybe", 5, 0, NULL, 0};
  char err[128] = "";
  CHECK(sim_tasks_add(t, &spec, &c, 1, err, sizeof err) != 0);
  CHECK(strstr(err, "not one of the options") != NULL);
  c = (sim_task_case){"   ", 3, "positive", 8, 0, NULL, 0};
  CHECK(sim_tasks_add(t, &spec, &c, 1, err, sizeof err) != 0);
  CHECK(strstr(err, "input text is empty") != NULL);
  CHECK_INT(sim_tasks_cases(t), 0);
  sim_tasks_free(t);
}

static const char *const listed = "Classify the sentiment of the review as positive, negative or "
                                  "neutral. Reply with the label only.\n\nReview: %s";
static const char *const unlisted = "What is the tone of this review?\n\nReview: %s";

static void test_classification(void)
{
  sim_tasks *t = sentiment_task();
  int others = 0;
  double small = accuracy(t, "gpt-4o-mini", listed, &others);
  double small_unlisted = accuracy(t, "gpt-4o-mini", unlisted, &others);
  double strong = accuracy(t, "gpt-4o", listed, &others);
  double frontier = accuracy(t, "o3", listed, &others);
  printf("classification: small %.3f (options not listed %.3f), strong %.3f, frontier %.3f\n",
         small, small_unlisted, strong, frontier);
  /* (1 - 0.22) = 0.78 and (1 - 0.44) = 0.56 for the small tier */
  CHECK(small > 0.70 && small < 0.86);
  CHECK(small_unlisted > 0.46 && small_unlisted < 0.66);
  CHECK(small - small_unlisted > 0.12);
  CHECK(strong > small + 0.06);
  CHECK(frontier > 0.90);
  /* every wrong answer is another option */
  CHECK_INT(others, 0);
  sim_tasks_free(t);
}

/* Two prompts for one case share their luck: the better prompt is right
 * on every case the worse one gets right. */
static void test_paired_luck(void)
{
  sim_tasks *t = sentiment_task();
  int superset = 1;
  for (int i = 0; i < NCASES; i++) {
    char p1[1024], p2[1024], a1[64], a2[64];
    snprintf(p1, sizeof p1, listed, inputs[i]);
    snprintf(p2, sizeof p2, unlisted, inputs[i]);
    answer(t, "gpt-4o-mini", NULL, p1, a1, sizeof a1, NULL);
    answer(t, "gpt-4o-mini", NULL, p2, a2, sizeof a2, NULL);
    if (strcmp(a2, labels[i % 3]) == 0 && strcmp(a1, labels[i % 3]) != 0)
      superset = 0;
  }
  CHECK(superset);
  sim_tasks_free(t);
}

static void test_few_shot(void)
{
  sim_tasks *t = sentiment_task();
  int right0 = 0, right5 = 0;
  for (int i = 5; i < NCASES; i++) {
    char prompt[2048], got[64];
    int len = snprintf(prompt, sizeof prompt, "What is the tone of this review?\n\n");
    for (int k = 0; k < 5; k++) /* five other cases with their labels */
      len += snprintf(prompt + len, sizeof prompt - (size_t)len, "Review: %s\nTone: %s\n\n",
                      inputs[k], labels[k % 3]);
    snprintf(prompt + len, sizeof prompt - (size_t)len, "Review: %s\nTone:", inputs[i]);
    answer(t, "gpt-4o-mini", NULL, prompt, got, sizeof got, NULL);
    right5 += strcmp(got, labels[i % 3]) == 0;
    snprintf(prompt, sizeof prompt, "What is the tone of this review?\n\nReview: %s\nTone:",
             inputs[i]);
    answer(t, "gpt-4o-mini", NULL, prompt, got, sizeof got, NULL);
    right0 += strcmp(got, labels[i % 3]) == 0;
  }
  printf("few-shot: 0 examples %d, 5 examples %d of %d\n", right0, right5, NCASES - 5);
  /* the examples name every label too: e = 0.22 x 0.85^5 = 0.098 vs 0.44 */
  CHECK(right5 > right0 + (NCASES - 5) / 4);
  sim_tasks_free(t);
}

static void test_truncated(void)
{
  sim_tasks *t = sentiment_task();
  int right = 0, whole = 0, too_short = 0;
  for (int i = 0; i < NCASES; i++) {
    char prompt[1024], cut[200], got[64];
    const char *skill;
    size_t keep = strlen(inputs[i]) * 7 / 10; /* >= 64 bytes: a cut case */
    memcpy(cut, inputs[i], keep);
    cut[keep] = '\0';
    snprintf(prompt, sizeof prompt, listed, cut);
    answer(t, "o3", NULL, prompt, got, sizeof got, NULL);
    right += strcmp(got, labels[i % 3]) == 0;
    snprintf(prompt, sizeof prompt, listed, inputs[i]);
    answer(t, "o3", NULL, prompt, got, sizeof got, NULL);
    whole += strcmp(got, labels[i % 3]) == 0;
    /* under 64 bytes of it: no evidence of the case (other questions may
     * start the same way), so no task answer */
    memcpy(cut, inputs[i], 40);
    cut[40] = '\0';
    snprintf(prompt, sizeof prompt, listed, cut);
    answer(t, "o3", NULL, prompt, got, sizeof got, &skill);
    too_short += strcmp(skill, "task") == 0;
  }
  printf("truncated to 70%%: %d right of %d (whole: %d)\n", right, NCASES, whole);
  /* chance 1/3 + (0.96 - 1/3) x 0.7 = 0.77 */
  CHECK(right < whole - NCASES / 10);
  CHECK(right > NCASES * 68 / 100 && right < NCASES * 87 / 100);
  CHECK_INT(too_short, 0);
  sim_tasks_free(t);
}

static void test_extraction(void)
{
  sim_tasks *t = sim_tasks_new();
  sim_task_spec spec = {"invoices", 2.0, NULL, 0, NULL, 0};
  static char in[60][160];
  sim_task_case cs[60];
  char err[128];
  int near_miss = 1, right = 0;
  for (int i = 0; i < 60; i++) {
    snprintf(in[i], sizeof in[i], "Invoice INV-%04d from Acme Ltd totals %d.%02d EUR, due in %d days.",
             i, 100 + i * 13, i, 30 + i % 4 * 15);
    static char ans[60][16];
    snprintf(ans[i], sizeof ans[i], "%d.%02d", 100 + i * 13, i);
    cs[i] = (sim_task_case){in[i], strlen(in[i]), ans[i], strlen(ans[i]), 0, NULL, 0};
  }
  CHECK(sim_tasks_add(t, &spec, cs, 60, err, sizeof err) == 0);
  for (int i = 0; i < 60; i++) {
    char prompt[512], got[64];
    snprintf(prompt, sizeof prompt, "Extract the total amount.\n\n%s", in[i]);
    answer(t, "gpt-4o-mini", NULL, prompt, got, sizeof got, NULL);
    if (strcmp(got, cs[i].answer) == 0) {
      right++;
    } else { /* one digit changed */
      int diff = 0;
      if (strlen(got) != cs[i].answer_len)
        near_miss = 0;
      for (size_t k = 0; k < cs[i].answer_len && k < strlen(got); k++)
        diff += got[k] != cs[i].answer[k];
      if (diff != 1)
        near_miss = 0;
    }
  }
  printf("extraction: %d of 60 right (difficulty 2, small tier)\n", right);
  CHECK(right > 30 && right < 60);
  CHECK(near_miss);
  sim_tasks_free(t);
}

/* A wrong word answer is the neighbouring span of the case's text. */
static void test_neighbour_span(void)
{
  sim_tasks *t = sim_tasks_new();
  sim_task_spec spec = {"cities", 3.0, NULL, 0, NULL, 0};
  static char in[80][128];
  sim_task_case cs[80];
  char err[128];
  int wrong = 0, spans = 1;
  for (int i = 0; i < 80; i++) {
    snprintf(in[i], sizeof in[i], "Ticket %d: the parcel left Porto Alegre yesterday for Lisbon city.", i);
    cs[i] = (sim_task_case){in[i], strlen(in[i]), "Porto Alegre", 12, 0, NULL, 0};
  }
  CHECK(sim_tasks_add(t, &spec, cs, 80, err, sizeof err) == 0);
  for (int i = 0; i < 80; i++) {
    char prompt[256], got[64];
    snprintf(prompt, sizeof prompt, "Where did it leave from?\n%s", in[i]);
    answer(t, "gpt-4o-mini", NULL, prompt, got, sizeof got, NULL);
    if (strcmp(got, "Porto Alegre") != 0) {
      wrong++;
      if (strcmp(got, "Alegre yesterday") != 0)
        spans = 0;
    }
  }
  CHECK(wrong > 5);
  CHECK(spans);
  sim_tasks_free(t);
}

static const char *const judge_system =
  "You are a strict, fair grader. You grade one answer against the rubric below.\n"
  "Reply with exactly three lines:\nVERDICT: PASS or VERDICT: FAIL\n"
  "SCORE: an integer from 0 to 10\nREASON: one sentence saying why";

static void test_judge(void)
{
  sim_tasks *t = sentiment_task();
  int pass_right = 0, fail_wrong = 0, n = 0;
  const char *skill;
  char prompt[1024], got[256];
  for (int i = 0; i < NCASES; i++) {
    const char *wrong = labels[(i + 1) % 3];
    /* no reference: the registered answer decides */
    snprintf(prompt, sizeof prompt, "Rubric:\nThe label is right.\n\nTask:\n%s\n\nAnswer to grade:\n"
             "%s\n\nGrade the answer to grade.", inputs[i], labels[i % 3]);
    answer(t, "gpt-4o", judge_system, prompt, got, sizeof got, &skill);
    CHECK_STR(skill, "judge");
    pass_right += strncmp(got, "VERDICT: PASS\nSCORE: ", 21) == 0;
    snprintf(prompt, sizeof prompt, "Rubric:\nThe label is right.\n\nTask:\n%s\n\nAnswer to grade:\n"
             "The review is %s.\n\nGrade the answer to grade.", inputs[i], wrong);
    answer(t, "gpt-4o", judge_system, prompt, got, sizeof got, NULL);
    fail_wrong += strncmp(got, "VERDICT: FAIL\nSCORE: ", 21) == 0;
    n++;
  }
  printf("judge (strong): passes %d of %d right answers, fails %d of %d wrong ones\n",
         pass_right, n, fail_wrong, n);
  CHECK(pass_right > n * 88 / 100 && pass_right < n);
  CHECK(fail_wrong > n * 88 / 100 && fail_wrong < n);
  /* a reference answer decides when no registered case is in the task */
  answer(t, "o3", judge_system, "Rubric:\nCorrect.\n\nTask:\nWhat is the capital of Peru?\n\n"
         "Reference answer:\nLima\n\nAnswer to grade:\nThe capital is Lima.\n\nGrade the answer "
         "to grade.", got, sizeof got, &skill);
  CHECK_STR(skill, "judge");
  CHECK(strncmp(got, "VERDICT: PASS", 13) == 0);
  /* neither: not a prompt the judge can grade, free text */
  answer(t, "o3", judge_system, "Rubric:\nCorrect.\n\nTask:\nWhat is the capital of Peru?\n\n"
         "Answer to grade:\nLima\n\nGrade the answer to grade.", got, sizeof got, &skill);
  CHECK(strcmp(skill, "judge") != 0);
  sim_tasks_free(t);
}

static void test_mock_and_skills(void)
{
  sim_message msg = {"user", "hello there", 11, NULL, NULL};
  sim_request req;
  sim_answer a;
  memset(&req, 0, sizeof req);
  req.model = "gpt-4o";
  req.messages = &msg;
  req.nmessages = 1;
  req.temperature = 1.0;
  CHECK(sim_model_answer(&req, 0, &a) == 0);
  CHECK_STR(a.skill, "filler");
  sim_answer_free(&a);
  req.mock = "A scripted answer, word for word.";
  req.mock_len = strlen(req.mock);
  CHECK(sim_model_answer(&req, 0, &a) == 0);
  CHECK_STR(a.skill, "mock");
  CHECK_MEM(a.text, a.len, req.mock, req.mock_len);
  CHECK_INT(a.finish_reason[0], 's');
  sim_answer_free(&a);
  req.max_tokens = 2; /* cut as any answer */
  CHECK(sim_model_answer(&req, 0, &a) == 0);
  CHECK_STR(a.finish_reason, "length");
  CHECK_INT(a.completion_tokens, 2);
  sim_answer_free(&a);
  req.mock = NULL;
  req.max_tokens = 0;
  msg.content = "What is 12 + 30?";
  msg.content_len = strlen(msg.content);
  CHECK(sim_model_answer(&req, 0, &a) == 0);
  CHECK_STR(a.skill, "arithmetic");
  sim_answer_free(&a);
}

/* Tasks change while another thread answers (the server thread reads the
 * registry under its read lock). */
static sim_tasks *shared;
static void *answering(void *arg)
{
  (void)arg;
  for (int i = 0; i < 200; i++) {
    char prompt[512], got[64];
    snprintf(prompt, sizeof prompt, listed, inputs[i % NCASES]);
    answer(shared, "gpt-4o", NULL, prompt, got, sizeof got, NULL);
  }
  return NULL;
}

static void test_threads(void)
{
  pthread_t th;
  sim_task_spec spec = {"sentiment", 1.0, labels, 3, NULL, 0};
  char err[128];
  shared = sentiment_task();
  pthread_create(&th, NULL, answering, NULL);
  for (int i = 0; i < 20; i++) {
    CHECK(sim_tasks_add(shared, &spec, cases, NCASES, err, sizeof err) == 0);
    if (i % 5 == 0)
      sim_tasks_remove(shared, NULL);
  }
  pthread_join(th, NULL);
  sim_tasks_free(shared);
}

int main(void)
{
  test_text_helpers();
  test_scan();
  test_bad_specs();
  test_classification();
  test_paired_luck();
  test_few_shot();
  test_truncated();
  test_extraction();
  test_neighbour_span();
  test_judge();
  test_mock_and_skills();
  test_threads();
  return check_report("sim_tasks");
}
