// mallocTune(trimThresholdBytes, topPadBytes): glibc's malloc tuning, which Node cannot set
// itself (issue 13). OpenSSL frees a TLS connection's ~17 KiB read buffer after every record
// (Node sets SSL_MODE_RELEASE_BUFFERS) and allocates it again for the next one; with glibc's
// default 128 KiB trim threshold the freed top of the heap goes back to the kernel and the
// next record faults fresh pages in: measured 15-155k page faults per GB in an agent and
// 2-3x the CPU per GB of the same agent when it did not. A trim threshold above the data
// path's working set (HTTP/2 windows: 16 MiB per connection) keeps those pages. Returns
// false where mallopt is not glibc's (musl, other libcs): nothing is changed there.
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdbool.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

napi_value malloc_tune(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  int64_t trim = -1, pad = -1;
  if (argc < 2 || napi_get_value_int64(env, argv[0], &trim) != napi_ok ||
      napi_get_value_int64(env, argv[1], &pad) != napi_ok || trim < 0 || pad < 0 ||
      trim > (1LL << 30) || pad > (1LL << 30)) {
    napi_throw_type_error(env, "EINVAL",
                          "mallocTune(trim, pad): two byte counts from 0 to 1 GiB expected");
    return NULL;
  }
  bool ok = false;
#ifdef __GLIBC__
  ok = mallopt(M_TRIM_THRESHOLD, (int)trim) == 1 && mallopt(M_TOP_PAD, (int)pad) == 1;
#endif
  napi_value result;
  if (napi_get_boolean(env, ok, &result) != napi_ok) return NULL;
  return result;
}
