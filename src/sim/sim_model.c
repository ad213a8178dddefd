/* The simulator's model: turns a chat request into an answer (see
 * sim_model.h). A scripted answer (mock_response, mock_tool_calls) wins;
 * then tools; then skills are tried in order (a judge's grading, a
 * registered labelled task, arithmetic, answer from the context); anything
 * else gets free text ("filler": the answer's skill says which). The answer is then cut at
 * the first stop sequence and at max_tokens, and split into one piece per
 * token for streaming.
 *
 * Determinism: the free text is drawn from a hash of the whole request
 * (model, every message, seed, temperature, and the choice index when
 * temperature > 0, so n > 1 gives different choices only when sampling).
 * A skill's luck is drawn from a hash of (model, seed, choice, the question
 * itself), not of the rest of the prompt, so two prompts that ask the same
 * question (compressed or not) share their luck and differ only through
 * the rules (fact present or not, prompt length). max_tokens and stop only
 * cut the same text. A missing seed is seed 0.
 *
 * Tools come first (sim_tools.c): a request whose tools match the prompt
 * calls one instead of answering (Claude models say which first, under
 * tool_choice auto), and a request that ends with tool results is
 * answered from them. Then reasoning (sim_reasoning.c): hidden tokens
 * that count as completion tokens and come out of max_tokens first; a
 * request whose reasoning uses up max_tokens has no visible answer and
 * finishes with "length", as the real reasoning models do. */
#include "sim_model.h"
#include "sim_internal.h"

#include "json.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Natural length of free text: log-normal around 110 tokens. */
#define FREE_TEXT_MEDIAN 110.0
#define FREE_TEXT_SPREAD 0.55
#define FREE_TEXT_MAX 1500

static int contains_ci(const char *s, size_t n, const char *w)
{
  size_t k = strlen(w);
  if (!s || k > n)
    return 0;
  for (size_t i = 0; i + k <= n; i++) {
    size_t j = 0;
    while (j < k) {
      char c = s[i + j];
      if (c >= 'A' && c <= 'Z')
        c = (char)(c - 'A' + 'a');
      if (c != w[j])
        break;
      j++;
    }
    if (j == k)
      return 1;
  }
  return 0;
}

static int is_role(const sim_message *m, const char *role)
{
  return m->role && strcmp(m->role, role) == 0;
}

/* Do the request's instructions contain any of the words? Instructions
 * are the system (or developer) messages and the first and last
 * INSTRUCTION_SPAN bytes of the last user message, where a request puts
 * them around a pasted document; the document itself does not count, so a
 * handbook that says "explain" does not make the model verbose. */
#define INSTRUCTION_SPAN 300
static int instructions_say(const sim_request *req, const sim_prompt *p,
                            const char *const *words, size_t nwords)
{
  const char *u = p->last_user;
  size_t n = p->last_user_len;
  size_t head = n < INSTRUCTION_SPAN ? n : INSTRUCTION_SPAN;
  size_t tail = n < INSTRUCTION_SPAN ? 0 : INSTRUCTION_SPAN;
  for (size_t w = 0; w < nwords; w++) {
    if (contains_ci(u, head, words[w]) || (tail && contains_ci(u + n - tail, tail, words[w])))
      return 1;
    for (size_t i = 0; i < req->nmessages; i++) {
      const sim_message *m = &req->messages[i];
      if ((is_role(m, "system") || is_role(m, "developer")) &&
          contains_ci(m->content, m->content_len, words[w]))
        return 1;
    }
  }
  return 0;
}

static const char *const verbose_words[] = {
  "step by step", "explain", "show your work", "think it through", "in full sentences",
};
static const char *const brief_words[] = {
  "brief", "concise", "one sentence", "one word", "few words", "short answer", "tl;dr",
};
static const char *const long_words[] = {
  "in detail", "detailed", "essay", "comprehensive", "thorough",
};
#define COUNT(a) (sizeof(a) / sizeof *(a))

static int valid_request(const sim_request *req)
{
  if (!req || !req->model || !req->model[0] || !req->messages || req->nmessages == 0)
    return 0;
  for (size_t i = 0; i < req->nmessages; i++)
    if (!req->messages[i].content && req->messages[i].content_len)
      return 0;
  return 1;
}

