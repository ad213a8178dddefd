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
 * average, so confidence-based cascades work, imperfectly, as in life. */
#ifndef LLMRUN_SIM_MODEL_H
#define LLMRUN_SIM_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct sim_message {
  const char *role;       /* "system" | "user" | "assistant" | "tool" ... */
  const char *content;    /* text content (parts already concatenated) */
  size_t content_len;
  const char *name;       /* optional, NULL if absent */
} sim_message;

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
} sim_request;

typedef struct sim_answer {
  char *text;             /* malloc'd, UTF-8, not NUL-counted in len */
  size_t len;
  int completion_tokens;  /* usage.completion_tokens */
  const char *finish_reason; /* "stop" or "length" (static string) */
  size_t *piece_ends;     /* streaming: piece i is text[piece_ends[i-1] .. piece_ends[i]) */
  size_t npieces;         /* one piece per completion token */
  double *logprobs;       /* per piece when requested, else NULL */
} sim_answer;

/* Fills *out for choice `choice` (0 .. n-1) of req. 0, or -1 on bad input
 * (out untouched). Free with sim_answer_free. */
int sim_model_answer(const sim_request *req, int choice, sim_answer *out);
void sim_answer_free(sim_answer *a);

/* usage.prompt_tokens for the request, counted as OpenAI counts chat
 * input (3 per message + content + 1 per name + 3 priming). */
int sim_model_prompt_tokens(const sim_request *req);

/* Tokens in a plain text (the embeddings endpoint's usage). */
int sim_model_count_tokens(const char *text, size_t len);

/* Deterministic embedding of text into out[0 .. dims-1], L2-normalised;
 * similar texts get similar vectors. 0, or -1 if dims is out of range. */
int sim_model_embed(const char *model, const char *text, size_t len, float *out, int dims);
/* The model's native dimension (1536 for text-embedding-3-small...). */
int sim_model_embed_dims(const char *model);

#endif
