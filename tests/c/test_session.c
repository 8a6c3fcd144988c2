/*
 * test_session: SSL_SESSION objects. Resumption through SSL_get1_session on a first
 * connection and SSL_set_session on a second, for TLS 1.3, TLS 1.2 and QUIC, seen by both
 * ends (SSL_session_reused); the new-session callback (its SSL *, one call per ticket, the
 * reference it hands over); the remove-session callback; reference counts; time and timeout
 * (an expired session is not offered); the DER and PEM forms (round trips byte for byte;
 * what a session read back does: SSL_set_session takes it, the handshake is a full one);
 * NULL arguments.
 */
#include "tlsutil.h"

#ifdef TEST_REAL_OPENSSL
int main(void)
{
    return 0; /* needs libssl: not part of the libcrypto comparison run */
}
#else
#include <openssl/ssl.h>

/* ---- the new-session callback's record */

#define MAX_KEPT 16
static SSL *cb_expect;         /* the SSL * the callback must see */
static int cb_calls, cb_wrong_ssl, cb_not_current, cb_keep;
static SSL_SESSION *cb_kept[MAX_KEPT];
static int cb_nkept;

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    cb_calls++;
    if (ssl != cb_expect)
        cb_wrong_ssl++;
    /* As in OpenSSL, the session handed over is the connection's current one. */
    if (SSL_get_session(ssl) != sess)
        cb_not_current++;
    if (cb_keep && cb_nkept < MAX_KEPT) {
        cb_kept[cb_nkept++] = sess;
        return 1; /* the application keeps the reference */
    }
    return 0; /* the library releases it */
}

static SSL_CTX *rm_expect_ctx;
static int rm_calls, rm_wrong_ctx;
static SSL_SESSION *rm_last;

static void on_remove_session(SSL_CTX *ctx, SSL_SESSION *sess)
{
    rm_calls++;
    if (ctx != rm_expect_ctx)
        rm_wrong_ctx++;
    rm_last = sess;
}

static void cb_reset(SSL *expect, int keep)
{
    int i;

    for (i = 0; i < cb_nkept; i++)
        SSL_SESSION_free(cb_kept[i]);
    cb_nkept = 0;
    cb_expect = expect;
    cb_calls = cb_wrong_ssl = cb_not_current = 0;
    cb_keep = keep;
}

/* ---- TLS over TCP */

/* One TLS connection of cctx to sctx: handshake, then the server sends a byte the client
 * reads (so TLS 1.3 tickets reach the client) and the client answers. `offer` (if not NULL)
 * is set with SSL_set_session first. The pair stays open in *p. */