int sim_model_count_tokens(const char *text, size_t len)
{
  size_t n = text ? sim_token_count(text, len) : 0;
  return n > INT_MAX ? INT_MAX : (int)n;
}

/* OpenAI's chat count (openai-cookbook "How to count tokens with
 * tiktoken", RELIABILITY.md C.4): 3 per message, plus the tokens of each
 * value (role, content, name), plus 1 for a name, plus 3 for the reply
 * primer. */
int sim_model_prompt_tokens(const sim_request *req)
{
  if (!valid_request(req))
    return 0;
  long long total = 3;
  for (size_t i = 0; i < req->nmessages && total < INT_MAX; i++) {
    const sim_message *m = &req->messages[i];
    total += 3;
    /* The standard roles are one token each in cl100k and o200k. */
    if (m->role && (!strcmp(m->role, "system") || !strcmp(m->role, "user") ||
                    !strcmp(m->role, "assistant") || !strcmp(m->role, "tool") ||
                    !strcmp(m->role, "developer")))
      total += 1;
    else if (m->role)
      total += sim_model_count_tokens(m->role, strlen(m->role));
    total += sim_model_count_tokens(m->content, m->content_len);
    if (m->name)
      total += 1 + sim_model_count_tokens(m->name, strlen(m->name));
  }
  return total > INT_MAX ? INT_MAX : (int)total;
}

static uint64_t temperature_bits(double t)
{
  if (!(t >= 0.0)) /* NaN or negative: as 0 */
    t = 0.0;
  if (t > 100.0)
    t = 100.0;
  return (uint64_t)llround(t * 1000.0);
}

/* log(sigmoid(z)), without overflow for large |z|. */
static double log_sigmoid(double z)
{
  return z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z));
}

static void free_text(const sim_request *req, const sim_prompt *p, uint64_t request_key,
                      llm_buf *out)
{
  double verbosity;
  sim_tier_of(req->model, &verbosity);
  sim_rng rng;
  sim_rng_init(&rng, sim_hash_str(request_key, "free text"));
  double tokens = exp(log(FREE_TEXT_MEDIAN) + FREE_TEXT_SPREAD * sim_rng_normal(&rng)) * verbosity;
  if (instructions_say(req, p, brief_words, COUNT(brief_words)))
    tokens *= 0.25;
  else if (instructions_say(req, p, long_words, COUNT(long_words)))
    tokens *= 2.5;
  if (tokens < 8)
    tokens = 8;
  if (tokens > FREE_TEXT_MAX)
    tokens = FREE_TEXT_MAX;
  sim_text_generate(out, &rng, (int)tokens, p->last_user, p->last_user_len);
}

/* Splits s[0..n) into token pieces (malloc'd ends, never NULL on
 * success). The count, or -1 when out of memory. */
static long split_pieces(const char *s, size_t n, size_t **ends)
{
  size_t count = sim_token_ends(s, n, NULL, 0);
  *ends = malloc((count ? count : 1) * sizeof **ends);
  if (!*ends)
    return -1;
  sim_token_ends(s, n, *ends, count);
  return (long)count;
}

static void free_calls(sim_tool_call *calls, size_t n)
{
  for (size_t i = 0; calls && i < n; i++) {
    free(calls[i].name);
    free(calls[i].arguments);
    free(calls[i].piece_ends);
  }
  free(calls);
}

/* A call of tool `name` with the arguments in args (taken over, freed on
 * failure): its streaming pieces and its tokens. 0, or -1. */
static int finish_call(const char *name, llm_buf *args, sim_tool_call *call)
{
  long n;
  memset(call, 0, sizeof *call);
  call->name = strdup(name ? name : "");
  if (args->failed || !args->data || !call->name) {
    llm_buf_free(args);
    free(call->name);
    call->name = NULL;
    return -1;
  }
  call->arguments = args->data;
  call->arguments_len = args->len;
  n = split_pieces(args->data, args->len, &call->piece_ends);
  if (n < 0) {
    free(call->name);
    free(call->arguments);
    memset(call, 0, sizeof *call);
    return -1;
  }
  call->npieces = (size_t)n;
  /* the name, the arguments and the call's framing (7: a rough figure) */
  call->tokens = (int)n + sim_model_count_tokens(call->name, strlen(call->name)) + 7;
  return 0;
}

