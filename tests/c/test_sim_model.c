/* Tests for the simulator's model (sim_model.h): determinism, cutting,
 * pieces, logprobs, the skills' rules and rates, bad input and threads
 * (embeddings: test_sim_embed.c; the example workloads:
 * test_sim_workloads.c). Rates are measured over
 * fixed seeds, so they are deterministic: a tolerance here is a statement
 * about the model's design, not a guard against flakiness. */
#include "check.h"
#include "json.h"
#include "sim/sim_internal.h"
#include "sim/sim_model.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

typedef struct {
  sim_message msg[3];
  sim_request req;
} chat;

/* A request with an optional system message and one user message. */
static void chat_init(chat *c, const char *model, const char *system, const char *user)
{
  memset(c, 0, sizeof *c);
  size_t n = 0;
  if (system)
    c->msg[n++] = (sim_message){"system", system, strlen(system), NULL, NULL};
  c->msg[n++] = (sim_message){"user", user, strlen(user), NULL, NULL};
  c->req.model = model;
  c->req.messages = c->msg;
  c->req.nmessages = n;
  c->req.temperature = 1.0;
}

static int answer_is(const sim_answer *a, const char *want)
{
  return a->len == strlen(want) && memcmp(a->text, want, a->len) == 0;
}

static int valid_utf8(const char *s, size_t n)
{
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    if (u[i] < 0x80) { i++; continue; }
    size_t k = u[i] >= 0xf0 ? 4 : u[i] >= 0xe0 ? 3 : u[i] >= 0xc2 ? 2 : 0;
    if (k == 0 || i + k > n)
      return 0;
    for (size_t j = 1; j < k; j++)
      if ((u[i + j] & 0xc0) != 0x80)
        return 0;
    i += k;
  }
  return 1;
}

/* Piece boundaries: increasing, inside the text, ending at its end, not
 * inside a UTF-8 character; one per completion token. */
static int pieces_ok(const sim_answer *a)
{
  if (a->npieces != (size_t)a->completion_tokens)
    return 0;
  size_t prev = 0;
  for (size_t i = 0; i < a->npieces; i++) {
    size_t e = a->piece_ends[i];
    if (e <= prev || e > a->len)
      return 0;
    if (e < a->len && ((unsigned char)a->text[e] & 0xc0) == 0x80)
      return 0;
    prev = e;
  }
  return a->npieces == 0 ? a->len == 0 : prev == a->len;
}

static const char *const context_doc =
  "Welcome to the operations handbook. The cafeteria opens at eight and closes after lunch. "
  "The access code for the Porto office is 9182. The alarm code for the Lisbon office is 5530. "
  "Visitors must sign in at the front desk and wear a badge at all times. "
  "The access code for the Lisbon office was 1234 until the spring audit. "
  "Printers on every floor accept badges, and toner is kept in the supply room. "
  "%s"
  "Meeting rooms can be booked a week ahead, and larger rooms need approval from the office manager. "
  "Questions about payroll go to the finance team, who reply within two working days.\n\n";

static char *make_context_prompt(int with_fact, const char *question)
{
  static const char fact[] = "The access code for the Lisbon office is 4471. ";
  size_t n = strlen(context_doc) + sizeof fact + strlen(question) + 32;
  char *buf = malloc(n);
  int len = snprintf(buf, n, context_doc, with_fact ? fact : "");
  snprintf(buf + len, n - (size_t)len, "Question: %s", question);
  return buf;
}

/* ---- tokens -------------------------------------------------------------- */

