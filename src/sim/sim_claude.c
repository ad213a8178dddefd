/* Facts about Claude models that the simulator's Messages API needs: the
 * minimum prompt prefix that prompt caching stores, the size of the
 * hidden tool-use system prompt, and the largest max_tokens. First match
 * wins; names are normalised as sim_model_name does.
 *
 * Sources:
 *   - minimum cacheable prompt: 4,096 tokens for Opus 4.5 / 4.6 / 4.7 and
 *     Haiku 4.5; 2,048 for Haiku 3 and 3.5; 1,024 for the others
 *     (Anthropic's prompt-caching guide, as quoted at
 *     clawdemy.org/lessons/building-with-claude/prompt-caching-and-context-
 *     management/cheatsheet and docs.orq.ai/docs/proxy/prompt-caching);
 *   - tool-use system prompt: 530 / 281 tokens (auto / any, tool) for
 *     Claude 3 Opus, 264 / 340 for the Haikus 3 and 3.5, 346 / 313 for
 *     newer models (docs.anthropic.com/en/docs/tool-use-pricing-and-tokens;
 *     the 346 quoted at claudecodeguides.com/why-claude-prompts-use-too-
 *     many-tokens);
 *   - max output tokens: the price table's max_output_tokens (LiteLLM's
 *     data, lualib/llm/pricing_data.lua); the error says e.g. "max_tokens:
 *     21333 > 4096, which is the maximum allowed number of output tokens for
 *     claude-3-opus-20240229" (anthropics/claude-code#11302);
 *   - Opus 4.7 and 4.8 refuse temperature: "`temperature` is deprecated for
 *     this model." (conselara.dev/notes/opus-4-8-temperature-deprecated;
 *     braintrustdata/lingua#196 for 4.7). */
#include "sim_model.h"
#include "sim_internal.h"

#include <string.h>

/* exact: the prefix names one model: only it, dated ("-20250514") or
 * "-latest" match, not a later version ("claude-opus-4-8"). */
static const struct {
  const char *prefix;
  int exact;
  sim_claude_rules r;
} rules[] = {
  {"claude-opus-4-5", 0, {4096, 346, 313, 64000, 0}},
  {"claude-opus-4-6", 0, {4096, 346, 313, 128000, 0}},
  {"claude-opus-4-7", 0, {4096, 346, 313, 128000, 1}},
  {"claude-opus-4-8", 0, {1024, 346, 313, 128000, 1}},
  {"claude-haiku-4-5", 0, {4096, 346, 313, 64000, 0}},
  {"claude-3-haiku", 1, {2048, 264, 340, 4096, 0}},
  {"claude-3-5-haiku", 0, {2048, 264, 340, 8192, 0}},
  {"claude-3-opus", 1, {1024, 530, 281, 4096, 0}},
  {"claude-3-5-sonnet", 0, {1024, 346, 313, 8192, 0}},
  {"claude-3-7-sonnet", 0, {1024, 346, 313, 64000, 0}},
  {"claude-sonnet-4", 0, {1024, 346, 313, 64000, 0}}, /* also -4-5 and -4-6 */
  {"claude-4-sonnet", 0, {1024, 346, 313, 64000, 0}},
  {"claude-opus-4-1", 1, {1024, 346, 313, 32000, 0}},
  {"claude-opus-4", 1, {1024, 346, 313, 32000, 0}},
  {"claude-4-opus", 1, {1024, 346, 313, 32000, 0}},
};

static const sim_claude_rules other = {1024, 346, 313, 0, 0};

int sim_is_claude(const char *model)
{
  char name[128];
  sim_model_name(model, name, sizeof name);
  return strncmp(name, "claude", 6) == 0;
}

const sim_claude_rules *sim_claude_rules_of(const char *model)
{
  char name[128];
  sim_model_name(model, name, sizeof name);
  for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
    size_t n = strlen(rules[i].prefix);
    const char *rest = name + n;
    if (strncmp(name, rules[i].prefix, n) != 0)
      continue;
    if (!rules[i].exact || !*rest || strncmp(rest, "-20", 3) == 0 ||
        strcmp(rest, "-latest") == 0)
      return &rules[i].r;
  }
  return &other;
}