static int tls_connect(struct tl_pair *p, SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION *offer)
{
    int rc, rs;
    size_t n;
    char b;
    uint64_t dl;

    ASSERT_TRUE(tl_pair_new(p, cctx, sctx, "localhost"));
    if (offer != NULL)
        ASSERT_EQ(SSL_set_session(p->c, offer), 1);
    cb_expect = p->c;
    ASSERT_TRUE(tl_handshake(p->c, p->s, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_EQ(SSL_write_ex(p->s, "s", 1, &n), 1);
    dl = tu_now_ms() + 5000;
    while (SSL_read_ex(p->c, &b, 1, &n) != 1)
        ASSERT_LT(tu_now_ms(), dl);
    ASSERT_EQ(b, 's');
    ASSERT_EQ(SSL_write_ex(p->c, "c", 1, &n), 1);
    dl = tu_now_ms() + 5000;
    while (SSL_read_ex(p->s, &b, 1, &n) != 1)
        ASSERT_LT(tu_now_ms(), dl);
    ASSERT_EQ(b, 'c');
    ERR_clear_error();
    return 1;
}

static SSL_CTX *tls_sctx(long maxv)
{
    SSL_CTX *s = tl_server_ctx();

    if (s != NULL && maxv != 0 && SSL_CTX_set_max_proto_version(s, maxv) != 1) {
        SSL_CTX_free(s);
        return NULL;
    }
    return s;
}

/* The client context keeps no sessions of its own (NO_INTERNAL_STORE): a second connection
 * resumes only through SSL_set_session. */
static SSL_CTX *tls_cctx(void)
{
    SSL_CTX *c = tl_client_ctx(SSL_VERIFY_PEER);

    if (c == NULL)
        return NULL;
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, on_new_session);
    return c;
}

static int tls_resume(long maxv, int tickets, int version)
{
    SSL_CTX *sctx = tls_sctx(maxv), *cctx = tls_cctx();
    struct tl_pair p;
    SSL_SESSION *sess, *first;
    time_t now = time(NULL), after;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    cb_reset(NULL, 1);

    /* Before any handshake there is no session. */
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_NULL(SSL_get_session(p.c));
    tl_pair_free(&p);

    /* First connection: a full handshake; one callback per ticket, with this SSL *. */
    now = time(NULL);
    ASSERT_TRUE(tls_connect(&p, cctx, sctx, NULL));
    after = time(NULL);
    ASSERT_EQ(SSL_session_reused(p.c), 0);
    ASSERT_EQ(SSL_session_reused(p.s), 0);
    ASSERT_EQ(cb_calls, tickets);
    ASSERT_EQ(cb_wrong_ssl, 0);
    ASSERT_EQ(cb_not_current, 0);
    ASSERT_EQ(cb_nkept, tickets);
    sess = SSL_get1_session(p.c);
    ASSERT_NOT_NULL(sess);
    ASSERT_PTR_EQ(sess, cb_kept[cb_nkept - 1]); /* the newest ticket */
    ASSERT_PTR_EQ(SSL_get_session(p.c), sess);
    ASSERT_EQ(SSL_SESSION_is_resumable(sess), 1);
    ASSERT_EQ(SSL_SESSION_get_protocol_version(sess), version);
    /* Made during the handshake (which takes seconds under valgrind). */
    ASSERT_LE(SSL_SESSION_get_time(sess), after);
    ASSERT_GE(SSL_SESSION_get_time(sess), now);
    ASSERT_EQ(SSL_SESSION_get_time_ex(sess), SSL_SESSION_get_time(sess));
    ASSERT_EQ(SSL_SESSION_get_timeout(sess), 7200);
    ASSERT_EQ(SSL_SESSION_get_max_early_data(sess), 0);
    /* The server's session carries metadata only. */
    ASSERT_NOT_NULL(SSL_get_session(p.s));
    ASSERT_EQ(SSL_SESSION_is_resumable(SSL_get_session(p.s)), 0);
    ASSERT_EQ(SSL_SESSION_get_protocol_version(SSL_get_session(p.s)), version);
    /* A server cannot be given a session, nor a client after its handshake. */
    ASSERT_EQ(SSL_set_session(p.s, sess), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_set_session(p.c, sess), 0);
    ASSERT_ONE_ERROR();
    first = cb_kept[0];
    tl_pair_free(&p);

    /* Second connection, offered the session: both ends see a resumed handshake. */
    cb_calls = 0;
    ASSERT_TRUE(tls_connect(&p, cctx, sctx, sess));
    ASSERT_EQ(SSL_session_reused(p.c), 1);
    ASSERT_EQ(SSL_session_reused(p.s), 1);
    ASSERT_EQ(cb_wrong_ssl, 0);
    tl_pair_free(&p);
    if (version == TLS1_3_VERSION) {
        /* A TLS 1.3 ticket resumes once; the other ticket of the first connection still can. */
        ASSERT_EQ(SSL_SESSION_is_resumable(sess), 0);
        ASSERT_TRUE(tls_connect(&p, cctx, sctx, sess));
        ASSERT_EQ(SSL_session_reused(p.c), 0);
        ASSERT_EQ(SSL_session_reused(p.s), 0);
        tl_pair_free(&p);
        ASSERT_EQ(SSL_SESSION_is_resumable(first), 1);
        ASSERT_TRUE(tls_connect(&p, cctx, sctx, first));
        ASSERT_EQ(SSL_session_reused(p.c), 1);
        ASSERT_EQ(SSL_session_reused(p.s), 1);
        tl_pair_free(&p);
    } else {
        /* A TLS 1.2 session resumes again. */
        ASSERT_EQ(SSL_SESSION_is_resumable(sess), 1);
        ASSERT_TRUE(tls_connect(&p, cctx, sctx, sess));
        ASSERT_EQ(SSL_session_reused(p.c), 1);
        ASSERT_EQ(SSL_session_reused(p.s), 1);
        tl_pair_free(&p);
    }
    SSL_SESSION_free(sess);
    cb_reset(NULL, 0);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return 1;
}

static int test_tls13_resume(void)
{
    /* rustls's server sends two tickets. */
    return tls_resume(0, 2, TLS1_3_VERSION);
}

static int test_tls12_resume(void)
{
    return tls_resume(TLS1_2_VERSION, 1, TLS1_2_VERSION);
}

/* A session offered to a connection of another context (same settings) is accepted, the
 * handshake is a full one (rustls resumes only with the verifier that made the session), and
 * the session is not used up: its own context still resumes it. */
static int test_other_context(void)
{
    SSL_CTX *sctx = tls_sctx(0), *a = tls_cctx(), *b = tls_cctx();
    struct tl_pair p;
    SSL_SESSION *sess;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(b);
    cb_reset(NULL, 0);
    ASSERT_TRUE(tls_connect(&p, a, sctx, NULL));
    sess = SSL_get1_session(p.c);
    ASSERT_NOT_NULL(sess);
    tl_pair_free(&p);
    ASSERT_TRUE(tls_connect(&p, b, sctx, sess));
    ASSERT_EQ(SSL_session_reused(p.c), 0);
    ASSERT_EQ(SSL_session_reused(p.s), 0);
    tl_pair_free(&p);
    ASSERT_EQ(SSL_SESSION_is_resumable(sess), 1);
    ASSERT_TRUE(tls_connect(&p, a, sctx, sess));
    ASSERT_EQ(SSL_session_reused(p.c), 1);
    ASSERT_EQ(SSL_session_reused(p.s), 1);
    tl_pair_free(&p);
    SSL_SESSION_free(sess);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(sctx);
    return 1;
}

/* The new-session callback's reference: returning 0 lets the library free it (ASan and
 * valgrind see a leak otherwise); returning 1 hands it over (freed here; a double free
 * would show). Without SSL_SESS_CACHE_CLIENT the callback is not called. */
static int test_new_cb_reference(void)
{
    SSL_CTX *sctx = tls_sctx(0), *cctx = tls_cctx();
    struct tl_pair p;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    cb_reset(NULL, 0);
    ASSERT_TRUE(tls_connect(&p, cctx, sctx, NULL));
    ASSERT_EQ(cb_calls, 2);
    ASSERT_EQ(cb_nkept, 0);
    /* The connection still holds its sessions. */
    ASSERT_NOT_NULL(SSL_get_session(p.c));
    ASSERT_EQ(SSL_SESSION_is_resumable(SSL_get_session(p.c)), 1);
    tl_pair_free(&p);

    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_SERVER);
    cb_reset(NULL, 1);
    ASSERT_TRUE(tls_connect(&p, cctx, sctx, NULL));
    ASSERT_EQ(cb_calls, 0);
    tl_pair_free(&p);

    /* Cleared callback: nothing is called. */
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT);
    SSL_CTX_sess_set_new_cb(cctx, NULL);
    ASSERT_TRUE(tls_connect(&p, cctx, sctx, NULL));
    ASSERT_EQ(cb_calls, 0);
    tl_pair_free(&p);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return 1;
}

