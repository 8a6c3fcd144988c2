/*
 * test_early_data: TLS 1.3 early data over TCP (issue 16) with OpenSSL's calls, in one
 * thread over non-blocking sockets: a first connection leaves a session whose ticket allows
 * early data (SSL_SESSION_get_max_early_data is the server's value); a second one writes
 * early data with SSL_write_early_data, the server reads it with SSL_read_early_data (bytes
 * compared; WANT_READ before it arrives) until SSL_READ_EARLY_DATA_FINISH, SSL_accept ends the
 * handshake, both ends say ACCEPTED and normal data flows both ways. Refusals, each followed
 * by the client sending the data again after the handshake (OpenSSL's rule) and the server
 * reading it: the same session a second time (its ticket is single use), a server whose
 * max_early_data went back to 0, a server that does not read early data. The errors of
 * misuse (wrong side, after the handshake, no session, too much data, after FINISH), the
 * settings' getters and setters, a connection's own max_early_data, WANT_WRITE over a small
 * BIO pair, and a server writing to the client before its Finished. Against OpenSSL's
 * s_server and s_client: tests/tls/run.sh.
 */
#include "tlsutil.h"

#ifdef TEST_REAL_OPENSSL
int main(void)
{
    return 0; /* needs libssl: not part of the libcrypto comparison run */
}
#else
#include <openssl/ssl.h>

#define MAX_EARLY 4096

static const char early_msg[] = "GET /early HTTP/1.0\r\n";
static const char early_more[] = "X-More: yes\r\n\r\n";

/* A client context that resumes only through SSL_set_session. */
static SSL_CTX *client_ctx(void)
{
    SSL_CTX *c = tl_client_ctx(SSL_VERIFY_PEER);

    if (c != NULL)
        SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    return c;
}

/* Reads exactly n bytes on r into buf, stepping the peer's handshake (SSL_do_handshake on
 * `other`, if not NULL) between tries; 10 s at most. */
static int read_n(SSL *r, SSL *other, unsigned char *buf, size_t n)
{
    size_t got = 0, k;
    uint64_t dl = tu_now_ms() + 10000;

    while (got < n) {
        ASSERT_LT(tu_now_ms(), dl);
        if (SSL_read_ex(r, buf + got, n - got, &k) == 1) {
            got += k;
            continue;
        }
        ASSERT_EQ(SSL_get_error(r, 0), SSL_ERROR_WANT_READ);
        if (other != NULL)
            (void)SSL_do_handshake(other);
        (void)tu_wait_readable(SSL_get_fd(r), 1);
    }
    ERR_clear_error();
    return 1;
}

/* Both ends' handshakes to their end (SSL_connect, SSL_accept), 10 s at most. */
static int finish_both(SSL *c, SSL *s)
{
    uint64_t dl = tu_now_ms() + 10000;
    int dc = 0, ds = 0, r;

    while (!(dc && ds)) {
        ASSERT_LT(tu_now_ms(), dl);
        if (!dc) {
            r = SSL_connect(c);
            dc = r == 1;
            if (!dc)
                ASSERT_EQ(SSL_get_error(c, r), SSL_ERROR_WANT_READ);
        }
        if (!ds) {
            r = SSL_accept(s);
            ds = r == 1;
            if (!ds)
                ASSERT_EQ(SSL_get_error(s, r), SSL_ERROR_WANT_READ);
        }
    }
    ERR_clear_error();
    return 1;
}

/* A byte each way on a finished pair. */
static int exchange(SSL *c, SSL *s)
{
    unsigned char b;
    size_t n;

    ASSERT_EQ(SSL_write_ex(s, "s", 1, &n), 1);
    ASSERT_TRUE(read_n(c, NULL, &b, 1));
    ASSERT_EQ(b, 's');
    ASSERT_EQ(SSL_write_ex(c, "c", 1, &n), 1);
    ASSERT_TRUE(read_n(s, NULL, &b, 1));
    ASSERT_EQ(b, 'c');
    return 1;
}

