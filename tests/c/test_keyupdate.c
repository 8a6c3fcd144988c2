/*
 * test_keyupdate: SSL_key_update and SSL_get_key_update_type (issue 16) on QUIC connections
 * and streams and on TLS 1.3 over TCP, in one thread: the errors OpenSSL gives (an invalid
 * type, before the handshake, a listener, TLS 1.2) and data flowing both ways, compared byte
 * for byte, across repeated updates from either end. That the peer really sees a new key
 * phase is shown against aioquic, which logs it (tests/interop, case keyupdate).
 */
#include "tlsutil.h"

#ifdef TEST_REAL_OPENSSL
int main(void)
{
    return 0; /* needs libssl: not part of the libcrypto comparison run */
}
#else
#include <openssl/ssl.h>

#if HAVE_OSSLQUIC

#define CHUNK 65536
#define ROUNDS 6

#define PUMP(cond) QU_PUMP(l, c, s, cfd, cond)

/* Writes CHUNK bytes of pattern `seed` on `w` while reading them on `r` (10 s at most),
 * pumping the QUIC objects `l`, `c`, `s` (NULL for TLS) and waiting on `cfd` between tries;
 * the bytes read must be those written. */
static int move_bytes(SSL *l, SSL *c, SSL *s, int cfd, SSL *w, SSL *r, unsigned seed)
{
    static unsigned char out[CHUNK], in[CHUNK];
    size_t sent = 0, got = 0, n;
    uint64_t dl = tu_now_ms() + 10000;

    tu_fill_pattern(out, CHUNK, seed);
    while (got < CHUNK) {
        ASSERT_LT(tu_now_ms(), dl);
        if (sent < CHUNK && SSL_write_ex(w, out + sent, CHUNK - sent, &n) == 1)
            sent += n;
        if (SSL_read_ex(r, in + got, CHUNK - got, &n) == 1)
            got += n;
        if (l != NULL) {
            SSL_handle_events(l);
            SSL_handle_events(c);
            SSL_handle_events(s);
            (void)tu_wait_readable(cfd, 1);
        }
    }
    ERR_clear_error();
    ASSERT_MEM_EQ(in, out, CHUNK);
    return 1;
}