/* The context's own cache (no NO_INTERNAL_STORE): a TLS 1.2 session saved again after a
 * resumption replaces the first, which leaves through the remove-session callback. */
static int test_remove_cb(void)
{
    SSL_CTX *sctx = tls_sctx(TLS1_2_VERSION), *cctx = tl_client_ctx(SSL_VERIFY_PEER);
    struct tl_pair p;
    SSL_SESSION *first;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT);
    SSL_CTX_sess_set_new_cb(cctx, on_new_session);
    SSL_CTX_sess_set_remove_cb(cctx, on_remove_session);
    rm_expect_ctx = cctx;
    rm_calls = rm_wrong_ctx = 0;
    rm_last = NULL;
    cb_reset(NULL, 1);
    ASSERT_TRUE(tls_connect(&p, cctx, sctx, NULL));
    ASSERT_EQ(SSL_session_reused(p.c), 0);
    tl_pair_free(&p);
    ASSERT_EQ(cb_nkept, 1);
    first = cb_kept[0];
    ASSERT_EQ(rm_calls, 0);
    /* Resumed from the context's cache, without SSL_set_session. */
    ASSERT_TRUE(tls_connect(&p, cctx, sctx, NULL));
    ASSERT_EQ(SSL_session_reused(p.c), 1);
    ASSERT_EQ(SSL_session_reused(p.s), 1);
    tl_pair_free(&p);
    ASSERT_EQ(rm_calls, 1);
    ASSERT_EQ(rm_wrong_ctx, 0);
    ASSERT_PTR_EQ(rm_last, first);
    cb_reset(NULL, 0);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return 1;
}

