/*
 * test_proxy: the PROXY protocol header (HAProxy's versions 1 and 2) in front of a TLS
 * server's handshake (OSSLQUIC_CTX_set_proxy_protocol, OSSLQUIC_set_proxy_protocol), over TCP
 * loopback, both ends in one thread (one case: the server blocking in a thread of its own):
 *
 *  - version 2 with TLVs (ALPN, authority, unique ID): the handshake completes, data flows,
 *    SSL_get_peer_addr reports the header's client address, OSSLQUIC_get_proxy_tlv its TLVs;
 *    the header and the ClientHello may arrive in one segment;
 *  - version 1 (TCP4), and version 2 LOCAL (the socket's own peer stays the peer address);
 *  - garbage, a header announcing 65,535 bytes, a header cut by the peer's close, and a
 *    header that never ends (the handshake timeout) fail the handshake with a clear error;
 *  - a blocking server whose header and ClientHello arrive in one segment does not wait for
 *    more input before the handshake (HAProxy's send-proxy-v2 sends them so);
 *  - a TLS listener's setting applies to the connections it accepts; a QUIC object refuses
 *    the setting; without it, a server reads no header.
 *
 * osslquic only: OpenSSL has no PROXY protocol support.
 */
#include "tlsutil.h"

#if HAVE_OSSLQUIC

static const unsigned char v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* A version 2 header (PROXY or LOCAL command, TCP over IPv4) from 203.0.113.7:4242 to
 * 10.0.0.1:443 with an ALPN, an authority and a unique-ID TLV; its length in *n. */
static void v2_header(unsigned char *h, size_t *n, int local)
{
    static const unsigned char addrs[12] = {203, 0, 113, 7, 10, 0, 0, 1, 0x10, 0x92, 0x01, 0xbb};
    static const unsigned char tlvs[] = {0x01, 0, 2, 'h', '2',
                                         0x02, 0, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
                                         0x05, 0, 4, 1, 2, 3, 4};
    size_t len = sizeof(addrs) + sizeof(tlvs);

    memcpy(h, v2_sig, 12);
    h[12] = local ? 0x20 : 0x21;
    h[13] = 0x11;
    h[14] = (unsigned char)(len >> 8);
    h[15] = (unsigned char)len;
    memcpy(h + 16, addrs, sizeof(addrs));
    memcpy(h + 16 + sizeof(addrs), tlvs, sizeof(tlvs));
    *n = 16 + len;
}

struct conn {
    int sfd, cfd;
    SSL *s, *c;
};

/* A TCP pair whose client end first sends `pre` (n bytes), and a server SSL from sctx. */
static int conn_new(struct conn *k, SSL_CTX *sctx, SSL_CTX *cctx, const void *pre, size_t n)
{
    ASSERT_TRUE(tl_tcp_pair(&k->sfd, &k->cfd));
    if (n > 0)
        ASSERT_EQ(write(k->cfd, pre, n), (ssize_t)n);
    k->s = SSL_new(sctx);
    k->c = SSL_new(cctx);
    ASSERT_TRUE(k->s != NULL && k->c != NULL);
    ASSERT_EQ(SSL_set_fd(k->s, k->sfd), 1);
    ASSERT_EQ(SSL_set_fd(k->c, k->cfd), 1);
    return 1;
}

static void conn_free(struct conn *k)
{
    SSL_free(k->s);
    SSL_free(k->c);
    if (k->sfd >= 0)
        close(k->sfd);
    if (k->cfd >= 0)
        close(k->cfd);
}

