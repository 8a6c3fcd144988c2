/*
 * test_tls_bio: the SSL filter BIO (BIO_f_ssl) over TLS on TCP loopback.
 *
 *  - BIO_new_ssl_connect: an SSL BIO chained onto a connect BIO; BIO_set_conn_hostname and
 *    BIO_get_conn_hostname reach the connect BIO through the SSL BIO; BIO_do_connect runs the
 *    handshake; BIO_puts/BIO_write/BIO_read against an echo server, every byte compared;
 *    BIO_ssl_shutdown, then BIO_read returns 0 at the server's close_notify.
 *  - BIO_new_buffer_ssl_connect: BIO_gets through the buffer BIO (lines, a short buffer, the
 *    last line without newline, then 0); BIO_gets on the SSL BIO itself is unsupported (-2).
 *  - Non-blocking (both ends in one thread): BIO_new_ssl + BIO_push onto a socket BIO on one
 *    side, SSL_new + BIO_set_ssl(BIO_NOCLOSE) on the other (the SSL's BIO follows the SSL
 *    BIO in the chain); BIO_do_handshake and I/O return -1 with BIO_should_retry and the
 *    direction; BIO_pending/BIO_ctrl_pending count plaintext read but not yet taken;
 *    BIO_free_all with BIO_NOCLOSE leaves the SSL usable.
 *  - A connect BIO still connecting (the listener's accept queue is full): BIO_do_connect
 *    returns -1 with retry "special", BIO_RR_CONNECT and SSL_ERROR_WANT_CONNECT; it then
 *    completes once the queue drains.
 *  - An SSL BIO without an SSL; BIO_set_accept_bios refused as unsupported.
 *
 * The expected values are OpenSSL 3.5's (tests/c/check-openssl.sh runs this file against it).
 */
#include "tlsutil.h"

static SSL_CTX *cctx_verify(void)
{
    return tl_client_ctx(SSL_VERIFY_PEER);
}

/* Reads exactly len bytes from BIO b (blocking) into buf. */
static int bio_read_all(BIO *b, unsigned char *buf, size_t len)
{
    size_t got = 0;
    int r;

    while (got < len) {
        r = BIO_read(b, buf + got, (int)(len - got));
        ASSERT_GT(r, 0);
        got += (size_t)r;
    }
    return 1;
}

static int test_ssl_connect(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = cctx_verify();
    struct tl_server sv;
    BIO *b;
    SSL *ssl = NULL;
    char hp[64];
    unsigned char out[16384], in[16384], line[8];
    size_t total = 0, i;
    int r, k;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_TRUE(tl_server_start(&sv, sctx, TL_ECHO, NULL));
    b = BIO_new_ssl_connect(cctx);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_method_type(b), BIO_TYPE_SSL);
    ASSERT_STR_EQ(BIO_method_name(b), "ssl");
    ASSERT_NOT_NULL(BIO_next(b));
    ASSERT_EQ(BIO_method_type(BIO_next(b)), BIO_TYPE_CONNECT);
    ASSERT_PTR_EQ(BIO_find_type(b, BIO_TYPE_CONNECT), BIO_next(b));
    ASSERT_EQ(BIO_get_ssl(b, &ssl), 1);
    ASSERT_NOT_NULL(ssl);
    ASSERT_PTR_EQ(SSL_get_rbio(ssl), BIO_next(b));
    ASSERT_PTR_EQ(SSL_get_wbio(ssl), BIO_next(b));
    ASSERT_EQ(BIO_get_close(b), BIO_CLOSE);
    ASSERT_EQ(SSL_set1_host(ssl, "localhost"), 1);
    ASSERT_EQ(SSL_set_tlsext_host_name(ssl, "localhost"), 1);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", sv.port);
    ASSERT_EQ(BIO_set_conn_hostname(b, hp), 1);
    ASSERT_STR_EQ(BIO_get_conn_hostname(b), "127.0.0.1");
    ASSERT_EQ(BIO_do_connect(b), 1);
    ASSERT_EQ(BIO_do_handshake(b), 1); /* done already */
    ASSERT_EQ(SSL_get_verify_result(ssl), X509_V_OK);
    ASSERT_STR_EQ(SSL_get_version(ssl), "TLSv1.3");
    ASSERT_GE(BIO_get_fd(b, NULL), 0); /* the connect BIO's socket */

    ASSERT_EQ(BIO_puts(b, "hello\n"), 6);
    ASSERT_TRUE(bio_read_all(b, line, 6));
    ASSERT_MEM_EQ(line, "hello\n", 6);
    total += 6;
    /* 40 chunks of growing size, each echoed back and compared. */
    for (k = 0; k < 40; k++) {
        size_t len = 1 + (size_t)k * 409;

        for (i = 0; i < len; i++)
            out[i] = tl_pat(total + i, 1);
        ASSERT_EQ(BIO_write(b, out, (int)len), (int)len);
        ASSERT_EQ(BIO_flush(b), 1);
        ASSERT_TRUE(bio_read_all(b, in, len));
        ASSERT_MEM_EQ(in, out, len);
        total += len;
    }
    ASSERT_EQ(BIO_pending(b), 0);

    /* close_notify: the server answers with its own, which reads as end of stream. */
    BIO_ssl_shutdown(b);
    r = BIO_read(b, in, sizeof(in));
    ASSERT_EQ(r, 0);
    ASSERT_EQ(SSL_get_error(ssl, r), SSL_ERROR_ZERO_RETURN);
    ASSERT_FALSE(BIO_should_retry(b));
    ASSERT_NO_ERROR();
    BIO_free_all(b);
    ASSERT_TRUE(tl_server_join(&sv));
    ASSERT_EQ(sv.echoed, total);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

