/* libFuzzer target for the JSON reader and writer (dev-time; not in ctest):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *     tests/fuzz/fuzz_json.c src/json.c src/json_write.c -lm -o fuzz_json
 *   ./fuzz_json -max_total_time=300
 * Checks: no crash or overread on any input, and an accepted input
 * survives write -> parse -> write unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  json_doc *d1, *d2;
  json_error err;
  llm_buf a, b;
  const json_value *v = json_parse((const char *)data, size, &d1, &err), *w;
  if (!v)
    return 0;
  llm_buf_init(&a);
  llm_buf_init(&b);
  json_put_value(&a, v);
  w = json_parse(a.data, a.len, &d2, &err);
  if (!w)
    abort();
  json_put_value(&b, w);
  if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
    abort();
  json_free(d1);
  json_free(d2);
  llm_buf_free(&a);
  llm_buf_free(&b);
  return 0;
}
