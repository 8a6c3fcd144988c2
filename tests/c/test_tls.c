/*
 * test_tls: TLS over TCP loopback through the SSL object model (TLS_method,
 * TLS_client_method, TLS_server_method): handshake in non-blocking mode with both sides in
 * one thread, data both ways with every byte compared, protocol version bounds (TLS 1.2 and
 * 1.3), ALPN, SSL_pending/SSL_peek, close_notify both ways with OpenSSL's SSL_shutdown
 * return values and ZERO_RETURN after the peer's close_notify, and a verification failure.
 */
#include "quicutil.h"

#include <fcntl.h>
#include <netinet/tcp.h>

struct tpair {
    SSL_CTX *sctx, *cctx;
    SSL *s, *c;
    int sfd, cfd;
};

/* A connected TCP pair on 127.0.0.1, both non-blocking. */
static int tcp_pair(int *a, int *b)
{
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    ASSERT_GE(l, 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ASSERT_EQ(listen(l, 4), 0);
    ASSERT_EQ(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    *b = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(*b, (struct sockaddr *)&sa, sizeof(sa)), 0);
    *a = accept(l, NULL, NULL);
    ASSERT_GE(*a, 0);
    close(l);
    setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ASSERT_EQ(fcntl(*a, F_SETFL, O_NONBLOCK), 0);
    ASSERT_EQ(fcntl(*b, F_SETFL, O_NONBLOCK), 0);
    return 1;
}

static SSL_CTX *tls_server_ctx(const SSL_METHOD *m)
{
    SSL_CTX *c = SSL_CTX_new(m);

    if (c == NULL || !SSL_CTX_use_certificate_chain_file(c, qu_cert_path("chain.pem")) ||
        !SSL_CTX_use_PrivateKey_file(c, qu_cert_path("key.pem"), SSL_FILETYPE_PEM)) {
        SSL_CTX_free(c);
        return NULL;
    }
    return c;
}

static int tpair_new(struct tpair *p, const SSL_METHOD *sm, const SSL_METHOD *cm)
{
    memset(p, 0, sizeof(*p));
    p->sctx = tls_server_ctx(sm);
    p->cctx = SSL_CTX_new(cm);
    ASSERT_NOT_NULL(p->sctx);
    ASSERT_NOT_NULL(p->cctx);
    ASSERT_EQ(SSL_CTX_load_verify_locations(p->cctx, qu_cert_path("ca.pem"), NULL), 1);
    SSL_CTX_set_verify(p->cctx, SSL_VERIFY_PEER, NULL);
    ASSERT_TRUE(tcp_pair(&p->sfd, &p->cfd));
    p->s = SSL_new(p->sctx);
    p->c = SSL_new(p->cctx);
    ASSERT_NOT_NULL(p->s);
    ASSERT_NOT_NULL(p->c);
    ASSERT_EQ(SSL_set_fd(p->s, p->sfd), 1);
    ASSERT_EQ(SSL_set_fd(p->c, p->cfd), 1);
    ASSERT_EQ(SSL_get_fd(p->c), p->cfd);
    ASSERT_EQ(SSL_set1_host(p->c, "localhost"), 1);
    return 1;
}

static void tpair_free(struct tpair *p)
{
    SSL_free(p->s);
    SSL_free(p->c);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    close(p->sfd);
    close(p->cfd);
}

/* Runs both handshakes (one thread, non-blocking) until both are done or one fails. */
static int handshake(struct tpair *p, int *rc, int *rs)
{
    uint64_t dl = tu_now_ms() + 10000;
    int dc = 0, ds = 0;

    while (!(dc && ds)) {
        ASSERT_TRUE(tu_now_ms() < dl);
        if (!dc) {
            *rc = SSL_connect(p->c);
            dc = *rc == 1 || (SSL_get_error(p->c, *rc) != SSL_ERROR_WANT_READ &&
                              SSL_get_error(p->c, *rc) != SSL_ERROR_WANT_WRITE);
        }
        if (!ds) {
            *rs = SSL_accept(p->s);
            ds = *rs == 1 || (SSL_get_error(p->s, *rs) != SSL_ERROR_WANT_READ &&
                              SSL_get_error(p->s, *rs) != SSL_ERROR_WANT_WRITE);
        }
        if (dc != ds && ((dc && *rc != 1) || (ds && *rs != 1)))
            return 1; /* one side failed: the other would wait forever */
    }
    return 1;
}

/* Sends len bytes of a pattern from a to b, reading as it goes; compares everything. */
static int transfer(SSL *a, SSL *b, size_t len)
{
    unsigned char *in = malloc(len), *out = malloc(len);
    size_t sent = 0, got = 0, n, i;
    uint64_t dl = tu_now_ms() + 20000;

    ASSERT_NOT_NULL(in);
    ASSERT_NOT_NULL(out);
    for (i = 0; i < len; i++)
        out[i] = (unsigned char)(i * 31 + 7);
    while (got < len) {
        ASSERT_TRUE(tu_now_ms() < dl);
        if (sent < len) {
            if (SSL_write_ex(a, out + sent, len - sent > 40000 ? 40000 : len - sent, &n))
                sent += n;
            else
                ASSERT_TRUE(SSL_get_error(a, 0) == SSL_ERROR_WANT_WRITE ||
                            SSL_get_error(a, 0) == SSL_ERROR_WANT_READ);
        }
        if (SSL_read_ex(b, in + got, len - got, &n))
            got += n;
        else
            ASSERT_EQ(SSL_get_error(b, 0), SSL_ERROR_WANT_READ);
    }
    ASSERT_EQ(got, len);
    ASSERT_MEM_EQ(in, out, len);
    ERR_clear_error();
    free(in);
    free(out);
    return 1;
}

static int test_tls13_exchange(void)
{
    struct tpair p;
    int rc = 0, rs = 0, r;
    char buf[16];
    size_t n;
    uint64_t dl;

    ASSERT_TRUE(tpair_new(&p, TLS_server_method(), TLS_client_method()));
    ASSERT_TRUE(handshake(&p, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_STR_EQ(SSL_get_version(p.c), "TLSv1.3");
    ASSERT_STR_EQ(SSL_get_version(p.s), "TLSv1.3");
    ASSERT_STR_EQ(SSL_get_servername(p.s, TLSEXT_NAMETYPE_host_name), "localhost"); /* SNI */
    ASSERT_NULL(SSL_get_servername(p.c, TLSEXT_NAMETYPE_host_name)); /* none set explicitly */
    ASSERT_EQ(SSL_get_verify_result(p.c), X509_V_OK);
    ASSERT_TRUE(transfer(p.c, p.s, 300000));
    ASSERT_TRUE(transfer(p.s, p.c, 1000000));

    /* SSL_peek leaves the data for SSL_read; SSL_pending counts it. */
    ASSERT_EQ(SSL_write_ex(p.s, "peekaboo", 8, &n), 1);
    dl = tu_now_ms() + 5000;
    while (SSL_peek_ex(p.c, buf, 4, &n) != 1)
        ASSERT_TRUE(tu_now_ms() < dl);
    ASSERT_EQ(n, 4);
    ASSERT_MEM_EQ(buf, "peek", 4);
    ASSERT_EQ(SSL_pending(p.c), 8);
    ASSERT_EQ(SSL_read_ex(p.c, buf, sizeof(buf), &n), 1);
    ASSERT_EQ(n, 4); /* what the peek took, first */
    ASSERT_EQ(SSL_read_ex(p.c, buf + 4, sizeof(buf) - 4, &n), 1);
    ASSERT_EQ(n, 4);
    ASSERT_MEM_EQ(buf, "peekaboo", 8);

    /* close_notify: 0 from the first SSL_shutdown, ZERO_RETURN at the peer, whose own
     * SSL_shutdown then returns 1 (it has the peer's), and 1 for the first side later. */
    ASSERT_EQ(SSL_shutdown(p.c), 0);
    dl = tu_now_ms() + 5000;
    while ((r = SSL_read_ex(p.s, buf, sizeof(buf), &n)) == 0 &&
           SSL_get_error(p.s, r) == SSL_ERROR_WANT_READ)
        ASSERT_TRUE(tu_now_ms() < dl);
    ASSERT_EQ(r, 0);
    ASSERT_EQ(SSL_get_error(p.s, r), SSL_ERROR_ZERO_RETURN);
    ASSERT_EQ(SSL_read(p.s, buf, sizeof(buf)), 0); /* close_notify: 0; other failures -1 */
    ASSERT_EQ(SSL_get_error(p.s, 0), SSL_ERROR_ZERO_RETURN);
    ASSERT_EQ(SSL_shutdown(p.s), 1);
    dl = tu_now_ms() + 5000;
    while ((r = SSL_shutdown(p.c)) != 1) {
        ASSERT_TRUE(tu_now_ms() < dl);
        ASSERT_EQ(r, -1);
        ASSERT_EQ(SSL_get_error(p.c, r), SSL_ERROR_WANT_READ);
    }
    ERR_clear_error();
    tpair_free(&p);
    return 1;
}

static int test_tls12_and_alpn(void)
{
    static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    struct tpair p;
    int rc = 0, rs = 0;
    const unsigned char *sel = NULL;
    unsigned int sl = 0;

    ASSERT_TRUE(tpair_new(&p, TLS_method(), TLS_method()));
    /* The same socket through separate read and write BIOs. */
    ASSERT_EQ(SSL_set_rfd(p.c, p.cfd), 1);
    ASSERT_EQ(SSL_set_wfd(p.c, p.cfd), 1);
    ASSERT_EQ(SSL_get_rfd(p.c), p.cfd);
    ASSERT_EQ(SSL_get_wfd(p.c), p.cfd);
    ASSERT_TRUE(SSL_get_rbio(p.c) != SSL_get_wbio(p.c));
    ASSERT_EQ(SSL_CTX_set_max_proto_version(p.sctx, TLS1_2_VERSION), 1);
    ASSERT_EQ(SSL_CTX_set_alpn_protos(p.sctx, alpn, sizeof(alpn)), 0);
    ASSERT_EQ(SSL_set_alpn_protos(p.c, alpn, sizeof(alpn)), 0);
    SSL_set_accept_state(p.s);
    SSL_set_connect_state(p.c);
    ASSERT_TRUE(handshake(&p, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_STR_EQ(SSL_get_version(p.c), "TLSv1.2");
    SSL_get0_alpn_selected(p.c, &sel, &sl);
    ASSERT_EQ(sl, 8);
    ASSERT_MEM_EQ(sel, "http/1.1", 8);
    ASSERT_TRUE(transfer(p.c, p.s, 50000));
    ERR_clear_error();
    tpair_free(&p);
    return 1;
}

/* The handshake's progress as OpenSSL reports it: both ends before their first call, the
 * client once its ClientHello is out (the server still before: it has not been called),
 * both after. A failed handshake (below, test_untrusted) is in init again. */
static int test_init_state(void)
{
    struct tpair p;
    int rc = 0, rs = 0;

    ASSERT_TRUE(tpair_new(&p, TLS_server_method(), TLS_client_method()));
    ASSERT_TRUE(qu_init_state_is(p.c, 1, 1, 0));
    ASSERT_TRUE(qu_init_state_is(p.s, 1, 1, 0));
    ASSERT_TRUE(SSL_in_connect_init(p.c));
    ASSERT_FALSE(SSL_in_accept_init(p.c));
    ASSERT_TRUE(SSL_in_accept_init(p.s));
    rc = SSL_connect(p.c);
    ASSERT_EQ(rc, -1);
    ASSERT_EQ(SSL_get_error(p.c, rc), SSL_ERROR_WANT_READ);
    ASSERT_TRUE(qu_init_state_is(p.c, 0, 1, 0));
    ASSERT_TRUE(qu_init_state_is(p.s, 1, 1, 0));
    ASSERT_TRUE(handshake(&p, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_TRUE(qu_init_state_is(p.c, 0, 0, 1));
    ASSERT_TRUE(qu_init_state_is(p.s, 0, 0, 1));
    ERR_clear_error();
    tpair_free(&p);
    return 1;
}

static int test_untrusted(void)
{
    struct tpair p;
    int rc = 0, rs = 0;

    ASSERT_TRUE(tpair_new(&p, TLS_server_method(), TLS_client_method()));
    ASSERT_EQ(SSL_set1_host(p.c, "not-the-server.example"), 1);
    ASSERT_TRUE(handshake(&p, &rc, &rs));
    ASSERT_TRUE(rc != 1);
    ASSERT_EQ(SSL_get_error(p.c, rc), SSL_ERROR_SSL);
    ASSERT_EQ(SSL_get_verify_result(p.c), X509_V_ERR_HOSTNAME_MISMATCH);
    ASSERT_TRUE(qu_init_state_is(p.c, 0, 1, 0));
    ERR_clear_error();
    tpair_free(&p);
    return 1;
}

/* The listener API over TCP: SSL_new_listener on a TLS server context with a listening
 * socket; SSL_accept_connection (non-blocking: NULL until a client has connected) returns a
 * TLS connection that reads and writes like any other. */
static int test_listener(void)
{
    enum { N = 3 };
    SSL_CTX *sctx = tls_server_ctx(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd[N], i, r;
    SSL *l, *c[N], *s[N];
    uint64_t dl;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_EQ(SSL_CTX_load_verify_locations(cctx, qu_cert_path("ca.pem"), NULL), 1);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ASSERT_EQ(listen(lfd, 16), 0);
    ASSERT_EQ(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    ASSERT_EQ(fcntl(lfd, F_SETFL, O_NONBLOCK), 0);

    l = SSL_new_listener(sctx, 0);
    ASSERT_NOT_NULL(l);
    ASSERT_EQ(SSL_is_listener(l), 1);
    ASSERT_EQ(SSL_set_blocking_mode(l, 0), 1);
    ASSERT_EQ(SSL_set_fd(l, lfd), 1);
    ASSERT_EQ(SSL_listen(l), 1);
    ERR_clear_error();
    ASSERT_NULL(SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK)); /* nobody yet */
    ASSERT_NO_ERROR();

    for (i = 0; i < N; i++) {
        cfd[i] = socket(AF_INET, SOCK_STREAM, 0);
        ASSERT_EQ(connect(cfd[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
        ASSERT_EQ(fcntl(cfd[i], F_SETFL, O_NONBLOCK), 0);
        c[i] = SSL_new(cctx);
        ASSERT_NOT_NULL(c[i]);
        ASSERT_EQ(SSL_set_fd(c[i], cfd[i]), 1);
        ASSERT_EQ(SSL_set1_host(c[i], "localhost"), 1);
        s[i] = NULL;
    }
    dl = tu_now_ms() + 5000;
    for (i = 0; i < N; i++) {
        while ((s[i] = SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK)) == NULL)
            ASSERT_TRUE(tu_now_ms() < dl);
        ASSERT_PTR_EQ(SSL_get0_listener(s[i]), l);
        ASSERT_EQ(SSL_is_connection(s[i]), 1);
        ASSERT_EQ(SSL_get_blocking_mode(s[i]), 0); /* inherited */
    }
    ERR_clear_error();
    for (i = 0; i < N; i++) {
        struct tpair p = {.s = s[i], .c = c[i]};
        int rc = 0, rs = 0;
        char want[32], buf[32];
        size_t n, got = 0;

        ASSERT_TRUE(handshake(&p, &rc, &rs));
        ASSERT_EQ(rc, 1);
        ASSERT_EQ(rs, 1);
        snprintf(want, sizeof(want), "client %d", i);
        ASSERT_EQ(SSL_write_ex(c[i], want, strlen(want), &n), 1);
        dl = tu_now_ms() + 5000;
        while (got < strlen(want)) {
            ASSERT_TRUE(tu_now_ms() < dl);
            if ((r = SSL_read_ex(s[i], buf + got, sizeof(buf) - got, &n)) == 1)
                got += n;
            else
                ASSERT_EQ(SSL_get_error(s[i], r), SSL_ERROR_WANT_READ);
        }
        ASSERT_MEM_EQ(buf, want, got);
    }
    ERR_clear_error();
    for (i = 0; i < N; i++) {
        SSL_free(s[i]); /* closes the accepted socket */
        SSL_free(c[i]);
        close(cfd[i]);
    }
    SSL_free(l);
    close(lfd);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* Sessions: a second connection from the same client context resumes (TLS 1.3 and 1.2);
 * cache controls return OpenSSL's previous values; cipher names. */
static int resume_once(const SSL_METHOD *sm, long maxv, const char *want_cipher)
{
    SSL_CTX *sctx = tls_server_ctx(sm), *cctx = SSL_CTX_new(TLS_client_method());
    int round;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_EQ(SSL_CTX_load_verify_locations(cctx, qu_cert_path("ca.pem"), NULL), 1);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    if (maxv)
        ASSERT_EQ(SSL_CTX_set_max_proto_version(sctx, maxv), 1);
    ASSERT_EQ(SSL_CTX_set_session_id_context(sctx, (const unsigned char *)"test", 4), 1);
    for (round = 0; round < 2; round++) {
        struct tpair p = {.sctx = NULL, .cctx = NULL};
        int rc = 0, rs = 0;
        size_t n;
        char buf[8];

        ASSERT_TRUE(tcp_pair(&p.sfd, &p.cfd));
        p.s = SSL_new(sctx);
        p.c = SSL_new(cctx);
        ASSERT_EQ(SSL_set_fd(p.s, p.sfd), 1);
        ASSERT_EQ(SSL_set_fd(p.c, p.cfd), 1);
        ASSERT_EQ(SSL_set1_host(p.c, "localhost"), 1);
        ASSERT_TRUE(handshake(&p, &rc, &rs));
        ASSERT_EQ(rc, 1);
        ASSERT_EQ(rs, 1);
        /* TLS 1.3 tickets arrive after the handshake: a round trip of data brings them. */
        ASSERT_TRUE(transfer(p.s, p.c, 10));
        ASSERT_EQ(SSL_write_ex(p.c, "x", 1, &n), 1);
        {
            uint64_t dl = tu_now_ms() + 5000;

            while (SSL_read_ex(p.s, buf, 1, &n) != 1)
                ASSERT_TRUE(tu_now_ms() < dl);
        }
        ASSERT_EQ(SSL_session_reused(p.c), round);
        ASSERT_EQ(SSL_session_reused(p.s), round);
        ASSERT_STR_EQ(SSL_CIPHER_get_name(SSL_get_current_cipher(p.c)), want_cipher);
        ASSERT_STR_EQ(SSL_CIPHER_get_name(SSL_get_current_cipher(p.s)), want_cipher);
        ERR_clear_error();
        SSL_free(p.s);
        SSL_free(p.c);
        close(p.sfd);
        close(p.cfd);
    }
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

static int test_sessions(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    ASSERT_NOT_NULL(ctx);
    ASSERT_EQ(SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER), SSL_SESS_CACHE_SERVER);
    ASSERT_EQ(SSL_CTX_get_session_cache_mode(ctx), SSL_SESS_CACHE_SERVER);
    ASSERT_EQ(SSL_CTX_sess_set_cache_size(ctx, 1024), 1024 * 20);
    ASSERT_EQ(SSL_CTX_sess_get_cache_size(ctx), 1024);
    ASSERT_EQ(SSL_CTX_set_timeout(ctx, 3600), 7200);
    ASSERT_EQ(SSL_CTX_get_timeout(ctx), 3600);
    ASSERT_EQ(SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"0123456789abcdef0123456789abcdefX", 33), 0);
    ASSERT_ONE_ERROR();
    SSL_CTX_free(ctx);
    ASSERT_NULL(SSL_get_current_cipher(NULL));
    ERR_clear_error();
    ASSERT_STR_EQ(SSL_CIPHER_get_name(NULL), "(NONE)");
    ASSERT_TRUE(resume_once(TLS_server_method(), TLS1_2_VERSION, "ECDHE-ECDSA-AES256-GCM-SHA384"));
    ASSERT_TRUE(resume_once(TLS_server_method(), 0, "TLS_AES_256_GCM_SHA384"));
    return 1;
}

/* SSL_OP_IGNORE_UNEXPECTED_EOF: a peer that closes TCP without close_notify reads as a clean
 * end; without the option it is an SSL error (unexpected eof while reading). */
static int eof_case(int ignore)
{
    struct tpair p;
    int rc = 0, rs = 0, r;
    char buf[8];
    size_t n;
    uint64_t dl;

    ASSERT_TRUE(tpair_new(&p, TLS_server_method(), TLS_client_method()));
    if (ignore)
        SSL_CTX_set_options(p.sctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    ASSERT_TRUE(handshake(&p, &rc, &rs));
    ASSERT_EQ(rs, 1);
    shutdown(p.cfd, SHUT_RDWR);
    dl = tu_now_ms() + 5000;
    while ((r = SSL_read_ex(p.s, buf, sizeof(buf), &n)) == 0 && SSL_get_error(p.s, r) == SSL_ERROR_WANT_READ)
        ASSERT_TRUE(tu_now_ms() < dl);
    ASSERT_EQ(r, 0);
    if (ignore) {
        ASSERT_EQ(SSL_get_error(p.s, r), SSL_ERROR_ZERO_RETURN);
    } else {
        ASSERT_EQ(SSL_get_error(p.s, r), SSL_ERROR_SSL);
        ASSERT_ERROR_IS(ERR_LIB_SSL, 294); /* SSL_R_UNEXPECTED_EOF_WHILE_READING */
    }
    ERR_clear_error();
    tpair_free(&p);
    return 1;
}

static int test_unexpected_eof(void)
{
    ASSERT_TRUE(eof_case(0));
    ASSERT_TRUE(eof_case(1));
    return 1;
}

/* SSL_poll over TLS objects: a listener reports IC while a connection waits in its accept
 * queue; a connection reports W when its socket takes data and R once data (or the peer's
 * close_notify) arrived; a finite wait ends when data arrives. */
static int test_poll_tls(void)
{
    SSL_CTX *sctx = tls_server_ctx(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd, rc = 0, rs = 0;
    SSL *l, *c, *s = NULL;
    SSL_POLL_ITEM it[2];
    struct timeval zero = {0, 0}, tmo = {5, 0};
    size_t n;
    uint64_t dl;
    char buf[8];

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ASSERT_EQ(listen(lfd, 4), 0);
    ASSERT_EQ(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    ASSERT_EQ(fcntl(lfd, F_SETFL, O_NONBLOCK), 0);
    l = SSL_new_listener(sctx, 0);
    ASSERT_NOT_NULL(l);
    ASSERT_EQ(SSL_set_blocking_mode(l, 0), 1);
    ASSERT_EQ(SSL_set_fd(l, lfd), 1);

    memset(it, 0, sizeof(it));
    it[0].desc = SSL_as_poll_descriptor(l);
    it[0].events = SSL_POLL_EVENT_IC;
    ASSERT_EQ(SSL_poll(it, 1, sizeof(it[0]), &zero, 0, &n), 1);
    ASSERT_EQ(n, 0);
    ASSERT_U64_EQ(it[0].revents, 0);

    cfd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ASSERT_EQ(fcntl(cfd, F_SETFL, O_NONBLOCK), 0);
    ASSERT_EQ(SSL_poll(it, 1, sizeof(it[0]), &tmo, 0, &n), 1);
    ASSERT_EQ(n, 1);
    ASSERT_U64_EQ(it[0].revents, SSL_POLL_EVENT_IC);
    s = SSL_accept_connection(l, 0);
    ASSERT_NOT_NULL(s);
    c = SSL_new(cctx);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(SSL_set_fd(c, cfd), 1);
    {
        struct tpair p = {.s = s, .c = c};

        ASSERT_TRUE(handshake(&p, &rc, &rs));
    }
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);

    it[0].desc = SSL_as_poll_descriptor(s);
    it[0].events = SSL_POLL_EVENT_R | SSL_POLL_EVENT_W;
    it[1].desc = SSL_as_poll_descriptor(c);
    it[1].events = SSL_POLL_EVENT_R;
    ASSERT_EQ(SSL_poll(it, 2, sizeof(it[0]), &zero, 0, &n), 1);
    ASSERT_EQ(n, 1);
    ASSERT_U64_EQ(it[0].revents, SSL_POLL_EVENT_W);
    ASSERT_U64_EQ(it[1].revents, 0);
    ASSERT_EQ(SSL_write_ex(s, "ping", 4, &n), 1);
    it[0].events = SSL_POLL_EVENT_R;
    ASSERT_EQ(SSL_poll(it, 2, sizeof(it[0]), &tmo, 0, &n), 1);
    ASSERT_EQ(n, 1);
    ASSERT_U64_EQ(it[1].revents, SSL_POLL_EVENT_R);
    dl = tu_now_ms() + 5000;
    while (SSL_read_ex(c, buf, sizeof(buf), &n) != 1)
        ASSERT_TRUE(tu_now_ms() < dl);
    ASSERT_EQ(n, 4);
    ASSERT_MEM_EQ(buf, "ping", 4);
    ERR_clear_error();
    SSL_free(s);
    SSL_free(c);
    SSL_free(l);
    close(cfd);
    close(lfd);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* The server-name callback: runs once the ClientHello is in, sees the client's name through
 * SSL_get_servername and its own argument; SSL_TLSEXT_ERR_ALERT_FATAL ends the handshake. */
static int sni_calls, sni_answer;
static char sni_seen[64];

static int sni_cb(SSL *s, int *al, void *arg)
{
    const char *n = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);

    (void)al;
    sni_calls++;
    snprintf(sni_seen, sizeof(sni_seen), "%s", n != NULL && arg == (void *)&sni_calls ? n : "?");
    return sni_answer;
}

static int test_servername_cb(void)
{
    int answer;

    for (answer = 0; answer < 2; answer++) {
        struct tpair p;
        int rc = 0, rs = 0;

        ASSERT_TRUE(tpair_new(&p, TLS_server_method(), TLS_client_method()));
        SSL_CTX_set_tlsext_servername_callback(p.sctx, sni_cb);
        SSL_CTX_set_tlsext_servername_arg(p.sctx, &sni_calls);
        sni_calls = 0;
        sni_seen[0] = 0;
        sni_answer = answer == 0 ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_ALERT_FATAL;
        ASSERT_TRUE(handshake(&p, &rc, &rs));
        ASSERT_EQ(sni_calls, 1);
        ASSERT_STR_EQ(sni_seen, "localhost");
        if (answer == 0) {
            ASSERT_EQ(rc, 1);
            ASSERT_EQ(rs, 1);
        } else {
            ASSERT_TRUE(rs != 1);
            ASSERT_EQ(SSL_get_error(p.s, rs), SSL_ERROR_SSL);
        }
        ERR_clear_error();
        tpair_free(&p);
    }
    return 1;
}

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
    RUN(test_tls13_exchange);
    RUN(test_tls12_and_alpn);
    RUN(test_init_state);
    RUN(test_untrusted);
    RUN(test_listener);
    RUN(test_sessions);
    RUN(test_unexpected_eof);
    RUN(test_poll_tls);
    RUN(test_servername_cb);
    return tu_finish();
}
