/* Reasoning models in the simulator: which OpenAI models reason and which
 * parameters they refuse (one table, per model family, with sources), and
 * how many hidden reasoning tokens a request spends.
 *
 * THE PARAMETER TABLE. OpenAI's reasoning models refuse max_tokens ("Use
 * 'max_completion_tokens' instead"), sampling parameters (temperature
 * other than the default 1; top_p; penalties; logprobs) and take
 * reasoning_effort with a per-family set of values. The simulator answers
 * such a request with the same 400 the real API sends (sim_chat_request.c
 * writes the messages), so a script that would fail for real fails
 * offline too. Error texts as reported from the real API:
 *   - max_tokens: "Unsupported parameter: 'max_tokens' is not supported with
 *     this model. Use 'max_completion_tokens' instead." (o1, o3-mini, gpt-5,
 *     gpt-5.1, gpt-5.4: github.com/teilomillet/gollm/issues/33,
 *     griptape-ai/ComfyUI-Griptape#312, fish2018/YPrompt#26,
 *     koosoli/ESPHomeDesigner#379);
 *   - temperature: "Unsupported value: 'temperature' does not support 0.2
 *     with this model. Only the default (1) value is supported." for o1,
 *     o3, o4-mini and gpt-5 (cline/cline#341, microsoft/vscode#253673,
 *     QwenLM/qwen-code#921, owndev/Open-WebUI-Functions#98), but
 *     "Unsupported parameter: 'temperature' is not supported with this
 *     model." for o3-mini (simonw/llm#731, chatboxai/chatbox#1830);
 *   - top_p: "Unsupported parameter: 'top_p' is not supported with this
 *     model." (o1: aandrew-me/tgpt#333; o4-mini: lobehub/lobehub#7747;
 *     o3: AsyncFuncAI/deepwiki-open#226); penalties likewise for o3-mini
 *     (simonw/llm#731);
 *   - reasoning_effort outside a model's set: "Unsupported value: 'minimal'
 *     is not supported with the 'gpt-5.1' model. Supported values are:
 *     'none', 'low', 'medium', and 'high'." (code unsupported_value:
 *     openai/openai-agents-python#2089, anomalyco/opencode#4451); on a model
 *     without reasoning: "Unsupported parameter: 'reasoning_effort' is not
 *     supported with this model." (the Responses API's 'reasoning.effort'
 *     twin: BoundaryML/baml#2708).
 * Effort sets (the API reference's ReasoningEffort, as quoted at
 * learn.microsoft.com/javascript/api/@azure/ai-projects/reasoningeffort):
 * models before gpt-5.1 default to medium and do not take none; o-series
 * take low/medium/high, gpt-5/-mini/-nano add minimal; gpt-5.1 takes
 * none/low/medium/high and defaults to none; xhigh comes after
 * gpt-5.1-codex-max (gpt-5.2 and later here); gpt-5-pro only high. At
 * effort none gpt-5.1+ accept temperature, top_p and logprobs
 * (vercel/ai#10932, citing OpenAI's guide); gpt-5-chat does not reason,
 * the later gpt-5.x chat models refuse max_tokens and temperature (below).
 *
 * THE TOKEN RULE (the simulator's, not a measurement). A request spends
 *   expected(effort) x difficulty x jitter
 * reasoning tokens, where expected is 32 / 512 / 1,536 / 4,096 / 8,192 for
 * minimal / low / medium / high / xhigh (0 for none), chosen so that the
 * time to the first visible token at each model's speed lands near the
 * published medians (o3-mini at medium ~11 s, o4-mini at high ~26 s:
 * benchlm.ai/llm-speed, artificialanalysis.ai); difficulty is 1 for
 * ordinary text and set by the skills (an arithmetic question of
 * difficulty d: 0.5 + 0.25 d; a context question: 0.75 + prompt/16,000;
 * choosing or reading a tool: 0.5); jitter is log-normal with mean 1 and
 * sigma 0.35, drawn from the request. Claude's extended thinking spends a
 * quarter of budget_tokens on a typical task (adaptive thinking: as
 * medium), never more than the budget. Reasoning tokens are completion
 * (output) tokens: billed at the output price. Higher effort errs less:
 * the skills' error rates are scaled by 1.3 / 1.15 / 1 / 0.8 / 0.7 for
 * minimal / low / medium / high / xhigh (thinking on: 0.8). */
