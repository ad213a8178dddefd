/* libcurl loaded on first use: every kind of setopt argument (long,
 * pointer, function pointer, curl_off_t) and getinfo travel through the
 * forwarders intact, checked with a file:// transfer. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "curl_lazy.h"

typedef struct {
  char buf[256];
  size_t len;
} sink;

static size_t on_write(char *data, size_t size, size_t n, void *ud)
{
  sink *s = ud;
  size_t len = size * n;
  if (s->len + len >= sizeof s->buf)
    return 0;
  memcpy(s->buf + s->len, data, len);
  s->len += len;
  return len;
}

int main(void)
{
  char path[] = "/tmp/llmrun-curl-XXXXXX", url[300], err[256] = "";
  const char text[] = "0123456789abcdefghij";
  sink s = {{0}, 0};
  long code = -1;
  curl_off_t size = -1;
  int fd;
  CURL *h;

  CHECK(!llm_curl_is_loaded());
  CHECK_INT(llm_curl_load(err, sizeof err), 0);
  CHECK(llm_curl_is_loaded());
  CHECK(curl_version_info(CURLVERSION_NOW)->version != NULL);

  fd = mkstemp(path);
  CHECK(fd >= 0);
  CHECK(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
  close(fd);
  snprintf(url, sizeof url, "file://%s", path);

  h = curl_easy_init();
  CHECK(h != NULL);
  CHECK_INT(curl_easy_setopt(h, CURLOPT_URL, url), CURLE_OK);            /* pointer */
  CHECK_INT(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write), CURLE_OK); /* function */
  CHECK_INT(curl_easy_setopt(h, CURLOPT_WRITEDATA, &s), CURLE_OK);
  CHECK_INT(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L), CURLE_OK);        /* long */
  CHECK_INT(curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)10), CURLE_OK); /* off_t */
  CHECK_INT(curl_easy_perform(h), CURLE_OK);
  CHECK_MEM(s.buf, s.len, "abcdefghij", 10);
  CHECK_INT(curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &size), CURLE_OK);
  CHECK_INT(size, 10);
  CHECK_INT(curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
  CHECK_INT(code, 0);
  CHECK_STR(curl_easy_strerror(CURLE_COULDNT_CONNECT), "Couldn't connect to server");
  curl_easy_cleanup(h);
  unlink(path);
  llm_curl_cleanup();
  return check_report("curl_lazy");
}
