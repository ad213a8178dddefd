/* libFuzzer harness for the tokenizer (scripts/fuzz_tokens runs it; not
 * part of CI). The first input byte picks what to do with the rest:
 *   bits 0-1: the encoding (cl100k_base, o200k_base, p50k_base, r50k_base)
 *   bit 2:    recognise special tokens
 *   bits 3-7 == 31: parse the rest as a .tiktoken rank file instead
 * and aborts unless, for every byte string x:
 *   decode(encode(x)) == x, count(x) == #encode(x),
 *   a head / tail cut to n tokens holds at most n tokens,
 *   and a malformed rank file is an error, never a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe/bpe.h"

static const char *const names[4] = {"cl100k_base", "o200k_base", "p50k_base", "r50k_base"};

static void die(const char *what, size_t size)
{
  fprintf(stderr, "fuzz_bpe: %s (input of %zu bytes)\n", what, size);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char err[256];
  const llm_bpe *e;
  llm_bpe_ids ids = {0};
  unsigned flags;
  size_t len, n;
  char *back;
  if (size == 0)
    return 0;
  if ((data[0] >> 3) == 31) {
    llm_bpe *custom = llm_bpe_load_tiktoken("fuzz", LLM_BPE_PAT_O200K, data + 1, size - 1, 0,
                                            NULL, 0, err, sizeof err);
    if (custom && llm_bpe_count(custom, data + 1, size - 1, 0) == (size_t)-1)
      die("count failed on a loaded rank file", size);
    llm_bpe_free(custom);
    return 0;
  }
  e = llm_bpe_get(names[data[0] & 3], err, sizeof err);
  if (!e)
    die(err, size);
  flags = data[0] & 4 ? LLM_BPE_SPECIAL : 0;
  data++, size--;
  if (llm_bpe_encode(e, data, size, flags, &ids) != 0)
    die("encode failed", size);
  if (llm_bpe_count(e, data, size, flags) != ids.n)
    die("count != #encode", size);
  back = llm_bpe_decode(e, ids.ids, ids.n, &len, err, sizeof err);
  if (!back || len != size || memcmp(back, data, size) != 0)
    die("decode(encode(x)) != x", size);
  free(back);
  n = ids.n / 2;
  len = llm_bpe_head_bytes(e, data, size, n, flags);
  if (len > size || llm_bpe_count(e, data, len, flags) > n)
    die("head cut holds too many tokens", size);
  len = llm_bpe_tail_bytes(e, data, size, n, flags);
  if (len > size || llm_bpe_count(e, data + size - len, len, flags) > n)
    die("tail cut holds too many tokens", size);
  llm_bpe_ids_free(&ids);
  return 0;
}
