/*
 * test_tls_misc: TLS-over-TCP behaviours of issue 5 not covered elsewhere, both ends in one
 * thread (non-blocking):
 *
 *  - key logging (SSL_CTX_set_keylog_callback): TLS 1.3 gives the same set of labelled
 *    secrets on both ends (client and server agree on every secret, one client random), each
 *    line naming its own connection; TLS 1.2 gives one CLIENT_RANDOM line per end;
 *  - SSL_CTX_set/get_security_level (OpenSSL 3's default is 2);
 *  - the retry contract of SSL_write: a write refused with SSL_ERROR_WANT_WRITE (the peer
 *    does not read, the socket fills up) is retried with the same arguments and then reports
 *    all its bytes; every byte arrives once and in order;
 *  - TLS over a BIO pair (SSL_set_bio with BIO_new_bio_pair, no socket): handshake and data;
 *    such an SSL has no poll descriptor;
 *  - protocol version bounds that do not meet: the client gets the server's
 *    protocol_version alert;
 *  - a peer that resets the TCP connection: SSL_ERROR_SYSCALL with ECONNRESET in errno (and,
 *    in osslquic only, a system error queued).
 *
 * The expected values are OpenSSL 3.5's (tests/c/check-openssl.sh runs this file against it).
 */
#include "tlsutil.h"

/* ---- key logging */

#define MAX_LINES 32

static struct {
    int n;
    const SSL *ssl[MAX_LINES];
    char line[MAX_LINES][256];
} kl;

static void keylog_cb(const SSL *ssl, const char *line)
{
    if (kl.n < MAX_LINES) {
        kl.ssl[kl.n] = ssl;
        snprintf(kl.line[kl.n], sizeof(kl.line[0]), "%s", line);
    }
    kl.n++;
}

/* The line of `who` with label `label`, or NULL. */
static const char *kl_find(const SSL *who, const char *label)
{
    size_t ll = strlen(label);
    int i;

    for (i = 0; i < kl.n && i < MAX_LINES; i++)
        if (kl.ssl[i] == who && strncmp(kl.line[i], label, ll) == 0 && kl.line[i][ll] == ' ')
            return kl.line[i];
    return NULL;
}

/* A key-log line: LABEL, 64 hex digits of client random, 64 or 96 hex digits of secret. */
static int kl_well_formed(const char *l, const char *label, const char *random)
{
    const char *r = l + strlen(label) + 1, *sec = r + 65;
    size_t i, sl = strlen(sec);

    for (i = 0; i < 64; i++)
        ASSERT_TRUE(strchr("0123456789abcdef", r[i]) != NULL && r[i] != 0);
    ASSERT_EQ(r[64], ' ');
    ASSERT_TRUE(sl == 64 || sl == 96);
    for (i = 0; i < sl; i++)
        ASSERT_TRUE(strchr("0123456789abcdef", sec[i]) != NULL);
    if (random != NULL)
        ASSERT_MEM_EQ(r, random, 64);
    return 1;
}

