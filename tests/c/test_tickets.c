/*
 * test_tickets: what lets one server of a fleet resume a session another issued, and admit
 * a returning client without a Retry (issue 15), through the exported calls, in one thread:
 *
 *  - SSL_CTX_set_tlsext_ticket_keys / SSL_CTX_get_tlsext_ticket_keys: OpenSSL's form (one
 *    80-byte key; a NULL buffer asks for the size; other lengths refused with
 *    SSL_R_INVALID_TICKET_KEYS_LENGTH), and osslquic's rotation (up to four keys, newest
 *    first). A TLS ticket from one server context resumes at another holding the same key
 *    (both ends say so), not at one holding another key; after a rotation the previous key
 *    still opens tickets, and once dropped it does not.
 *  - OSSLQUIC_CTX_set_fleet_secret: two QUIC servers given the same secret resume each
 *    other's sessions, and a validating listener admits a client with another server's
 *    NEW_TOKEN token without a Retry (its engine counts none); with different secrets, no
 *    resumption and a Retry. The same for TLS over TCP (the secret derives the ticket key).
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

static void key_fill(unsigned char *k, unsigned char seed)
{
    for (int i = 0; i < 80; i++)
        k[i] = (unsigned char)(seed * 31 + i);
}

/* ---- TLS over TCP */

/* One TLS connection of cctx to sctx, offered `offer` (may be NULL): handshake, then a byte
 * each way so the client holds the tickets. Its session (a reference) goes to *sess if not
 * NULL; *reused gets what both ends say (-1 if they disagree). */
