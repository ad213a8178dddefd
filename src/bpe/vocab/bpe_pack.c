/* Build-time tool: turns a .tiktoken rank file into the vocabulary image
 * that src/bpe/bpe_builtin.c assembles into llmrun (layout: llm_bpe_blob_header
 * in bpe_internal.h). Built and run by CMake; links only bpe_load.c.
 *   bpe_pack NAME INPUT.tiktoken EXPECTED_RANKS OUTPUT */
#include <stdio.h>
#include <stdlib.h>

#include "bpe_internal.h"

static uint32_t align16(uint32_t x) { return (x + 15u) & ~15u; }

static char *read_file(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  long n;
  if (!f)
    return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
    *len = (size_t)n;
  } else {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  return buf;
}

int main(int argc, char **argv)
{
  char err[256], tmp[4096];
  size_t len = 0;
  char *text;
  llm_bpe *e;
  llm_bpe_blob_header h = {0};
  uint8_t *image;
  FILE *out;
  if (argc != 5) {
    fprintf(stderr, "usage: bpe_pack NAME INPUT.tiktoken EXPECTED_RANKS OUTPUT\n");
    return 2;
  }
  if (!(text = read_file(argv[2], &len))) {
    perror(argv[2]);
    return 1;
  }
  e = llm_bpe_load_tiktoken(argv[1], LLM_BPE_PAT_R50K, text, len,
                            (uint32_t)strtoul(argv[3], NULL, 10), NULL, 0, err, sizeof err);
  free(text);
  if (!e) {
    fprintf(stderr, "bpe_pack: %s: %s\n", argv[2], err);
    return 1;
  }
  h.n_bytes = (uint32_t)e->n_bytes;
  memcpy(h.magic, LLM_BPE_BLOB_MAGIC, 8);
  h.endian = LLM_BPE_BLOB_ENDIAN;
  h.hash_check = llm_bpe_blob_hash_check();
  h.n_ranks = e->n_ranks;
  h.max_len = e->max_len;
  h.mask = e->mask;
  memcpy(h.byte_rank, e->byte_rank, sizeof h.byte_rank);
  h.off_slots = align16(sizeof h);
  h.off_pair_rank = align16(h.off_slots + (e->mask + 1) * 4);
  h.off_tok_off = align16(h.off_pair_rank + 65536 * 4);
  h.off_bytes = align16(h.off_tok_off + e->n_ranks * 4);
  h.size = align16(h.off_bytes + h.n_bytes + LLM_BPE_BYTES_SLACK); /* zeros: calloc */
  image = calloc(1, h.size);
  if (!image) {
    fprintf(stderr, "bpe_pack: out of memory\n");
    return 1;
  }
  memcpy(image, &h, sizeof h);
  memcpy(image + h.off_slots, e->slots, (e->mask + 1) * 4);
  memcpy(image + h.off_pair_rank, e->pair_rank, 65536 * 4);
  memcpy(image + h.off_tok_off, e->tok_off, e->n_ranks * 4);
  memcpy(image + h.off_bytes, e->bytes, h.n_bytes);
  snprintf(tmp, sizeof tmp, "%s.tmp", argv[4]);
  out = fopen(tmp, "wb");
  if (!out || fwrite(image, 1, h.size, out) != h.size || fclose(out) != 0 ||
      rename(tmp, argv[4]) != 0) {
    perror(argv[4]);
    return 1;
  }
  free(image);
  llm_bpe_free(e);
  return 0;
}