/* A full handshake of cctx to sctx (a byte each way, so the tickets reach the client), the
 * server connection's own max_early_data and recv_max_early_data set where not negative;
 * returns the client's session (the caller frees it), NULL on failure. */
static SSL_SESSION *session_own(SSL_CTX *cctx, SSL_CTX *sctx, long max, long recv)
{
    struct tl_pair p;
    SSL_SESSION *sess = NULL;
    int rc, rs;

    if (!tl_pair_new(&p, cctx, sctx, "localhost") ||
        (max >= 0 && SSL_set_max_early_data(p.s, (uint32_t)max) != 1) ||
        (recv >= 0 && SSL_set_recv_max_early_data(p.s, (uint32_t)recv) != 1) ||
        !tl_handshake(p.c, p.s, &rc, &rs) || rc != 1 || rs != 1 || !exchange(p.c, p.s))
        goto done;
    sess = SSL_get1_session(p.c);
done:
    tl_pair_free(&p);
    return sess;
}

/* session_own with the context's settings. */
static SSL_SESSION *first_session(SSL_CTX *cctx, SSL_CTX *sctx)
{
    return session_own(cctx, sctx, -1, -1);
}

/* The server reads early data until FINISH (stepping the client's handshake while it waits),
 * into buf (at most cap bytes); the count goes to *got. WANT_READ is the only retry. */
static int read_early_all(SSL *s, SSL *c, unsigned char *buf, size_t cap, size_t *got)
{
    uint64_t dl = tu_now_ms() + 10000;
    size_t n;
    int r;

    *got = 0;
    for (;;) {
        ASSERT_LT(tu_now_ms(), dl);
        n = 12345;
        r = SSL_read_early_data(s, buf + *got, cap - *got, &n);
        if (r == SSL_READ_EARLY_DATA_FINISH) {
            ASSERT_EQ(n, 0);
            break;
        }
        if (r == SSL_READ_EARLY_DATA_SUCCESS) {
            ASSERT_GT(n, 0);
            *got += n;
            continue;
        }
        ASSERT_EQ(r, SSL_READ_EARLY_DATA_ERROR);
        ASSERT_EQ(SSL_get_error(s, r), SSL_ERROR_WANT_READ);
        ASSERT_NO_ERROR();
        ASSERT_EQ(n, 0);
        /* The client reads the server's flight and sends EndOfEarlyData and Finished. */
        r = SSL_connect(c);
        if (r != 1)
            ASSERT_EQ(SSL_get_error(c, r), SSL_ERROR_WANT_READ);
        (void)tu_wait_readable(SSL_get_fd(s), 1);
    }
    ERR_clear_error();
    return 1;
}

/* A connection offering `sess` whose client writes early_msg and early_more as early data
 * and whose server reads with SSL_read_early_data; `accepted`: what both ends must say.
 * When refused, the client sends the same bytes again after the handshake. */
