/* Character classes for the tiktoken split patterns, looked up in tables
 * generated from the Unicode Character Database by
 * scripts/gen_unicode_tables.lua (see bpe_unicode_data.c for the version). */
#ifndef LLMRUN_BPE_UNICODE_H
#define LLMRUN_BPE_UNICODE_H

#include <stdint.h>

/* The low 3 bits of a table entry. \p{L} = LU|LL|LMO; the o200k pattern
 * also splits letters into "upper-ish" [Lu Lt Lm Lo M] and "lower-ish"
 * [Ll Lm Lo M] sets, which is why Lm/Lo and M get classes of their own. */
enum llm_uc_class {
  LLM_UC_OTHER = 0, /* punctuation, symbols, controls, unassigned */
  LLM_UC_LU = 1,    /* Lu, Lt */
  LLM_UC_LL = 2,    /* Ll */
  LLM_UC_LMO = 3,   /* Lm, Lo */
  LLM_UC_M = 4,     /* Mn, Mc, Me */
  LLM_UC_N = 5,     /* Nd, Nl, No */
  LLM_UC_WS = 6     /* White_Space (what \s matches) */
};
#define LLM_UC_CLASS_MASK 7
#define LLM_UC_ASSIGNED 8 /* set for every code point that is not Cn */

extern const char llm_uc_version[];
extern const uint8_t llm_uc_stage1[];
extern const uint8_t llm_uc_stage2[];

/* Class of a Unicode scalar value (cp <= 0x10FFFF), with the ASSIGNED bit. */
static inline unsigned llm_uc_lookup(uint32_t cp)
{
  return llm_uc_stage2[((unsigned)llm_uc_stage1[cp >> 7] << 7) | (cp & 127)];
}

#endif
