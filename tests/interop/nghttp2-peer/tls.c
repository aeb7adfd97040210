/* TLS as ztunnel configures it: 1.3 only, ALPN h2, no session tickets, no SNI from the
 * client; peers are judged by OpenSSL's chain verification against -roots and then by the
 * SPIFFE ID in the leaf's URI SAN (never a DNS name). */
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "peer.h"

static void fail_ssl(const char *what) {
  char buf[256] = "";
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  fail("%s: %s", what, buf);
}

static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned int inlen, void *arg) {
  (void)ssl;
  (void)arg;
  for (unsigned i = 0; i < inlen; i += 1u + in[i]) {
    if (in[i] == 2 && i + 2 < inlen && memcmp(in + i + 1, "h2", 2) == 0) {
      *out = in + i + 1;
      *outlen = 2;
      return SSL_TLSEXT_ERR_OK;
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL; /* no h2 offered: refuse, as ztunnel does */
}

SSL_CTX *tls_context(int server) {
  SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!ctx) fail_ssl("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, opt.cert) != 1) fail_ssl(opt.cert);
  if (SSL_CTX_use_PrivateKey_file(ctx, opt.key, SSL_FILETYPE_PEM) != 1) fail_ssl(opt.key);
  if (SSL_CTX_check_private_key(ctx) != 1) fail_ssl("key does not match certificate");
  if (SSL_CTX_load_verify_locations(ctx, opt.roots, NULL) != 1) fail_ssl(opt.roots);
  if (server) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_alpn_select_cb(ctx, select_h2, NULL);
    SSL_CTX_set_num_tickets(ctx, 0);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2", 3) != 0) fail_ssl("ALPN");
  }
  return ctx;
}

/* The leaf's spiffe:// URI SAN into out ("" when none). */
static void spiffe_of(X509 *cert, char *out, size_t n) {
  out[0] = '\0';
  GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
    const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type != GEN_URI) continue;
    const char *uri = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
    int len = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
    if (len > 9 && (size_t)len < n && strncmp(uri, "spiffe://", 9) == 0 &&
        memchr(uri, '"', (size_t)len) == NULL && memchr(uri, '\\', (size_t)len) == NULL) {
      memcpy(out, uri, (size_t)len);
      out[len] = '\0';
      break;
    }
  }
  GENERAL_NAMES_free(names);
}

static SSL *refuse(SSL *ssl, const char *why) {
  char buf[256] = "";
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  emit("{\"msg\":\"tls-error\",\"error\":\"%s%s%s\"}", why, buf[0] ? ": " : "", buf);
  SSL_free(ssl);
  return NULL;
}

SSL *tls_handshake(SSL_CTX *ctx, int fd, int server) {
  SSL *ssl = SSL_new(ctx);
  if (!ssl) fail_ssl("SSL_new");
  SSL_set_fd(ssl, fd);
  ERR_clear_error();
  if ((server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) return refuse(ssl, "handshake");
  const unsigned char *alpn = NULL;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) return refuse(ssl, "no ALPN h2");
  if (SSL_get_verify_result(ssl) != X509_V_OK) return refuse(ssl, "peer chain not verified");
  X509 *peer = SSL_get1_peer_certificate(ssl);
  if (!peer) return refuse(ssl, "no peer certificate");
  char id[512];
  spiffe_of(peer, id, sizeof id);
  X509_free(peer);
  if (id[0] == '\0') return refuse(ssl, "peer certificate has no spiffe:// URI SAN");
  if (server) {
    char prefix[300];
    snprintf(prefix, sizeof prefix, "spiffe://%s/", opt.trust_domain);
    if (strncmp(id, prefix, strlen(prefix)) != 0) return refuse(ssl, "client not in trust domain");
  } else if (strcmp(id, opt.expect) != 0) {
    return refuse(ssl, "server is not the expected identity");
  }
  emit("{\"msg\":\"tls\",\"version\":\"%s\",\"alpn\":\"h2\",\"cipher\":\"%s\",\"peer\":\"%s\"}",
       SSL_get_version(ssl), SSL_get_cipher_name(ssl), id);
  return ssl;
}
