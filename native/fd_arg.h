// The one argument the addon's socket functions take: a file descriptor, checked.
#ifndef MTUN_FD_ARG_H
#define MTUN_FD_ARG_H
#include <node_api.h>
#include <stdbool.h>

// Reads argument 0 as a non-negative int32 into *fd; otherwise throws a TypeError (code
// EINVAL) naming `fn` and returns false.
static inline bool fd_arg(napi_env env, napi_callback_info info, const char *fn, int32_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  *fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], fd) != napi_ok || *fd < 0) {
    napi_throw_type_error(env, "EINVAL", fn);
    return false;
  }
  return true;
}
#endif
