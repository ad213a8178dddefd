/* The simulator's model of an LLM: what it answers, how many tokens that
 * takes, and the embedding of a text. Pure functions of the request (and
 * its seed), no I/O, no lua.h, safe to call from the simulator's server
 * thread. The HTTP side (sim.c) decides when bytes go out; this file
 * decides which bytes.
 *
 * Determinism: the same request (model, messages, seed, temperature,
 * max_tokens, stop, choice index) always gives the same answer; different
 * prompts give different answers.
 *
 * Skills (documented in README "The simulator"): arithmetic questions are
 * answered correctly with a probability that grows with the model's tier;
 * "answer from the context" questions are answered correctly only when the
 * needed fact is in the prompt. Wrong answers carry lower logprobs on
 * average, so confidence-based cascades work, imperfectly, as in life.
 *
 * Tools and reasoning (README "The simulator's model"): with tools given
 * and the user's turn last, the model calls the tool that best matches
 * the prompt, with arguments built from its JSON schema (sim_tools.c);
 * after a tool result it answers from that result. Reasoning models
 * (sim_reasoning.c) spend hidden reasoning tokens, counted as completion
 * tokens, scaled by the effort and the task's difficulty. */
#ifndef LLMRUN_SIM_MODEL_H
#define LLMRUN_SIM_MODEL_H

#include <stddef.h>
#include <stdint.h>

struct json_value; /* json.h: a tool's JSON schema */
struct sim_tasks;  /* sim_tasks.h: registered labelled tasks */

typedef struct sim_message {
  const char *role;       /* "system" | "user" | "assistant" | "tool" ... */
  const char *content;    /* text content (parts already concatenated) */
  size_t content_len;
  const char *name;       /* optional, NULL if absent */
  const char *tool_name;  /* role "tool": the tool whose result this is, if known */
} sim_message;

/* A tool the request offers (OpenAI function / Anthropic custom tool). */
typedef struct sim_tool {
  const char *name;
  const char *description;          /* NULL if absent */
  const struct json_value *schema;  /* the arguments' JSON schema; NULL: none */
} sim_tool;

/* tool_choice: OpenAI auto/none/required/{function}; Anthropic
 * auto/none/any/tool. */
enum { SIM_TOOLS_AUTO, SIM_TOOLS_NONE, SIM_TOOLS_REQUIRED, SIM_TOOLS_NAMED };

/* Reasoning effort (OpenAI reasoning_effort). NONE: no reasoning tokens
 * (a non-reasoning model, effort "none", or Claude without thinking). */
enum { SIM_EFFORT_NONE, SIM_EFFORT_MINIMAL, SIM_EFFORT_LOW, SIM_EFFORT_MEDIUM,
       SIM_EFFORT_HIGH, SIM_EFFORT_XHIGH, SIM_EFFORT_COUNT };

typedef struct sim_request {
  const char *model;
  const sim_message *messages;
  size_t nmessages;
  int has_seed;
  int64_t seed;
  double temperature;     /* default 1.0 as OpenAI */
  int max_tokens;         /* <= 0: no limit beyond the model's natural length */
  const char *const *stop;/* up to 4 stop sequences */
  size_t nstop;
  int logprobs;           /* nonzero: fill sim_answer.logprobs */
  /* tools (zeroed: none) */
  const sim_tool *tools;
  size_t ntools;
  int tool_choice;        /* SIM_TOOLS_* */
  const char *tool_choice_name; /* SIM_TOOLS_NAMED */
  /* reasoning (zeroed: none) */
  int effort;             /* SIM_EFFORT_*: OpenAI reasoning models, as resolved
                             by sim_reasoning_check (the model's default applied) */
  int thinking_budget;    /* > 0: Claude extended thinking with this budget_tokens */
  int thinking_adaptive;  /* Claude adaptive thinking (no budget) */
  /* labelled tasks (sim_tasks.h) the task and judge skills look prompts
   * up in; NULL: none */
  struct sim_tasks *tasks;
  /* a scripted answer (mock_response): when set, the answer is this text,
   * cut by stop and max_tokens as any other */
  const char *mock;
  size_t mock_len;
  /* scripted tool calls (mock_tool_calls): an array of {name, arguments}
   * that sim_mock_read checked; the answer calls these (after the mock
   * text, if any) instead of any skill. NULL: none */
  const struct json_value *mock_tool_calls;
} sim_request;

typedef struct sim_tool_call {
  char *name;             /* malloc'd */
  char *arguments;        /* malloc'd JSON object text */
  size_t arguments_len;
  size_t *piece_ends;     /* streaming fragments of arguments, like sim_answer's */
  size_t npieces;
  int tokens;             /* what the call costs in completion tokens */
} sim_tool_call;

