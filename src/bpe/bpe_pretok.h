/* The pre-tokenizers: tiktoken splits text into pieces with a regular
 * expression before BPE, and no token crosses a piece boundary. These are
 * hand-written scanners that find the same pieces as the patterns in
 * tiktoken_ext/openai_public.py (the npm tiktoken package's registry.json
 * holds the same strings):
 *
 * r50k_base, p50k_base (and gpt2):
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * cl100k_base:
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
 *   | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * o200k_base:
 *   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *   |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *   |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * The input is bytes. Valid UTF-8 is decoded strictly (no overlongs, no
 * surrogates); every byte of an invalid sequence is a character of its own
 * in no class (like a symbol), so any byte string splits into pieces that
 * cover it exactly. Pure functions of their arguments: thread-safe. */
#ifndef LLMRUN_BPE_PRETOK_H
#define LLMRUN_BPE_PRETOK_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  LLM_BPE_PAT_R50K = 0, /* also p50k_base, p50k_edit, gpt2 */
  LLM_BPE_PAT_CL100K = 1,
  LLM_BPE_PAT_O200K = 2
} llm_bpe_pattern;

/* The end of the piece that starts at s[pos]; requires pos < len, and the
 * result is always > pos. */
size_t llm_pretok_next(llm_bpe_pattern pat, const uint8_t *s, size_t pos, size_t len);

#endif