#include "sim_model.h"
#include "sim_internal.h"

#include <math.h>
#include <string.h>

#define E(x) (1u << SIM_EFFORT_##x)

static const char *const effort_names[SIM_EFFORT_COUNT] = {
  "none", "minimal", "low", "medium", "high", "xhigh",
};

static const int expected_tokens[SIM_EFFORT_COUNT] = {0, 32, 512, 1536, 4096, 8192};
static const double err_scales[SIM_EFFORT_COUNT] = {1.0, 1.3, 1.15, 1.0, 0.8, 0.7};

#define OPENAI_REASONING "https://platform.openai.com/docs/guides/reasoning"

/* First match wins ('*' globs, the whole normalised name must match). */
static const struct {
  const char *glob;
  sim_reasoning_rules r;
} families[] = {
  /* the later chat models refuse max_tokens and temperature (gpt-5.1-chat:
   * wiki.engram.work/05-knowledge-base/gpt-5.1-chat-api-parameters-fix;
   * gpt-5.2-chat-latest: lintsinghua/DeepAudit#80) but spend no reasoning
   * unless asked (what they do with reasoning_effort is not verified: any
   * value is accepted); gpt-5-chat itself is an ordinary chat model */
  {"gpt-5.*chat*", {"gpt-5.x-chat", E(NONE) | E(MINIMAL) | E(LOW) | E(MEDIUM) | E(HIGH) |
                    E(XHIGH), SIM_EFFORT_NONE, 0, SIM_PARAM_DEFAULT_ONLY, SIM_PARAM_OK, 0,
                    "wiki.engram.work (gpt-5.1-chat); DeepAudit#80 (gpt-5.2-chat-latest)"}},
  {"gpt-5*chat*", {NULL, 0, 0, 1, SIM_PARAM_OK, SIM_PARAM_OK, 0, NULL}},
  {"o1-mini*", {"o1-mini", 0, SIM_EFFORT_MEDIUM, 0, SIM_PARAM_DEFAULT_ONLY,
                SIM_PARAM_UNSUPPORTED, 0, OPENAI_REASONING " (no reasoning_effort)"}},
  {"o1-preview*", {"o1-preview", 0, SIM_EFFORT_MEDIUM, 0, SIM_PARAM_DEFAULT_ONLY,
                   SIM_PARAM_UNSUPPORTED, 0, OPENAI_REASONING " (no reasoning_effort)"}},
  {"o3-mini*", {"o3-mini", E(LOW) | E(MEDIUM) | E(HIGH), SIM_EFFORT_MEDIUM, 0,
                SIM_PARAM_UNSUPPORTED, SIM_PARAM_UNSUPPORTED, 0, "simonw/llm#731"}},
  {"o1*", {"o1", E(LOW) | E(MEDIUM) | E(HIGH), SIM_EFFORT_MEDIUM, 0, SIM_PARAM_DEFAULT_ONLY,
           SIM_PARAM_UNSUPPORTED, 0, OPENAI_REASONING}},
  {"o3*", {"o3", E(LOW) | E(MEDIUM) | E(HIGH), SIM_EFFORT_MEDIUM, 0, SIM_PARAM_DEFAULT_ONLY,
           SIM_PARAM_UNSUPPORTED, 0, OPENAI_REASONING}},
  {"o4-mini*", {"o4-mini", E(LOW) | E(MEDIUM) | E(HIGH), SIM_EFFORT_MEDIUM, 0,
                SIM_PARAM_DEFAULT_ONLY, SIM_PARAM_UNSUPPORTED, 0, OPENAI_REASONING}},
  {"gpt-5*-pro*", {"gpt-5-pro", E(HIGH), SIM_EFFORT_HIGH, 0, SIM_PARAM_DEFAULT_ONLY,
                   SIM_PARAM_UNSUPPORTED, 0, "ReasoningEffort: gpt-5-pro only high"}},
  {"gpt-5.1*", {"gpt-5.1", E(NONE) | E(LOW) | E(MEDIUM) | E(HIGH), SIM_EFFORT_NONE, 0,
                SIM_PARAM_DEFAULT_ONLY, SIM_PARAM_UNSUPPORTED, 1,
                "ReasoningEffort: gpt-5.1 defaults to none"}},
  {"gpt-5.*", {"gpt-5.2+", E(NONE) | E(LOW) | E(MEDIUM) | E(HIGH) | E(XHIGH), SIM_EFFORT_NONE,
               0, SIM_PARAM_DEFAULT_ONLY, SIM_PARAM_UNSUPPORTED, 1,
               "ReasoningEffort: xhigh after gpt-5.1-codex-max"}},
  {"gpt-5*", {"gpt-5", E(MINIMAL) | E(LOW) | E(MEDIUM) | E(HIGH), SIM_EFFORT_MEDIUM, 0,
              SIM_PARAM_DEFAULT_ONLY, SIM_PARAM_UNSUPPORTED, 0,
              "ReasoningEffort: before gpt-5.1 default medium"}},
};

