#ifndef GNT_MOVE_COPENSSL_SHIM_H
#define GNT_MOVE_COPENSSL_SHIM_H

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/crypto.h>

/* Function-like macros are invisible to Swift; these wrap the few that gnt-move uses. */

static inline long gnt_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long gnt_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}
static inline long gnt_SSL_CTX_set_options_no_renegotiation(SSL_CTX *ctx) {
    return (long)SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
}
static inline long gnt_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes) {
    return SSL_CTX_set_read_ahead(ctx, yes);
}
static inline long gnt_BIO_set_write_buffer_size(BIO *bio, long size) {
    return BIO_set_write_buffer_size(bio, size);
}
static inline int gnt_BIO_flush(BIO *bio) {
    return (int)BIO_flush(bio);
}
static inline long gnt_BIO_get_mem_data(BIO *bio, char **data) {
    return BIO_get_mem_data(bio, data);
}
static inline int gnt_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}
static inline unsigned long gnt_ERR_get_error_all(const char **file, int *line, const char **func,
                                                  const char **data, int *flags) {
    return ERR_get_error_all(file, line, func, data, flags);
}

/* XN_FLAG_RFC2253 is built from shifts and casts, which Swift does not import. */
static inline unsigned long gnt_XN_FLAG_RFC2253(void) { return XN_FLAG_RFC2253; }

/* ALPN on the server: pick the first of the server's protocols (wire format, `arg`) that the
 * client offers; without a match, continue without ALPN so that peers which offer nothing (socat,
 * Ganeti) still connect and get the Ganeti stream. `arg` must outlive the SSL_CTX. */
static int gnt_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl;
    const unsigned char *server = (const unsigned char *)arg;
    /* arg layout: 2-byte big-endian length, then the wire-format list. */
    unsigned int serverlen = ((unsigned int)server[0] << 8) | server[1];
    unsigned char *selected = NULL;
    unsigned char selectedlen = 0;
    if (SSL_select_next_proto(&selected, &selectedlen, server + 2, serverlen, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        *outlen = selectedlen;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}
static inline void gnt_SSL_CTX_enable_alpn_server(SSL_CTX *ctx, const unsigned char *lengthPrefixedList) {
    SSL_CTX_set_alpn_select_cb(ctx, gnt_alpn_select, (void *)lengthPrefixedList);
}

#endif