static int test_buffer_gets(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = cctx_verify();
    struct tl_server sv;
    BIO *b;
    SSL *ssl = NULL;
    char hp[64], line[64];

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_TRUE(tl_server_start(&sv, sctx, TL_LINES, "line one\nline two\n\nlast"));
    b = BIO_new_buffer_ssl_connect(cctx);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_method_type(b), BIO_TYPE_BUFFER);
    ASSERT_EQ(BIO_method_type(BIO_next(b)), BIO_TYPE_SSL);
    ASSERT_EQ(BIO_get_ssl(b, &ssl), 1); /* through the buffer BIO */
    ASSERT_NOT_NULL(ssl);
    ASSERT_EQ(SSL_set1_host(ssl, "localhost"), 1);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", sv.port);
    ASSERT_EQ(BIO_set_conn_hostname(b, hp), 1);
    ASSERT_EQ(BIO_do_connect(b), 1);

    /* The SSL BIO has no gets of its own. */
    ASSERT_EQ(BIO_gets(BIO_next(b), line, sizeof(line)), -2);
    ERR_clear_error();

    ASSERT_EQ(BIO_gets(b, line, 5), 4); /* size - 1 bytes at most */
    ASSERT_STR_EQ(line, "line");
    ASSERT_EQ(BIO_gets(b, line, sizeof(line)), 5);
    ASSERT_STR_EQ(line, " one\n");
    ASSERT_EQ(BIO_gets(b, line, sizeof(line)), 9);
    ASSERT_STR_EQ(line, "line two\n");
    ASSERT_EQ(BIO_gets(b, line, sizeof(line)), 1);
    ASSERT_STR_EQ(line, "\n");
    ASSERT_EQ(BIO_gets(b, line, sizeof(line)), 4); /* end of stream after it */
    ASSERT_STR_EQ(line, "last");
    ASSERT_EQ(BIO_gets(b, line, sizeof(line)), 0);
    ASSERT_STR_EQ(line, "");
    ASSERT_NO_ERROR();
    BIO_free_all(b);
    ASSERT_TRUE(tl_server_join(&sv));
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* Both handshakes through SSL BIOs, non-blocking, until both return 1. The first client
 * step sends its ClientHello and then waits to read. */
