/* TEMPORARY stand-in for the simulator's content model (sim_model.h),
 * so the server (sim.c) builds and runs before branch feat/simmodel lands.
 * DELETE THIS FILE when merging feat/simmodel: its sim_model.c defines the
 * same functions and the link would fail with duplicates.
 *
 * It honours the interface's contract (deterministic answers, one piece
 * per token, max_tokens -> "length", stop sequences, logprobs) with none
 * of the real model's skills: the answer is a few words picked by a hash
 * of the request, and a token is approximated as 4 bytes. */
#include "sim_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ s[i]) * 0x100000001b3ull; /* FNV-1a */
  return h;
}

static uint64_t next(uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int sim_model_count_tokens(const char *text, size_t len)
{
  (void)text;
  return (int)((len + 3) / 4);
}

int sim_model_prompt_tokens(const sim_request *req)
{
  int n = 3;
  for (size_t i = 0; i < req->nmessages; i++) {
    n += 3 + sim_model_count_tokens(req->messages[i].content, req->messages[i].content_len);
    n += sim_model_count_tokens(req->messages[i].role, strlen(req->messages[i].role));
    if (req->messages[i].name)
      n += 1 + sim_model_count_tokens(req->messages[i].name, strlen(req->messages[i].name));
  }
  return n;
}

int sim_model_answer(const sim_request *req, int choice, sim_answer *out)
{
  static const char *const words[] = {
    "The", "answer", "is", "simulated", "and", "deterministic", "for", "this",
    "prompt", "so", "tests", "can", "check", "it", "again", "later",
  };
  uint64_t h = 0xcbf29ce484222325ull, st;
  size_t cap = 256, len = 0, np = 0, nw;
  char *text;
  size_t *ends;
  if (!req || !req->model || choice < 0)
    return -1;
  h = mix(h, req->model, strlen(req->model));
  for (size_t i = 0; i < req->nmessages; i++) {
    h = mix(h, req->messages[i].role, strlen(req->messages[i].role));
    h = mix(h, req->messages[i].content, req->messages[i].content_len);
  }
  if (req->has_seed)
    h = mix(h, &req->seed, sizeof req->seed);
  h = mix(h, &choice, sizeof choice);
  st = h;
  nw = 8 + next(&st) % 24;
  text = malloc(cap);
  ends = malloc(nw * sizeof *ends);
  if (!text || !ends) {
    free(text);
    free(ends);
    return -1;
  }
  out->finish_reason = "stop";
  for (size_t i = 0; i < nw; i++) {
    const char *w = words[next(&st) % (sizeof words / sizeof *words)];
    size_t wl = strlen(w);
    if (req->max_tokens > 0 && np == (size_t)req->max_tokens) {
      out->finish_reason = "length";
      break;
    }
    if (len + wl + 2 > cap) {
      char *nt = realloc(text, cap * 2);
      if (!nt) {
        free(text);
        free(ends);
        return -1;
      }
      text = nt;
      cap *= 2;
    }
    if (i)
      text[len++] = ' ';
    memcpy(text + len, w, wl);
    len += wl;
    ends[np++] = len;
  }
  /* stop sequences: cut before the first occurrence */
  for (size_t s = 0; s < req->nstop; s++) {
    const char *hit;
    text[len] = '\0';
    if (req->stop[s][0] && (hit = strstr(text, req->stop[s])) != NULL) {
      len = (size_t)(hit - text);
      while (np > 0 && ends[np - 1] > len)
        np--;
      if (np == 0 || ends[np - 1] < len)
        ends[np++] = len;
      out->finish_reason = "stop";
    }
  }
  if (len == 0)
    np = 0;
  out->text = text;
  out->len = len;
  out->piece_ends = ends;
  out->npieces = np;
  out->completion_tokens = (int)np;
  out->logprobs = NULL;
  if (req->logprobs) {
    out->logprobs = malloc((np ? np : 1) * sizeof(double));
    for (size_t i = 0; out->logprobs && i < np; i++)
      out->logprobs[i] = -(double)(next(&st) % 1000) / 1000.0;
  }
  return 0;
}

void sim_answer_free(sim_answer *a)
{
  if (!a)
    return;
  free(a->text);
  free(a->piece_ends);
  free(a->logprobs);
  memset(a, 0, sizeof *a);
}

int sim_model_embed_dims(const char *model)
{
  if (model && strstr(model, "large"))
    return 3072;
  return 1536;
}

int sim_model_embed(const char *model, const char *text, size_t len, float *out, int dims)
{
  double norm = 0;
  (void)model;
  if (dims < 1 || dims > 3072)
    return -1;
  for (int i = 0; i < dims; i++)
    out[i] = 0;
  /* hashed character trigrams, so similar texts get similar vectors */
  for (size_t i = 0; i + 3 <= len || (i == 0 && len > 0); i++) {
    uint64_t h = mix(0xcbf29ce484222325ull, text + i, len < 3 ? len : 3);
    out[h % (uint64_t)dims] += (h >> 32) & 1 ? 1.0f : -1.0f;
    if (len < 3)
      break;
  }
  for (int i = 0; i < dims; i++)
    norm += (double)out[i] * out[i];
  norm = norm > 0 ? sqrt(norm) : 1;
  for (int i = 0; i < dims; i++)
    out[i] = (float)(out[i] / norm);
  return 0;
}
