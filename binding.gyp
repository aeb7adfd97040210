# The native addon (native/original_dst.c): SO_ORIGINAL_DST for transparent capture.
# Built by `npm install` through native/build.mjs, which never fails the install.
{
  "targets": [
    {
      "target_name": "mtun_native",
      "sources": ["native/original_dst.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-O2"]
    }
  ]
}
