/* The example workloads under examples/data against the simulator's
 * rules: every context question finds its fact, gpt-4o answers almost all
 * of them, cutting the fact's sentence loses it, and every arithmetic
 * question parses to the file's answer and difficulty. */
#include "check.h"
#include "sim/sim_internal.h"
#include "sim/sim_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  sim_message msg[2];
  sim_request req;
} chat;

static void chat_init(chat *c, const char *model, const char *system, const char *user)
{
  memset(c, 0, sizeof *c);
  c->msg[0] = (sim_message){"system", system, strlen(system), NULL, NULL};
  c->msg[1] = (sim_message){"user", user, strlen(user), NULL, NULL};
  c->req.model = model;
  c->req.messages = c->msg;
  c->req.nmessages = 2;
  c->req.temperature = 1.0;
}

static int answer_is(const sim_answer *a, const char *want)
{
  return a->len == strlen(want) && memcmp(a->text, want, a->len) == 0;
}

/* The value of "key" in one JSON line, unescaped into out (the subset the
 * generator writes: \" \\ \n \t \/ and \u00XX). 1 if found. */
static int json_field(const char *line, const char *key, char *out, size_t cap)
{
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  const char *p = strstr(line, pat);
  if (!p)
    return 0;
  p += strlen(pat);
  size_t n = 0;
  while (*p && *p != '"' && n + 1 < cap) {
    char c = *p++;
    if (c == '\\') {
      c = *p++;
      if (c == 'n') c = '\n';
      else if (c == 't') c = '\t';
      else if (c == 'u') {
        unsigned x = 0;
        sscanf(p, "%4x", &x);
        p += 4;
        c = (char)x;
      }
    }
    out[n++] = c;
  }
  out[n] = '\0';
  return *p == '"';
}

static void test_workload_file(const char *path, int expect_min)
{
  char full[1024];
  const char *root = getenv("LLMRUN_SOURCE_DIR");
  snprintf(full, sizeof full, "%s/%s", root ? root : LLMRUN_SOURCE_DIR, path);
  FILE *f = fopen(full, "r");
  if (!f) {
    check_fail(__FILE__, __LINE__, "cannot open %s", full);
    return;
  }
  size_t cap = 1 << 20;
  char *line = malloc(cap), *context = malloc(cap), *question = malloc(4096),
       *answer = malloc(1024), *prompt = malloc(cap + 8192);
  int cases = 0, found = 0, right = 0, lost = 0;
  while (fgets(line, (int)cap, f)) {
    if (!json_field(line, "context", context, cap) ||
        !json_field(line, "question", question, 4096) || !json_field(line, "answer", answer, 1024))
      continue;
    cases++;
    snprintf(prompt, cap + 8192, "%s\n\nQuestion: %s", context, question);
    const char *texts[1] = {prompt};
    size_t lens[1] = {strlen(prompt)};
    sim_prompt p = {texts, lens, 1, prompt, lens[0], 1000, 0, 1.0};
    const char *v;
    size_t vn;
    if (sim_context_lookup(&p, &v, &vn) == 1 && vn == strlen(answer) && memcmp(v, answer, vn) == 0)
      found++;
    chat c;
    chat_init(&c, "gpt-4o", "Answer with the value only, from the context.", prompt);
    sim_answer a;
    if (sim_model_answer(&c.req, 0, &a) == 0) {
      right += answer_is(&a, answer);
      sim_answer_free(&a);
    }
    /* Without the sentence that holds the answer, the fact is gone. */
    char *at = strstr(prompt, answer);
    if (at) {
      char *s = at;
      while (s > prompt && s[-1] != '\n' && !(s[-1] == ' ' && s[-2] == '.'))
        s--;
      char *e = strchr(at, '.');
      if (e) {
        memmove(s, e + 1, strlen(e + 1) + 1);
        lens[0] = strlen(prompt);
        lost += sim_context_lookup(&p, &v, &vn) == 0;
      }
    }
  }
  fclose(f);
  printf("%s: %d cases, fact found in %d, gpt-4o right %d, fact lost when its sentence is cut %d\n",
         path, cases, found, right, lost);
  CHECK(cases >= expect_min);
  CHECK_INT(found, cases);
  CHECK(right >= cases * 95 / 100);
  CHECK_INT(lost, cases);
  free(line);
  free(context);
  free(question);
  free(answer);
  free(prompt);
}

/* arithmetic.jsonl: the simulator parses every question to the file's
 * answer and difficulty, so the file's difficulty is the rule's. */
static void test_arithmetic_file(void)
{
  char full[1024], line[1024], q[512], ans[64];
  const char *root = getenv("LLMRUN_SOURCE_DIR");
  snprintf(full, sizeof full, "%s/examples/data/arithmetic.jsonl", root ? root : LLMRUN_SOURCE_DIR);
  FILE *f = fopen(full, "r");
  if (!f) {
    check_fail(__FILE__, __LINE__, "cannot open %s", full);
    return;
  }
  int cases = 0, agree = 0;
  while (fgets(line, sizeof line, f)) {
    const char *d = strstr(line, "\"difficulty\":");
    if (!json_field(line, "question", q, sizeof q) || !json_field(line, "answer", ans, sizeof ans) || !d)
      continue;
    cases++;
    int64_t v;
    int diff;
    if (sim_arith_find(q, strlen(q), &v, &diff) && v == atoll(ans) && diff == atoi(d + 13))
      agree++;
    else
      check_fail(__FILE__, __LINE__, "%s: parsed differently", q);
  }
  fclose(f);
  CHECK_INT(cases, 200);
  CHECK_INT(agree, cases);
}

int main(void)
{
  test_workload_file("examples/data/context_qa.jsonl", 100);
  test_workload_file("examples/data/workload.jsonl", 60);
  test_arithmetic_file();
  return check_report("sim_workloads");
}