static int keylog_case(long maxv, const char *const *labels, int nlabels)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_PEER);
    struct tl_pair p;
    int rc, rs, i, nc = 0, ns = 0;
    const char *random = NULL;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    if (maxv)
        ASSERT_EQ(SSL_CTX_set_max_proto_version(sctx, maxv), 1);
    SSL_CTX_set_keylog_callback(sctx, keylog_cb);
    SSL_CTX_set_keylog_callback(cctx, keylog_cb);
    memset(&kl, 0, sizeof(kl));
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_TRUE(tl_handshake(p.c, p.s, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_LE(kl.n, MAX_LINES);
    for (i = 0; i < kl.n; i++) {
        ASSERT_TRUE(kl.ssl[i] == p.c || kl.ssl[i] == p.s);
        nc += kl.ssl[i] == p.c;
        ns += kl.ssl[i] == p.s;
    }
    ASSERT_EQ(nc, nlabels);
    ASSERT_EQ(ns, nlabels);
    for (i = 0; i < nlabels; i++) {
        const char *c = kl_find(p.c, labels[i]), *s = kl_find(p.s, labels[i]);

        ASSERT_NOT_NULL(c);
        ASSERT_NOT_NULL(s);
        ASSERT_STR_EQ(c, s); /* same random, same secret */
        ASSERT_TRUE(kl_well_formed(c, labels[i], random));
        if (random == NULL)
            random = c + strlen(labels[i]) + 1;
    }
    ERR_clear_error();
    tl_pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

static int test_keylog(void)
{
    static const char *const tls13[] = {
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",         "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
    };
    static const char *const tls12[] = {"CLIENT_RANDOM"};

    ASSERT_TRUE(keylog_case(0, tls13, 5));
    ASSERT_TRUE(keylog_case(TLS1_2_VERSION, tls12, 1));
    return 1;
}

static int test_security_level(void)
{
    SSL_CTX *c = SSL_CTX_new(TLS_method());

    ASSERT_NOT_NULL(c);
    ASSERT_EQ(SSL_CTX_get_security_level(c), 2);
    SSL_CTX_set_security_level(c, 3);
    ASSERT_EQ(SSL_CTX_get_security_level(c), 3);
    SSL_CTX_set_security_level(c, 0);
    ASSERT_EQ(SSL_CTX_get_security_level(c), 0);
    SSL_CTX_free(c);
    return 1;
}

/* ---- the retry contract of SSL_write */

static int test_write_retry(void)
{
    enum { CHUNK = 32768, MAXBYTES = 64 << 20 };
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_PEER);
    struct tl_pair p;
    unsigned char *out = malloc(CHUNK), in[16384];
    size_t sent = 0, got = 0, n, i;
    int rc, rs, r, blocked = 0, retried = 0;
    uint64_t dl = tu_now_ms() + 30000;

    ASSERT_NOT_NULL(out);
    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_TRUE(tl_handshake(p.c, p.s, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);

    /* Write until the socket is full: the server does not read. */
    while (!blocked) {
        ASSERT_TRUE(sent < MAXBYTES);
        for (i = 0; i < CHUNK; i++)
            out[i] = tl_pat(sent + i, 9);
        r = SSL_write_ex(p.c, out, CHUNK, &n);
        if (r == 1) {
            ASSERT_EQ(n, CHUNK);
            sent += n;
        } else {
            ASSERT_EQ(SSL_get_error(p.c, r), SSL_ERROR_WANT_WRITE);
            blocked = 1;
        }
    }
    ASSERT_NO_ERROR();
    /* Read on the server while retrying the very same write until it reports its bytes. */
    for (;;) {
        ASSERT_TRUE(tu_now_ms() < dl);
        r = SSL_read_ex(p.s, in, sizeof(in), &n);
        if (r == 1) {
            for (i = 0; i < n; i++)
                if (in[i] != tl_pat(got + i, 9))
                    ASSERT_EQ(in[i], tl_pat(got + i, 9));
            got += n;
        } else {
            ASSERT_EQ(SSL_get_error(p.s, r), SSL_ERROR_WANT_READ);
        }
        if (!retried) {
            r = SSL_write_ex(p.c, out, CHUNK, &n);
            if (r == 1) {
                ASSERT_EQ(n, CHUNK);
                sent += n;
                retried = 1;
            } else {
                ASSERT_EQ(SSL_get_error(p.c, r), SSL_ERROR_WANT_WRITE);
            }
        }
        if (retried && got == sent)
            break;
        ASSERT_LE(got, sent);
    }
    /* Nothing more comes. */
    ASSERT_EQ(SSL_read_ex(p.s, in, sizeof(in), &n), 0);
    ASSERT_EQ(SSL_get_error(p.s, 0), SSL_ERROR_WANT_READ);
    ASSERT_NO_ERROR();
    tl_pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    free(out);
    return 1;
}

/* ---- TLS over a BIO pair */

static int test_bio_pair(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_PEER);
    BIO *a = NULL, *b = NULL;
    SSL *c, *s;
    BIO_POLL_DESCRIPTOR d;
    int rc, rs;
    unsigned char out[5000], in[5000];
    size_t n, got = 0, i;
    uint64_t dl = tu_now_ms() + 10000;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_EQ(BIO_new_bio_pair(&a, 0, &b, 0), 1);
    c = SSL_new(cctx);
    s = SSL_new(sctx);
    ASSERT_NOT_NULL(c);
    ASSERT_NOT_NULL(s);
    SSL_set_bio(c, a, a);
    SSL_set_bio(s, b, b);
    ASSERT_PTR_EQ(SSL_get_rbio(c), a);
    ASSERT_EQ(SSL_set1_host(c, "localhost"), 1);
    ASSERT_TRUE(tl_handshake(c, s, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_EQ(SSL_get_verify_result(c), X509_V_OK);
    for (i = 0; i < sizeof(out); i++)
        out[i] = tl_pat(i, 11);
    /* 5000 bytes fit the pair's 17 KiB buffer in one write. */
    ASSERT_EQ(SSL_write_ex(s, out, sizeof(out), &n), 1);
    ASSERT_EQ(n, sizeof(out));
    while (got < sizeof(in)) {
        ASSERT_TRUE(tu_now_ms() < dl);
        ASSERT_EQ(SSL_read_ex(c, in + got, sizeof(in) - got, &n), 1);
        got += n;
    }
    ASSERT_MEM_EQ(in, out, sizeof(out));
    ASSERT_EQ(SSL_get_rpoll_descriptor(c, &d), 0); /* a BIO pair cannot be polled */
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* ---- version bounds that do not meet */

static int test_version_mismatch(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_PEER);
    struct tl_pair p;
    int rc, rs;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_EQ(SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION), 1);
    ASSERT_EQ(SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION), 1);
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_TRUE(tl_handshake(p.c, p.s, &rc, &rs));
    ASSERT_TRUE(rs != 1);
    ASSERT_EQ(SSL_get_error(p.s, rs), SSL_ERROR_SSL);
    ERR_clear_error();
    rc = SSL_connect(p.c);
    ASSERT_TRUE(rc != 1);
    ASSERT_EQ(SSL_get_error(p.c, rc), SSL_ERROR_SSL);
    ASSERT_ERROR_IS(ERR_LIB_SSL, 1070); /* SSL_AD_REASON_OFFSET + protocol_version (70) */
    ERR_clear_error();
    tl_pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* ---- a peer that resets the connection */

static int test_peer_reset(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_PEER);
    struct tl_pair p;
    struct linger lg = {1, 0};
    unsigned char buf[64];
    size_t n;
    int rc, rs, r, e;
    unsigned long err;
    uint64_t dl = tu_now_ms() + 10000;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_TRUE(tl_handshake(p.c, p.s, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    /* Let the server's session tickets (TLS 1.3) reach and be read by the client first, so
     * that closing sends a reset only because of SO_LINGER 0. */
    ASSERT_EQ(SSL_write_ex(p.s, "x", 1, &n), 1);
    while ((r = SSL_read_ex(p.c, buf, sizeof(buf), &n)) != 1) {
        ASSERT_EQ(SSL_get_error(p.c, r), SSL_ERROR_WANT_READ);
        ASSERT_TRUE(tu_now_ms() < dl);
    }
    ASSERT_EQ(setsockopt(p.cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(p.cfd);
    p.cfd = -1;
    ERR_clear_error();
    do {
        ASSERT_TRUE(tu_now_ms() < dl);
        errno = 0;
        r = SSL_read_ex(p.s, buf, sizeof(buf), &n);
        e = errno;
    } while (r == 0 && SSL_get_error(p.s, r) == SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 0);
    ASSERT_EQ(SSL_get_error(p.s, r), SSL_ERROR_SYSCALL);
    ASSERT_EQ(e, ECONNRESET);
    err = ERR_peek_error();
#if HAVE_OSSLQUIC
    /* osslquic also queues the system error (OpenSSL 3.5 queues nothing here). */
    ASSERT_TRUE(err != 0);
    ASSERT_EQ(ERR_GET_LIB(err), ERR_LIB_SYS);
    ASSERT_EQ(ERR_GET_REASON(err), ECONNRESET);
#else
    ASSERT_TRUE(err == 0);
#endif
    ERR_clear_error();
    tl_pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
    RUN(test_keylog);
    RUN(test_security_level);
    RUN(test_write_retry);
    RUN(test_bio_pair);
    RUN(test_version_mismatch);
    RUN(test_peer_reset);
    return tu_finish();
}
