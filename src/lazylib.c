#include "lazylib.h"

#include <dlfcn.h>
#include <stdio.h>

void *llm_lazylib_open(const char *soname, const char *package, const llm_lazysym *syms,
                       size_t n, char *err, size_t errlen)
{
  void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(err, errlen, "cannot load %s (Debian package %s): %s", soname, package, dlerror());
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    *syms[i].slot = dlsym(lib, syms[i].name);
    if (!*syms[i].slot) {
      snprintf(err, errlen, "%s lacks %s", soname, syms[i].name);
      dlclose(lib);
      return NULL;
    }
  }
  return lib;
}