/* up_ref/free balance; time and timeout; an expired session is not offered. */
static int test_refs_time_timeout(void)
{
    SSL_CTX *sctx = tls_sctx(0), *cctx = tls_cctx();
    struct tl_pair p;
    SSL_SESSION *sess;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_EQ(SSL_CTX_set_timeout(cctx, 300), 7200);
    cb_reset(NULL, 0);
    ASSERT_TRUE(tls_connect(&p, cctx, sctx, NULL));
    sess = SSL_get1_session(p.c);
    ASSERT_NOT_NULL(sess);
    tl_pair_free(&p); /* the session outlives its connection */
    ASSERT_EQ(SSL_SESSION_up_ref(sess), 1);
    ASSERT_EQ(SSL_SESSION_up_ref(sess), 1);
    SSL_SESSION_free(sess);
    SSL_SESSION_free(sess);
    ASSERT_EQ(SSL_SESSION_get_timeout(sess), 300);
    ASSERT_EQ(SSL_SESSION_set_timeout(sess, 1000), 1);
    ASSERT_EQ(SSL_SESSION_get_timeout(sess), 1000);
    ASSERT_EQ(SSL_SESSION_set_timeout(sess, -1), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_SESSION_get_timeout(sess), 1000);
    /* Made 2000 s ago with a 1000 s lifetime: expired, not offered. */
    ASSERT_EQ(SSL_SESSION_set_time(sess, (long)time(NULL) - 2000), (long)time(NULL) - 2000);
    ASSERT_EQ(SSL_SESSION_is_resumable(sess), 0);
    ASSERT_TRUE(tls_connect(&p, cctx, sctx, sess));
    ASSERT_EQ(SSL_session_reused(p.c), 0);
    ASSERT_EQ(SSL_session_reused(p.s), 0);
    tl_pair_free(&p);
    /* Its ticket was not used: a longer lifetime brings it back. */
    ASSERT_EQ(SSL_SESSION_set_timeout(sess, 4000), 1);
    ASSERT_EQ(SSL_SESSION_is_resumable(sess), 1);
    ASSERT_TRUE(tls_connect(&p, cctx, sctx, sess));
    ASSERT_EQ(SSL_session_reused(p.c), 1);
    ASSERT_EQ(SSL_session_reused(p.s), 1);
    tl_pair_free(&p);
    SSL_SESSION_free(sess);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return 1;
}

/* DER and PEM: round trips are byte-exact; a session read back has the metadata, is not
 * resumable, and SSL_set_session accepts it for a full handshake. */
