/*
 * test_quic_sslbio: BIO_new_ssl_connect on a QUIC context (issue 12), as OpenSSL's
 * ddd-01-conn-blocking and ddd-02-conn-nonblocking use it with -DUSE_QUIC.
 *
 *  - the chain is an SSL BIO over a connect BIO whose socket type is SOCK_DGRAM; the SSL's
 *    network BIO is that connect BIO; BIO_set_conn_hostname reaches it through the SSL BIO;
 *  - blocking: BIO_write/BIO_read against an echo listener (a thread with a blocking QUIC
 *    listener), 200 KB in chunks, every byte compared; the connect BIO's fd is a UDP socket;
 *  - non-blocking: BIO_set_nbio on the chain, the handshake and I/O retried on
 *    BIO_should_retry, bounded;
 *  - BIO_set_sock_type after the socket exists, or with a bad type, fails cleanly.
 */
#include "quicutil.h"

#include <pthread.h>

#ifdef TEST_REAL_OPENSSL
int main(void)
{
    return 0; /* needs libssl: not part of the libcrypto comparison run */
}
#else

enum { TOTAL = 200000 };

struct echo {
    SSL_CTX *ctx;
    int fd;
    unsigned short port;
    size_t echoed;
    int ok;
};

/* Accepts one connection, echoes its default stream until FIN, concludes, shuts down. */
static void *echo_main(void *arg)
{
    struct echo *e = arg;
    SSL *l = SSL_new_listener(e->ctx, 0), *c = NULL;
    unsigned char buf[16384];
    size_t n, w;

    if (l == NULL || !SSL_set_fd(l, e->fd) || !SSL_listen(l))
        goto done;
    c = SSL_accept_connection(l, 0);
    if (c == NULL)
        goto done;
    for (;;) {
        if (!SSL_read_ex(c, buf, sizeof(buf), &n))
            break;
        if (!SSL_write_ex(c, buf, n, &w) || w != n)
            goto done;
        e->echoed += n;
    }
    if (SSL_get_error(c, 0) != SSL_ERROR_ZERO_RETURN)
        goto done;
    e->ok = SSL_stream_conclude(c, 0) == 1 && qu_shutdown_blocking(c);
done:
    SSL_free(c);
    SSL_free(l);
    return NULL;
}

static int echo_start(struct echo *e, pthread_t *t)
{
    BIO_ADDR *a = NULL;

    memset(e, 0, sizeof(*e));
    e->ctx = qu_server_ctx(0);
    ASSERT_NOT_NULL(e->ctx);
    e->fd = tu_udp_socket(AF_INET, &a);
    ASSERT_GE(e->fd, 0);
    e->port = ntohs(BIO_ADDR_rawport(a));
    BIO_ADDR_free(a);
    ASSERT_EQ(pthread_create(t, NULL, echo_main, e), 0);
    return 1;
}

static int echo_join(struct echo *e, pthread_t t)
{
    ASSERT_EQ(pthread_join(t, NULL), 0);
    SSL_CTX_free(e->ctx);
    close(e->fd);
    return 1;
}

static unsigned char pat(size_t i)
{
    return (unsigned char)(i * 31 + (i >> 9));
}

/* An SSL connect BIO on a QUIC client context, aimed at the echo server on `port`. */
static BIO *quic_connect_bio(SSL_CTX *cctx, unsigned short port, SSL **ssl)
{
    char hp[64];
    BIO *b = BIO_new_ssl_connect(cctx);

    if (b == NULL)
        return NULL;
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", port);
    if (BIO_get_ssl(b, ssl) != 1 || *ssl == NULL || BIO_set_conn_hostname(b, hp) != 1 ||
        SSL_set1_host(*ssl, "localhost") != 1 || SSL_set_tlsext_host_name(*ssl, "localhost") != 1 ||
        SSL_set_alpn_protos(*ssl, qu_alpn, sizeof(qu_alpn)) != 0) {
        BIO_free_all(b);
        return NULL;
    }
    return b;
}