typedef struct sim_answer {
  char *text;             /* malloc'd, UTF-8, not NUL-counted in len */
  size_t len;
  int completion_tokens;  /* usage.completion_tokens */
  const char *finish_reason; /* "stop", "length" or "tool_calls" (static string) */
  const char *stop_sequence; /* the stop sequence that ended the text (points into
                                req->stop), or NULL */
  size_t *piece_ends;     /* streaming: piece i is text[piece_ends[i-1] .. piece_ends[i]) */
  size_t npieces;         /* one piece per completion token */
  double *logprobs;       /* per piece when requested, else NULL */
  /* tool calls (finish_reason "tool_calls"), in order */
  sim_tool_call *tool_calls;
  size_t ntool_calls;
  /* reasoning: hidden tokens (inside completion_tokens), and for Claude
   * with thinking the visible thinking text (a summary) with its pieces */
  int reasoning_tokens;
  char *thinking;
  size_t thinking_len;
  size_t *thinking_ends;
  size_t nthinking;
  /* what answered (static string): "task", "judge", "arithmetic",
   * "context", "tools", "mock", or "filler" (no skill: free text) */
  const char *skill;
} sim_answer;

/* Fills *out for choice `choice` (0 .. n-1) of req. 0, or -1 on bad input
 * (out untouched). Free with sim_answer_free. completion_tokens counts
 * the text, the tool calls and the reasoning tokens. */
int sim_model_answer(const sim_request *req, int choice, sim_answer *out);
void sim_answer_free(sim_answer *a);

/* usage.prompt_tokens for the request, counted as OpenAI counts chat
 * input (3 per message + content + 1 per name + 3 priming). */
int sim_model_prompt_tokens(const sim_request *req);

/* Tokens in a plain text (the embeddings endpoint's usage). */
int sim_model_count_tokens(const char *text, size_t len);

/* ---- reasoning models (sim_reasoning.c) ------------------------------------
 * Which OpenAI models reason, which parameters they take, and how many
 * reasoning tokens a request spends (README "The simulator's model"). */

enum { SIM_PARAM_OK, SIM_PARAM_DEFAULT_ONLY, SIM_PARAM_UNSUPPORTED };

typedef struct sim_reasoning_rules {
  const char *family;     /* "o1", "o3-mini", "gpt-5"...; NULL: not a reasoning model */
  unsigned efforts;       /* bit (1u << SIM_EFFORT_x) per accepted reasoning_effort;
                             0: reasoning_effort is an unsupported parameter */
  int default_effort;     /* the effort of a request that names none */
  int max_tokens_ok;      /* 0: max_tokens is refused (use max_completion_tokens) */
  int temperature;        /* SIM_PARAM_*: DEFAULT_ONLY accepts exactly 1 */
  int sampling;           /* SIM_PARAM_* for top_p, presence/frequency_penalty,
                             logprobs, top_logprobs */
  int sampling_if_none;   /* at effort "none" temperature and sampling are free */
  const char *source;     /* where the rule comes from */
} sim_reasoning_rules;

/* The rules for a model name (never NULL; family NULL for ordinary models,
 * which accept everything and do not reason). */
const sim_reasoning_rules *sim_reasoning_rules_of(const char *model);
/* "none".."xhigh" -> SIM_EFFORT_*, else -1; and back. */
int sim_effort_parse(const char *s);
const char *sim_effort_name(int effort);
/* Reasoning tokens a task of typical difficulty spends at an effort, and
 * Claude's thinking tokens for a budget (adaptive: no budget). */
int sim_reasoning_expected(int effort);
int sim_thinking_expected(int budget_tokens, int adaptive);
/* The reasoning tokens of this request for a task of the given difficulty
 * (1 = typical), drawn from key; capped by the thinking budget. */
int sim_reasoning_tokens(const sim_request *req, double difficulty, uint64_t key);
/* How much more (or less) often the model errs at the request's effort. */
double sim_reasoning_err_scale(const sim_request *req);

/* ---- Claude model facts (sim_claude.c) ---------------------------------------- */

typedef struct sim_claude_rules {
  int min_cache_tokens;   /* minimum cacheable prompt prefix */
  int tool_prompt_auto;   /* tokens of the tool-use system prompt, tool_choice auto/none */
  int tool_prompt_any;    /* ... any/tool */
  int max_output;         /* largest max_tokens; 0: unknown (not checked) */
  int no_temperature;     /* refuses temperature ("`temperature` is deprecated for
                             this model.") */
} sim_claude_rules;

const sim_claude_rules *sim_claude_rules_of(const char *model);
/* Is this a Claude model name ("claude-...", any provider prefix)? */
int sim_is_claude(const char *model);

/* Deterministic embedding of text into out[0 .. dims-1], L2-normalised;
 * similar texts get similar vectors. 0, or -1 if dims is out of range. */
int sim_model_embed(const char *model, const char *text, size_t len, float *out, int dims);
/* The model's native dimension (1536 for text-embedding-3-small...). */
int sim_model_embed_dims(const char *model);

#endif
