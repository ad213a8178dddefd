/* Shared by the simulator's Anthropic Messages API files, not an API:
 * sim_messages.c reads and checks a POST /v1/messages request into an
 * amsg_req, sim_messages_cache.c counts its input tokens and applies
 * Anthropic's prompt-caching rules to its blocks, and sim_messages_wire.c
 * writes the answer as a Message object or as its SSE events. */
#ifndef LLMRUN_SIM_MESSAGES_H
#define LLMRUN_SIM_MESSAGES_H

#include "sim_server.h"

/* One unit of the prompt in cache order (tools, then system, then the
 * messages' content blocks): the cumulative hash of the prompt through
 * it, its tokens, and the TTL of a cache_control on it. */
typedef struct amsg_block {
  uint64_t hash;
  int tokens;
  int ttl_s;              /* 300 or 3600 with cache_control; 0 without */
} amsg_block;

typedef struct amsg_req {
  sim_request mr;         /* what the model sees */
  sim_message *msgs;      /* system first (role "system"), then the turns; a
                             tool_result block becomes a role "tool" message */
  size_t nmsgs, capmsgs;
  char **owned;           /* strings built while reading (joined text, JSON) */
  size_t nowned;
  const char **stop;
  sim_tool *tools;
  amsg_block *blocks;
  size_t nblocks, capblocks;
  uint64_t hash;          /* running hash of the prompt, for the next block */
  int breakpoints;        /* cache_control blocks */
  int auto_ttl_s;         /* top-level cache_control (automatic caching): its TTL */
  int stream;
  int tool_prompt;        /* tokens of the hidden tool-use system prompt */
} amsg_req;

/* Usage under the caching rules (sim_messages_cache.c). */
typedef struct amsg_usage {
  int input_tokens;       /* after the last cache read or write */
  int cache_read;
  int cache_write_5m, cache_write_1h;
} amsg_usage;

/* sim_messages.c */
void amsg_req_free(amsg_req *q);

/* sim_messages_cache.c: adds a block of `tokens` whose content is
 * p[0..n) (hashed); -1 when out of memory. */
int amsg_add_block(amsg_req *q, const char *kind, const char *p, size_t n, int tokens,
                   int ttl_s);
/* The request's usage; reads and refreshes live entries, writes new ones. */
void amsg_cache_apply(sim_server *s, const amsg_req *q, int64_t now, amsg_usage *u);
/* All input tokens: the blocks plus the reply primer. */
int amsg_input_total(const amsg_req *q);

/* sim_messages_wire.c */
extern const sim_wire sim_anthropic_wire;
/* Sets up the chat's Anthropic state: ids, usage, the blocks and steps of
 * the stream. 0, or -1 when out of memory. */
int amsg_prepare(sim_req *r, sim_chat *c, const amsg_usage *u, const sim_request *mr);

#endif
