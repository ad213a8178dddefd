/* Input tokens and prompt caching for the simulator's Messages API,
 * following Anthropic's prompt-caching guide
 * (platform.claude.com/docs/en/build-with-claude/prompt-caching):
 *   - the prompt is cached in the order tools, system, messages; a block
 *     with cache_control {"type":"ephemeral"} is a breakpoint, and the
 *     prefix up to and including it is what gets written and read; a
 *     top-level cache_control (automatic caching) puts one on the last
 *     block; at most 4 breakpoints;
 *   - a prefix shorter than the model's minimum (sim_claude.c: 1,024,
 *     2,048 or 4,096 tokens) is not cached, without an error;
 *   - a request reads the longest live prefix that ends at one of the 20
 *     blocks up to and including each breakpoint (the lookback), and
 *     writes the prefix of every breakpoint beyond what it read;
 *   - entries live 5 minutes ("ttl":"5m", the default) or an hour
 *     ("1h") after their last use: a read refreshes them;
 *   - usage: cache_read_input_tokens, cache_creation_input_tokens (split
 *     by TTL in cache_creation.ephemeral_5m/1h_input_tokens), and
 *     input_tokens = the tokens after the last read or write, so that
 *     input + cache_creation + cache_read is the whole prompt.
 * The tokens are the simulator's count (o200k_base; Anthropic's tokenizer
 * is not public) plus framing: 3 per message, the tool-use system prompt
 * (sim_claude.c) with the tools, 1,590 per image (the guide's figure for a
 * 1092x1092 image), and 3 for the reply's primer. */
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"
#include "sim_messages.h"

#define LOOKBACK 20
#define PRIMER_TOKENS 3
#define CACHE_SALT 0xa17b0c5e11e5ca7eULL /* apart from the OpenAI prefix keys */

int amsg_add_block(amsg_req *q, const char *kind, const char *p, size_t n, int tokens,
                   int ttl_s)
{
  amsg_block *b;
  if (llm_grow(&q->blocks, &q->capblocks, q->nblocks + 1, sizeof *q->blocks) != 0)
    return -1;
  if (q->nblocks == 0)
    q->hash = sim_hash_str(CACHE_SALT, q->mr.model);
  q->hash = sim_hash_str(q->hash, kind);
  q->hash = sim_hash_u64(q->hash, n);
  q->hash = sim_hash_bytes(q->hash, p ? p : "", n);
  b = &q->blocks[q->nblocks++];
  b->hash = sim_mix64(q->hash);
  b->tokens = tokens;
  b->ttl_s = ttl_s;
  if (ttl_s)
    q->breakpoints++;
  return 0;
}

int amsg_input_total(const amsg_req *q)
{
  long long t = PRIMER_TOKENS;
  for (size_t i = 0; i < q->nblocks; i++)
    t += q->blocks[i].tokens;
  return t > 1 << 30 ? 1 << 30 : (int)t;
}

void amsg_cache_apply(sim_server *s, const amsg_req *q, int64_t now, amsg_usage *u)
{
  const sim_claude_rules *rules = sim_claude_rules_of(q->mr.model);
  long long *prefix = NULL;
  long long read = 0, done = 0;
  size_t nb = q->nblocks, read_at = 0; /* blocks read: [0, read_at) */
  int total = amsg_input_total(q);
  memset(u, 0, sizeof *u);
  u->input_tokens = total;
  if (nb == 0 || !(prefix = malloc(nb * sizeof *prefix)))
    return;
  for (size_t i = 0; i < nb; i++)
    prefix[i] = (i ? prefix[i - 1] : 0) + q->blocks[i].tokens;

  /* the longest live prefix within the lookback of some breakpoint */
  for (size_t b = 0; b < nb; b++) {
    int ttl = q->blocks[b].ttl_s ? q->blocks[b].ttl_s : (b + 1 == nb ? q->auto_ttl_s : 0);
    if (!ttl)
      continue;
    for (size_t j = b + 1; j-- > 0 && b - j < LOOKBACK;) {
      if (j + 1 <= read_at)
        break;
      if (sim_cache_alive(s->cache, q->blocks[j].hash, now, 0)) {
        read_at = j + 1;
        break;
      }
    }
  }
  if (read_at) {
    sim_cache_alive(s->cache, q->blocks[read_at - 1].hash, now, 1); /* refresh it */
    read = prefix[read_at - 1];
  }
  done = read;

  /* every breakpoint beyond the read prefix writes its prefix, if long enough */
  for (size_t b = read_at; b < nb; b++) {
    int ttl = q->blocks[b].ttl_s ? q->blocks[b].ttl_s : (b + 1 == nb ? q->auto_ttl_s : 0);
    long long seg;
    if (!ttl || prefix[b] < rules->min_cache_tokens)
      continue;
    seg = prefix[b] - done;
    if (ttl >= 3600)
      u->cache_write_1h += (int)seg;
    else
      u->cache_write_5m += (int)seg;
    done = prefix[b];
    sim_cache_put(s->cache, q->blocks[b].hash, now, (int64_t)ttl * SIM_NS);
  }
  u->cache_read = (int)read;
  u->input_tokens = total - (int)done;
  free(prefix);
}
