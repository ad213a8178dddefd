/* A tiktoken-compatible byte-pair-encoding tokenizer: exact cl100k_base,
 * o200k_base, p50k_base, p50k_edit and r50k_base (gpt2), with their
 * vocabularies compiled into the binary.
 *
 * Text is bytes: any byte string encodes (NUL, invalid UTF-8...) and
 * decode(encode(x)) == x. Special-token text such as "<|endoftext|>" is
 * ordinary text unless LLM_BPE_SPECIAL is passed.
 *
 * Threads: an encoding is immutable once loaded and shared by all threads;
 * every function here is reentrant and may run in several threads at once
 * on the same encoding. llm_bpe_get loads each built-in encoding once per
 * process (on first use, a few milliseconds) and never frees it.
 *
 * Typical use (counting usage in the simulator):
 *   char err[128];
 *   const llm_bpe *enc = llm_bpe_get("o200k_base", err, sizeof err);
 *   size_t n = enc ? llm_bpe_count(enc, text, len, 0) : 0;
 *
 * Cost: llm_bpe_get takes ~0.1 ms the first time (the tables are used in
 * place from the executable); counting runs at tens of MB/s on one core,
 * near-linear even on a long run of one character (memory: up to ~40
 * bytes per byte of the longest piece, plus, for a text that needs many
 * merges, a cache of its merged pieces of at most 384 KB; all freed
 * before returning). */
#ifndef LLMRUN_BPE_H
#define LLMRUN_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "bpe_pretok.h"

typedef struct llm_bpe llm_bpe;

/* Flags for encode/count/truncate. */
#define LLM_BPE_SPECIAL 1u /* recognise special-token text as its token */

/* A built-in encoding by name ("cl100k_base", "o200k_base", "p50k_base",
 * "p50k_edit", "r50k_base", "gpt2"), loaded on first use. NULL with a
 * message in err for an unknown name or a failed load. */
const llm_bpe *llm_bpe_get(const char *name, char *err, size_t errlen);

/* The built-in encoding names, NULL-terminated. */
extern const char *const llm_bpe_builtin_names[];

/* ---- one encoding -------------------------------------------------------- */

const char *llm_bpe_name(const llm_bpe *enc);
/* One past the highest token id, special tokens included. */
uint32_t llm_bpe_n_vocab(const llm_bpe *enc);

/* The bytes of token `id` (an ordinary or a special token): sets *bytes and
 * returns the length, or returns 0 for an id that is no token. */
size_t llm_bpe_token_bytes(const llm_bpe *enc, uint32_t id, const uint8_t **bytes);

/* ---- encoding ------------------------------------------------------------ */

/* A growing array of ids; start from {0} and free with llm_bpe_ids_free. */
typedef struct {
  uint32_t *ids;
  size_t n, cap;
} llm_bpe_ids;

/* Appends the ids of text to out. Returns 0, or -1 when out of memory
 * (out then holds a prefix of the ids). */
int llm_bpe_encode(const llm_bpe *enc, const void *text, size_t len, unsigned flags,
                   llm_bpe_ids *out);
void llm_bpe_ids_free(llm_bpe_ids *ids);

/* The number of tokens of text, as llm_bpe_encode would give, without
 * storing ids. Returns (size_t)-1 only when out of memory (long pieces
 * need a scratch buffer). */
size_t llm_bpe_count(const llm_bpe *enc, const void *text, size_t len, unsigned flags);

/* Decodes ids into a malloc'd buffer (NUL-terminated for convenience; *len
 * excludes the NUL). Returns NULL with a message for an id that is no
 * token, or when out of memory. */
char *llm_bpe_decode(const llm_bpe *enc, const uint32_t *ids, size_t n, size_t *len,
                     char *err, size_t errlen);

/* ---- truncation -----------------------------------------------------------
 * Byte lengths of the longest head / tail of text that holds at most
 * max_tokens tokens when encoded on its own. The cut is at a token boundary
 * of the whole text's encoding, moved off the middle of a UTF-8 character.
 * Return (size_t)-1 only when out of memory. */
size_t llm_bpe_head_bytes(const llm_bpe *enc, const void *text, size_t len,
                          size_t max_tokens, unsigned flags);
size_t llm_bpe_tail_bytes(const llm_bpe *enc, const void *text, size_t len,
                          size_t max_tokens, unsigned flags);

/* ---- chat requests ----------------------------------------------------------
 * The OpenAI cookbook's overheads for chat messages (the full rules, tools
 * included, are in lualib/llm/tokens.lua): a request's prompt tokens are
 * the tokens of each message's strings (role, content, name), plus 3 per
 * message, 1 per name, and 3 for the reply priming. */
#define LLM_BPE_TOKENS_PER_MESSAGE 3
#define LLM_BPE_TOKENS_PER_NAME 1
#define LLM_BPE_REPLY_PRIMING 3

/* ---- loading other rank files ---------------------------------------------
 * Builds an encoding from a .tiktoken rank file ("base64(token) rank" per
 * line) held in memory, which must outlive nothing: the data is copied.
 * specials: NULL or n_special entries. expect_ranks: the number of lines
 * the file must have, or 0 for any. NULL with a message on malformed data
 * (bad base64, missing or duplicate rank or token, a missing single-byte
 * token, truncation) or when out of memory. Free with llm_bpe_free. */
typedef struct {
  const char *text;
  uint32_t id;
} llm_bpe_special_token;

llm_bpe *llm_bpe_load_tiktoken(const char *name, llm_bpe_pattern pattern,
                               const void *data, size_t len, uint32_t expect_ranks,
                               const llm_bpe_special_token *specials, size_t n_special,
                               char *err, size_t errlen);
void llm_bpe_free(llm_bpe *enc);

#endif
