// mtun's native addon: what Node cannot ask the kernel or libc itself. originalDst(fd)
// (here) returns the destination a connection had before iptables REDIRECT
// rewrote it (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST), for IPv4, IPv6 and IPv4-mapped
// IPv6 sockets (a dual-stack "::" listener). Plain node_api.h, no C++ and no
// dependencies, so it builds anywhere a C compiler and Node's headers are.
//
// A connection that was not redirected still has a conntrack entry, and the kernel then
// answers with the socket's own local address rather than an error; the result says so
// (`self: true`) so the caller can refuse it as a loop instead of serving it.
// mallocTune(trim, pad) is in malloc_tune.c, socketError(fd) in socket_error.c.
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "fd_arg.h"

// From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>: kernel ABI,
// stable since 2.4. Defined here because those headers clash with glibc's <netinet/in.h>.
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

// Stable error codes for the TypeScript side (errno names, like Node's own errors).
static const char *errno_code(int err) {
  switch (err) {
    case ENOENT: return "ENOENT";       // no conntrack entry (nat not in use)
    case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT"; // not a TCP/IP socket, or no netfilter
    case EINVAL: return "EINVAL";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOTCONN: return "ENOTCONN";
    default: return "EUNKNOWN";
  }
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, errno_code(err), msg);
  return NULL;
}

static bool set_string(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  return napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) == napi_ok &&
         napi_set_named_property(env, obj, key, v) == napi_ok;
}

static bool set_int(napi_env env, napi_value obj, const char *key, int32_t value) {
  napi_value v;
  return napi_create_int32(env, value, &v) == napi_ok &&
         napi_set_named_property(env, obj, key, v) == napi_ok;
}

static bool set_bool(napi_env env, napi_value obj, const char *key, bool value) {
  napi_value v;
  return napi_get_boolean(env, value, &v) == napi_ok &&
         napi_set_named_property(env, obj, key, v) == napi_ok;
}

// originalDst(fd: number) -> { address: string, port: number, family: 4 | 6, self: boolean }
// Throws an Error whose `code` is an errno name when the kernel has no answer.
static napi_value original_dst(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_arg(env, info, "originalDst(fd): fd must be a non-negative integer", &fd)) return NULL;

  struct sockaddr_storage local;
  socklen_t local_len = sizeof local;
  memset(&local, 0, sizeof local);
  if (getsockname(fd, (struct sockaddr *)&local, &local_len) != 0)
    return throw_errno(env, "getsockname", errno);

  char text[INET6_ADDRSTRLEN];
  int family;
  uint16_t port;
  bool self;
  bool mapped = local.ss_family == AF_INET6 &&
                IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&local)->sin6_addr);

  if (local.ss_family == AF_INET || mapped) {
    // IPv4, or IPv4 through a dual-stack socket: conntrack holds an IPv4 tuple.
    struct sockaddr_in dst;
    socklen_t len = sizeof dst;
    memset(&dst, 0, sizeof dst);
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0)
      return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", errno);
    struct in_addr own;
    in_port_t own_port;
    if (mapped) {
      struct sockaddr_in6 *l6 = (struct sockaddr_in6 *)&local;
      memcpy(&own, &l6->sin6_addr.s6_addr[12], 4);
      own_port = l6->sin6_port;
    } else {
      own = ((struct sockaddr_in *)&local)->sin_addr;
      own_port = ((struct sockaddr_in *)&local)->sin_port;
    }
    inet_ntop(AF_INET, &dst.sin_addr, text, sizeof text);
    family = 4;
    port = ntohs(dst.sin_port);
    self = dst.sin_addr.s_addr == own.s_addr && dst.sin_port == own_port;
  } else if (local.ss_family == AF_INET6) {
    struct sockaddr_in6 dst;
    socklen_t len = sizeof dst;
    memset(&dst, 0, sizeof dst);
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) != 0)
      return throw_errno(env, "getsockopt(IP6T_SO_ORIGINAL_DST)", errno);
    struct sockaddr_in6 *l6 = (struct sockaddr_in6 *)&local;
    inet_ntop(AF_INET6, &dst.sin6_addr, text, sizeof text);
    family = 6;
    port = ntohs(dst.sin6_port);
    self = memcmp(&dst.sin6_addr, &l6->sin6_addr, sizeof dst.sin6_addr) == 0 &&
           dst.sin6_port == l6->sin6_port;
  } else {
    return throw_errno(env, "originalDst: not an IPv4/IPv6 socket", EOPNOTSUPP);
  }

  napi_value result;
  if (napi_create_object(env, &result) != napi_ok) return NULL;
  if (!set_string(env, result, "address", text) || !set_int(env, result, "port", port) ||
      !set_int(env, result, "family", family) || !set_bool(env, result, "self", self))
    return NULL;
  return result;
}

napi_value malloc_tune(napi_env env, napi_callback_info info); // malloc_tune.c
napi_value socket_error(napi_env env, napi_callback_info info); // socket_error.c

static bool export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, name, fn) == napi_ok;
}

static napi_value init(napi_env env, napi_value exports) {
  if (!export_fn(env, exports, "originalDst", original_dst) ||
      !export_fn(env, exports, "mallocTune", malloc_tune) ||
      !export_fn(env, exports, "socketError", socket_error))
    return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