static int nb_handshake(BIO *cb, BIO *sb, SSL *cssl)
{
    uint64_t dl = tu_now_ms() + 10000;
    int rc, rs = -1, first = 1;

    for (;;) {
        ASSERT_TRUE(tu_now_ms() < dl);
        rc = (int)BIO_do_handshake(cb);
        if (rc != 1) {
            ASSERT_EQ(rc, -1);
            ASSERT_TRUE(BIO_should_retry(cb));
            ASSERT_TRUE(BIO_should_read(cb));
            ASSERT_FALSE(BIO_should_write(cb));
            ASSERT_EQ(BIO_get_retry_reason(cb), 0);
            ASSERT_EQ(SSL_get_error(cssl, rc), SSL_ERROR_WANT_READ);
        }
        if (first) {
            ASSERT_EQ(rc, -1);
            first = 0;
        }
        if (rs != 1) {
            rs = (int)BIO_do_handshake(sb);
            if (rs != 1) {
                ASSERT_EQ(rs, -1);
                ASSERT_TRUE(BIO_should_retry(sb));
            }
        }
        if (rc == 1 && rs == 1)
            return 1;
    }
}

/* Moves len bytes from BIO a to BIO b, both non-blocking, writes and reads interleaved;
 * every retry is a direction the BIO says, every byte compared. */
static int nb_transfer(BIO *a, BIO *b, size_t len, unsigned seed)
{
    unsigned char *out = malloc(len), *in = malloc(len);
    size_t sent = 0, got = 0, i;
    uint64_t dl = tu_now_ms() + 20000;
    int r;

    ASSERT_NOT_NULL(out);
    ASSERT_NOT_NULL(in);
    for (i = 0; i < len; i++)
        out[i] = tl_pat(i, seed);
    while (got < len) {
        ASSERT_TRUE(tu_now_ms() < dl);
        if (sent < len) {
            size_t n = len - sent > 30000 ? 30000 : len - sent;

            r = BIO_write(a, out + sent, (int)n);
            if (r > 0) {
                sent += (size_t)r;
            } else {
                ASSERT_EQ(r, -1);
                ASSERT_TRUE(BIO_should_retry(a));
                ASSERT_TRUE(BIO_should_write(a) || BIO_should_read(a));
            }
        }
        r = BIO_read(b, in + got, (int)(len - got));
        if (r > 0) {
            got += (size_t)r;
        } else {
            ASSERT_EQ(r, -1);
            ASSERT_TRUE(BIO_should_retry(b));
            ASSERT_TRUE(BIO_should_read(b));
        }
    }
    ASSERT_EQ(sent, len);
    ASSERT_MEM_EQ(in, out, len);
    free(out);
    free(in);
    return 1;
}