static int test_quic_key_update(void)
{
    SSL_CTX *sctx = qu_server_ctx(0), *cctx = qu_client_ctx();
    BIO_ADDR *addr = NULL;
    int lfd = -1, cfd = tu_udp_socket(AF_INET, NULL), r = 0, i;
    SSL *l, *c, *s = NULL, *cs, *ss = NULL;

    ASSERT_TRUE(sctx != NULL && cctx != NULL && cfd >= 0);
    l = qu_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE, &lfd, &addr);
    ASSERT_NOT_NULL(l);
    c = qu_client(cctx, cfd, addr, 0);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(SSL_set_blocking_mode(c, 0), 1);

    /* Before the handshake; a bad type; a listener; NULL. The errors are OpenSSL 3.5's for
     * QUIC (ossl_quic_key_update): TOO_MANY_KEY_UPDATES while no key update is allowed yet,
     * ERR_R_PASSED_INVALID_ARGUMENT for a bad type, CONN_USE_ONLY for other objects. */
    ASSERT_EQ(SSL_key_update(c, SSL_KEY_UPDATE_REQUESTED), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_TOO_MANY_KEY_UPDATES);
    ASSERT_NO_ERROR();
    ASSERT_EQ(SSL_key_update(c, SSL_KEY_UPDATE_NONE), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_PASSED_INVALID_ARGUMENT);
    ASSERT_NO_ERROR();
    ASSERT_EQ(SSL_key_update(c, 2), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_PASSED_INVALID_ARGUMENT);
    ASSERT_EQ(SSL_key_update(l, SSL_KEY_UPDATE_NOT_REQUESTED), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(SSL_key_update(NULL, SSL_KEY_UPDATE_NOT_REQUESTED), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(SSL_get_key_update_type(c), SSL_KEY_UPDATE_NONE);

    PUMP((r = SSL_connect(c)) == 1 || SSL_get_error(c, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    PUMP((s = SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK)) != NULL);
    cs = SSL_new_stream(c, 0);
    ASSERT_NOT_NULL(cs);
    {
        size_t n;

        ASSERT_EQ(SSL_write_ex(cs, "k", 1, &n), 1);
    }
    PUMP((ss = SSL_accept_stream(s, SSL_ACCEPT_STREAM_NO_BLOCK)) != NULL);
    {
        char b;
        size_t n;

        PUMP(SSL_read_ex(ss, &b, 1, &n) == 1);
        ASSERT_EQ(b, 'k');
    }
    ERR_clear_error();

    /* A stream is not a connection (OpenSSL: conn-only). */
    ASSERT_EQ(SSL_key_update(cs, SSL_KEY_UPDATE_REQUESTED), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_CONN_USE_ONLY);
    ASSERT_NO_ERROR();

    /* Updates from either end, between transfers both ways. */
    for (i = 0; i < ROUNDS; i++) {
        SSL *who = i % 2 == 0 ? c : s;

        ASSERT_EQ(SSL_key_update(who, i % 2 ? SSL_KEY_UPDATE_REQUESTED
                                            : SSL_KEY_UPDATE_NOT_REQUESTED),
                  1);
        ASSERT_EQ(SSL_get_key_update_type(who), SSL_KEY_UPDATE_NONE);
        ASSERT_TRUE(move_bytes(l, c, s, cfd, cs, ss, (unsigned)i));
        ASSERT_TRUE(move_bytes(l, c, s, cfd, ss, cs, (unsigned)i + 100));
    }
    SSL_free(ss);
    SSL_free(cs);
    SSL_free(s);
    SSL_free(c);
    SSL_free(l);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    BIO_ADDR_free(addr);
    close(cfd);
    close(lfd);
    return 1;
}

/* TLS: a key update either way between transfers; TLS 1.2 and an unfinished handshake say
 * why not. */
static int test_tls_key_update(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_PEER);
    SSL_CTX *s12 = tl_server_ctx();
    struct tl_pair p;
    int rc, rs, i;

    ASSERT_TRUE(sctx != NULL && cctx != NULL && s12 != NULL);
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    /* Before the handshake no version is negotiated: OpenSSL checks that first. */
    ASSERT_EQ(SSL_key_update(p.c, SSL_KEY_UPDATE_REQUESTED), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_WRONG_SSL_VERSION);
    ASSERT_TRUE(tl_handshake(p.c, p.s, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_EQ(SSL_key_update(p.c, 5), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_INVALID_KEY_UPDATE_TYPE);
    for (i = 0; i < ROUNDS; i++) {
        SSL *who = i % 2 ? p.s : p.c;

        ASSERT_EQ(SSL_key_update(who, i % 3 ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED),
                  1);
        ASSERT_EQ(SSL_get_key_update_type(who), SSL_KEY_UPDATE_NONE);
        ASSERT_TRUE(move_bytes(NULL, NULL, NULL, -1, p.c, p.s, (unsigned)i));
        ASSERT_TRUE(move_bytes(NULL, NULL, NULL, -1, p.s, p.c, (unsigned)i + 50));
    }
    tl_pair_free(&p);

    ASSERT_EQ(SSL_CTX_set_max_proto_version(s12, TLS1_2_VERSION), 1);
    ASSERT_TRUE(tl_pair_new(&p, cctx, s12, "localhost"));
    ASSERT_TRUE(tl_handshake(p.c, p.s, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(SSL_key_update(p.c, SSL_KEY_UPDATE_NOT_REQUESTED), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_WRONG_SSL_VERSION);
    tl_pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(s12);
    SSL_CTX_free(cctx);
    return 1;
}

#endif /* HAVE_OSSLQUIC */

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
#if HAVE_OSSLQUIC
    RUN(test_quic_key_update);
    RUN(test_tls_key_update);
#endif
    return tu_finish();
}
#endif
