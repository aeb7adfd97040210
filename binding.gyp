# The native addon: SO_ORIGINAL_DST for transparent capture (native/original_dst.c) and
# glibc malloc tuning for the data path (native/malloc_tune.c), and a socket's pending
# error to tell a reset from a FIN (native/socket_error.c).
# Built by `npm install` through native/build.mjs, which never fails the install.
{
  "targets": [
    {
      "target_name": "mtun_native",
      "sources": ["native/original_dst.c", "native/malloc_tune.c", "native/socket_error.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-O2"]
    }
  ]
}