static int test_nonblocking(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = cctx_verify();
    int sfd, cfd, r;
    BIO *sb, *cb, *sock;
    SSL *sssl = NULL, *cssl, *x = NULL;
    unsigned char out[1000], in[1000];
    size_t i;
    uint64_t dl;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_TRUE(tl_tcp_pair(&sfd, &cfd));

    /* Server: BIO_new_ssl, then the socket BIO pushed after it becomes the SSL's BIO. */
    sb = BIO_new_ssl(sctx, 0);
    ASSERT_NOT_NULL(sb);
    sock = BIO_new_socket(sfd, BIO_NOCLOSE);
    ASSERT_NOT_NULL(sock);
    ASSERT_PTR_EQ(BIO_push(sb, sock), sb);
    ASSERT_EQ(BIO_get_ssl(sb, &sssl), 1);
    ASSERT_PTR_EQ(SSL_get_rbio(sssl), sock);
    ASSERT_PTR_EQ(SSL_get_wbio(sssl), sock);

    /* Client: an SSL BIO without an SSL first. */
    cb = BIO_new(BIO_f_ssl());
    ASSERT_NOT_NULL(cb);
    ASSERT_EQ(BIO_get_ssl(cb, &x), 0);
    ASSERT_NULL(x);
    ASSERT_EQ(BIO_pending(cb), 0);
    ASSERT_EQ(BIO_read(cb, in, 1), -1);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNINITIALIZED);
    cssl = SSL_new(cctx);
    ASSERT_NOT_NULL(cssl);
    ASSERT_EQ(SSL_set_fd(cssl, cfd), 1);
    ASSERT_EQ(SSL_set1_host(cssl, "localhost"), 1);
    ASSERT_EQ(BIO_set_ssl(cb, cssl, BIO_NOCLOSE), 1);
    ASSERT_EQ(BIO_set_ssl_mode(cb, 1), 1); /* client */
    ASSERT_EQ(BIO_get_close(cb), BIO_NOCLOSE);
    ASSERT_EQ(BIO_get_ssl(cb, &x), 1);
    ASSERT_PTR_EQ(x, cssl);
    ASSERT_PTR_EQ(BIO_next(cb), SSL_get_rbio(cssl)); /* the SSL's BIO follows in the chain */
    ASSERT_EQ(BIO_get_fd(cb, NULL), cfd);

    ASSERT_TRUE(nb_handshake(cb, sb, cssl));
    ASSERT_EQ(SSL_get_verify_result(cssl), X509_V_OK);

    /* Nothing to read yet. */
    ASSERT_EQ(BIO_read(cb, in, sizeof(in)), -1);
    ASSERT_TRUE(BIO_should_retry(cb));
    ASSERT_TRUE(BIO_should_read(cb));
    ASSERT_EQ(SSL_get_error(cssl, -1), SSL_ERROR_WANT_READ);
    ASSERT_NO_ERROR();

    /* 1000 bytes in one record; 10 taken, 990 pending in the SSL. */
    for (i = 0; i < sizeof(out); i++)
        out[i] = tl_pat(i, 3);
    ASSERT_EQ(BIO_write(sb, out, sizeof(out)), (int)sizeof(out));
    dl = tu_now_ms() + 10000;
    while ((r = BIO_read(cb, in, 10)) == -1 && BIO_should_retry(cb)) {
        ASSERT_TRUE(tu_now_ms() < dl);
        (void)tu_wait_readable(cfd, 100);
    }
    ASSERT_EQ(r, 10);
    ASSERT_EQ(BIO_pending(cb), 990);
    ASSERT_EQ(BIO_ctrl_pending(cb), 990);
    ASSERT_EQ(BIO_read(cb, in + 10, sizeof(in)), 990);
    ASSERT_MEM_EQ(in, out, sizeof(out));
    ASSERT_EQ(BIO_pending(cb), 0);

    ASSERT_TRUE(nb_transfer(cb, sb, 300000, 4));
    ASSERT_TRUE(nb_transfer(sb, cb, 300000, 5));

