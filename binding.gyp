# The native addon: SO_ORIGINAL_DST for transparent capture (native/original_dst.c) and
# glibc malloc tuning for the data path (native/malloc_tune.c).
# Built by `npm install` through native/build.mjs, which never fails the install.
{
  "targets": [
    {
      "target_name": "mtun_native",
      "sources": ["native/original_dst.c", "native/malloc_tune.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-O2"]
    }
  ]
}
