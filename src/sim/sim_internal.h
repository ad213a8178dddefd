/* Private pieces shared by the simulator's model files (sim_model.c,
 * sim_tokens.c, sim_text.c, sim_skills.c, sim_embed.c). Not a public API:
 * sim_model.h is. Everything here is reentrant: no mutable globals, all
 * randomness comes from hashes of the request. */
#ifndef LLMRUN_SIM_INTERNAL_H
#define LLMRUN_SIM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "sim_model.h"

/* ---- hashing and deterministic randomness (sim_util.c) ------------------ */

/* FNV-1a over bytes, continued from h; finish with sim_mix64 before use as
 * random bits (FNV's low bits are weak on their own). */
#define SIM_HASH_INIT 0xcbf29ce484222325ULL
uint64_t sim_hash_bytes(uint64_t h, const void *p, size_t n);
uint64_t sim_hash_str(uint64_t h, const char *s);   /* NULL hashes as "" */
uint64_t sim_hash_u64(uint64_t h, uint64_t v);
uint64_t sim_mix64(uint64_t x);                     /* splitmix64 finaliser */

typedef struct sim_rng { uint64_t s; } sim_rng;
void sim_rng_init(sim_rng *r, uint64_t seed);
uint64_t sim_rng_u64(sim_rng *r);
double sim_rng_unit(sim_rng *r);                    /* [0, 1) */
uint32_t sim_rng_below(sim_rng *r, uint32_t n);     /* [0, n), n > 0 */
double sim_rng_normal(sim_rng *r);                  /* N(0, 1) */
/* A uniform [0,1) that depends only on the key (no generator state). */
double sim_unit_of(uint64_t key);

/* ---- text (sim_util.c) ---------------------------------------------------- */

/* Appends s[0..n) with every invalid UTF-8 sequence replaced by U+FFFD, so
 * text copied from a prompt can go into a JSON string. */
void sim_put_utf8(llm_buf *b, const char *s, size_t n);
/* Appends v[0..n) with one of its digits changed, chosen by rng: a wrong
 * answer that looks like the right one (v must hold a digit). */
void sim_perturb_digit(llm_buf *out, const char *v, size_t n, sim_rng *rng);

/* ---- tokens (sim_tokens.c) ---------------------------------------------- */

/* Splits s[0..n) into its o200k_base tokens (llmrun's tokenizer) and
 * returns how many pieces. When ends is not NULL, ends[i] receives the end
 * offset of piece i for i < cap. Pieces never split a UTF-8 character (a
 * token ending inside one is joined to the next), so on text where tokens
 * split characters there are slightly fewer pieces than tokens. */
size_t sim_token_ends(const char *s, size_t n, size_t *ends, size_t cap);
/* Exact tokens of s (o200k_base), for usage counts. */
size_t sim_token_count(const char *s, size_t n);

/* ---- model tiers and confidence (sim_tiers.c) ------------------------- */

typedef struct sim_tier {
  const char *name;        /* "frontier", "strong", "middle", "small" */
  int rank;                /* 4 = frontier ... 1 = small */
  double arith_err;        /* error per unit of arithmetic difficulty */
  double ctx_err;          /* answer wrong although the fact is present */
  double ctx_halluc;       /* answer a distractor when the fact is absent */
  double task_err;         /* a registered task's error per unit of difficulty */
  double judge_acc;        /* a judge's verdict agrees with the right answer */
} sim_tier;

/* The model name as the tables see it: lower case, without a provider
 * prefix ("sim/", "openai/") or "ft:"; at most cap-1 bytes. */
void sim_model_name(const char *model, char *out, size_t cap);

/* 1 if s matches pat as a whole, where '*' stands for any run of
 * characters (the model-family tables' patterns). */
int sim_glob_match(const char *pat, const char *s);
/* Tier of a model and how long its free-text answers run (1.0 = typical). */
const sim_tier *sim_tier_of(const char *model, double *verbosity);

/* Outcomes an answer can have, for its confidence. */
enum { SIM_RIGHT, SIM_WRONG, SIM_UNSURE };
/* Logit of the model's confidence in its answer: N(3.0, 1.2) when right,
 * N(0.5, 1.2) when wrong, N(2.0, 1.0) for "I don't know." */
double sim_confidence_z(uint64_t key, int outcome);
/* How much more often a model errs at this temperature (1 up to T=1,
 * rising linearly to 2 at T=2). */
