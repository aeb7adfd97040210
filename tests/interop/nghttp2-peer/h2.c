/* One HTTP/2 connection on libnghttp2: CONNECT streams that each send a seeded byte stream
 * and read the peer's, hashing both (peer.h). nghttp2 frames, validates (a CONNECT with
 * :path or :scheme is a PROTOCOL_ERROR there) and keeps the flow-control windows at its
 * defaults (64 KiB per stream and connection, WINDOW_UPDATE as data is consumed), so the
 * other end meets a peer far stingier than itself. I/O: a non-blocking socket polled here,
 * TLS records through OpenSSL. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "peer.h"

struct xstream {
  int32_t id;
  int status;
  char method[16];
  char authority[128];
  long long to_send, sent, received;
  uint32_t rng;
  int may_send;  /* client: answered; server: 200 submitted */
  int peer_end;  /* the peer's END_STREAM arrived */
  int deferred;  /* the data source is waiting for may_send or peer_end */
  EVP_MD_CTX *tx, *rx;
};

struct conn {
  nghttp2_session *s;
  SSL *ssl;
  int fd;
  int server;
  char local_ip[INET6_ADDRSTRLEN];
  int open_streams; /* streams not closed yet */
  int bad_streams;  /* client: streams that did not end with both END_STREAMs */
  int next_seed;
};

static struct xstream *xstream_new(int seed) {
  struct xstream *x = calloc(1, sizeof *x);
  if (!x) fail("out of memory");
  x->rng = 0x9e3779b9u ^ (uint32_t)(seed + 1) * 0x85ebca6bu;
  if (x->rng == 0) x->rng = 1;
  x->tx = EVP_MD_CTX_new();
  x->rx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(x->tx, EVP_sha256(), NULL);
  EVP_DigestInit_ex(x->rx, EVP_sha256(), NULL);
  return x;
}