/* The handshake completes and a few bytes go from client to server. */
static int handshake_and_data(struct conn *k)
{
    int rc, rs;
    char buf[8];
    size_t n = 0;
    uint64_t dl = tu_now_ms() + 10000;

    ASSERT_TRUE(tl_handshake(k->c, k->s, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_EQ(SSL_write_ex(k->c, "hello", 5, &n), 1);
    while (SSL_read_ex(k->s, buf, sizeof(buf), &n) != 1) {
        ASSERT_EQ(SSL_get_error(k->s, 0), SSL_ERROR_WANT_READ);
        ASSERT_TRUE(tu_now_ms() < dl);
    }
    ASSERT_EQ(n, 5);
    ASSERT_MEM_EQ(buf, "hello", 5);
    return 1;
}

/* SSL_get_peer_addr of `s` as "host:port". */
static int peer_is(SSL *s, const char *want)
{
    BIO_ADDR *a = BIO_ADDR_new();
    char *h, *p, got[96];

    ASSERT_NOT_NULL(a);
    ASSERT_EQ(SSL_get_peer_addr(s, a), 1);
    h = BIO_ADDR_hostname_string(a, 1);
    p = BIO_ADDR_service_string(a, 1);
    ASSERT_TRUE(h != NULL && p != NULL);
    snprintf(got, sizeof(got), "%s:%s", h, p);
    OPENSSL_free(h);
    OPENSSL_free(p);
    BIO_ADDR_free(a);
    ASSERT_STR_EQ(got, want);
    return 1;
}

static int tlv_is(SSL *s, int type, const void *want, size_t wlen)
{
    const unsigned char *d = NULL;
    size_t n = 0;

    ASSERT_EQ(OSSLQUIC_get_proxy_tlv(s, type, &d, &n), 1);
    ASSERT_EQ(n, wlen);
    ASSERT_MEM_EQ(d, want, wlen);
    return 1;
}

/* The server's handshake fails with SSL reason `reason` (the client's part is left). */
static int server_fails_with(SSL *s, int reason)
{
    uint64_t dl = tu_now_ms() + 10000;
    int r;

    while ((r = SSL_accept(s)) != 1 && SSL_get_error(s, r) == SSL_ERROR_WANT_READ)
        ASSERT_TRUE(tu_now_ms() < dl);
    ASSERT_TRUE(r <= 0);
    ASSERT_EQ(SSL_get_error(s, r), SSL_ERROR_SSL);
    ASSERT_ERROR_IS(ERR_LIB_SSL, reason);
    ERR_clear_error();
    return 1;
}

static int test_proxy_v2(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_NONE);
    unsigned char h[128];
    size_t n;
    struct conn k;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_EQ(OSSLQUIC_CTX_set_proxy_protocol(sctx, 1), 1);
    v2_header(h, &n, 0);
    ASSERT_TRUE(conn_new(&k, sctx, cctx, h, n));
    ASSERT_EQ(OSSLQUIC_get_proxy_version(k.s), 0); /* not read yet */
    ASSERT_TRUE(handshake_and_data(&k));
    ASSERT_EQ(OSSLQUIC_get_proxy_version(k.s), 2);
    ASSERT_TRUE(peer_is(k.s, "203.0.113.7:4242"));
    ASSERT_TRUE(tlv_is(k.s, 0x01, "h2", 2));
    ASSERT_TRUE(tlv_is(k.s, 0x02, "example.com", 11));
    ASSERT_TRUE(tlv_is(k.s, 0x05, "\x01\x02\x03\x04", 4));
    {
        const unsigned char *d = NULL;
        size_t dn = 0;

        ASSERT_EQ(OSSLQUIC_get_proxy_tlv(k.s, 0x30, &d, &dn), 0); /* absent: no error */
        ASSERT_NO_ERROR();
        ASSERT_EQ(OSSLQUIC_get_proxy_tlv(k.s, 0x01, NULL, &dn), 0);
        ASSERT_ERROR_QUEUED();
        ERR_clear_error();
    }
    conn_free(&k);

    /* LOCAL: a balancer's own connection; the socket's peer stays the peer. */
    v2_header(h, &n, 1);
    ASSERT_TRUE(conn_new(&k, sctx, cctx, h, n));
    ASSERT_TRUE(handshake_and_data(&k));
    ASSERT_EQ(OSSLQUIC_get_proxy_version(k.s), -2);
    {
        BIO_ADDR *a = BIO_ADDR_new();
        char *host;

        ASSERT_EQ(SSL_get_peer_addr(k.s, a), 1);
        host = BIO_ADDR_hostname_string(a, 1);
        ASSERT_STR_EQ(host, "127.0.0.1");
        OPENSSL_free(host);
        BIO_ADDR_free(a);
    }
    ERR_clear_error();
    conn_free(&k);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

static int test_proxy_v1(void)
{
    static const char hdr[] = "PROXY TCP4 192.0.2.1 198.51.100.2 5555 443\r\n";
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_NONE);
    struct conn k;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_EQ(OSSLQUIC_CTX_set_proxy_protocol(sctx, 1), 1);
    ASSERT_TRUE(conn_new(&k, sctx, cctx, hdr, strlen(hdr)));
    ASSERT_TRUE(handshake_and_data(&k));
    ASSERT_EQ(OSSLQUIC_get_proxy_version(k.s), 1);
    ASSERT_TRUE(peer_is(k.s, "192.0.2.1:5555"));
    conn_free(&k);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

static int test_proxy_bad_headers(void)
{
    static const char garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_NONE);
    unsigned char h[128];
    size_t n;
    struct conn k;
    uint64_t t0;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_EQ(OSSLQUIC_CTX_set_proxy_protocol(sctx, 1), 1);

    /* Garbage. */
    ASSERT_TRUE(conn_new(&k, sctx, cctx, garbage, strlen(garbage)));
    ASSERT_TRUE(server_fails_with(k.s, 240)); /* SSL_R_BAD_PACKET */
    conn_free(&k);

    /* No header: the ClientHello itself is not one. */
    ASSERT_TRUE(conn_new(&k, sctx, cctx, NULL, 0));
    ASSERT_EQ(SSL_connect(k.c), -1); /* sends its ClientHello */
    ERR_clear_error();
    ASSERT_TRUE(server_fails_with(k.s, 240));
    conn_free(&k);

    /* A version 2 header announcing 65,535 bytes. */
    v2_header(h, &n, 0);
    h[14] = h[15] = 0xff;
    ASSERT_TRUE(conn_new(&k, sctx, cctx, h, 16));
    ASSERT_TRUE(server_fails_with(k.s, 240));
    conn_free(&k);

    /* Cut by the peer's close. */
    v2_header(h, &n, 0);
    ASSERT_TRUE(conn_new(&k, sctx, cctx, h, 20));
    close(k.cfd);
    k.cfd = -1;
    ASSERT_TRUE(server_fails_with(k.s, 294)); /* SSL_R_UNEXPECTED_EOF_WHILE_READING */
    conn_free(&k);

    /* Never ends: the handshake's bound, on a blocking socket. */
    ASSERT_EQ(OSSLQUIC_CTX_set_handshake_timeout(sctx, 300), 1);
    ASSERT_TRUE(conn_new(&k, sctx, cctx, h, 20));
    ASSERT_EQ(fcntl(k.sfd, F_SETFL, 0), 0);
    t0 = tu_now_ms();
    ASSERT_TRUE(server_fails_with(k.s, 312)); /* SSL_R_READ_TIMEOUT_EXPIRED */
    ASSERT_TRUE(tu_now_ms() - t0 >= 300);
    conn_free(&k);

    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

struct blocking_accept {
    SSL *s;
    int r;
};

static void *blocking_accept_main(void *arg)
{
    struct blocking_accept *b = arg;
    b->r = SSL_accept(b->s);
    return NULL;
}

/* A blocking server socket without a receive timeout, the PROXY header and the whole
 * ClientHello in one segment (as HAProxy sends them): the handshake goes on at once from the
 * bytes read past the header. It used to wait for more input first, which never came (the
 * client waits for the ServerHello), until the client gave up or the handshake timed out. */
static int test_proxy_blocking_one_segment(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_NONE);
    unsigned char h[128];
    size_t n;
    struct conn k;
    struct blocking_accept b;
    pthread_t th;
    int one = 1, zero = 0, r;
    uint64_t dl;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_EQ(OSSLQUIC_CTX_set_proxy_protocol(sctx, 1), 1);
    ASSERT_EQ(OSSLQUIC_CTX_set_handshake_timeout(sctx, 5000), 1); /* the bound if it hangs */
    ASSERT_TRUE(conn_new(&k, sctx, cctx, NULL, 0));
    /* Corked: the header and the ClientHello leave as one segment. */
    ASSERT_EQ(setsockopt(k.cfd, IPPROTO_TCP, TCP_CORK, &one, sizeof(one)), 0);
    v2_header(h, &n, 0);
    ASSERT_EQ(write(k.cfd, h, n), (ssize_t)n);
    r = SSL_connect(k.c);
    ASSERT_EQ(SSL_get_error(k.c, r), SSL_ERROR_WANT_READ);
    ERR_clear_error();
    ASSERT_EQ(setsockopt(k.cfd, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero)), 0);
    ASSERT_EQ(fcntl(k.sfd, F_SETFL, 0), 0);
    b.s = k.s;
    b.r = 0;
    ASSERT_EQ(pthread_create(&th, NULL, blocking_accept_main, &b), 0);
    dl = tu_now_ms() + 3000;
    while ((r = SSL_connect(k.c)) != 1 && SSL_get_error(k.c, r) == SSL_ERROR_WANT_READ && tu_now_ms() < dl)
        tu_wait_readable(k.cfd, 100);
    pthread_join(th, NULL);
    ASSERT_EQ(r, 1);
    ASSERT_EQ(b.r, 1);
    ASSERT_TRUE(peer_is(k.s, "203.0.113.7:4242"));
    ERR_clear_error();
    conn_free(&k);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* A TLS listener's setting reaches the connections it accepts; others refuse or ignore it. */
static int test_proxy_listener(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_NONE);
    SSL_CTX *qctx = SSL_CTX_new(OSSL_QUIC_client_method());
    unsigned short port = 0;
    int lfd, cfd;
    unsigned char h[128];
    size_t n;
    struct conn k;
    SSL *l, *q;

    ASSERT_TRUE(sctx != NULL && cctx != NULL && qctx != NULL);
    lfd = tl_listen(4, &port);
    ASSERT_GE(lfd, 0);
    l = SSL_new_listener(sctx, 0);
    ASSERT_NOT_NULL(l);
    ASSERT_EQ(SSL_set_fd(l, lfd), 1);
    ASSERT_EQ(SSL_listen(l), 1);
    ASSERT_EQ(OSSLQUIC_set_proxy_protocol(l, 1), 1);
    cfd = tl_connect(port);
    ASSERT_GE(cfd, 0);
    v2_header(h, &n, 0);
    ASSERT_EQ(write(cfd, h, n), (ssize_t)n);
    k.s = SSL_accept_connection(l, 0);
    ASSERT_NOT_NULL(k.s);
    k.sfd = -1; /* the accepted connection owns its socket */
    k.cfd = cfd;
    k.c = SSL_new(cctx);
    ASSERT_NOT_NULL(k.c);
    ASSERT_EQ(SSL_set_fd(k.c, cfd), 1);
    ASSERT_EQ(fcntl(cfd, F_SETFL, O_NONBLOCK), 0);
    ASSERT_EQ(SSL_set_blocking_mode(k.s, 0), 1);
    ASSERT_TRUE(handshake_and_data(&k));
    ASSERT_TRUE(peer_is(k.s, "203.0.113.7:4242"));
    /* Too late for this one; wrong kind for a QUIC object. */
    ASSERT_EQ(OSSLQUIC_set_proxy_protocol(k.s, 0), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    q = SSL_new(qctx);
    ASSERT_NOT_NULL(q);
    ASSERT_EQ(OSSLQUIC_set_proxy_protocol(q, 1), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_CTX_set_proxy_protocol(NULL, 1), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    SSL_free(q);
    conn_free(&k);
    SSL_free(l);
    close(lfd);

    /* Without the setting, no header is read: the socket's peer is the peer. */
    ASSERT_TRUE(conn_new(&k, sctx, cctx, NULL, 0));
    ASSERT_TRUE(handshake_and_data(&k));
    ASSERT_EQ(OSSLQUIC_get_proxy_version(k.s), 0);
    conn_free(&k);
    SSL_CTX_free(qctx);
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
    RUN(test_proxy_v2);
    RUN(test_proxy_v1);
    RUN(test_proxy_bad_headers);
    RUN(test_proxy_blocking_one_segment);
    RUN(test_proxy_listener);
#endif
    return tu_finish();
}