double sim_temperature_factor(double temperature);

/* ---- skills (sim_arith.c, sim_context.c) -------------------------------- */

/* What a skill decided. answer_at is the byte offset in text where the
 * answer proper starts (its first piece carries the confidence logprob). */
typedef struct sim_skill_out {
  int kind;                /* SIM_SKILL_* */
  int outcome;             /* SIM_RIGHT or SIM_WRONG */
  llm_buf text;
  size_t answer_at;
  double conf_z;
  double difficulty;       /* for the reasoning token rule: 1 = typical */
} sim_skill_out;

enum { SIM_SKILL_NONE = 0, SIM_SKILL_ARITH, SIM_SKILL_CONTEXT, SIM_SKILL_TASK, SIM_SKILL_JUDGE,
       SIM_SKILL_TOOLS, SIM_SKILL_MOCK };

/* The name of what answered (the x-sim-skill header): "arithmetic",
 * "context", "task", "judge", "tools", "mock", or "filler" for free text
 * from no skill (SIM_SKILL_NONE). */
const char *sim_skill_name(int kind);

/* The prompt as the skills see it: every message's content, and the last
 * user message on its own (the question lives there). */
typedef struct sim_prompt {
  const char *const *texts;
  const size_t *lens;
  size_t ntexts;
  const char *last_user;
  size_t last_user_len;
  int prompt_tokens;
  int verbose;             /* the prompt asks to explain / go step by step */
  double err_scale;        /* error rates times this (reasoning effort); 0 as 1 */
} sim_prompt;

/* Each returns 1 and fills out (text allocated) when the skill applies,
 * else 0 with out untouched. key is the request's random key (model,
 * seed, choice). */
int sim_skill_arith(const sim_prompt *p, const char *model, uint64_t key,
                    double temperature, sim_skill_out *out);
int sim_skill_context(const sim_prompt *p, const char *model, uint64_t key,
                      double temperature, sim_skill_out *out);

/* Labelled tasks (sim_task_skill.c) and the judge that grades their
 * answers (sim_judge.c): both read req->tasks; each returns 0 when the
 * prompt holds nothing they know. */
int sim_skill_task(const sim_request *req, const sim_prompt *p, uint64_t key,
                   sim_skill_out *out);
int sim_skill_judge(const sim_request *req, const sim_prompt *p, uint64_t key,
                    sim_skill_out *out);
/* The prompt as the task skills read it: every message normalised
 * (sim_tasks_normalize), joined by '\x01'; [*from, *to) is the last user
 * message. 0, or -1 when out of memory. */
int sim_task_prompt(const sim_request *req, llm_buf *b, size_t *from, size_t *to);

/* Internal steps, exposed for the tests. */
/* Finds the arithmetic question in s[0..n): 1 with its value and
 * difficulty (>= 1), else 0. */
int sim_arith_find(const char *s, size_t n, int64_t *value, int *difficulty);
/* Looks the question of p->last_user up in the prompt. Returns 1 with the
 * value's span in *val, *vlen when a fact with the same subject is
 * present; 0 when there is a question but no such fact; -1 when the last
 * user message asks no context question. */
int sim_context_lookup(const sim_prompt *p, const char **val, size_t *vlen);

/* ---- tools (sim_tools.c) ------------------------------------------------ */

/* The tool the model calls (an index into req->tools), or -1 for none:
 * tool_choice none: never; a named tool: that one; required: the best
 * match; auto: the best match when the last message is the user's and
 * some word of it matches the tool (name words count 3, words of the
 * description, parameter names and enum values 1). */
int sim_tools_choose(const sim_request *req, const sim_prompt *p);
/* Appends the call's arguments: a compact JSON object built from the
 * tool's schema with values found in text (see sim_tools.c). */
void sim_tools_arguments(const sim_tool *t, const char *text, size_t n, llm_buf *out);
/* When the request ends with tool results, appends the answer that
 * reports them ("According to get_weather, temperature is 18.") and
 * returns 1; else 0. */
int sim_tools_answer(const sim_request *req, llm_buf *out);

/* ---- free text (sim_text.c) --------------------------------------------- */

/* Appends plausible English of about `tokens` tokens, ending on a
 * sentence, drawn from rng; words from topic (may be NULL) are sprinkled
 * in. */
void sim_text_generate(llm_buf *out, sim_rng *rng, int tokens,
                       const char *topic, size_t topic_len);

#endif
