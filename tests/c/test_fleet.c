/*
 * test_fleet: what makes a QUIC listener a member of a fleet behind a load balancer (issue
 * 15), through the exported calls, over UDP loopback, in one thread:
 *
 *  - QUIC-LB connection IDs (OSSLQUIC_set_quic_lb): a listener configured for encrypted
 *    (four-pass and single-pass) and plaintext IDs completes handshakes and carries data
 *    with them; a bad configuration (codepoint 7, an empty or too long server ID, a short
 *    nonce), a listener that already has connections, and a TLS object are refused with an
 *    error queued; a domain's configuration is accepted for its listeners. The IDs' form
 *    itself is checked against the draft's test vectors (quic::lb's unit tests) and on the
 *    wire (engine_pair's quic_lb_connection_ids_carry_the_server_id).
 *
 *  - a fleet secret (OSSLQUIC_CTX_set_fleet_secret): bad arguments refused, a listener made
 *    from the context serves.
 *
 * osslquic only: OpenSSL has no QUIC-LB support, and no call to set these keys.
 */
#include "quicutil.h"

#if HAVE_OSSLQUIC

/* A client connects to `l` and sends "ping" on its default stream, which the accepted
 * connection reads (10 s at most). */
static int ping_through(SSL *l, SSL_CTX *cctx, const BIO_ADDR *addr)
{
    uint64_t dl = tu_now_ms() + 10000;
    int cfd = tu_udp_socket(AF_INET, NULL), r;
    SSL *c, *s = NULL;
    char buf[8];
    size_t n = 0;

    ASSERT_GE(cfd, 0);
    c = qu_client(cctx, cfd, addr, 0);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(SSL_set_blocking_mode(c, 0), 1);
    while ((r = SSL_connect(c)) != 1) {
        ASSERT_EQ(SSL_get_error(c, r), SSL_ERROR_WANT_READ);
        ASSERT_TRUE(tu_now_ms() < dl);
        SSL_handle_events(l);
    }
    ASSERT_EQ(SSL_write_ex(c, "ping", 4, &n), 1);
    while (s == NULL) {
        ASSERT_TRUE(tu_now_ms() < dl);
        SSL_handle_events(l);
        SSL_handle_events(c);
        s = SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK);
    }
    while (SSL_read_ex(s, buf, sizeof(buf), &n) != 1) {
        ASSERT_TRUE(tu_now_ms() < dl);
        SSL_handle_events(c);
    }
    ERR_clear_error();
    ASSERT_EQ(n, 4);
    ASSERT_MEM_EQ(buf, "ping", 4);
    SSL_free(s);
    SSL_free(c);
    close(cfd);
    return 1;
}

static int test_quic_lb(void)
{
    static const unsigned char key[16] = {0x8f, 0x95, 0xf0, 0x92, 0x45, 0x76, 0x5f, 0x80,
                                          0x25, 0x69, 0x34, 0xe5, 0x0c, 0x66, 0x20, 0x7f};
    static const unsigned char sid[15] = {0x31, 0x44, 0x1a, 0x9c, 0x69, 0xc2, 0x75, 0x00,
                                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
    static const struct {
        size_t sid_len, nonce_len;
        int encrypted;
    } forms[] = {{3, 4, 1}, {8, 8, 1}, {2, 6, 0}};
    SSL_CTX *sctx = qu_server_ctx(0), *cctx = qu_client_ctx(), *tctx;
    BIO_ADDR *addr = NULL;
    SSL *l, *d, *t;
    size_t i;
    int fd;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        l = qu_listener(sctx, 0, &fd, &addr);
        ASSERT_NOT_NULL(l);
        ASSERT_EQ(OSSLQUIC_set_quic_lb(l, 1, sid, forms[i].sid_len, forms[i].nonce_len,
                                       forms[i].encrypted ? key : NULL, 1),
                  1);
        ASSERT_TRUE(ping_through(l, cctx, addr));
        ASSERT_TRUE(ping_through(l, cctx, addr));
        /* It has connections now. */
        ASSERT_EQ(OSSLQUIC_set_quic_lb(l, 1, sid, 3, 4, key, 1), 0);
        ASSERT_ERROR_QUEUED();
        ERR_clear_error();
        SSL_free(l);
        close(fd);
        BIO_ADDR_free(addr);
        addr = NULL;
    }

    /* Bad configurations. */
    l = qu_listener(sctx, 0, &fd, &addr);
    ASSERT_NOT_NULL(l);
    ASSERT_EQ(OSSLQUIC_set_quic_lb(l, 7, sid, 3, 4, key, 1), 0); /* codepoint 7: unroutable */
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_set_quic_lb(l, 1, sid, 0, 4, key, 1), 0); /* no server ID */
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_set_quic_lb(l, 1, sid, 3, 3, key, 1), 0); /* nonce under 4 */
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_set_quic_lb(l, 1, sid, 15, 5, key, 1), 0); /* 20 octets */
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_set_quic_lb(l, 1, NULL, 3, 4, key, 1), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_set_quic_lb(NULL, 1, sid, 3, 4, key, 1), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    /* Still usable with random IDs. */
    ASSERT_TRUE(ping_through(l, cctx, addr));
    SSL_free(l);
    close(fd);
    BIO_ADDR_free(addr);

    /* A domain: accepted (its listeners, made later too); a TLS object: refused. */
    d = SSL_new_domain(sctx, 0);
    ASSERT_NOT_NULL(d);
    ASSERT_EQ(OSSLQUIC_set_quic_lb(d, 0, sid, 4, 8, key, 0), 1);
    SSL_free(d);
    tctx = SSL_CTX_new(TLS_server_method());
    ASSERT_NOT_NULL(tctx);
    t = SSL_new(tctx);
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(OSSLQUIC_set_quic_lb(t, 1, sid, 3, 4, key, 1), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    SSL_free(t);
    SSL_CTX_free(tctx);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* A fleet secret: refused when short or NULL; a listener made from the context serves. (That
 * servers sharing it accept each other's tokens and resets: engine_pair's
 * fleet_servers_share_tokens_and_stateless_resets.) */
static int test_fleet_secret(void)
{
    static const unsigned char secret[32] = "thirty-two bytes of fleet secret";
    SSL_CTX *sctx = qu_server_ctx(0), *cctx = qu_client_ctx();
    BIO_ADDR *addr = NULL;
    SSL *l;
    int fd;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_EQ(OSSLQUIC_CTX_set_fleet_secret(sctx, secret, 15), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_CTX_set_fleet_secret(sctx, NULL, 32), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_CTX_set_fleet_secret(NULL, secret, 32), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_CTX_set_fleet_secret(sctx, secret, sizeof(secret)), 1);
    l = qu_listener(sctx, 0, &fd, &addr);
    ASSERT_NOT_NULL(l);
    ASSERT_TRUE(ping_through(l, cctx, addr));
    SSL_free(l);
    close(fd);
    BIO_ADDR_free(addr);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

#endif /* HAVE_OSSLQUIC */

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
#if HAVE_OSSLQUIC
    RUN(test_quic_lb);
    RUN(test_fleet_secret);
#endif
    return tu_finish();
}
