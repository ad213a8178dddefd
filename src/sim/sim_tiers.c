/* What a simulated model of a given name is good at, and how sure it is.
 *
 * THE TIER TABLE. Routing and cascade experiments measure a cheap model
 * against a strong one, so the simulator ranks model names in four tiers.
 * Rates are per answer (see README "The simulator's model"):
 *
 *   tier      arith_err  ctx_err  ctx_halluc  task_err  judge_acc  examples
 *   frontier    0.010     0.005     0.02       0.04      0.97     o1, o3, gpt-5, gpt-5.x, claude
 *                                                                  opus / sonnet 4+, gemini pro,
 *                                                                  grok-4, deepseek-reasoner
 *   strong      0.030     0.015     0.05       0.08      0.94     gpt-4o, gpt-4.1, gpt-4, o3-mini,
 *                                                                  o4-mini, gpt-5-mini, claude-3.5/
 *                                                                  3.7 sonnet, gemini flash
 *   middle      0.070     0.040     0.10       0.14      0.90     unknown names, claude-haiku-4.5,
 *                                                                  70B open models
 *   small       0.120     0.080     0.20       0.22      0.85     gpt-4o-mini, gpt-4.1-mini, *nano*,
 *                                                                  gpt-3.5-turbo, claude-3/3.5 haiku,
 *                                                                  flash-lite, <= 9B open models
 *
 * arith_err is per unit of difficulty: P(right) = (1 - arith_err)^difficulty.
 * ctx_err is the chance of a wrong answer when the fact is in the prompt,
 * ctx_halluc of answering a distractor when it is not. task_err is a
 * registered task's error per unit of difficulty (sim_task_skill.c),
 * judge_acc how often a judge's verdict agrees with the registered right
 * answer (sim_judge.c). The ordering
 * follows price and public benchmark standing of the real models; the
 * numbers themselves are invented so that experiments show clear,
 * imperfect differences. */
#include "sim_internal.h"

#include <math.h>
#include <string.h>

enum { FRONTIER, STRONG, MIDDLE, SMALL };

static const sim_tier tiers[] = {
  [FRONTIER] = {"frontier", 4, 0.010, 0.005, 0.02, 0.04, 0.97},
  [STRONG] = {"strong", 3, 0.030, 0.015, 0.05, 0.08, 0.94},
  [MIDDLE] = {"middle", 2, 0.070, 0.040, 0.10, 0.14, 0.90},
  [SMALL] = {"small", 1, 0.120, 0.080, 0.20, 0.22, 0.85},
};

/* First match wins; '*' matches any run of characters, the rest of the
 * pattern must match the whole (normalised) name. Verbosity scales the
 * length of free-text answers: reasoning models and Claude write more,
 * small models less. */
