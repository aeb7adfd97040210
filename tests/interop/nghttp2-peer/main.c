/* Flags, sockets and processes of nghttp2-peer (peer.h). The server forks one child per
 * connection (each dies with the parent, PR_SET_PDEATHSIG) so that pooled connections of
 * the client under test never block each other; everything ends within -timeout. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "peer.h"

struct options opt = {.trust_domain = "cluster.local", .deny_port = -1, .timeout_s = 30};

void emit(const char *fmt, ...) {
  char line[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  /* One write per line: children of the server share the pipe (PIPE_BUF keeps it whole). */
  if (write(STDOUT_FILENO, line, (size_t)n) < 0) _exit(5);
}

void fail(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *p = msg; *p; p++)
    if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = '?';
  emit("{\"msg\":\"fatal\",\"error\":\"%s\"}", msg);
  exit(2);
}

static void on_alarm(int sig) {
  (void)sig;
  static const char line[] = "{\"msg\":\"timeout\"}\n";
  if (write(STDOUT_FILENO, line, sizeof line - 1) < 0) _exit(3);
  _exit(3);
}

static void usage(void) {
  fail("usage: nghttp2-peer client|server -cert F -key F -roots F -send N [-after-eof] "
       "[-timeout S] (client: -connect IP:PORT -authority IP:PORT... -expect ID [-linger-ms MS]; "
       "server: -listen IP [-deny-port P] [-trust-domain TD] [-close-after])");
}

static void parse(int argc, char **argv) {
  if (argc < 2) usage();
  if (strcmp(argv[1], "server") == 0) opt.server = 1;
  else if (strcmp(argv[1], "client") != 0) usage();
  for (int i = 2; i < argc; i++) {
    const char *f = argv[i];
    if (strcmp(f, "-after-eof") == 0 || strcmp(f, "-close-after") == 0) {
      *(f[1] == 'a' ? &opt.after_eof : &opt.close_after) = 1;
      continue;
    }
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (strcmp(f, "-cert") == 0) opt.cert = v;
    else if (strcmp(f, "-key") == 0) opt.key = v;
    else if (strcmp(f, "-roots") == 0) opt.roots = v;
    else if (strcmp(f, "-expect") == 0) opt.expect = v;
    else if (strcmp(f, "-trust-domain") == 0) opt.trust_domain = v;
    else if (strcmp(f, "-connect") == 0 || strcmp(f, "-listen") == 0) opt.addr = v;
    else if (strcmp(f, "-send") == 0) opt.send = atoll(v);
    else if (strcmp(f, "-deny-port") == 0) opt.deny_port = atoi(v);
    else if (strcmp(f, "-timeout") == 0) opt.timeout_s = atoi(v);
    else if (strcmp(f, "-linger-ms") == 0) opt.linger_ms = atoi(v);
    else if (strcmp(f, "-authority") == 0 && opt.n_authorities < MAX_AUTHORITIES)
      opt.authorities[opt.n_authorities++] = v;
    else usage();
  }
  if (!opt.cert || !opt.key || !opt.roots || !opt.addr || opt.send < 0 || opt.timeout_s <= 0)
    usage();
  if (!opt.server && (!opt.expect || opt.n_authorities == 0)) usage();
}

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void nonblocking(int fd) {
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) fail("fcntl: %s", strerror(errno));
}

/* After our GOAWAY: read (and drop) until the server closes or -linger-ms passed. */
static void linger(SSL *ssl, int fd) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    long left = opt.linger_ms - spent;
    if (left <= 0) return;
    struct pollfd p = {fd, POLLIN, 0};
    if (SSL_pending(ssl) == 0 && poll(&p, 1, (int)left) <= 0) return;
    char buf[4096];
    ERR_clear_error();
    int n = SSL_read(ssl, buf, sizeof buf);
    if (n <= 0 && SSL_get_error(ssl, n) != SSL_ERROR_WANT_READ) return; /* closed */
  }
}

static int client(void) {
  char host[64];
  const char *colon = strrchr(opt.addr, ':');
  struct sockaddr_in sa = {.sin_family = AF_INET};
  if (!colon || (size_t)(colon - opt.addr) >= sizeof host) usage();
  memcpy(host, opt.addr, (size_t)(colon - opt.addr));
  host[colon - opt.addr] = '\0';
  sa.sin_port = htons((uint16_t)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) usage();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
    fail("connect %s: %s", opt.addr, strerror(errno));
  nodelay(fd);
  SSL_CTX *ctx = tls_context(0);
  SSL *ssl = tls_handshake(ctx, fd, 0);
  if (!ssl) return 4;
  nonblocking(fd);
  int rc = h2_run(ssl, fd, 0);
  linger(ssl, fd);
  SSL_shutdown(ssl);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  close(fd);
  emit("{\"msg\":\"done\",\"ok\":%s}", rc == 0 ? "true" : "false");
  return rc == 0 ? 0 : 1;
}

static int server(void) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  if (inet_pton(AF_INET, opt.addr, &sa.sin_addr) != 1) usage();
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  socklen_t len = sizeof sa;
  if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 64) != 0 ||
      getsockname(ls, (struct sockaddr *)&sa, &len) != 0)
    fail("listen %s: %s", opt.addr, strerror(errno));
  SSL_CTX *ctx = tls_context(1);
  signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
  emit("{\"msg\":\"listening\",\"port\":%d}", ntohs(sa.sin_port));
  for (;;) {
    int fd = accept(ls, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      fail("accept: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) fail("fork: %s", strerror(errno));
    if (pid > 0) {
      close(fd);
      continue;
    }
    close(ls);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) _exit(0); /* the parent is already gone */
    alarm((unsigned)opt.timeout_s);
    nodelay(fd);
    SSL *ssl = tls_handshake(ctx, fd, 1);
    if (!ssl) _exit(4);
    nonblocking(fd);
    int rc = h2_run(ssl, fd, 1);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    emit("{\"msg\":\"closed\"}");
    _exit(rc == 0 ? 0 : 1);
  }
}

int main(int argc, char **argv) {
  parse(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
  /* The server's own lifetime: the test kills it long before, this only bounds a leak. */
  alarm((unsigned)(opt.server ? 4 * opt.timeout_s : opt.timeout_s));
  return opt.server ? server() : client();
}