static int tls_once(SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION *offer, SSL_SESSION **sess,
                    int *reused)
{
    struct tl_pair p;
    int rc, rs;
    size_t n;
    char b;
    uint64_t dl;

    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    if (offer != NULL)
        ASSERT_EQ(SSL_set_session(p.c, offer), 1);
    ASSERT_TRUE(tl_handshake(p.c, p.s, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_EQ(SSL_write_ex(p.s, "s", 1, &n), 1);
    dl = tu_now_ms() + 5000;
    while (SSL_read_ex(p.c, &b, 1, &n) != 1)
        ASSERT_LT(tu_now_ms(), dl);
    ASSERT_EQ(SSL_write_ex(p.c, "c", 1, &n), 1);
    dl = tu_now_ms() + 5000;
    while (SSL_read_ex(p.s, &b, 1, &n) != 1)
        ASSERT_LT(tu_now_ms(), dl);
    *reused = SSL_session_reused(p.c) == SSL_session_reused(p.s) ? SSL_session_reused(p.c) : -1;
    if (sess != NULL) {
        *sess = SSL_get1_session(p.c);
        ASSERT_NOT_NULL(*sess);
    }
    ERR_clear_error();
    tl_pair_free(&p);
    return 1;
}

/* A session from `issuer` offered at `other`: 1 if resumed there, 0 if not, -1 on failure. */
static int tls_cross(SSL_CTX *cctx, SSL_CTX *issuer, SSL_CTX *other)
{
    SSL_SESSION *s = NULL;
    int reused = -1, r;

    if (!tls_once(cctx, issuer, NULL, &s, &reused) || reused != 0) {
        SSL_SESSION_free(s);
        return -1;
    }
    r = tls_once(cctx, other, s, NULL, &reused) ? reused : -1;
    SSL_SESSION_free(s);
    return r;
}

static SSL_CTX *tls_client(void)
{
    SSL_CTX *c = tl_client_ctx(SSL_VERIFY_PEER);

    if (c != NULL)
        SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    return c;
}

static int test_tls_ticket_keys(void)
{
    SSL_CTX *a = tl_server_ctx(), *b = tl_server_ctx(), *cctx = tls_client();
    unsigned char k1[80], k2[80], k3[80], two[160], five[400], got[80];

    ASSERT_TRUE(a != NULL && b != NULL && cctx != NULL);
    key_fill(k1, 1);
    key_fill(k2, 2);
    key_fill(k3, 3);

    /* OpenSSL's form: NULL asks for the size; a context always has a key to report, and
     * keeps reporting the same one. */
    ASSERT_EQ(SSL_CTX_get_tlsext_ticket_keys(a, NULL, 0), 80);
    ASSERT_EQ(SSL_CTX_get_tlsext_ticket_keys(a, got, 80), 1);
    {
        unsigned char again[80];

        ASSERT_EQ(SSL_CTX_get_tlsext_ticket_keys(a, again, 80), 1);
        ASSERT_MEM_EQ(got, again, 80);
    }
    /* Lengths that are not whole keys, or too many keys, are refused. */
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(a, k1, 48), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_INVALID_TICKET_KEYS_LENGTH);
    ASSERT_NO_ERROR();
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(a, k1, 0), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_INVALID_TICKET_KEYS_LENGTH);
    ASSERT_NO_ERROR();
    memset(five, 7, sizeof(five));
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(a, five, 400), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_INVALID_TICKET_KEYS_LENGTH);
    ASSERT_NO_ERROR();
    ASSERT_EQ(SSL_CTX_get_tlsext_ticket_keys(a, got, 160), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_INVALID_TICKET_KEYS_LENGTH);
    ASSERT_NO_ERROR();
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(NULL, k1, 80), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();

    /* Without shared keys, a ticket does not resume at another server. */
    ASSERT_EQ(tls_cross(cctx, a, b), 0);

    /* The same key: a ticket from either resumes at the other; what get reports is it. */
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(a, k1, 80), 1);
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(b, k1, 80), 1);
    ASSERT_EQ(SSL_CTX_get_tlsext_ticket_keys(b, got, 80), 1);
    ASSERT_MEM_EQ(got, k1, 80);
    ASSERT_EQ(tls_cross(cctx, a, b), 1);
    ASSERT_EQ(tls_cross(cctx, b, a), 1);

    /* Another key at b: refused there. */
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(b, k2, 80), 1);
    ASSERT_EQ(tls_cross(cctx, a, b), 0);

    /* Rotation: b seals under k2 and still opens k1's tickets; a, told k2 then k1, opens
     * b's new tickets; dropping k1 ends its tickets. */
    memcpy(two, k2, 80);
    memcpy(two + 80, k1, 80);
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(b, two, 160), 1);
    ASSERT_EQ(SSL_CTX_get_tlsext_ticket_keys(b, got, 80), 1);
    ASSERT_MEM_EQ(got, k2, 80);
    ASSERT_EQ(tls_cross(cctx, a, b), 1);
    ASSERT_EQ(tls_cross(cctx, b, a), 0); /* a holds only k1 */
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(a, two, 160), 1);
    ASSERT_EQ(tls_cross(cctx, b, a), 1);
    memcpy(two, k3, 80);
    memcpy(two + 80, k2, 80);
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(a, k1, 80), 1); /* a issues under k1 again */
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(b, two, 160), 1); /* b dropped k1 */
    ASSERT_EQ(tls_cross(cctx, a, b), 0);

    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(cctx);
    return 1;
}

/* A fleet secret given to two TLS server contexts: they resume each other's tickets; with
 * different secrets they do not. */