static int early_round(SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION *sess, int accepted)
{
    struct tl_pair p;
    unsigned char buf[256];
    size_t n, got, len1 = strlen(early_msg), len2 = strlen(early_more);
    int r;

    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_EQ(SSL_set_session(p.c, sess), 1);
    ASSERT_EQ(SSL_get_early_data_status(p.c), SSL_EARLY_DATA_NOT_SENT);
    ASSERT_EQ(SSL_get_early_data_status(p.s), SSL_EARLY_DATA_NOT_SENT);

    /* Before the client sent anything: WANT_READ, and the server must not read or write
     * with the normal calls meanwhile. */
    n = 7;
    r = SSL_read_early_data(p.s, buf, sizeof(buf), &n);
    ASSERT_EQ(r, SSL_READ_EARLY_DATA_ERROR);
    ASSERT_EQ(SSL_get_error(p.s, r), SSL_ERROR_WANT_READ);
    ASSERT_EQ(n, 0);
    ASSERT_NO_ERROR();
    ASSERT_TRUE(SSL_read_ex(p.s, buf, sizeof(buf), &n) != 1);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);
    ASSERT_TRUE(SSL_write_ex(p.s, "x", 1, &n) != 1);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);

    /* Two writes of early data (streaming), each taken whole. */
    n = 0;
    ASSERT_EQ(SSL_write_early_data(p.c, early_msg, len1, &n), 1);
    ASSERT_EQ(n, len1);
    ASSERT_EQ(SSL_write_early_data(p.c, early_more, len2, &n), 1);
    ASSERT_EQ(n, len2);
    ASSERT_NO_ERROR();
    /* From the first write on, offered: REJECTED until the server says otherwise. */
    ASSERT_EQ(SSL_get_early_data_status(p.c), SSL_EARLY_DATA_REJECTED);

    ASSERT_TRUE(read_early_all(p.s, p.c, buf, sizeof(buf), &got));
    if (accepted) {
        ASSERT_EQ(got, len1 + len2);
        ASSERT_MEM_EQ(buf, early_msg, len1);
        ASSERT_MEM_EQ(buf + len1, early_more, len2);
    } else {
        ASSERT_EQ(got, 0);
    }
    /* After FINISH: no more SSL_read_early_data; the handshake completes. */
    ASSERT_EQ(SSL_read_early_data(p.s, buf, sizeof(buf), &n), SSL_READ_EARLY_DATA_ERROR);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);
    ASSERT_TRUE(finish_both(p.c, p.s));
    /* The client's handshake ended its early data. */
    ASSERT_EQ(SSL_write_early_data(p.c, "late", 4, &n), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);

    ASSERT_EQ(SSL_get_early_data_status(p.c), accepted ? SSL_EARLY_DATA_ACCEPTED : SSL_EARLY_DATA_REJECTED);
    if (accepted) {
        ASSERT_EQ(SSL_get_early_data_status(p.s), SSL_EARLY_DATA_ACCEPTED);
        ASSERT_EQ(SSL_session_reused(p.c), 1);
        ASSERT_EQ(SSL_session_reused(p.s), 1);
    } else {
        /* Refused: the client sends it again (SSL_read_early_data(3)). */
        ASSERT_NE(SSL_get_early_data_status(p.s), SSL_EARLY_DATA_ACCEPTED);
        ASSERT_EQ(SSL_write_ex(p.c, early_msg, len1, &n), 1);
        ASSERT_EQ(SSL_write_ex(p.c, early_more, len2, &n), 1);
        ASSERT_TRUE(read_n(p.s, NULL, buf, len1 + len2));
        ASSERT_MEM_EQ(buf, early_msg, len1);
        ASSERT_MEM_EQ(buf + len1, early_more, len2);
    }
    ASSERT_TRUE(exchange(p.c, p.s));
    tl_pair_free(&p);
    return 1;
}

/* Accepted, then the same session again: its ticket resumed once (anti-replay), so the
 * early data is refused and sent again. */