static const struct {
  const char *glob;
  int tier;
  double verbosity;
} rules[] = {
  /* small: the cheapest, fastest models of each family */
  {"*nano*", SMALL, 0.8},
  {"gpt-4o-mini*", SMALL, 0.9},
  {"gpt-4.1-mini*", SMALL, 0.9},
  {"gpt-3.5*", SMALL, 0.8},
  {"gpt-35*", SMALL, 0.8},
  {"claude-3-haiku*", SMALL, 1.0},
  {"claude-3-5-haiku*", SMALL, 1.0},
  {"claude-instant*", SMALL, 1.0},
  {"*flash-lite*", SMALL, 0.9},
  {"*-1b*", SMALL, 1.0}, {"*:1b*", SMALL, 1.0},
  {"*-3b*", SMALL, 1.0}, {"*:3b*", SMALL, 1.0},
  {"*-7b*", SMALL, 1.0}, {"*:7b*", SMALL, 1.0},
  {"*-8b*", SMALL, 1.0}, {"*:8b*", SMALL, 1.0},
  {"*-9b*", SMALL, 1.0}, {"*:9b*", SMALL, 1.0},
  {"phi*", SMALL, 1.0}, {"gemma*", SMALL, 1.0}, {"tinyllama*", SMALL, 1.0},
  {"llama2*", SMALL, 1.0}, {"llama-2*", SMALL, 1.0},
  /* strong: small reasoning models, before the frontier rows catch them */
  {"o1-mini*", STRONG, 1.4},
  {"o3-mini*", STRONG, 1.4},
  {"o4-mini*", STRONG, 1.4},
  {"gpt-5*mini*", STRONG, 1.3},
  /* frontier */
  {"o1", FRONTIER, 1.4}, {"o1-*", FRONTIER, 1.4},
  {"o3", FRONTIER, 1.4}, {"o3-*", FRONTIER, 1.4},
  {"gpt-5*", FRONTIER, 1.4},
  {"claude-3-opus*", STRONG, 1.2},
  {"claude-*opus*", FRONTIER, 1.2},
  {"claude-sonnet-4*", FRONTIER, 1.2},
  {"claude-sonnet-5*", FRONTIER, 1.2},
  {"claude-4*", FRONTIER, 1.2},
  {"claude-fable*", FRONTIER, 1.2},
  {"claude-mythos*", FRONTIER, 1.2},
  {"gemini*pro*", FRONTIER, 1.3},
  {"grok-4*", FRONTIER, 1.2},
  {"deepseek-reasoner*", FRONTIER, 1.4},
  {"deepseek-r1*", FRONTIER, 1.4},
  /* strong: previous flagships and today's mid-priced models */
  {"gpt-4*", STRONG, 1.0},
  {"chatgpt-4o*", STRONG, 1.0},
  {"claude-3-7-sonnet*", STRONG, 1.2},
  {"claude-3-5-sonnet*", STRONG, 1.2},
  {"gemini*flash*", STRONG, 1.0},
  {"grok*", STRONG, 1.1},
  {"deepseek*", STRONG, 1.1},
  {"*405b*", STRONG, 1.0},
  {"gpt-oss-120b*", STRONG, 1.2},
  {"kimi*", STRONG, 1.1},
  {"glm*", STRONG, 1.1},
  {"mistral-large*", STRONG, 1.0},
  {"codex*", STRONG, 1.2},
  /* middle: everything else, named here for the record */
  {"claude-haiku*", MIDDLE, 1.0},
  {"*70b*", MIDDLE, 1.0},
  {"*72b*", MIDDLE, 1.0},
};

/* Iterative, with one backtrack point. */
int sim_glob_match(const char *pat, const char *s)
{
  const char *star = NULL, *resume = NULL;
  while (*s) {
    if (*pat == '*') {
      star = pat++;
      resume = s;
    } else if (*pat == *s) {
      pat++;
      s++;
    } else if (star) {
      pat = star + 1;
      s = ++resume;
    } else {
      return 0;
    }
  }
  while (*pat == '*')
    pat++;
  return *pat == '\0';
}

void sim_model_name(const char *model, char *out, size_t cap)
{
  if (cap == 0)
    return;
  out[0] = '\0';
  if (!model)
    return;
  /* "openai/gpt-4o", "sim/gpt-4o" and "ft:gpt-4o-mini:org::id" name the
   * same base model for the simulator. */
  const char *slash = strrchr(model, '/');
  if (slash)
    model = slash + 1;
  if (strncmp(model, "ft:", 3) == 0)
    model += 3;
  size_t i = 0;
  for (; model[i] && i + 1 < cap; i++) {
    char c = model[i];
    out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
  }
  out[i] = '\0';
}

const sim_tier *sim_tier_of(const char *model, double *verbosity)
{
  char name[128];
  sim_model_name(model, name, sizeof name);
  for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
    if (sim_glob_match(rules[i].glob, name)) {
      if (verbosity)
        *verbosity = rules[i].verbosity;
      return &tiers[rules[i].tier];
    }
  }
  if (verbosity)
    *verbosity = 1.0;
  return &tiers[MIDDLE];
}

double sim_confidence_z(uint64_t key, int outcome)
{
  sim_rng rng;
  sim_rng_init(&rng, sim_hash_str(key, "confidence"));
  double n = sim_rng_normal(&rng);
  switch (outcome) {
  case SIM_RIGHT: return 3.0 + 1.2 * n;
  case SIM_WRONG: return 0.5 + 1.2 * n;
  default: return 2.0 + 1.0 * n;
  }
}

double sim_temperature_factor(double temperature)
{
  if (!(temperature > 1.0)) /* also NaN */
    return 1.0;
  if (temperature > 2.0)
    temperature = 2.0;
  return temperature;
}