static int test_tls_fleet_secret(void)
{
    static const unsigned char s1[32] = "one fleet's secret, of 32 bytes";
    static const unsigned char s2[32] = "and another fleet's, 32 bytes..";
    SSL_CTX *a = tl_server_ctx(), *b = tl_server_ctx(), *c = tl_server_ctx();
    SSL_CTX *cctx = tls_client();

    ASSERT_TRUE(a != NULL && b != NULL && c != NULL && cctx != NULL);
    ASSERT_EQ(OSSLQUIC_CTX_set_fleet_secret(a, s1, sizeof(s1)), 1);
    ASSERT_EQ(OSSLQUIC_CTX_set_fleet_secret(b, s1, sizeof(s1)), 1);
    ASSERT_EQ(OSSLQUIC_CTX_set_fleet_secret(c, s2, sizeof(s2)), 1);
    ASSERT_EQ(tls_cross(cctx, a, b), 1);
    ASSERT_EQ(tls_cross(cctx, a, c), 0);
    /* A new secret at b: its tickets are sealed under the new key, a's (old secret) still
     * open there. */
    ASSERT_EQ(OSSLQUIC_CTX_set_fleet_secret(b, s2, sizeof(s2)), 1);
    ASSERT_EQ(tls_cross(cctx, a, b), 1);
    ASSERT_EQ(tls_cross(cctx, b, c), 1);
    ASSERT_EQ(tls_cross(cctx, b, a), 0);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(c);
    SSL_CTX_free(cctx);
    return 1;
}

/* ---- QUIC */

struct server {
    SSL_CTX *ctx;
    SSL *listener;
    int fd;
    BIO_ADDR *addr;
};

static int server_start(struct server *s, const unsigned char *secret, uint64_t flags)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->ctx = qu_server_ctx(0);
    ASSERT_NOT_NULL(s->ctx);
    if (secret != NULL)
        ASSERT_EQ(OSSLQUIC_CTX_set_fleet_secret(s->ctx, secret, 32), 1);
    s->listener = qu_listener(s->ctx, flags, &s->fd, &s->addr);
    ASSERT_NOT_NULL(s->listener);
    return 1;
}

static void server_stop(struct server *s)
{
    SSL_free(s->listener);
    SSL_CTX_free(s->ctx);
    BIO_ADDR_free(s->addr);
    if (s->fd >= 0)
        close(s->fd);
}

/* One QUIC connection of cctx to `srv`, from a fresh socket, offered `offer` (may be NULL):
 * handshake, then a byte each way (tickets and NEW_TOKEN tokens arrive before the server's
 * byte). Its session goes to *sess if not NULL; *reused as in tls_once. */