static void hex_digest(EVP_MD_CTX *ctx, char out[65]) {
  unsigned char md[32];
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  for (unsigned i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void report(struct xstream *x, uint32_t close_code) {
  char tx[65], rx[65];
  hex_digest(x->tx, tx);
  hex_digest(x->rx, rx);
  emit("{\"msg\":\"stream\",\"id\":%d,\"method\":\"%s\",\"authority\":\"%s\",\"status\":%d,"
       "\"sent\":%lld,\"sent_sha256\":\"%s\",\"received\":%lld,\"received_sha256\":\"%s\","
       "\"peer_end\":%s,\"close_code\":%u}",
       x->id, x->method, x->authority, x->status, x->sent, tx, x->received, rx,
       x->peer_end ? "true" : "false", close_code);
}

/* Header values are copied into the JSON report: keep them printable and unquoted. */
static void copy_value(char *dst, size_t n, const uint8_t *v, size_t len) {
  size_t i = 0;
  for (; i < len && i + 1 < n; i++) {
    int plain = v[i] >= 0x20 && v[i] <= 0x7e && v[i] != '"' && v[i] != '\\';
    dst[i] = plain ? (char)v[i] : '?';
  }
  dst[i] = '\0';
}

static void resume(struct conn *c, struct xstream *x) {
  if (!x->deferred) return;
  x->deferred = 0;
  nghttp2_session_resume_data(c->s, x->id);
}

static ssize_t read_data(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *user) {
  (void)s;
  (void)id;
  (void)user;
  struct xstream *x = src->ptr;
  long long left = x->to_send - x->sent;
  if (!x->may_send || (opt.after_eof && !x->peer_end && left > 0)) {
    x->deferred = 1;
    return NGHTTP2_ERR_DEFERRED;
  }
  size_t n = left < (long long)len ? (size_t)left : len;
  for (size_t i = 0; i < n; i++) { /* xorshift32, one byte per step */
    uint32_t r = x->rng;
    r ^= r << 13;
    r ^= r >> 17;
    r ^= r << 5;
    x->rng = r;
    buf[i] = (uint8_t)(r >> 24);
  }
  EVP_DigestUpdate(x->tx, buf, n);
  x->sent += (long long)n;
  if (x->sent == x->to_send) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
                       void *user) {
  (void)s;
  (void)flags;
  struct conn *c = user;
  ERR_clear_error();
  int n = SSL_write(c->ssl, data, (int)(len > 1 << 20 ? 1 << 20 : len));
  if (n > 0) return n;
  int e = SSL_get_error(c->ssl, n);
  return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? NGHTTP2_ERR_WOULDBLOCK
                                                               : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user) {
  struct conn *c = user;
  if (c->server && f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
    struct xstream *x = xstream_new(c->next_seed++);
    x->id = f->hd.stream_id;
    nghttp2_session_set_stream_user_data(s, x->id, x);
    c->open_streams++;
  }
  return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user) {
  (void)flags;
  (void)user;
  struct xstream *x = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (!x || f->hd.type != NGHTTP2_HEADERS) return 0;
  if (namelen == 7 && memcmp(name, ":method", 7) == 0)
    copy_value(x->method, sizeof x->method, value, valuelen);
  else if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
    copy_value(x->authority, sizeof x->authority, value, valuelen);
  else if (namelen == 7 && memcmp(name, ":status", 7) == 0 &&
           f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
    char v[8];
    copy_value(v, sizeof v, value, valuelen);
    x->status = atoi(v);
  }
  return 0;
}

/* The server's decision for a complete request header block. */
static void answer(struct conn *c, struct xstream *x) {
  int status = 200;
  char *colon = strrchr(x->authority, ':');
  if (strcmp(x->method, "CONNECT") != 0) status = 405;
  else if (!colon || (size_t)(colon - x->authority) != strlen(c->local_ip) ||
           strncmp(x->authority, c->local_ip, strlen(c->local_ip)) != 0 || atoi(colon + 1) <= 0)
    status = 400; /* not ip:port, or not the address the client dialed */
  else if (atoi(colon + 1) == opt.deny_port) status = 401;
  x->status = status;
  char code[4];
  snprintf(code, sizeof code, "%d", status);
  nghttp2_nv nv = {(uint8_t *)":status", (uint8_t *)code, 7, 3, NGHTTP2_NV_FLAG_NONE};
  if (status != 200) {
    nghttp2_submit_response(c->s, x->id, &nv, 1, NULL); /* HEADERS with END_STREAM */
    return;
  }
  x->to_send = opt.send;
  x->may_send = 1;
  nghttp2_data_provider p = {.source = {.ptr = x}, .read_callback = read_data};
  nghttp2_submit_response(c->s, x->id, &nv, 1, &p);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user) {
  struct conn *c = user;
  struct xstream *x = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (!x) return 0;
  if (f->hd.type == NGHTTP2_HEADERS && c->server && f->headers.cat == NGHTTP2_HCAT_REQUEST)
    answer(c, x);
  if (f->hd.type == NGHTTP2_HEADERS && !c->server && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
    if (x->status != 200) x->to_send = 0; /* refused: only END_STREAM from us */
    x->may_send = 1;
    resume(c, x);
  }
  if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
      (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    x->peer_end = 1;
    resume(c, x);
  }
  return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                   size_t len, void *user) {
  (void)flags;
  (void)user;
  struct xstream *x = nghttp2_session_get_stream_user_data(s, id);
  if (x) {
    EVP_DigestUpdate(x->rx, data, len);
    x->received += (long long)len;
  }
  return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *user) {
  struct conn *c = user;
  struct xstream *x = nghttp2_session_get_stream_user_data(s, id);
  if (!x) return 0;
  nghttp2_session_set_stream_user_data(s, id, NULL);
  report(x, code);
  if (!c->server && (code != NGHTTP2_NO_ERROR || !x->peer_end || x->sent != x->to_send))
    c->bad_streams++;
  if (--c->open_streams == 0 && (!c->server || opt.close_after))
    nghttp2_session_terminate_session(s, NGHTTP2_NO_ERROR); /* GOAWAY, then we close */
  EVP_MD_CTX_free(x->tx);
  EVP_MD_CTX_free(x->rx);
  free(x);
  return 0;
}

static nghttp2_session *new_session(struct conn *c) {
  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_send_callback(cb, send_cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
  nghttp2_session *s;
  int rv = c->server ? nghttp2_session_server_new(&s, cb, c)
                     : nghttp2_session_client_new(&s, cb, c);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) fail("nghttp2 session: %s", nghttp2_strerror(rv));
  nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
                                       {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, settings, c->server ? 1 : 2);
  return s;
}

/* Reads what OpenSSL has into nghttp2: 1 = more later, 0 = EOF, -1 = error. */
static int pump_in(struct conn *c) {
  uint8_t buf[16384];
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(c->ssl, buf, sizeof buf);
    if (n > 0) {
      ssize_t m = nghttp2_session_mem_recv(c->s, buf, (size_t)n);
      if (m < 0) {
        emit("{\"msg\":\"error\",\"error\":\"nghttp2: %s\"}", nghttp2_strerror((int)m));
        return -1;
      }
      continue;
    }
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 1;
    if (e == SSL_ERROR_ZERO_RETURN) return 0;
    emit("{\"msg\":\"error\",\"error\":\"TLS read failed (%d)\"}", e);
    return -1;
  }
}

int h2_run(SSL *ssl, int fd, int server) {
  struct conn c = {.ssl = ssl, .fd = fd, .server = server};
  struct sockaddr_in local;
  socklen_t len = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &len) != 0 ||
      !inet_ntop(AF_INET, &local.sin_addr, c.local_ip, sizeof c.local_ip))
    fail("getsockname: %s", strerror(errno));
  c.s = new_session(&c);
  if (!server) {
    nghttp2_nv nv[2] = {{(uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, NGHTTP2_NV_FLAG_NONE},
                        {(uint8_t *)":authority", NULL, 10, 0, NGHTTP2_NV_FLAG_NONE}};
    for (int i = 0; i < opt.n_authorities; i++) {
      struct xstream *x = xstream_new(c.next_seed++);
      snprintf(x->method, sizeof x->method, "CONNECT");
      copy_value(x->authority, sizeof x->authority, (const uint8_t *)opt.authorities[i],
                 strlen(opt.authorities[i]));
      x->to_send = opt.send;
      nv[1].value = (uint8_t *)opt.authorities[i];
      nv[1].valuelen = strlen(opt.authorities[i]);
      nghttp2_data_provider p = {.source = {.ptr = x}, .read_callback = read_data};
      x->id = nghttp2_submit_request(c.s, NULL, nv, 2, &p, x);
      if (x->id < 0) fail("submit_request: %s", nghttp2_strerror(x->id));
      c.open_streams++;
    }
  }
  int rc = 0;
  for (;;) {
    int rv = nghttp2_session_send(c.s);
    if (rv != 0) {
      emit("{\"msg\":\"error\",\"error\":\"nghttp2 send: %s\"}", nghttp2_strerror(rv));
      rc = -1;
      break;
    }
    if (!nghttp2_session_want_read(c.s) && !nghttp2_session_want_write(c.s)) break;
    if (SSL_pending(ssl) == 0) {
      struct pollfd p = {fd, POLLIN | (nghttp2_session_want_write(c.s) ? POLLOUT : 0), 0};
      if (poll(&p, 1, 1000) < 0 && errno != EINTR) fail("poll: %s", strerror(errno));
    }
    int in = pump_in(&c);
    if (in <= 0) {
      rc = in < 0 || (!server && c.open_streams > 0) ? -1 : 0;
      if (in == 0 && !server && c.open_streams > 0)
        emit("{\"msg\":\"error\",\"error\":\"closed with %d streams open\"}", c.open_streams);
      break;
    }
  }
  nghttp2_session_del(c.s);
  return rc == 0 && c.bad_streams == 0 ? 0 : -1;
}