/* The call of tool t with arguments from the user's text. 0, or -1. */
static int make_call(const sim_tool *t, const sim_prompt *p, sim_tool_call *call)
{
  llm_buf args = {0};
  sim_tools_arguments(t, p->last_user, p->last_user_len, &args);
  return finish_call(t->name, &args, call);
}

/* The scripted calls (mock_tool_calls, checked by sim_mock_read): their
 * arguments as given, an object written compactly, absent as {}. The
 * count in *n, or -1 (nothing left allocated). */
static int mock_calls(const json_value *list, sim_tool_call **out, size_t *n)
{
  size_t count = list->u.array.n;
  sim_tool_call *calls = calloc(count, sizeof *calls);
  *out = NULL;
  *n = 0;
  if (!calls)
    return -1;
  for (size_t i = 0; i < count; i++) {
    const json_value *c = &list->u.array.items[i], *a = json_get(c, "arguments");
    llm_buf args = {0};
    llm_buf_put(&args, "", 0);
    if (a && a->type == JSON_STRING)
      llm_buf_put(&args, a->u.string.ptr, a->u.string.len);
    else if (a && a->type == JSON_OBJECT)
      json_put_value(&args, a);
    else
      llm_buf_puts(&args, "{}");
    if (finish_call(json_get(c, "name")->u.string.ptr, &args, &calls[i]) != 0) {
      free_calls(calls, i);
      return -1;
    }
  }
  *out = calls;
  *n = count;
  return 0;
}

/* Claude's visible thinking: a summary of about 512 tokens at most of the
 * thinking it bills. */
#define THINKING_SUMMARY_MAX 512

static int make_thinking(const sim_prompt *p, uint64_t key, int tokens, sim_answer *out)
{
  llm_buf t = {0};
  sim_rng rng;
  long n;
  sim_rng_init(&rng, sim_hash_str(key, "thinking"));
  llm_buf_puts(&t, "Let me think about this.");
  sim_text_generate(&t, &rng, tokens < THINKING_SUMMARY_MAX ? tokens : THINKING_SUMMARY_MAX,
                    p->last_user, p->last_user_len);
  if (t.failed || !t.data || (n = split_pieces(t.data, t.len, &out->thinking_ends)) < 0) {
    llm_buf_free(&t);
    return -1;
  }
  out->thinking = t.data;
  out->thinking_len = t.len;
  out->nthinking = (size_t)n;
  return 0;
}