static int quic_once(SSL_CTX *cctx, struct server *srv, SSL_SESSION *offer, SSL_SESSION **sess,
                     int *reused)
{
    uint64_t dl = tu_now_ms() + 10000;
    int cfd = tu_udp_socket(AF_INET, NULL), r = 0;
    SSL *c, *s = NULL;
    size_t n;
    char b = 0;

    ASSERT_GE(cfd, 0);
    c = qu_client(cctx, cfd, srv->addr, 0);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(SSL_set_blocking_mode(c, 0), 1);
    if (offer != NULL)
        ASSERT_EQ(SSL_set_session(c, offer), 1);
#define PUMP(cond)                                                                             \
    while (!(cond)) {                                                                          \
        ASSERT_TRUE(tu_now_ms() < dl);                                                         \
        SSL_handle_events(srv->listener);                                                      \
        SSL_handle_events(c);                                                                  \
        if (s == NULL)                                                                         \
            s = SSL_accept_connection(srv->listener, SSL_ACCEPT_CONNECTION_NO_BLOCK);          \
        (void)tu_wait_readable(cfd, 1);                                                        \
    }
    PUMP((r = SSL_connect(c)) == 1 || SSL_get_error(c, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    PUMP(s != NULL);
    ASSERT_EQ(SSL_write_ex(c, "q", 1, &n), 1);
    PUMP(SSL_read_ex(s, &b, 1, &n) == 1);
    ASSERT_EQ(b, 'q');
    ASSERT_EQ(SSL_write_ex(s, "r", 1, &n), 1);
    PUMP(SSL_read_ex(c, &b, 1, &n) == 1);
    ASSERT_EQ(b, 'r');
#undef PUMP
    *reused = SSL_session_reused(c) == SSL_session_reused(s) ? SSL_session_reused(c) : -1;
    if (sess != NULL) {
        *sess = SSL_get1_session(c);
        ASSERT_NOT_NULL(*sess);
    }
    ERR_clear_error();
    SSL_free(s);
    SSL_free(c);
    close(cfd);
    return 1;
}

static uint64_t retries(struct server *s)
{
    OSSLQUIC_ENGINE_STATS st;

    memset(&st, 0, sizeof(st));
    return OSSLQUIC_get_engine_stats(s->listener, &st) == 1 ? st.retries : UINT64_MAX;
}

/* Server a issues a session and a NEW_TOKEN token to a client context; server b, validating
 * every address, then sees the same client: with the same fleet secret it resumes the
 * session and needs no Retry, with another secret it does neither. */
static int quic_cross(const unsigned char *sa, const unsigned char *sb, int same)
{
    struct server a, b;
    SSL_CTX *cctx = qu_client_ctx();
    SSL_SESSION *sess = NULL;
    int reused = -1;

    ASSERT_NOT_NULL(cctx);
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    ASSERT_TRUE(server_start(&a, sa, 0));
    ASSERT_TRUE(server_start(&b, sb, 0));
    ASSERT_TRUE(quic_once(cctx, &a, NULL, &sess, &reused));
    ASSERT_EQ(reused, 0);
    ASSERT_EQ(retries(&a), 1); /* a first-time client proves its address with a Retry */
    /* Returning to the same server, the client's token spares it the Retry. */
    ASSERT_TRUE(quic_once(cctx, &a, NULL, NULL, &reused));
    ASSERT_EQ(retries(&a), 1);
    ASSERT_TRUE(quic_once(cctx, &b, sess, NULL, &reused));
    ASSERT_EQ(reused, same);
    ASSERT_EQ(retries(&b), same ? 0 : 1);
    SSL_SESSION_free(sess);
    server_stop(&a);
    server_stop(&b);
    SSL_CTX_free(cctx);
    return 1;
}

static int test_quic_fleet_secret(void)
{
    static const unsigned char s1[32] = "one fleet's secret, of 32 bytes";
    static const unsigned char s2[32] = "and another fleet's, 32 bytes..";

    ASSERT_TRUE(quic_cross(s1, s1, 1));
    ASSERT_TRUE(quic_cross(s1, s2, 0));
    return 1;
}

/* Ticket keys set directly on QUIC server contexts work as for TLS. */
static int test_quic_ticket_keys(void)
{
    struct server a, b;
    SSL_CTX *cctx = qu_client_ctx();
    SSL_SESSION *sess = NULL;
    unsigned char k[80];
    int reused = -1;

    ASSERT_NOT_NULL(cctx);
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    key_fill(k, 9);
    ASSERT_TRUE(server_start(&a, NULL, SSL_LISTENER_FLAG_NO_VALIDATE));
    ASSERT_TRUE(server_start(&b, NULL, SSL_LISTENER_FLAG_NO_VALIDATE));
    /* Without keys, a's ticket is for a alone. */
    ASSERT_TRUE(quic_once(cctx, &a, NULL, &sess, &reused));
    ASSERT_TRUE(quic_once(cctx, &b, sess, NULL, &reused));
    ASSERT_EQ(reused, 0);
    SSL_SESSION_free(sess);
    /* Keys set once the listeners run reach them. */
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(a.ctx, k, 80), 1);
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(b.ctx, k, 80), 1);
    ASSERT_TRUE(quic_once(cctx, &a, NULL, &sess, &reused));
    ASSERT_EQ(reused, 0);
    ASSERT_TRUE(quic_once(cctx, &b, sess, NULL, &reused));
    ASSERT_EQ(reused, 1);
    SSL_SESSION_free(sess);
    server_stop(&a);
    server_stop(&b);
    SSL_CTX_free(cctx);
    return 1;
}

#endif /* HAVE_OSSLQUIC */

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
#if HAVE_OSSLQUIC
    RUN(test_tls_ticket_keys);
    RUN(test_tls_fleet_secret);
    RUN(test_quic_fleet_secret);
    RUN(test_quic_ticket_keys);
#endif
    return tu_finish();
}
#endif