#if HAVE_OSSLQUIC
    /* No renegotiation here (OpenSSL returns the previous byte limit, 0). */
    ERR_clear_error();
    ASSERT_EQ(BIO_set_ssl_renegotiate_bytes(cb, 4096), 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
#endif

    /* close_notify from the client reads as end of stream on the server's BIO. */
    BIO_ssl_shutdown(cb);
    dl = tu_now_ms() + 10000;
    while ((r = BIO_read(sb, in, sizeof(in))) == -1 && BIO_should_retry(sb))
        ASSERT_TRUE(tu_now_ms() < dl);
    ASSERT_EQ(r, 0);
    ASSERT_EQ(SSL_get_error(sssl, r), SSL_ERROR_ZERO_RETURN);
    ASSERT_NO_ERROR();

    /* BIO_NOCLOSE: freeing the chain leaves the SSL (and its BIO) alive. */
    BIO_free_all(cb);
    ASSERT_NOT_NULL(SSL_get_rbio(cssl));
    ASSERT_EQ(SSL_get_fd(cssl), cfd);
    SSL_free(cssl);
    BIO_free_all(sb); /* BIO_CLOSE: frees the server's SSL and the socket BIO */
    close(sfd);
    close(cfd);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* A non-blocking connect that cannot complete yet: the listener's accept queue is full
 * (backlog 0 and one connection waiting), so the kernel drops the client's SYN until a
 * connection is accepted. */
static int test_want_connect(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = cctx_verify();
    unsigned short port = 0;
    int lfd = tl_listen(0, &port), filler = -1, afd, sfd = -1, rc, rs = -1, i;
    BIO *b;
    SSL *ssl = NULL, *s = NULL;
    char hp[64];
    uint64_t dl;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_GE(lfd, 0);
    filler = tl_connect(port);
    ASSERT_GE(filler, 0);
    b = BIO_new_ssl_connect(cctx);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_get_ssl(b, &ssl), 1);
    ASSERT_EQ(SSL_set1_host(ssl, "localhost"), 1);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", port);
    ASSERT_EQ(BIO_set_conn_hostname(b, hp), 1);
    ASSERT_EQ(BIO_set_nbio(b, 1), 1);
    /* Once the kernel gives up queueing (at most a few tries: it may let one SYN through
     * while the first connection is still completing), the connect stays in progress. */
    for (i = 0; i < 3; i++) {
        rc = (int)BIO_do_connect(b);
        ASSERT_EQ(rc, -1);
        ASSERT_TRUE(BIO_should_retry(b));
        if (BIO_should_io_special(b))
            break;
    }
    ASSERT_TRUE(BIO_should_io_special(b));
    ASSERT_FALSE(BIO_should_read(b));
    ASSERT_FALSE(BIO_should_write(b));
    ASSERT_EQ(BIO_get_retry_reason(b), BIO_RR_CONNECT);
    ASSERT_EQ(SSL_get_error(ssl, rc), SSL_ERROR_WANT_CONNECT);
    ASSERT_NO_ERROR();

    /* Drain the queue: the client's SYN is retried and accepted; the handshake then runs
     * against a non-blocking server SSL. */
    afd = accept(lfd, NULL, NULL);
    ASSERT_GE(afd, 0);
    close(afd);
    dl = tu_now_ms() + 15000;
    for (;;) {
        ASSERT_TRUE(tu_now_ms() < dl);
        rc = (int)BIO_do_connect(b);
        if (rc == 1)
            break;
        ASSERT_EQ(rc, -1);
        ASSERT_TRUE(BIO_should_retry(b));
        if (sfd < 0 && tu_wait_readable(lfd, 10)) {
            sfd = accept(lfd, NULL, NULL);
            ASSERT_GE(sfd, 0);
            ASSERT_EQ(fcntl(sfd, F_SETFL, O_NONBLOCK), 0);
            s = SSL_new(sctx);
            ASSERT_NOT_NULL(s);
            ASSERT_EQ(SSL_set_fd(s, sfd), 1);
        }
        if (s != NULL && rs != 1) {
            rs = SSL_accept(s);
            if (rs != 1)
                ASSERT_TRUE(SSL_get_error(s, rs) == SSL_ERROR_WANT_READ);
        }
        if (BIO_should_io_special(b))
            ASSERT_EQ(BIO_get_retry_reason(b), BIO_RR_CONNECT);
    }
    ASSERT_NOT_NULL(s);
    while (rs != 1) {
        ASSERT_TRUE(tu_now_ms() < dl);
        rs = SSL_accept(s);
        if (rs != 1)
            ASSERT_EQ(SSL_get_error(s, rs), SSL_ERROR_WANT_READ);
    }
    ASSERT_EQ(SSL_get_verify_result(ssl), X509_V_OK);
    ERR_clear_error();
    BIO_free_all(b);
    SSL_free(s);
    close(sfd);
    close(filler);
    close(lfd);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* BIO_set_accept_bios (a template chain duplicated per accepted socket) is refused. */
static int test_accept_bios(void)
{
#if HAVE_OSSLQUIC
    SSL_CTX *sctx = tl_server_ctx();
    BIO *acpt = BIO_new_accept("127.0.0.1:0"), *sb;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(acpt);
    sb = BIO_new_ssl(sctx, 0);
    ASSERT_NOT_NULL(sb);
    ERR_clear_error();
    ASSERT_EQ(BIO_set_accept_bios(acpt, sb), 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    ASSERT_NO_ERROR();
    BIO_free(sb);
    BIO_free(acpt);
    SSL_CTX_free(sctx);
#else
    tu_skip("OpenSSL supports BIO_set_accept_bios");
#endif
    return 1;
}

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
    RUN(test_ssl_connect);
    RUN(test_buffer_gets);
    RUN(test_nonblocking);
    RUN(test_want_connect);
    RUN(test_accept_bios);
    return tu_finish();
}