int sim_model_answer(const sim_request *req, int choice, sim_answer *out)
{
  if (!valid_request(req) || !out || choice < 0)
    return -1;

  /* The prompt as the skills see it. */
  size_t n = req->nmessages;
  const char **texts = malloc(n * sizeof *texts);
  size_t *lens = malloc(n * sizeof *lens);
  if (!texts || !lens) {
    free(texts);
    free(lens);
    return -1;
  }
  sim_prompt p = {texts, lens, n, NULL, 0, 0, 0, 1.0};
  for (size_t i = 0; i < n; i++) {
    texts[i] = req->messages[i].content;
    lens[i] = req->messages[i].content_len;
    if (is_role(&req->messages[i], "user")) {
      p.last_user = texts[i];
      p.last_user_len = lens[i];
    }
  }
  if (!p.last_user) { /* no user turn: the last message asks */
    p.last_user = texts[n - 1];
    p.last_user_len = lens[n - 1];
  }
  p.prompt_tokens = sim_model_prompt_tokens(req);
  p.verbose = instructions_say(req, &p, verbose_words, COUNT(verbose_words));
  p.err_scale = sim_reasoning_err_scale(req);

  /* Keys: the skill key ignores the prompt text; the request key does not. */
  int sampling = req->temperature > 0.0;
  uint64_t seed = req->has_seed ? (uint64_t)req->seed : 0;
  char name[128];
  sim_model_name(req->model, name, sizeof name);
  uint64_t skill_key = sim_hash_str(SIM_HASH_INIT, name);
  skill_key = sim_hash_u64(skill_key, seed);
  skill_key = sim_hash_u64(skill_key, sampling ? (uint64_t)choice : 0);
  uint64_t request_key = sim_hash_u64(skill_key, temperature_bits(req->temperature));
  for (size_t i = 0; i < n; i++) {
    const sim_message *m = &req->messages[i];
    request_key = sim_hash_str(request_key, m->role);
    request_key = sim_hash_str(request_key, m->name);
    request_key = sim_hash_u64(request_key, m->content_len);
    request_key = sim_hash_bytes(request_key, m->content ? m->content : "", m->content_len);
  }

  sim_skill_out skill;
  sim_tool_call *calls = NULL;
  size_t ncalls = 0;
  int tool = sim_tools_choose(req, &p);
  int after_tools = n > 0 && is_role(&req->messages[n - 1], "tool");
  memset(&skill, 0, sizeof skill);
  skill.difficulty = 1.0;
  if (req->mock || req->mock_tool_calls) {
    /* a scripted answer (mock_response, mock_tool_calls) wins over every skill */
    tool = -1;
    skill.kind = SIM_SKILL_MOCK;
    llm_buf_put(&skill.text, "", 0);
    if (req->mock)
      llm_buf_put(&skill.text, req->mock, req->mock_len);
    if (req->mock_tool_calls && mock_calls(req->mock_tool_calls, &calls, &ncalls) != 0) {
      llm_buf_free(&skill.text);
      free(texts);
      free(lens);
      return -1;
    }
  } else if (tool >= 0) {
    calls = malloc(sizeof *calls);
    if (!calls || make_call(&req->tools[tool], &p, &calls[0]) != 0) {
      free(calls);
      free(texts);
      free(lens);
      return -1;
    }
    ncalls = 1;
    skill.kind = SIM_SKILL_TOOLS;
    skill.difficulty = 0.5;
    /* Claude says what it is about to do, unless a tool is forced */
    if (sim_is_claude(req->model) && req->tool_choice == SIM_TOOLS_AUTO) {
      llm_buf_puts(&skill.text, "I'll use the ");
      sim_put_utf8(&skill.text, calls[0].name, strlen(calls[0].name));
      llm_buf_puts(&skill.text, " tool.");
    } else {
      llm_buf_puts(&skill.text, "");
    }
  } else if (after_tools && sim_tools_answer(req, &skill.text)) {
    skill.kind = SIM_SKILL_TOOLS;
    skill.difficulty = 0.5;
  } else if (!sim_skill_judge(req, &p, skill_key, &skill) &&
             !sim_skill_task(req, &p, skill_key, &skill) &&
             !sim_skill_arith(&p, req->model, skill_key, req->temperature, &skill) &&
             !sim_skill_context(&p, req->model, skill_key, req->temperature, &skill)) {
    memset(&skill, 0, sizeof skill);
    skill.difficulty = 1.0;
    free_text(req, &p, request_key, &skill.text);
  }
  llm_buf text = skill.text;
  if (text.failed || !text.data) {
    llm_buf_free(&text);
    free_calls(calls, ncalls);
    free(texts);
    free(lens);
    return -1;
  }

  /* Stop sequences: the text ends before the earliest one, which is not
   * included (as OpenAI does). */
  const char *finish = ncalls ? "tool_calls" : "stop";
  const char *stopped_by = NULL;
  size_t cut = text.len;
  for (size_t i = 0; req->stop && i < req->nstop; i++) {
    const char *st = req->stop[i];
    if (!st || !st[0])
      continue;
    const char *hit = memmem(text.data, cut, st, strlen(st));
    if (hit) {
      cut = (size_t)(hit - text.data);
      stopped_by = st;
    }
  }
  text.len = cut;

  size_t *ends = NULL;
  long lcount = split_pieces(text.data, text.len, &ends);
  size_t count = lcount > 0 ? (size_t)lcount : 0;
  double *lps = req->logprobs ? malloc((count ? count : 1) * sizeof *lps) : NULL;
  memset(out, 0, sizeof *out);
  if (lcount < 0 || (req->logprobs && !lps)) {
    free(ends);
    free(lps);
    llm_buf_free(&text);
    free_calls(calls, ncalls);
    free(texts);
    free(lens);
    return -1;
  }

  /* Reasoning (hidden, or Claude's thinking before its turn's first block),
   * then what is visible, all within max_tokens. */
  int thinking = req->thinking_budget > 0 || req->thinking_adaptive;
  int reasoning = thinking && after_tools ? 0
                : sim_reasoning_tokens(req, skill.difficulty, request_key);
  long call_tokens = 0;
  for (size_t i = 0; i < ncalls; i++)
    call_tokens += calls[i].tokens;
  if (req->max_tokens > 0) {
    long room = (long)req->max_tokens - reasoning;
    if (room <= 0) {
      reasoning = req->max_tokens;
      room = 0;
    }
    if (call_tokens > room) { /* a call that does not fit is not made */
      free_calls(calls, ncalls);
      calls = NULL;
      ncalls = 0;
      call_tokens = 0;
      finish = "length";
    }
    if ((long)count > room - call_tokens) {
      count = (size_t)(room - call_tokens);
      text.len = count ? ends[count - 1] : 0;
      finish = "length";
    }
  }
  text.data[text.len] = '\0';
  if (thinking && reasoning > 0 && make_thinking(&p, request_key, reasoning, out) != 0) {
    free(ends);
    free(lps);
    llm_buf_free(&text);
    free_calls(calls, ncalls);
    free(texts);
    free(lens);
    return -1;
  }
  free(texts);
  free(lens);

  /* Logprobs: the piece where the answer starts carries the model's
   * confidence; the rest of the answer is near-certain; free text and
   * reasoning are ordinary prose. */
  if (lps) {
    sim_rng rng;
    sim_rng_init(&rng, sim_hash_str(request_key, "logprobs"));
    int in_answer = 0;
    for (size_t i = 0; i < count; i++) {
      double z;
      if (skill.kind && skill.kind != SIM_SKILL_MOCK && skill.kind != SIM_SKILL_TOOLS &&
          !in_answer && ends[i] > skill.answer_at) {
        in_answer = 1;
        z = skill.conf_z;
        sim_rng_normal(&rng); /* keep the stream aligned with free text */
      } else if (in_answer) {
        z = 4.0 + 0.5 * sim_rng_normal(&rng);
      } else {
        z = 2.5 + 1.5 * sim_rng_normal(&rng);
      }
      lps[i] = log_sigmoid(z);
    }
  }

  long total = (long)count + call_tokens + reasoning;
  out->text = text.data;
  out->len = text.len;
  out->completion_tokens = total > INT_MAX ? INT_MAX : (int)total;
  out->finish_reason = finish;
  out->stop_sequence = strcmp(finish, "stop") == 0 ? stopped_by : NULL;
  out->piece_ends = ends;
  out->npieces = count;
  out->logprobs = lps;
  out->tool_calls = calls;
  out->ntool_calls = ncalls;
  out->reasoning_tokens = reasoning;
  out->skill = sim_skill_name(skill.kind);
  return 0;
}

const char *sim_skill_name(int kind)
{
  switch (kind) {
  case SIM_SKILL_ARITH: return "arithmetic";
  case SIM_SKILL_CONTEXT: return "context";
  case SIM_SKILL_TASK: return "task";
  case SIM_SKILL_JUDGE: return "judge";
  case SIM_SKILL_TOOLS: return "tools";
  case SIM_SKILL_MOCK: return "mock";
  default: return "filler";
  }
}

void sim_answer_free(sim_answer *a)
{
  if (!a)
    return;
  free(a->text);
  free(a->piece_ends);
  free(a->logprobs);
  free_calls(a->tool_calls, a->ntool_calls);
  free(a->thinking);
  free(a->thinking_ends);
  memset(a, 0, sizeof *a);
}
