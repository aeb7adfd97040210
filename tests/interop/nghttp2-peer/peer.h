/* nghttp2-peer: an HTTP/2 CONNECT client and server on libnghttp2 + OpenSSL, the
 * independent stack of tests/interop/h2-interop-nghttp2.test.ts (Debian's nghttp, nghttpd
 * and h2load cannot carry CONNECT tunnels with data). Built by the test (h2-peers.ts).
 *
 *   nghttp2-peer client -connect IP:PORT -authority IP:PORT [-authority ...] -expect ID ...
 *   nghttp2-peer server -listen IP [-deny-port P] [-trust-domain TD] ...
 *   common: -cert CHAIN.pem -key KEY.pem -roots ROOTS.pem -send BYTES [-after-eof] [-timeout S]
 *   client: [-linger-ms MS] after its last stream and GOAWAY, wait up to MS for the server
 *   to close the connection (default 0: close at once, as nghttp does)
 *   server: [-close-after] GOAWAY and close the connection as soon as its streams ended
 *
 * TLS 1.3 only, ALPN h2, both ends present a certificate that must chain to -roots and
 * carry a spiffe:// URI SAN (the server's must be the client's -expect; the client's must be
 * in the server's -trust-domain); the client sends no SNI. Each stream sends -send bytes of a seeded
 * xorshift stream and then END_STREAM, at once or (-after-eof) only after the peer's
 * END_STREAM, while it reads until the peer's END_STREAM: the SHA-256 of both directions is
 * reported, so the test can compare them with what its side sent and received. The server
 * answers 405 to anything but CONNECT, 400 to an :authority whose IP is not the address the
 * client dialed, 401 to -deny-port, and 200 to the rest. One JSON line per event on stdout:
 * "listening" (server, with the port), "tls" (each connection), "stream" (each stream, when
 * it closed), "closed" (server: each connection, once closed), "done" (client). Every wait
 * is bounded by -timeout (exit 3). */
#ifndef NGHTTP2_PEER_H
#define NGHTTP2_PEER_H

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <stddef.h>

#define MAX_AUTHORITIES 64

struct options {
  int server;
  const char *cert, *key, *roots;
  const char *expect;       /* client: the server's SPIFFE ID */
  const char *trust_domain; /* server: clients must be in it */
  const char *addr;         /* client: IP:PORT to dial; server: IP to listen on (port 0) */
  const char *authorities[MAX_AUTHORITIES];
  int n_authorities;
  long long send;
  int after_eof;
  int deny_port;
  int timeout_s;
  int linger_ms;   /* client: after its GOAWAY, wait this long for the server to close */
  int close_after; /* server: GOAWAY and close once no stream is open (after one was) */
};

extern struct options opt;

/* main.c */
void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* tls.c */
SSL_CTX *tls_context(int server);
/* Handshake on the blocking socket fd and the checks above; NULL (reported) on failure. */
SSL *tls_handshake(SSL_CTX *ctx, int fd, int server);

/* h2.c: one HTTP/2 connection until it ends; 0 when every stream ended as it should. */
int h2_run(SSL *ssl, int fd, int server);

#endif