static int test_blocking(void)
{
    struct echo e;
    pthread_t t;
    SSL_CTX *cctx = qu_client_ctx();
    SSL *ssl = NULL;
    BIO *b, *con;
    unsigned char out[8192], in[8192];
    size_t sent = 0, got = 0, i, len;
    int r, fd = -1, type = 0;
    socklen_t tl = sizeof(type);

    ASSERT_NOT_NULL(cctx);
    ASSERT_TRUE(echo_start(&e, &t));
    b = quic_connect_bio(cctx, e.port, &ssl);
    ASSERT_NOT_NULL(b);
    con = BIO_next(b);
    ASSERT_NOT_NULL(con);
    ASSERT_EQ(BIO_method_type(con), BIO_TYPE_CONNECT);
    ASSERT_EQ(BIO_get_sock_type(con), SOCK_DGRAM);
    ASSERT_PTR_EQ(SSL_get_rbio(ssl), con);
    ASSERT_PTR_EQ(SSL_get_wbio(ssl), con);
    ASSERT_STR_EQ(BIO_get_conn_hostname(b), "127.0.0.1");

    while (sent < TOTAL) {
        len = TOTAL - sent < sizeof(out) ? TOTAL - sent : sizeof(out);
        for (i = 0; i < len; i++)
            out[i] = pat(sent + i);
        ASSERT_EQ(BIO_write(b, out, (int)len), (int)len);
        sent += len;
        while (got < sent) {
            r = BIO_read(b, in, sizeof(in));
            ASSERT_GT(r, 0);
            for (i = 0; i < (size_t)r; i++)
                ASSERT_EQ(in[i], pat(got + i));
            got += (size_t)r;
        }
    }
    ASSERT_EQ(SSL_get_verify_result(ssl), X509_V_OK);
    ASSERT_EQ(BIO_get_fd(con, &fd), fd);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl), 0);
    ASSERT_EQ(type, SOCK_DGRAM);
    /* The socket exists: its type can no longer change. */
    ASSERT_EQ(BIO_set_sock_type(con, SOCK_STREAM), 0);
    ASSERT_ONE_ERROR();

    ASSERT_EQ(SSL_stream_conclude(ssl, 0), 1);
    r = BIO_read(b, in, sizeof(in));
    ASSERT_EQ(r, 0); /* the server's FIN */
    ASSERT_EQ(SSL_get_error(ssl, r), SSL_ERROR_ZERO_RETURN);
    ERR_clear_error();
    BIO_free_all(b);
    ASSERT_TRUE(echo_join(&e, t));
    ASSERT_TRUE(e.ok);
    ASSERT_EQ(e.echoed, (size_t)TOTAL);
    SSL_CTX_free(cctx);
    return 1;
}

static int test_nonblocking(void)
{
    struct echo e;
    pthread_t t;
    SSL_CTX *cctx = qu_client_ctx();
    SSL *ssl = NULL;
    BIO *b;
    const char msg[] = "GET / HTTP/1.0\r\n\r\n";
    char in[64];
    size_t got = 0;
    int r;
    uint64_t deadline;

    ASSERT_NOT_NULL(cctx);
    ASSERT_TRUE(echo_start(&e, &t));
    b = quic_connect_bio(cctx, e.port, &ssl);
    ASSERT_NOT_NULL(b);
    BIO_set_nbio(b, 1);
    deadline = tu_now_ms() + 10000;
    while ((r = BIO_write(b, msg, (int)strlen(msg))) <= 0) {
        ASSERT_TRUE(BIO_should_retry(b));
        ASSERT_TRUE(tu_now_ms() < deadline);
        (void)tu_wait_readable(BIO_get_fd(BIO_next(b), NULL), 10);
    }
    ASSERT_EQ(r, (int)strlen(msg));
    while (got < strlen(msg)) {
        r = BIO_read(b, in + got, (int)(sizeof(in) - got));
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        ASSERT_TRUE(BIO_should_retry(b));
        ASSERT_TRUE(tu_now_ms() < deadline);
        (void)tu_wait_readable(BIO_get_fd(BIO_next(b), NULL), 10);
    }
    ASSERT_MEM_EQ(in, msg, strlen(msg));
    ASSERT_EQ(SSL_stream_conclude(ssl, 0), 1);
    for (;;) {
        r = BIO_read(b, in, sizeof(in));
        if (r == 0)
            break;
        ASSERT_TRUE(r < 0 && BIO_should_retry(b));
        ASSERT_TRUE(tu_now_ms() < deadline);
        (void)tu_wait_readable(BIO_get_fd(BIO_next(b), NULL), 10);
    }
    ASSERT_EQ(SSL_get_error(ssl, r), SSL_ERROR_ZERO_RETURN);
    ERR_clear_error();
    /* Keep acknowledging until the server's blocking shutdown is done and its thread ends. */
    while (pthread_tryjoin_np(t, NULL) != 0) {
        ASSERT_TRUE(tu_now_ms() < deadline);
        SSL_handle_events(ssl);
        (void)tu_wait_readable(BIO_get_fd(BIO_next(b), NULL), 10);
    }
    BIO_free_all(b);
    SSL_CTX_free(e.ctx);
    close(e.fd);
    ASSERT_TRUE(e.ok);
    SSL_CTX_free(cctx);
    return 1;
}

static int test_sock_type_refused(void)
{
    BIO *con = BIO_new(BIO_s_connect());

    ASSERT_NOT_NULL(con);
    ASSERT_EQ(BIO_get_sock_type(con), SOCK_STREAM);
    ASSERT_EQ(BIO_set_sock_type(con, SOCK_RAW), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(BIO_set_sock_type(con, SOCK_DGRAM), 1);
    ASSERT_EQ(BIO_get_sock_type(con), SOCK_DGRAM);
    BIO_free(con);
    return 1;
}

int main(int argc, char **argv)
{
    tu_init(argc, argv);
    qu_init();
    RUN(test_sock_type_refused);
    RUN(test_blocking);
    RUN(test_nonblocking);
    return tu_finish();
}
#endif