static void test_tokens(void)
{
  /* Reference counts from o200k_base (gpt-tokenizer 3.x). */
  static const struct { const char *text; int tokens; } cases[] = {
    {"Hello", 1},
    {"What is 17 + 25?", 8},
    {"The access code for the Lisbon office is 4471.", 12},
    {"Hello, world!\n\nThis is a test.", 9},
    {"  return value;", 4},
    {"", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    CHECK_INT(sim_model_count_tokens(cases[i].text, strlen(cases[i].text)), cases[i].tokens);
  CHECK_INT(sim_model_count_tokens(NULL, 5), 0);

  /* A longer English text: within 10% of o200k_base's 114 tokens for this
   * paragraph (measured once with gpt-tokenizer; cl100k_base: 116). */
  static const char para[] =
    "Large language models are billed by the token, so the length of a prompt "
    "matters as much as its wording. A context of three thousand tokens sent a "
    "hundred times a day costs more than most people expect, and much of it is "
    "filler: greetings, repeated instructions, boilerplate disclaimers and "
    "whitespace. Compressing the prompt, caching answers to repeated questions "
    "and routing easy questions to a cheaper model are the three levers that "
    "usually pay off first. Each of them can also hurt quality, which is why "
    "they should be measured on the same cases before and after the change.";
  int n = sim_model_count_tokens(para, strlen(para));
  CHECK(n >= 103 && n <= 125);

  /* Chat counting: 3 per message + role + content (+ name + 1) + 3. */
  chat c;
  chat_init(&c, "gpt-4o", NULL, "Hello");
  CHECK_INT(sim_model_prompt_tokens(&c.req), 8);
  c.msg[0].name = "alice";
  CHECK_INT(sim_model_prompt_tokens(&c.req), 8 + 1 + sim_model_count_tokens("alice", 5));
  chat_init(&c, "gpt-4o", "You are terse.", "Hello");
  CHECK_INT(sim_model_prompt_tokens(&c.req), 3 + (3 + 1 + sim_model_count_tokens("You are terse.", 14)) + (3 + 1 + 1));
}

/* ---- determinism and variety -------------------------------------------- */

static int same_answer(const sim_answer *a, const sim_answer *b)
{
  if (a->len != b->len || memcmp(a->text, b->text, a->len) != 0 || a->npieces != b->npieces ||
      strcmp(a->finish_reason, b->finish_reason) != 0)
    return 0;
  for (size_t i = 0; i < a->npieces; i++) {
    if (a->piece_ends[i] != b->piece_ends[i])
      return 0;
    if ((a->logprobs == NULL) != (b->logprobs == NULL))
      return 0;
    if (a->logprobs && a->logprobs[i] != b->logprobs[i])
      return 0;
  }
  return 1;
}

static void test_determinism(void)
{
  chat c;
  chat_init(&c, "gpt-4o", "You are helpful.", "Write a short note about caching and latency.");
  c.req.logprobs = 1;
  c.req.has_seed = 1;
  c.req.seed = 42;
  sim_answer a, b;
  CHECK_INT(sim_model_answer(&c.req, 0, &a), 0);
  CHECK_INT(sim_model_answer(&c.req, 0, &b), 0);
  CHECK(same_answer(&a, &b));
  CHECK(pieces_ok(&a));
  CHECK(a.completion_tokens > 5);
  CHECK_STR(a.finish_reason, "stop");
  CHECK(valid_utf8(a.text, a.len));
  CHECK(a.text[a.len] == '\0');
  sim_answer_free(&b);

  /* Another seed, another text; choices differ only when sampling. */
  c.req.seed = 43;
  CHECK_INT(sim_model_answer(&c.req, 0, &b), 0);
  CHECK(!same_answer(&a, &b));
  sim_answer_free(&b);
  c.req.seed = 42;
  CHECK_INT(sim_model_answer(&c.req, 1, &b), 0);
  CHECK(!same_answer(&a, &b));
  sim_answer_free(&b);
  c.req.temperature = 0;
  sim_answer t0, t1;
  CHECK_INT(sim_model_answer(&c.req, 0, &t0), 0);
  CHECK_INT(sim_model_answer(&c.req, 3, &t1), 0);
  CHECK(same_answer(&t0, &t1));
  sim_answer_free(&t0);
  sim_answer_free(&t1);
  /* The model name matters, a provider prefix does not. */
  c.req.temperature = 1.0;
  c.req.model = "sim/gpt-4o";
  CHECK_INT(sim_model_answer(&c.req, 0, &b), 0);
  CHECK(same_answer(&a, &b));
  sim_answer_free(&b);
  c.req.model = "claude-sonnet-4-5";
  CHECK_INT(sim_model_answer(&c.req, 0, &b), 0);
  CHECK(!same_answer(&a, &b));
  sim_answer_free(&b);
  sim_answer_free(&a);

  /* 200 different prompts: 200 different answers. */
  enum { N = 200 };
  uint64_t hashes[N];
  int distinct = 1;
  for (int i = 0; i < N; i++) {
    char prompt[96];
    snprintf(prompt, sizeof prompt, "Tell me something about topic number %d, please.", i);
    chat_init(&c, "gpt-4o-mini", NULL, prompt);
    CHECK_INT(sim_model_answer(&c.req, 0, &a), 0);
    hashes[i] = sim_hash_bytes(SIM_HASH_INIT, a.text, a.len);
    for (int j = 0; j < i; j++)
      distinct &= hashes[j] != hashes[i];
    sim_answer_free(&a);
  }
  CHECK(distinct);
}

/* Natural length: log-normal around 110 tokens times the model's
 * verbosity; "briefly" shortens it. */
static void test_lengths(void)
{
  double sum_small = 0, sum_reasoning = 0, sum_brief = 0;
  int min = 1 << 30, max = 0;
  for (int i = 0; i < 200; i++) {
    char prompt[96];
    snprintf(prompt, sizeof prompt, "Describe the design of service %d.", i);
    chat c;
    sim_answer a;
    chat_init(&c, "gpt-4o-mini", NULL, prompt);
    sim_model_answer(&c.req, 0, &a);
    sum_small += a.completion_tokens;
    if (a.completion_tokens < min) min = a.completion_tokens;
    if (a.completion_tokens > max) max = a.completion_tokens;
    sim_answer_free(&a);
    chat_init(&c, "o3", NULL, prompt);
    sim_model_answer(&c.req, 0, &a);
    sum_reasoning += a.completion_tokens;
    sim_answer_free(&a);
    snprintf(prompt, sizeof prompt, "Briefly describe the design of service %d.", i);
    chat_init(&c, "gpt-4o-mini", NULL, prompt);
    sim_model_answer(&c.req, 0, &a);
    sum_brief += a.completion_tokens;
    sim_answer_free(&a);
  }
  printf("free text: gpt-4o-mini mean %.0f tokens [%d..%d], o3 mean %.0f, brief mean %.0f\n",
         sum_small / 200, min, max, sum_reasoning / 200, sum_brief / 200);
  CHECK(sum_small / 200 > 80 && sum_small / 200 < 160);
  CHECK(sum_reasoning > 1.3 * sum_small);
  CHECK(sum_brief < 0.5 * sum_small);
  CHECK(min >= 8 && max <= 1600);
}

/* ---- max_tokens and stop ------------------------------------------------ */

static void test_cutting(void)
{
  chat c;
  chat_init(&c, "gpt-4.1", NULL, "Write a long explanation of prompt caching.");
  sim_answer full, cut;
  CHECK_INT(sim_model_answer(&c.req, 0, &full), 0);
  CHECK(full.completion_tokens > 20);

  c.req.max_tokens = 7;
  CHECK_INT(sim_model_answer(&c.req, 0, &cut), 0);
  CHECK_INT(cut.completion_tokens, 7);
  CHECK_STR(cut.finish_reason, "length");
  CHECK(pieces_ok(&cut));
  CHECK(cut.len < full.len && memcmp(cut.text, full.text, cut.len) == 0);
  sim_answer_free(&cut);

  /* A limit above the natural length changes nothing. */
  c.req.max_tokens = full.completion_tokens;
  CHECK_INT(sim_model_answer(&c.req, 0, &cut), 0);
  CHECK(same_answer(&full, &cut));
  CHECK_STR(cut.finish_reason, "stop");
  sim_answer_free(&cut);

  /* Stop sequences: the text ends before the earliest, which is left out. */
  c.req.max_tokens = 0;
  const char *second_dot = strchr(strchr(full.text, '.') + 1, '.');
  const char *stops[] = {NULL, "", ". ", "zzz-not-there"};
  c.req.stop = stops;
  c.req.nstop = 4;
  CHECK_INT(sim_model_answer(&c.req, 0, &cut), 0);
  size_t first_dot = (size_t)(strstr(full.text, ". ") - full.text);
  CHECK_INT(cut.len, first_dot);
  CHECK(memcmp(cut.text, full.text, cut.len) == 0);
  CHECK(strstr(cut.text, ". ") == NULL);
  CHECK_STR(cut.finish_reason, "stop");
  CHECK(pieces_ok(&cut));
  sim_answer_free(&cut);
  (void)second_dot;

  /* Stop and max_tokens together: whichever comes first. */
  c.req.max_tokens = 2;
  CHECK_INT(sim_model_answer(&c.req, 0, &cut), 0);
  CHECK_INT(cut.completion_tokens, 2);
  CHECK_STR(cut.finish_reason, "length");
  sim_answer_free(&cut);

  /* A stop sequence at the very start leaves nothing. */
  char start[4] = {full.text[0], full.text[1], 0, 0};
  const char *stop0[] = {start};
  c.req.stop = stop0;
  c.req.nstop = 1;
  c.req.max_tokens = 0;
  CHECK_INT(sim_model_answer(&c.req, 0, &cut), 0);
  CHECK_INT(cut.len, 0);
  CHECK_INT(cut.completion_tokens, 0);
  CHECK_STR(cut.finish_reason, "stop");
  sim_answer_free(&cut);
  sim_answer_free(&full);
}

/* ---- logprobs ------------------------------------------------------------ */

static void test_logprobs_present(void)
{
  chat c;
  chat_init(&c, "gpt-4o", NULL, "Describe a good caching policy.");
  sim_answer a;
  CHECK_INT(sim_model_answer(&c.req, 0, &a), 0);
  CHECK(a.logprobs == NULL);
  sim_answer_free(&a);
  c.req.logprobs = 1;
  CHECK_INT(sim_model_answer(&c.req, 0, &a), 0);
  CHECK(a.logprobs != NULL);
  int ok = 1;
  double sum = 0;
  for (size_t i = 0; i < a.npieces; i++) {
    ok &= isfinite(a.logprobs[i]) && a.logprobs[i] <= 0;
    sum += a.logprobs[i];
  }
  CHECK(ok);
  double mean = sum / (double)a.npieces;
  CHECK(mean < -0.05 && mean > -1.0); /* ordinary prose: mostly confident */
  sim_answer_free(&a);
}

/* ---- arithmetic ---------------------------------------------------------- */

static void test_arith_parse(void)
{
  static const struct { const char *q; int found; long long value; int difficulty; } cases[] = {
    {"What is 17 + 25?", 1, 42, 1},
    {"Compute 123 * 4.", 1, 492, 1},
    {"calculate: 12 * 34", 1, 408, 2},
    {"What's 100 - 250?", 1, -150, 1},
    {"Evaluate (3 + 4) * 5.", 1, 35, 3},
    {"What is 2 + 3 * 4?", 1, 14, 2},
    {"How much is 7 times 8?", 1, 56, 1},
    {"What is 9 plus 10 minus 4?", 1, 15, 2},
    {"What is 12 x 12?", 1, 144, 2},
    {"What is 6 \xc3\x97 7?", 1, 42, 1},
    {"What is -5 + 3?", 1, -2, 1},
    {"What is 1234 + 1?", 1, 1235, 2},
    {"17 + 25 =", 1, 42, 1},
    {"  (2+3)*4?", 1, 20, 3},
    {"First: what is 1 + 1? Then: what is 20 + 22?", 1, 42, 1},
    {"What is 3 * ?", 0, 0, 0},
    {"What is the access code?", 0, 0, 0},
    {"The meeting is on 2024-05-01 at noon.", 0, 0, 0},
    {"What is 3.5 + 1?", 0, 0, 0},
    {"What is 999999999999 * 999999999999?", 0, 0, 0}, /* beyond 10^15 */
    {"What is 1234567890123 + 1?", 0, 0, 0},             /* 13 digits */
    {"", 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int64_t v = 0;
    int d = 0;
    int found = sim_arith_find(cases[i].q, strlen(cases[i].q), &v, &d);
    if (found != cases[i].found || (found && (v != cases[i].value || d != cases[i].difficulty)))
      check_fail(__FILE__, __LINE__, "\"%s\": found %d value %lld difficulty %d", cases[i].q,
                 found, (long long)v, d);
    else
      check_passed++;
  }
}

typedef struct {
  double rate;
  double lp_right, lp_wrong;   /* mean first-piece logprob */
  double auc;                  /* P(logprob of a right answer > of a wrong one) */
} rate_result;

/* Asks q under n seeds; the rate of answers equal to want and the
 * confidence separation. */
static rate_result measure(const char *model, const char *system, const char *q,
                           const char *want, int n)
{
  double *lr = malloc((size_t)n * sizeof *lr), *lw = malloc((size_t)n * sizeof *lw);
  int nr = 0, nw = 0;
  for (int s = 0; s < n; s++) {
    chat c;
    chat_init(&c, model, system, q);
    c.req.has_seed = 1;
    c.req.seed = s;
    c.req.logprobs = 1;
    sim_answer a;
    if (sim_model_answer(&c.req, 0, &a) != 0)
      continue;
    double lp = a.npieces ? a.logprobs[0] : 0;
    if (answer_is(&a, want))
      lr[nr++] = lp;
    else
      lw[nw++] = lp;
    sim_answer_free(&a);
  }
  rate_result r = {(double)nr / n, 0, 0, 0};
  for (int i = 0; i < nr; i++) r.lp_right += lr[i] / nr;
  for (int i = 0; i < nw; i++) r.lp_wrong += lw[i] / nw;
  long long above = 0;
  for (int i = 0; i < nr; i++)
    for (int j = 0; j < nw; j++)
      above += lr[i] > lw[j];
  r.auc = nr && nw ? (double)above / ((double)nr * nw) : 1.0;
  free(lr);
  free(lw);
  return r;
}

static void test_arith_rates(void)
{
  /* (1 - arith_err)^difficulty, measured over 3000 seeds (binomial SD at
   * most 0.009, so 0.03 is > 3 SD; fixed seeds make it deterministic). */
  static const struct { const char *model; double err; } tiers[] = {
    {"o3", 0.01}, {"gpt-4o", 0.03}, {"acme-unknown-model", 0.07}, {"gpt-4o-mini", 0.12},
  };
  static const struct { const char *q; const char *want; int difficulty; } qs[] = {
    {"What is 17 + 25?", "42", 1},
    {"Compute 48 * 27 - 310.", "986", 3},
  };
  double prev[2] = {2, 2};
  printf("arithmetic accuracy over 3000 seeds (first-piece logprob right/wrong, AUC):\n");
  for (size_t t = 0; t < sizeof tiers / sizeof *tiers; t++) {
    for (size_t q = 0; q < sizeof qs / sizeof *qs; q++) {
      rate_result r = measure(tiers[t].model, NULL, qs[q].q, qs[q].want, 3000);
      double want = pow(1 - tiers[t].err, qs[q].difficulty);
      printf("  %-20s d=%d  %.3f (rule %.3f)  lp %.2f / %.2f  AUC %.2f\n", tiers[t].model,
             qs[q].difficulty, r.rate, want, r.lp_right, r.lp_wrong, r.auc);
      CHECK(fabs(r.rate - want) < 0.03);
      CHECK(r.rate < prev[q]); /* strictly better tiers first */
      prev[q] = r.rate;
      /* Wrong answers are less confident, imperfectly. */
      if (r.rate < 0.99) {
        CHECK(r.lp_wrong < r.lp_right - 0.3);
        CHECK(r.auc > 0.8 && r.auc < 0.99);
      }
    }
  }
  /* Asking for step-by-step reasoning halves the error (and costs
   * tokens); the answer is the number after "The answer is". */
  chat c;
  int right = 0, tokens_plain = 0, tokens_cot = 0;
  for (int s = 0; s < 2000; s++) {
    sim_answer a;
    chat_init(&c, "gpt-4o-mini", "Think step by step.", "Compute 48 * 27 - 310.");
    c.req.has_seed = 1;
    c.req.seed = s;
    sim_model_answer(&c.req, 0, &a);
    right += a.len > 4 && strstr(a.text, "The answer is 986.") != NULL;
    tokens_cot += a.completion_tokens;
    sim_answer_free(&a);
    chat_init(&c, "gpt-4o-mini", NULL, "Compute 48 * 27 - 310.");
    c.req.has_seed = 1;
    c.req.seed = s;
    sim_model_answer(&c.req, 0, &a);
    tokens_plain += a.completion_tokens;
    sim_answer_free(&a);
  }
  double want = pow(1 - 0.06, 3);
  printf("  gpt-4o-mini step by step: %.3f (rule %.3f), %.1f vs %.1f tokens\n", right / 2000.0,
         want, tokens_cot / 2000.0, tokens_plain / 2000.0);
  CHECK(fabs(right / 2000.0 - want) < 0.03);
  CHECK(tokens_cot > 10 * tokens_plain);

  /* Temperature 2 doubles the error. */
  rate_result hot = {0};
  int hits = 0;
  for (int s = 0; s < 4000; s++) {
    sim_answer a;
    chat_init(&c, "gpt-4o-mini", NULL, "What is 17 + 25?");
    c.req.has_seed = 1;
    c.req.seed = s;
    c.req.temperature = 2.0;
    sim_model_answer(&c.req, 0, &a);
    hits += answer_is(&a, "42");
    sim_answer_free(&a);
  }
  hot.rate = hits / 4000.0;
  CHECK(fabs(hot.rate - 0.76) < 0.03);
}

/* ---- answer from the context -------------------------------------------- */

static void test_context_rules(void)
{
  static const struct { const char *question; int with_fact; int want; } cases[] = {
    {"What is the access code for the Lisbon office?", 1, 1},
    {"What's the Lisbon office's access code?", 1, 1},
    {"Tell me the access code of the Lisbon office.", 1, 1},
    {"Could you tell me what the access code for the Lisbon office is?", 1, 1},
    {"WHAT IS THE ACCESS CODE FOR THE LISBON OFFICE", 1, 1},
    {"What is the access code for the Lisbon office?", 0, 0},
    {"What is the backup access code for the Lisbon office?", 1, 0},
    {"What is the alarm code for the Lisbon office?", 1, 1},
    {"Summarise the handbook.", 1, -1},
    {"What is this handbook about?", 1, -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *prompt = make_context_prompt(cases[i].with_fact, cases[i].question);
    const char *texts[1] = {prompt};
    size_t lens[1] = {strlen(prompt)};
    sim_prompt p = {texts, lens, 1, prompt, lens[0], 300, 0, 1.0};
    const char *v = NULL;
    size_t vn = 0;
    int r = sim_context_lookup(&p, &v, &vn);
    if (r != cases[i].want)
      check_fail(__FILE__, __LINE__, "\"%s\" (fact %d): lookup %d, want %d", cases[i].question,
                 cases[i].with_fact, r, cases[i].want);
    else
      check_passed++;
    if (r == 1 && strstr(cases[i].question, "alarm"))
      CHECK(vn == 4 && memcmp(v, "5530", 4) == 0);
    else if (r == 1)
      CHECK(vn == 4 && memcmp(v, "4471", 4) == 0);
    free(prompt);
  }

  /* Facts may sit in any message; the last one with the subject wins;
   * "was" facts never answer. */
  const char *texts[2] = {"Note: the Lisbon office's access code is 1111.",
                          "Update (May): the access code for the Lisbon office is 2222. "
                          "The access code for the Lisbon office was 3333. "
                          "What is the access code for the Lisbon office?"};
  size_t lens[2] = {strlen(texts[0]), strlen(texts[1])};
  sim_prompt p = {texts, lens, 2, texts[1], lens[1], 100, 0, 1.0};
  const char *v;
  size_t vn;
  CHECK_INT(sim_context_lookup(&p, &v, &vn), 1);
  CHECK(vn == 4 && memcmp(v, "2222", 4) == 0);

  /* Values: to the end of the clause; names and dates work too. */
  const char *t2[1] = {"The manager of the Oslo team is Maria Okafor, who joined in 2019. "
                       "The launch date of Project Falcon is 14 March 2026 (provisional). "
                       "Who is the manager of the Oslo team? "
                       "When is the launch date of Project Falcon?"};
  size_t l2[1] = {strlen(t2[0])};
  sim_prompt p2 = {t2, l2, 1, t2[0], l2[0], 100, 0, 1.0};
  CHECK_INT(sim_context_lookup(&p2, &v, &vn), 1);
  CHECK(vn == 13 && memcmp(v, "14 March 2026", 13) == 0);
  const char *t3[1] = {"The manager of the Oslo team is Maria Okafor, who joined in 2019. "
                       "Who is the manager of the Oslo team?"};
  size_t l3[1] = {strlen(t3[0])};
  sim_prompt p3 = {t3, l3, 1, t3[0], l3[0], 100, 0, 1.0};
  CHECK_INT(sim_context_lookup(&p3, &v, &vn), 1);
  CHECK(vn == 12 && memcmp(v, "Maria Okafor", 12) == 0);
}

static void test_context_rates(void)
{
  /* Present: right with 1 - ctx_err * (1 + prompt_tokens / 8000).
   * Absent: "I don't know." except ctx_halluc distractors. Never the true
   * value when it is absent. */
  static const struct { const char *model; double err, halluc; } tiers[] = {
    {"claude-opus-4-1", 0.005, 0.02}, {"gpt-4.1", 0.015, 0.05},
    {"claude-haiku-4-5", 0.04, 0.10}, {"gpt-4.1-nano", 0.08, 0.20},
  };
  const char *q = "What is the access code for the Lisbon office?";
  char *with = make_context_prompt(1, q), *without = make_context_prompt(0, q);
  chat c;
  chat_init(&c, "gpt-4o", "Answer from the context. Reply with the answer only.", with);
  int ptok = sim_model_prompt_tokens(&c.req);
  printf("context skill over 3000 seeds (prompt %d tokens):\n", ptok);
  for (size_t t = 0; t < sizeof tiers / sizeof *tiers; t++) {
    rate_result r = measure(tiers[t].model, "Answer from the context. Reply with the answer only.",
                            with, "4471", 3000);
    double want = 1 - tiers[t].err * (1 + ptok / 8000.0);
    rate_result dk = measure(tiers[t].model, "Answer from the context. Reply with the answer only.",
                             without, "I don't know.", 3000);
    rate_result leak = measure(tiers[t].model,
                               "Answer from the context. Reply with the answer only.", without,
                               "4471", 3000);
    printf("  %-18s present %.3f (rule %.3f) lp %.2f/%.2f AUC %.2f | absent: \"I don't know.\" %.3f"
           " (rule %.3f)\n", tiers[t].model, r.rate, want, r.lp_right, r.lp_wrong, r.auc, dk.rate,
           1 - tiers[t].halluc);
    CHECK(fabs(r.rate - want) < 0.02);
    CHECK(fabs(dk.rate - (1 - tiers[t].halluc)) < 0.025);
    CHECK(leak.rate == 0);
    if (r.rate < 0.99)
      CHECK(r.lp_wrong < r.lp_right - 0.3);
  }
  free(with);
  free(without);

  /* Explained answers are a sentence that contains the value. */
  char *prompt = make_context_prompt(1, q);
  chat_init(&c, "gpt-4o", "Explain your answer.", prompt);
  sim_answer a;
  CHECK_INT(sim_model_answer(&c.req, 0, &a), 0);
  CHECK(strncmp(a.text, "Based on the context, the access code for the Lisbon office is ", 63) == 0);
  sim_answer_free(&a);
  free(prompt);

  /* A question with no context at all is not a context question. */
  chat_init(&c, "gpt-4o", NULL, q);
  CHECK_INT(sim_model_answer(&c.req, 0, &a), 0);
  CHECK(a.completion_tokens > 8);
  sim_answer_free(&a);
}

/* Compression: dropping filler keeps the answer; dropping the fact loses
 * it; a shorter prompt never makes the answer worse (same luck, smaller
 * length penalty). */
static void test_context_compression(void)
{
  const char *q = "What is the access code for the Lisbon office?";
  char *full = make_context_prompt(1, q);
  static const char short_prompt[] =
    "The access code for the Porto office is 9182. The access code for the Lisbon office is 4471. "
    "Question: What is the access code for the Lisbon office?";
  int worse = 0, better = 0, gone = 0;
  for (int s = 0; s < 3000; s++) {
    chat c;
    sim_answer a, b;
    chat_init(&c, "gpt-4o-mini", NULL, full);
    c.req.has_seed = 1;
    c.req.seed = s;
    sim_model_answer(&c.req, 0, &a);
    chat_init(&c, "gpt-4o-mini", NULL, short_prompt);
    c.req.has_seed = 1;
    c.req.seed = s;
    sim_model_answer(&c.req, 0, &b);
    int ra = answer_is(&a, "4471"), rb = answer_is(&b, "4471");
    worse += ra && !rb;
    better += rb && !ra;
    sim_answer_free(&a);
    sim_answer_free(&b);
    chat_init(&c, "gpt-4o-mini", NULL, "The access code for the Porto office is 9182. "
              "Visitors must sign in at the front desk and wear a badge at all times, and the "
              "cafeteria opens at eight and closes after lunch on most days of the week. "
              "Question: What is the access code for the Lisbon office?");
    c.req.has_seed = 1;
    c.req.seed = s;
    sim_model_answer(&c.req, 0, &a);
    gone += answer_is(&a, "4471");
    sim_answer_free(&a);
  }
  CHECK_INT(worse, 0);
  CHECK(better > 0);
  CHECK_INT(gone, 0);
  free(full);
}

/* ---- bad input ----------------------------------------------------------- */

static void test_bad_input(void)
{
  sim_answer a;
  memset(&a, 0x5a, sizeof a);
  sim_answer untouched = a;
  chat c;
  chat_init(&c, "gpt-4o", NULL, "hi");
  CHECK_INT(sim_model_answer(NULL, 0, &a), -1);
  CHECK_INT(sim_model_answer(&c.req, 0, NULL), -1);
  CHECK_INT(sim_model_answer(&c.req, -1, &a), -1);
  c.req.model = NULL;
  CHECK_INT(sim_model_answer(&c.req, 0, &a), -1);
  c.req.model = "";
  CHECK_INT(sim_model_answer(&c.req, 0, &a), -1);
  c.req.model = "gpt-4o";
  c.req.nmessages = 0;
  CHECK_INT(sim_model_answer(&c.req, 0, &a), -1);
  c.req.nmessages = 1;
  c.req.messages = NULL;
  CHECK_INT(sim_model_answer(&c.req, 0, &a), -1);
  CHECK_INT(sim_model_prompt_tokens(&c.req), 0);
  CHECK_INT(sim_model_prompt_tokens(NULL), 0);
  chat_init(&c, "gpt-4o", NULL, "hi");
  c.msg[0].content = NULL; /* NULL content with a length */
  CHECK_INT(sim_model_answer(&c.req, 0, &a), -1);
  CHECK(memcmp(&a, &untouched, sizeof a) == 0);
  sim_answer_free(NULL);

  /* NULL content of length 0 and odd roles are fine. */
  c.msg[0].content_len = 0;
  c.msg[0].role = NULL;
  CHECK_INT(sim_model_answer(&c.req, 0, &a), 0);
  CHECK(pieces_ok(&a));
  sim_answer_free(&a);
  sim_answer_free(&a); /* twice is harmless */

  /* Odd numbers: NaN and huge temperatures, huge max_tokens. */
  chat_init(&c, "gpt-4o", NULL, "What is 17 + 25?");
  c.req.temperature = NAN;
  CHECK_INT(sim_model_answer(&c.req, 0, &a), 0);
  sim_answer_free(&a);
  c.req.temperature = 1e300;
  c.req.max_tokens = 1 << 30;
  CHECK_INT(sim_model_answer(&c.req, 0, &a), 0);
  sim_answer_free(&a);

  /* Invalid UTF-8 in the prompt, copied into an answer, comes out valid. */
  static const char bad[] = "The access code for the Lisbon office is 44\xff\xc3\x28 71. "
                            "Filler words make this prompt long enough to be a context for the "
                            "question that follows, which the model answers from it. \x80\x81 "
                            "What is the access code for the Lisbon office?";
  chat_init(&c, "gpt-4o", NULL, bad);
  c.req.logprobs = 1;
  CHECK_INT(sim_model_answer(&c.req, 0, &a), 0);
  CHECK(valid_utf8(a.text, a.len));
  CHECK(pieces_ok(&a));
  sim_answer_free(&a);
  chat_init(&c, "gpt-4o", NULL, "\xff\xfe\xfd tell me a story \xe2\x82");
  CHECK_INT(sim_model_answer(&c.req, 0, &a), 0);
  CHECK(valid_utf8(a.text, a.len));
  sim_answer_free(&a);

  /* Huge content: 8 MiB of prose, questions and junk; answered, counted. */
  size_t n = 8u << 20;
  char *huge = malloc(n + 1);
  static const char unit[] = "The access code for the Lisbon office is 4471. what the what is ( 1 + ";
  for (size_t i = 0; i < n; i++)
    huge[i] = unit[i % (sizeof unit - 1)];
  huge[n] = '\0';
  sim_message m = {"user", huge, n, NULL, NULL};
  sim_request r = {0};
  r.model = "gpt-4o";
  r.messages = &m;
  r.nmessages = 1;
  r.logprobs = 1;
  CHECK_INT(sim_model_answer(&r, 0, &a), 0);
  CHECK(pieces_ok(&a));
  sim_answer_free(&a);
  CHECK(sim_model_prompt_tokens(&r) > 1000000);
  float *vec = malloc(1536 * sizeof *vec);
  CHECK_INT(sim_model_embed("text-embedding-3-small", huge, n, vec, 1536), 0);
  free(vec);
  free(huge);
}

/* ---- threads ------------------------------------------------------------- */

typedef struct {
  int id;
  uint64_t digest;
} worker;

static void *work(void *arg)
{
  worker *w = arg;
  uint64_t h = SIM_HASH_INIT;
  for (int i = 0; i < 300; i++) {
    char prompt[128];
    snprintf(prompt, sizeof prompt, i % 2 ? "What is %d + %d?" : "Tell me about item %d and %d.", i, i * 7);
    chat c;
    chat_init(&c, i % 3 ? "gpt-4o" : "gpt-4o-mini", NULL, prompt);
    c.req.logprobs = 1;
    sim_answer a;
    if (sim_model_answer(&c.req, 0, &a) == 0) {
      h = sim_hash_bytes(h, a.text, a.len);
      h = sim_hash_bytes(h, a.logprobs, a.npieces * sizeof *a.logprobs);
      sim_answer_free(&a);
    }
    float v[64];
    sim_model_embed("text-embedding-3-small", prompt, strlen(prompt), v, 64);
    h = sim_hash_bytes(h, v, sizeof v);
  }
  w->digest = h;
  return NULL;
}

static void test_threads(void)
{
  enum { T = 4 };
  worker ws[T];
  pthread_t th[T];
  for (int i = 0; i < T; i++) {
    ws[i].id = i;
    pthread_create(&th[i], NULL, work, &ws[i]);
  }
  for (int i = 0; i < T; i++)
    pthread_join(th[i], NULL);
  worker alone = {0, 0};
  work(&alone);
  for (int i = 0; i < T; i++)
    CHECK(ws[i].digest == alone.digest);
}

/* ---- scripted tool calls (mock_tool_calls) ------------------------------- */

/* The scripted calls win over skills and over the simulator's own tool
 * rule, in order, with their arguments as given (an object written
 * compactly, a JSON text kept byte for byte, absent as {}), their tokens
 * counted; a max_tokens they do not fit drops them ("length"). */
static void test_mock_tool_calls(void)
{
  static const char list[] =
    "[{\"name\":\"get_weather\",\"arguments\":{ \"city\" : \"Lyon\" }},"
    "{\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\": 1}\"},"
    "{\"name\":\"ping\"}]";
  json_doc *doc = NULL;
  json_error err;
  const json_value *calls = json_parse(list, sizeof list - 1, &doc, &err);
  CHECK(calls != NULL);
  chat c;
  sim_answer a;
  chat_init(&c, "gpt-4o", NULL, "What is 2 + 2?");
  c.req.mock_tool_calls = calls;
  CHECK_INT(sim_model_answer(&c.req, 0, &a), 0);
  CHECK_STR(a.skill, "mock");
  CHECK_STR(a.finish_reason, "tool_calls");
  CHECK_INT(a.len, 0);
  CHECK_INT(a.ntool_calls, 3);
  CHECK_STR(a.tool_calls[0].name, "get_weather");
  CHECK_STR(a.tool_calls[0].arguments, "{\"city\":\"Lyon\"}");
  CHECK_STR(a.tool_calls[1].name, "lookup");
  CHECK_STR(a.tool_calls[1].arguments, "{\"q\": 1}");
  CHECK_STR(a.tool_calls[2].arguments, "{}");
  int tokens = 0;
  for (size_t i = 0; i < a.ntool_calls; i++) {
    CHECK(a.tool_calls[i].npieces > 0);
    CHECK_INT(a.tool_calls[i].piece_ends[a.tool_calls[i].npieces - 1],
              a.tool_calls[i].arguments_len);
    tokens += a.tool_calls[i].tokens;
  }
  CHECK_INT(a.completion_tokens, tokens);
  sim_answer_free(&a);

  /* with a scripted text: the text first, then the calls */
  c.req.mock = "Let me check.";
  c.req.mock_len = strlen(c.req.mock);
  CHECK_INT(sim_model_answer(&c.req, 0, &a), 0);
  CHECK(answer_is(&a, "Let me check."));
  CHECK_INT(a.ntool_calls, 3);
  CHECK_STR(a.finish_reason, "tool_calls");
  sim_answer_free(&a);

  /* too few tokens left for the calls: none is made */
  c.req.max_tokens = 4;
  CHECK_INT(sim_model_answer(&c.req, 0, &a), 0);
  CHECK_INT(a.ntool_calls, 0);
  CHECK_STR(a.finish_reason, "length");
  sim_answer_free(&a);
  json_free(doc);
}

int main(void)
{
  test_tokens();
  test_determinism();
  test_lengths();
  test_cutting();
  test_logprobs_present();
  test_arith_parse();
  test_arith_rates();
  test_context_rules();
  test_context_rates();
  test_context_compression();
  test_mock_tool_calls();
  test_bad_input();
  test_threads();
  return check_report("sim_model");
}