static int test_serialise(void)
{
    SSL_CTX *sctx = tls_sctx(0), *cctx = tls_cctx();
    struct tl_pair p;
    SSL_SESSION *sess, *back, *pem_back, *reuse = NULL;
    unsigned char *der, *der2 = NULL, *w;
    const unsigned char *r;
    int len, len2;
    BIO *mem;
    char *text;
    long tlen;
    static const char begin[] = "-----BEGIN SSL SESSION PARAMETERS-----\n";

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    cb_reset(NULL, 0);
    ASSERT_TRUE(tls_connect(&p, cctx, sctx, NULL));
    sess = SSL_get1_session(p.c);
    ASSERT_NOT_NULL(sess);
    tl_pair_free(&p);

    len = i2d_SSL_SESSION(sess, NULL);
    ASSERT_GT(len, 0);
    der = malloc((size_t)len);
    ASSERT_NOT_NULL(der);
    w = der;
    ASSERT_EQ(i2d_SSL_SESSION(sess, &w), len);
    ASSERT_PTR_EQ(w, der + len);
    ASSERT_EQ(i2d_SSL_SESSION(sess, &der2), len); /* allocates */
    ASSERT_MEM_EQ(der2, der, (size_t)len);
    OPENSSL_free(der2);
    der2 = NULL;

    r = der;
    back = d2i_SSL_SESSION(NULL, &r, len);
    ASSERT_NOT_NULL(back);
    ASSERT_PTR_EQ(r, der + len);
    len2 = i2d_SSL_SESSION(back, &der2);
    ASSERT_EQ(len2, len);
    ASSERT_MEM_EQ(der2, der, (size_t)len);
    OPENSSL_free(der2);
    ASSERT_EQ(SSL_SESSION_get_time(back), SSL_SESSION_get_time(sess));
    ASSERT_EQ(SSL_SESSION_get_timeout(back), SSL_SESSION_get_timeout(sess));
    ASSERT_EQ(SSL_SESSION_get_protocol_version(back), TLS1_3_VERSION);
    ASSERT_EQ(SSL_SESSION_is_resumable(sess), 1);
    ASSERT_EQ(SSL_SESSION_is_resumable(back), 0); /* rustls cannot rebuild a ticket */

    /* d2i into an existing pointer replaces (and releases) what it held. */
    reuse = SSL_SESSION_up_ref(sess) ? sess : NULL;
    r = der;
    pem_back = d2i_SSL_SESSION(&reuse, &r, len);
    ASSERT_NOT_NULL(pem_back);
    ASSERT_PTR_EQ(reuse, pem_back);
    SSL_SESSION_free(reuse);
    SSL_SESSION_free(pem_back);

    /* Damaged or foreign bytes: NULL and one error. */
    r = der;
    ASSERT_NULL(d2i_SSL_SESSION(NULL, &r, len - 1));
    ASSERT_ONE_ERROR();
    ASSERT_PTR_EQ(r, der);
    der[3] ^= 0x55;
    ASSERT_NULL(d2i_SSL_SESSION(NULL, &r, len));
    ASSERT_ONE_ERROR();
    der[3] ^= 0x55;

    /* PEM, with another block before it that is skipped. */
    mem = BIO_new(BIO_s_mem());
    ASSERT_NOT_NULL(mem);
    ASSERT_EQ(BIO_puts(mem, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 59);
    ASSERT_EQ(PEM_write_bio_SSL_SESSION(mem, sess), 1);
    ASSERT_EQ(BIO_puts(mem, "after\n"), 6);
    tlen = BIO_get_mem_data(mem, &text);
    ASSERT_GT(tlen, 59 + (long)sizeof(begin));
    ASSERT_MEM_EQ(text + 59, begin, sizeof(begin) - 1);
    pem_back = PEM_read_bio_SSL_SESSION(mem, NULL, NULL, NULL);
    ASSERT_NOT_NULL(pem_back);
    der2 = NULL;
    ASSERT_EQ(i2d_SSL_SESSION(pem_back, &der2), len);
    ASSERT_MEM_EQ(der2, der, (size_t)len);
    OPENSSL_free(der2);
    /* Nothing past the END line was read. */
    {
        char rest[16] = {0};

        ASSERT_EQ(BIO_read(mem, rest, sizeof(rest)), 6);
        ASSERT_MEM_EQ(rest, "after\n", 6);
    }
    /* No block left: NULL, PEM's "no start line". */
    ASSERT_NULL(PEM_read_bio_SSL_SESSION(mem, NULL, NULL, NULL));
    ASSERT_ERROR_IS(ERR_LIB_PEM, PEM_R_NO_START_LINE);
    ASSERT_NO_ERROR();
    BIO_free(mem);

    /* What an OpenSSL program that saved its session in an earlier run does: SSL_set_session
     * with the session read back succeeds, and the handshake is a full one. */
    ASSERT_TRUE(tls_connect(&p, cctx, sctx, pem_back));
    ASSERT_EQ(SSL_session_reused(p.c), 0);
    ASSERT_EQ(SSL_session_reused(p.s), 0);
    tl_pair_free(&p);
    /* The original, in this process, still resumes. */
    ASSERT_TRUE(tls_connect(&p, cctx, sctx, sess));
    ASSERT_EQ(SSL_session_reused(p.c), 1);
    ASSERT_EQ(SSL_session_reused(p.s), 1);
    tl_pair_free(&p);

    SSL_SESSION_free(pem_back);
    SSL_SESSION_free(back);
    SSL_SESSION_free(sess);
    free(der);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return 1;
}

/* ---- QUIC */

struct qpeers {
    SSL *listener, *client, *server;
};

#define QPUMP(ps, cond)                                                                        \
    do {                                                                                       \
        uint64_t deadline_ = tu_now_ms() + 10000;                                              \
        while (!(cond)) {                                                                      \
            ASSERT_TRUE(tu_now_ms() < deadline_);                                              \
            SSL_handle_events((ps)->listener);                                                 \
            SSL_handle_events((ps)->client);                                                   \
            if ((ps)->server == NULL)                                                          \
                (ps)->server =                                                                 \
                    SSL_accept_connection((ps)->listener, SSL_ACCEPT_CONNECTION_NO_BLOCK);     \
            else                                                                               \
                SSL_handle_events((ps)->server);                                               \
            (void)tu_wait_readable(cfd, 1);                                                    \
        }                                                                                      \
    } while (0)

/* One QUIC connection to the listener, offered `offer` (if not NULL): handshake, then one
 * byte each way (the tickets arrive meanwhile). */
static int quic_connect(struct qpeers *ps, SSL_CTX *cctx, const BIO_ADDR *srv, int cfd,
                        SSL_SESSION *offer)
{
    int r = 0;
    size_t n;
    char b = 0;

    ps->server = NULL;
    ps->client = qu_client(cctx, cfd, srv, 0);
    ASSERT_NOT_NULL(ps->client);
    ASSERT_EQ(SSL_set_blocking_mode(ps->client, 0), 1);
    if (offer != NULL)
        ASSERT_EQ(SSL_set_session(ps->client, offer), 1);
    cb_expect = ps->client;
    QPUMP(ps, (r = SSL_connect(ps->client)) == 1 ||
                  SSL_get_error(ps->client, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    QPUMP(ps, ps->server != NULL);
    QPUMP(ps, (r = SSL_accept(ps->server)) == 1 ||
                  SSL_get_error(ps->server, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    ASSERT_EQ(SSL_write_ex(ps->client, "q", 1, &n), 1);
    QPUMP(ps, SSL_read_ex(ps->server, &b, 1, &n) == 1);
    ASSERT_EQ(b, 'q');
    ASSERT_EQ(SSL_write_ex(ps->server, "r", 1, &n), 1);
    QPUMP(ps, SSL_read_ex(ps->client, &b, 1, &n) == 1);
    ASSERT_EQ(b, 'r');
    ERR_clear_error();
    return 1;
}

static void quic_close(struct qpeers *ps)
{
    SSL_free(ps->client);
    SSL_free(ps->server);
    ps->client = ps->server = NULL;
}

static int test_quic_resume(void)
{
    SSL_CTX *sctx = qu_server_ctx(0), *cctx = qu_client_ctx();
    BIO_ADDR *srv = NULL;
    int sfd = tu_udp_socket(AF_INET, &srv), cfd = tu_udp_socket(AF_INET, NULL), cfd2 = -1;
    struct qpeers ps = {0};
    SSL_SESSION *sess;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_GE(sfd, 0);
    ASSERT_GE(cfd, 0);
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(cctx, on_new_session);
    cb_reset(NULL, 1);
    ps.listener = SSL_new_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE);
    ASSERT_NOT_NULL(ps.listener);
    ASSERT_EQ(SSL_set_blocking_mode(ps.listener, 0), 1);
    ASSERT_EQ(SSL_set_fd(ps.listener, sfd), 1);
    ASSERT_EQ(SSL_listen(ps.listener), 1);

    ASSERT_TRUE(quic_connect(&ps, cctx, srv, cfd, NULL));
    QPUMP(&ps, cb_calls >= 2);
    ASSERT_EQ(cb_calls, 2);
    ASSERT_EQ(cb_wrong_ssl, 0);
    ASSERT_EQ(cb_not_current, 0);
    ASSERT_EQ(SSL_session_reused(ps.client), 0);
    ASSERT_EQ(SSL_session_reused(ps.server), 0);
    ASSERT_EQ(SSL_get_verify_result(ps.client), X509_V_OK);
    sess = SSL_get1_session(ps.client);
    ASSERT_NOT_NULL(sess);
    ASSERT_PTR_EQ(sess, cb_kept[1]);
    ASSERT_EQ(SSL_SESSION_is_resumable(sess), 1);
    ASSERT_EQ(SSL_SESSION_get_protocol_version(sess), TLS1_3_VERSION);
    ASSERT_EQ(SSL_SESSION_is_resumable(SSL_get_session(ps.server)), 0);
    quic_close(&ps);

    /* A TLS connection cannot take a QUIC session. */
    {
        SSL_CTX *t = tl_client_ctx(SSL_VERIFY_PEER);
        SSL *ts = t != NULL ? SSL_new(t) : NULL;

        ASSERT_NOT_NULL(ts);
        ASSERT_EQ(SSL_set_session(ts, sess), 0);
        ASSERT_ONE_ERROR();
        SSL_free(ts);
        SSL_CTX_free(t);
    }

    /* Second connection (another socket), offered the session: resumed on both ends, and
     * verification reports success without a certificate to check. */
    cfd2 = tu_udp_socket(AF_INET, NULL);
    ASSERT_GE(cfd2, 0);
    cb_calls = 0;
    ASSERT_TRUE(quic_connect(&ps, cctx, srv, cfd2, sess));
    ASSERT_EQ(SSL_session_reused(ps.client), 1);
    ASSERT_EQ(SSL_session_reused(ps.server), 1);
    ASSERT_EQ(SSL_get_verify_result(ps.client), X509_V_OK);
    ASSERT_EQ(SSL_SESSION_is_resumable(sess), 0);
    {
        /* A stream answers for its connection. */
        SSL *st = SSL_new_stream(ps.client, 0);

        ASSERT_NOT_NULL(st);
        ASSERT_EQ(SSL_session_reused(st), 1);
        ASSERT_NOT_NULL(SSL_get_session(st));
        ASSERT_PTR_EQ(SSL_get_session(st), SSL_get_session(ps.client));
        SSL_free(st);
    }
    quic_close(&ps);

    SSL_SESSION_free(sess);
    cb_reset(NULL, 0);
    SSL_free(ps.listener);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    BIO_ADDR_free(srv);
    close(sfd);
    close(cfd);
    close(cfd2);
    return 1;
}

/* ---- NULL arguments: the failure value and exactly one queued error each. */

static int test_null_args(void)
{
    const unsigned char *r = NULL;
    unsigned char *w = NULL;
    BIO *mem = BIO_new(BIO_s_mem());
    SSL_SESSION *out = NULL;

    ASSERT_NOT_NULL(mem);
    ERR_clear_error();
    ASSERT_NULL(SSL_get_session(NULL));
    ASSERT_ONE_ERROR();
    ASSERT_NULL(SSL_get1_session(NULL));
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_set_session(NULL, NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_SESSION_up_ref(NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_SESSION_is_resumable(NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_SESSION_get_time(NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_SESSION_get_time_ex(NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_SESSION_set_time(NULL, 1), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_SESSION_get_timeout(NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_SESSION_set_timeout(NULL, 1), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_SESSION_get_max_early_data(NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_SESSION_get_protocol_version(NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(i2d_SSL_SESSION(NULL, &w), -1);
    ASSERT_ONE_ERROR();
    ASSERT_NULL(w);
    ASSERT_NULL(d2i_SSL_SESSION(&out, NULL, 10));
    ASSERT_ONE_ERROR();
    ASSERT_NULL(d2i_SSL_SESSION(NULL, &r, 10)); /* *pp NULL */
    ASSERT_ONE_ERROR();
    ASSERT_EQ(PEM_write_bio_SSL_SESSION(NULL, NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(PEM_write_bio_SSL_SESSION(mem, NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_NULL(PEM_read_bio_SSL_SESSION(NULL, NULL, NULL, NULL));
    ASSERT_ONE_ERROR();
    SSL_CTX_sess_set_new_cb(NULL, on_new_session);
    ASSERT_ONE_ERROR();
    SSL_CTX_sess_set_remove_cb(NULL, on_remove_session);
    ASSERT_ONE_ERROR();
    SSL_SESSION_free(NULL);
    ASSERT_NO_ERROR();
    BIO_free(mem);
    return 1;
}

int main(int argc, char **argv)
{
    tu_init(argc, argv);
    qu_init();
    RUN(test_tls13_resume);
    RUN(test_tls12_resume);
    RUN(test_other_context);
    RUN(test_new_cb_reference);
    RUN(test_remove_cb);
    RUN(test_refs_time_timeout);
    RUN(test_serialise);
    RUN(test_quic_resume);
    RUN(test_null_args);
    return tu_finish();
}
#endif
