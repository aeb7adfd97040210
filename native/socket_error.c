// socketError(fd): the socket's pending error (getsockopt SO_ERROR, which reading clears).
// Node 20's libuv (1.46) reads a TCP reset that arrives behind data not yet read as a clean
// end of stream: uv__read() reads the data short, then uv__stream_io() takes the POLLHUP
// that came with it for EOF and never reads the ECONNRESET (libuv src/unix/stream.c,
// "Short-circuit iff POLLHUP"). The kernel still holds the error: reading it at 'end' tells
// a reset from a FIN (lib/socket-reset.ts), so a cut is not forwarded as a complete stream.
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <sys/socket.h>

#include "fd_arg.h"

napi_value socket_error(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_arg(env, info, "socketError(fd): fd must be a non-negative integer", &fd)) return NULL;
  int err = 0;
  socklen_t len = sizeof err;
  int32_t out = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 ? err : -errno;
  napi_value result;
  if (napi_create_int32(env, out, &result) != napi_ok) return NULL;
  return result;
}