static int test_accepted_then_single_use(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = client_ctx();
    SSL_SESSION *sess;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_EQ(SSL_CTX_get_max_early_data(sctx), 0);
    ASSERT_EQ(SSL_CTX_set_max_early_data(sctx, MAX_EARLY), 1);
    ASSERT_EQ(SSL_CTX_get_max_early_data(sctx), MAX_EARLY);
    sess = first_session(cctx, sctx);
    ASSERT_NOT_NULL(sess);
    ASSERT_EQ(SSL_SESSION_get_max_early_data(sess), MAX_EARLY);
    ASSERT_TRUE(early_round(cctx, sctx, sess, 1));
    /* The ticket is used: the client offers it no more; what it writes reads as refused. */
    ASSERT_TRUE(early_round(cctx, sctx, sess, 0));
    SSL_SESSION_free(sess);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* A server whose max_early_data went back to 0 refuses early data offered with a ticket
 * from before: the server saw it offered (REJECTED on both ends). */
static int test_server_turned_off(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = client_ctx();
    SSL_SESSION *sess;
    struct tl_pair p;
    unsigned char buf[64];
    size_t n, got;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_EQ(SSL_CTX_set_max_early_data(sctx, MAX_EARLY), 1);
    sess = first_session(cctx, sctx);
    ASSERT_NOT_NULL(sess);
    ASSERT_EQ(SSL_CTX_set_max_early_data(sctx, 0), 1);
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_EQ(SSL_set_session(p.c, sess), 1);
    ASSERT_EQ(SSL_write_early_data(p.c, "early", 5, &n), 1);
    ASSERT_EQ(n, 5);
    ASSERT_TRUE(read_early_all(p.s, p.c, buf, sizeof(buf), &got));
    ASSERT_EQ(got, 0);
    ASSERT_TRUE(finish_both(p.c, p.s));
    ASSERT_EQ(SSL_get_early_data_status(p.c), SSL_EARLY_DATA_REJECTED);
    ASSERT_EQ(SSL_get_early_data_status(p.s), SSL_EARLY_DATA_REJECTED);
    ASSERT_EQ(SSL_write_ex(p.c, "early", 5, &n), 1);
    ASSERT_TRUE(read_n(p.s, NULL, buf, 5));
    ASSERT_MEM_EQ(buf, "early", 5);
    ASSERT_TRUE(exchange(p.c, p.s));
    tl_pair_free(&p);
    SSL_SESSION_free(sess);

    /* A server that never allowed it: the session allows none, SSL_write_early_data
     * refuses, and a resumed handshake says NOT_SENT on both ends. */
    sess = first_session(cctx, sctx);
    ASSERT_NOT_NULL(sess);
    ASSERT_EQ(SSL_SESSION_get_max_early_data(sess), 0);
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_EQ(SSL_set_session(p.c, sess), 1);
    ASSERT_EQ(SSL_write_early_data(p.c, "early", 5, &n), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);
    ASSERT_TRUE(finish_both(p.c, p.s));
    ASSERT_EQ(SSL_session_reused(p.c), 1);
    ASSERT_EQ(SSL_get_early_data_status(p.c), SSL_EARLY_DATA_NOT_SENT);
    ASSERT_EQ(SSL_get_early_data_status(p.s), SSL_EARLY_DATA_NOT_SENT);
    tl_pair_free(&p);
    SSL_SESSION_free(sess);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* A server that allows early data but completes the handshake with SSL_accept, never
 * calling SSL_read_early_data, refuses it (as OpenSSL's does): nothing is lost unread. */
static int test_server_not_reading(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = client_ctx();
    SSL_SESSION *sess;
    struct tl_pair p;
    unsigned char buf[64];
    size_t n;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_EQ(SSL_CTX_set_max_early_data(sctx, MAX_EARLY), 1);
    sess = first_session(cctx, sctx);
    ASSERT_NOT_NULL(sess);
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_EQ(SSL_set_session(p.c, sess), 1);
    ASSERT_EQ(SSL_write_early_data(p.c, "early", 5, &n), 1);
    ASSERT_TRUE(finish_both(p.c, p.s));
    ASSERT_EQ(SSL_get_early_data_status(p.c), SSL_EARLY_DATA_REJECTED);
    ASSERT_EQ(SSL_get_early_data_status(p.s), SSL_EARLY_DATA_REJECTED);
    ASSERT_EQ(SSL_session_reused(p.s), 1);
    ASSERT_EQ(SSL_write_ex(p.c, "again", 5, &n), 1);
    ASSERT_TRUE(read_n(p.s, NULL, buf, 5));
    ASSERT_MEM_EQ(buf, "again", 5);
    tl_pair_free(&p);
    SSL_SESSION_free(sess);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* A server connection's own max_early_data over its context's 0: its tickets allow early
 * data, and a later connection with the same setting accepts it. */
static int test_connection_setting(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = client_ctx();
    SSL_SESSION *sess;
    struct tl_pair p;
    unsigned char buf[64];
    size_t n, got;
    int rc, rs;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_EQ(SSL_get_max_early_data(p.s), 0);
    ASSERT_EQ(SSL_set_max_early_data(p.s, 1000), 1);
    ASSERT_EQ(SSL_get_max_early_data(p.s), 1000);
    ASSERT_EQ(SSL_CTX_get_max_early_data(sctx), 0);
    ASSERT_TRUE(tl_handshake(p.c, p.s, &rc, &rs));
    ASSERT_TRUE(rc == 1 && rs == 1);
    ASSERT_TRUE(exchange(p.c, p.s));
    sess = SSL_get1_session(p.c);
    ASSERT_NOT_NULL(sess);
    ASSERT_EQ(SSL_SESSION_get_max_early_data(sess), 1000);
    tl_pair_free(&p);

    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_EQ(SSL_set_max_early_data(p.s, 1000), 1);
    ASSERT_EQ(SSL_set_session(p.c, sess), 1);
    /* More than the session allows: fatal, as in OpenSSL. */
    {
        static unsigned char big[1001];

        ASSERT_EQ(SSL_write_early_data(p.c, big, sizeof(big), &n), 0);
        ASSERT_EQ(SSL_get_error(p.c, 0), SSL_ERROR_SSL);
        ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_TOO_MUCH_EARLY_DATA);
        ASSERT_EQ(SSL_write_early_data(p.c, big, 10, &n), 0);
        ASSERT_ERROR_QUEUED();
        ERR_clear_error();
    }
    tl_pair_free(&p);
    /* That took the ticket: a fresh session for the accepted round. */
    SSL_SESSION_free(sess);
    sess = session_own(cctx, sctx, 1000, -1);
    ASSERT_NOT_NULL(sess);

    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_EQ(SSL_set_max_early_data(p.s, 1000), 1);
    ASSERT_EQ(SSL_set_session(p.c, sess), 1);
    ASSERT_EQ(SSL_write_early_data(p.c, "own", 3, &n), 1);
    ASSERT_TRUE(read_early_all(p.s, p.c, buf, sizeof(buf), &got));
    ASSERT_EQ(got, 3);
    ASSERT_MEM_EQ(buf, "own", 3);
    ASSERT_TRUE(finish_both(p.c, p.s));
    ASSERT_EQ(SSL_get_early_data_status(p.c), SSL_EARLY_DATA_ACCEPTED);
    ASSERT_EQ(SSL_get_early_data_status(p.s), SSL_EARLY_DATA_ACCEPTED);
    tl_pair_free(&p);
    SSL_SESSION_free(sess);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* recv_max_early_data bounds what the server takes: the tickets it issues say the smaller of
 * max_early_data and recv_max_early_data, the client is held to that, and early data up to it
 * is accepted byte for byte. A connection's own setting counts; with 0 no ticket allows any. */
static int test_recv_max(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = client_ctx();
    SSL_SESSION *sess;
    struct tl_pair p;
    static unsigned char buf[256], big[101];
    size_t n, got;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_EQ(SSL_CTX_set_max_early_data(sctx, 1000), 1);
    ASSERT_EQ(SSL_CTX_set_recv_max_early_data(sctx, 100), 1);
    sess = first_session(cctx, sctx);
    ASSERT_NOT_NULL(sess);
    ASSERT_EQ(SSL_SESSION_get_max_early_data(sess), 100);
    /* 101 bytes: more than the ticket allows, refused on the client (as OpenSSL). */
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_EQ(SSL_set_session(p.c, sess), 1);
    ASSERT_EQ(SSL_write_early_data(p.c, big, sizeof(big), &n), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_TOO_MUCH_EARLY_DATA);
    tl_pair_free(&p);
    SSL_SESSION_free(sess);
    /* 100 bytes: accepted whole. */
    sess = first_session(cctx, sctx);
    ASSERT_NOT_NULL(sess);
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_EQ(SSL_set_session(p.c, sess), 1);
    memset(big, 'r', sizeof(big));
    ASSERT_EQ(SSL_write_early_data(p.c, big, 100, &n), 1);
    ASSERT_EQ(n, 100);
    ASSERT_TRUE(read_early_all(p.s, p.c, buf, sizeof(buf), &got));
    ASSERT_EQ(got, 100);
    ASSERT_MEM_EQ(buf, big, 100);
    ASSERT_TRUE(finish_both(p.c, p.s));
    ASSERT_EQ(SSL_get_early_data_status(p.s), SSL_EARLY_DATA_ACCEPTED);
    ASSERT_EQ(SSL_get_early_data_status(p.c), SSL_EARLY_DATA_ACCEPTED);
    tl_pair_free(&p);
    SSL_SESSION_free(sess);

    /* A connection's own recv_max_early_data, below the context's. */
    sess = session_own(cctx, sctx, -1, 10);
    ASSERT_NOT_NULL(sess);
    ASSERT_EQ(SSL_SESSION_get_max_early_data(sess), 10);
    SSL_SESSION_free(sess);

    /* 0: no early data at all. */
    ASSERT_EQ(SSL_CTX_set_recv_max_early_data(sctx, 0), 1);
    sess = first_session(cctx, sctx);
    ASSERT_NOT_NULL(sess);
    ASSERT_EQ(SSL_SESSION_get_max_early_data(sess), 0);
    SSL_SESSION_free(sess);
    ASSERT_NO_ERROR();
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* Over a BIO pair whose client-to-server buffer (300 bytes) cannot hold the ClientHello:
 * SSL_write_early_data says WANT_WRITE until the server has read enough, and the retried
 * call reports the whole write once (the server gets the bytes once). The server writes to
 * the client before its Finished (SSL_write_early_data after SUCCESS), which the client reads
 * after the handshake. */
static int test_want_write_and_server_write(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = client_ctx();
    SSL_SESSION *sess;
    BIO *a = NULL, *b = NULL;
    SSL *c, *s;
    unsigned char buf[256];
    size_t n = 0, got = 0, len = strlen(early_msg);
    int r, wants = 0, wrote_back = 0;
    uint64_t dl = tu_now_ms() + 10000;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_EQ(SSL_CTX_set_max_early_data(sctx, MAX_EARLY), 1);
    sess = first_session(cctx, sctx);
    ASSERT_NOT_NULL(sess);
    ASSERT_EQ(BIO_new_bio_pair(&a, 300, &b, 0), 1);
    c = SSL_new(cctx);
    s = SSL_new(sctx);
    ASSERT_TRUE(c != NULL && s != NULL);
    SSL_set_bio(c, a, a);
    SSL_set_bio(s, b, b);
    ASSERT_EQ(SSL_set1_host(c, "localhost"), 1);
    ASSERT_EQ(SSL_set_session(c, sess), 1);
    while ((r = SSL_write_early_data(c, early_msg, len, &n)) != 1) {
        ASSERT_LT(tu_now_ms(), dl);
        ASSERT_EQ(SSL_get_error(c, r), SSL_ERROR_WANT_WRITE);
        ASSERT_EQ(n, 0);
        wants++;
        r = SSL_read_early_data(s, buf + got, sizeof(buf) - got, &n);
        if (r == SSL_READ_EARLY_DATA_SUCCESS)
            got += n;
        else
            ASSERT_EQ(SSL_get_error(s, r), SSL_ERROR_WANT_READ);
    }
    ASSERT_GT(wants, 0);
    ASSERT_EQ(n, len);
    ASSERT_NO_ERROR();
    for (;;) {
        ASSERT_LT(tu_now_ms(), dl);
        r = SSL_read_early_data(s, buf + got, sizeof(buf) - got, &n);
        if (r == SSL_READ_EARLY_DATA_FINISH)
            break;
        if (r == SSL_READ_EARLY_DATA_SUCCESS) {
            got += n;
            if (!wrote_back) {
                ASSERT_EQ(SSL_write_early_data(s, "half", 4, &n), 1);
                ASSERT_EQ(n, 4);
                wrote_back = 1;
            }
            continue;
        }
        ASSERT_EQ(SSL_get_error(s, r), SSL_ERROR_WANT_READ);
        r = SSL_connect(c);
        if (r != 1)
            ASSERT_EQ(SSL_get_error(c, r), SSL_ERROR_WANT_READ);
    }
    ASSERT_EQ(wrote_back, 1);
    ASSERT_EQ(got, len);
    ASSERT_MEM_EQ(buf, early_msg, len);
    ASSERT_TRUE(finish_both(c, s));
    ASSERT_EQ(SSL_get_early_data_status(c), SSL_EARLY_DATA_ACCEPTED);
    ASSERT_EQ(SSL_get_early_data_status(s), SSL_EARLY_DATA_ACCEPTED);
    ASSERT_TRUE(read_n(c, NULL, buf, 4));
    ASSERT_MEM_EQ(buf, "half", 4);
    ASSERT_TRUE(exchange(c, s));
    SSL_free(c);
    SSL_free(s);
    SSL_SESSION_free(sess);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* Misuse, as OpenSSL's ssl_lib.c answers it, and the settings. */
static int test_errors_and_settings(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = client_ctx();
    struct tl_pair p;
    unsigned char buf[16];
    size_t n;
    int rc, rs;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_EQ(SSL_CTX_set_max_early_data(sctx, MAX_EARLY), 1);
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    /* Wrong side. */
    n = 9;
    ASSERT_EQ(SSL_read_early_data(p.c, buf, sizeof(buf), &n), SSL_READ_EARLY_DATA_ERROR);
    ASSERT_EQ(n, 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);
    ASSERT_EQ(SSL_write_early_data(p.s, "x", 1, &n), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);
    /* A client without a session. */
    ASSERT_EQ(SSL_write_early_data(p.c, "x", 1, &n), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);
    ASSERT_NO_ERROR();
    /* After the handshake. */
    ASSERT_TRUE(tl_handshake(p.c, p.s, &rc, &rs));
    ASSERT_TRUE(rc == 1 && rs == 1);
    ASSERT_EQ(SSL_read_early_data(p.s, buf, sizeof(buf), &n), SSL_READ_EARLY_DATA_ERROR);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);
    ASSERT_EQ(SSL_write_early_data(p.c, "x", 1, &n), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);
    ASSERT_EQ(SSL_get_early_data_status(p.c), SSL_EARLY_DATA_NOT_SENT);
    ASSERT_EQ(SSL_get_early_data_status(p.s), SSL_EARLY_DATA_NOT_SENT);
    tl_pair_free(&p);

    /* Settings: OpenSSL's defaults, context and connection values. */
    ASSERT_EQ(SSL_CTX_get_recv_max_early_data(sctx), 16384);
    ASSERT_EQ(SSL_CTX_set_recv_max_early_data(sctx, 20000), 1);
    ASSERT_EQ(SSL_CTX_get_recv_max_early_data(sctx), 20000);
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_EQ(SSL_get_recv_max_early_data(p.s), 20000);
    ASSERT_EQ(SSL_set_recv_max_early_data(p.s, 100), 1);
    ASSERT_EQ(SSL_get_recv_max_early_data(p.s), 100);
    ASSERT_EQ(SSL_get_max_early_data(p.s), MAX_EARLY);
    tl_pair_free(&p);

    /* NULL arguments: the failure value and one error. */
    ASSERT_EQ(SSL_get_early_data_status(NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_write_early_data(NULL, "x", 1, &n), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_read_early_data(NULL, buf, 1, &n), SSL_READ_EARLY_DATA_ERROR);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_CTX_set_max_early_data(NULL, 1), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_CTX_get_max_early_data(NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_SESSION_set_max_early_data(NULL, 1), 0);
    ASSERT_ONE_ERROR();
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
    RUN(test_accepted_then_single_use);
    RUN(test_server_turned_off);
    RUN(test_server_not_reading);
    RUN(test_connection_setting);
    RUN(test_recv_max);
    RUN(test_want_write_and_server_write);
    RUN(test_errors_and_settings);
    return tu_finish();
}
#endif
