/* The built-in encodings. At build time src/bpe/vocab/bpe_pack.c turns each
 * standard .tiktoken rank file in src/bpe/vocab/ into a vocabulary image
 * (hash table included) that is assembled into the executable's read-only
 * data here (.incbin), so llmrun needs no files at run time and loading an
 * encoding (llm_bpe_get, once per process) parses nothing: only the pages
 * that a text touches are ever read.
 *
 * Special tokens and expected sizes: tiktoken_ext/openai_public.py.
 * r50k_base is the first 50,256 ranks of p50k_base (scripts/vocab_fetch
 * checks this against r50k's published sha256), so only p50k is stored. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "bpe_internal.h"

#define VOCAB(file) LLMRUN_VOCAB_DIR "/" file /* the build directory */

/* A start and an end label around each image, hidden so that the
 * executable's exported symbols (its Lua API) stay as they were. */
#define INCBIN(sym, file)                                                   \
  __asm__(".section .rodata\n"                                              \
          ".balign 16\n"                                                    \
          ".globl " #sym "\n.hidden " #sym "\n" #sym ":\n"                  \
          ".incbin \"" file "\"\n"                                          \
          ".globl " #sym "_end\n.hidden " #sym "_end\n" #sym "_end:\n"      \
          ".previous\n");                                                   \
  extern const char sym[], sym##_end[]

INCBIN(llm_vocab_cl100k, VOCAB("cl100k_base.bin"));
INCBIN(llm_vocab_o200k, VOCAB("o200k_base.bin"));
INCBIN(llm_vocab_p50k, VOCAB("p50k_base.bin"));

#define ENDOFTEXT "<|endoftext|>"
#define FIM_PREFIX "<|fim_prefix|>"
#define FIM_MIDDLE "<|fim_middle|>"
#define FIM_SUFFIX "<|fim_suffix|>"
#define ENDOFPROMPT "<|endofprompt|>"

static const llm_bpe_special_token cl100k_special[] = {
  {ENDOFTEXT, 100257}, {FIM_PREFIX, 100258}, {FIM_MIDDLE, 100259},
  {FIM_SUFFIX, 100260}, {ENDOFPROMPT, 100276},
};
static const llm_bpe_special_token o200k_special[] = {
  {ENDOFTEXT, 199999}, {ENDOFPROMPT, 200018},
};
static const llm_bpe_special_token p50k_special[] = {
  {ENDOFTEXT, 50256},
};
static const llm_bpe_special_token p50k_edit_special[] = {
  {ENDOFTEXT, 50256}, {FIM_PREFIX, 50281}, {FIM_MIDDLE, 50282}, {FIM_SUFFIX, 50283},
};

typedef struct {
  const char *name;
  llm_bpe_pattern pattern;
  const char *data, *data_end;
  uint32_t ranks; /* ranks used from the image (0: all) */
  const llm_bpe_special_token *special;
  size_t n_special;
} builtin;

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const builtin builtins[] = {
  {"cl100k_base", LLM_BPE_PAT_CL100K, llm_vocab_cl100k, llm_vocab_cl100k_end, 0,
   cl100k_special, N(cl100k_special)},
  {"o200k_base", LLM_BPE_PAT_O200K, llm_vocab_o200k, llm_vocab_o200k_end, 0,
   o200k_special, N(o200k_special)},
  {"p50k_base", LLM_BPE_PAT_R50K, llm_vocab_p50k, llm_vocab_p50k_end, 0,
   p50k_special, N(p50k_special)},
  {"p50k_edit", LLM_BPE_PAT_R50K, llm_vocab_p50k, llm_vocab_p50k_end, 0,
   p50k_edit_special, N(p50k_edit_special)},
  {"r50k_base", LLM_BPE_PAT_R50K, llm_vocab_p50k, llm_vocab_p50k_end, 50256,
   p50k_special, N(p50k_special)},
};

const char *const llm_bpe_builtin_names[] = {
  "cl100k_base", "o200k_base", "p50k_base", "p50k_edit", "r50k_base", "gpt2", NULL
};

static _Atomic(llm_bpe *) loaded[N(builtins)];
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static llm_bpe *load_builtin(const builtin *b, char *err, size_t errlen)
{
  return llm_bpe_from_blob(b->name, b->pattern, b->data, (size_t)(b->data_end - b->data),
                           b->ranks, b->special, b->n_special, err, errlen);
}

const llm_bpe *llm_bpe_get(const char *name, char *err, size_t errlen)
{
  size_t i;
  llm_bpe *e;
  if (name && strcmp(name, "gpt2") == 0)
    name = "r50k_base"; /* same ranks, pattern and special token */
  for (i = 0; i < N(builtins); i++)
    if (name && strcmp(name, builtins[i].name) == 0)
      break;
  if (i == N(builtins)) {
    snprintf(err, errlen, "unknown encoding '%s' (known: cl100k_base, o200k_base, "
             "p50k_base, p50k_edit, r50k_base, gpt2)", name ? name : "(null)");
    return NULL;
  }
  /* double-checked: the acquire load pairs with the release store, so a
   * thread that sees the pointer sees the finished tables too */
  e = atomic_load_explicit(&loaded[i], memory_order_acquire);
  if (e)
    return e;
  pthread_mutex_lock(&load_lock);
  e = atomic_load_explicit(&loaded[i], memory_order_relaxed);
  if (!e) {
    e = load_builtin(&builtins[i], err, errlen);
    if (e)
      atomic_store_explicit(&loaded[i], e, memory_order_release);
  }
  pthread_mutex_unlock(&load_lock);
  return e;
}