static const sim_reasoning_rules ordinary = {NULL, 0, 0, 1, SIM_PARAM_OK, SIM_PARAM_OK, 0, NULL};

const sim_reasoning_rules *sim_reasoning_rules_of(const char *model)
{
  char name[128];
  sim_model_name(model, name, sizeof name);
  for (size_t i = 0; i < sizeof families / sizeof *families; i++)
    if (sim_glob_match(families[i].glob, name))
      return &families[i].r;
  return &ordinary;
}

int sim_effort_parse(const char *s)
{
  for (int i = 0; s && i < SIM_EFFORT_COUNT; i++)
    if (strcmp(s, effort_names[i]) == 0)
      return i;
  return -1;
}

const char *sim_effort_name(int effort)
{
  return effort >= 0 && effort < SIM_EFFORT_COUNT ? effort_names[effort] : "none";
}

int sim_reasoning_expected(int effort)
{
  return effort >= 0 && effort < SIM_EFFORT_COUNT ? expected_tokens[effort] : 0;
}

int sim_thinking_expected(int budget_tokens, int adaptive)
{
  if (adaptive)
    return expected_tokens[SIM_EFFORT_MEDIUM];
  return budget_tokens > 0 ? budget_tokens / 4 : 0;
}

int sim_reasoning_tokens(const sim_request *req, double difficulty, uint64_t key)
{
  double mean;
  sim_rng rng;
  if (req->thinking_budget > 0 || req->thinking_adaptive)
    mean = sim_thinking_expected(req->thinking_budget, req->thinking_adaptive);
  else
    mean = sim_reasoning_expected(req->effort);
  if (mean <= 0)
    return 0;
  sim_rng_init(&rng, sim_hash_str(key, "reasoning tokens"));
  /* log-normal with mean 1: exp(s N - s^2 / 2) */
  mean *= difficulty * exp(0.35 * sim_rng_normal(&rng) - 0.35 * 0.35 / 2);
  if (mean < 1)
    mean = 1;
  if (req->thinking_budget > 0 && mean > req->thinking_budget)
    mean = req->thinking_budget;
  if (mean > 1e6)
    mean = 1e6;
  return (int)lround(mean);
}

double sim_reasoning_err_scale(const sim_request *req)
{
  if (req->thinking_budget > 0 || req->thinking_adaptive)
    return err_scales[SIM_EFFORT_HIGH];
  return req->effort >= 0 && req->effort < SIM_EFFORT_COUNT ? err_scales[req->effort] : 1.0;
}
