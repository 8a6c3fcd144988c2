/*
 * test_assist: OSSL_QUIC_client_thread_method keeps a client connection served while the
 * application makes no calls at all.
 *
 * A blocking server thread sends a response, concludes and runs a blocking SSL_shutdown,
 * which completes only once the client has acknowledged every byte and the closing period
 * is over. The application thread owning the client does not touch it meanwhile: it only
 * waits (bounded) for the server thread. With thread assistance the client's background
 * thread receives, acknowledges and answers; without it (the plain client method, checked
 * second) the server would still be waiting when the bound expires.
 */
#include "quicutil.h"

#include <pthread.h>

struct srv {
    SSL *listener;
    int done; /* 1: served and shut down; -1: failed */
    size_t len;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void *server_main(void *arg)
{
    struct srv *s = arg;
    SSL *c = SSL_accept_connection(s->listener, 0);
    char *buf = malloc(s->len), req[16];
    size_t n, i, got = 0;
    int r = -1, ok = c != NULL && buf != NULL;

    /* The request: 4 bytes and FIN. */
    while (ok && SSL_read_ex(c, req + got, sizeof(req) - got, &n))
        got += n;
    ok = ok && got == 4 && memcmp(req, "GET ", 4) == 0 &&
         SSL_get_error(c, 0) == SSL_ERROR_ZERO_RETURN;
    for (i = 0; ok && i < s->len; i++)
        buf[i] = (char)(i * 13 + 1);
    ok = ok && SSL_write_ex(c, buf, s->len, &n) && n == s->len && SSL_stream_conclude(c, 0);
    while (ok && (r = SSL_shutdown(c)) == 0)
        ;
    ok = ok && r == 1;
    ERR_clear_error();
    SSL_free(c);
    free(buf);
    pthread_mutex_lock(&s->mu);
    s->done = ok ? 1 : -1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Waits up to ms for the server thread to finish; its outcome, or 0 when still running. */
static int wait_server(struct srv *s, int ms)
{
    struct timespec until;
    int done;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (s->done == 0 && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0)
        ;
    done = s->done;
    pthread_mutex_unlock(&s->mu);
    return done;
}

/* One exchange; *served is the server's outcome after `ms` of client inactivity. */
static int run(int assisted, int ms, int *served)
{
    SSL_CTX *sctx = qu_server_ctx(1), *cctx;
    BIO_ADDR *addr = NULL;
    int sfd = tu_udp_socket(AF_INET, &addr), cfd = tu_udp_socket(AF_INET, NULL);
    struct srv s = {.len = 300000, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t t;
    SSL *c;
    char *buf = malloc(s.len);
    size_t n, got = 0, i;
    uint64_t flags = 0;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(buf);
    cctx = SSL_CTX_new(assisted ? OSSL_QUIC_client_thread_method() : OSSL_QUIC_client_method());
    ASSERT_NOT_NULL(cctx);
    ASSERT_EQ(SSL_CTX_load_verify_locations(cctx, qu_cert_path("ca.pem"), NULL), 1);
    ASSERT_EQ(SSL_CTX_get_domain_flags(cctx, &flags), 1);
    ASSERT_EQ(!!(flags & SSL_DOMAIN_FLAG_THREAD_ASSISTED), assisted);
    s.listener = SSL_new_listener(sctx, 0);
    ASSERT_NOT_NULL(s.listener);
    ASSERT_EQ(SSL_set_fd(s.listener, sfd), 1);
    ASSERT_EQ(SSL_listen(s.listener), 1);
    ASSERT_EQ(pthread_create(&t, NULL, server_main, &s), 0);
    c = qu_client(cctx, cfd, addr, 0);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(SSL_connect(c), 1);
    ASSERT_EQ(SSL_write_ex2(c, "GET ", 4, SSL_WRITE_FLAG_CONCLUDE, &n), 1);

    /* The application is busy elsewhere: no call on the client. */
    *served = wait_server(&s, ms);

    /* Whatever happened, the client still reads the whole response (its own calls handle
     * events), then the server finishes. */
    while (got < s.len && SSL_read_ex(c, buf + got, s.len - got, &n))
        got += n;
    ASSERT_EQ(got, s.len);
    for (i = 0; i < s.len; i++)
        ASSERT_EQ(buf[i], (char)(i * 13 + 1));
    /* The server's blocking shutdown needs the client's last acknowledgements: keep the
     * client served (a plain client has no thread to do it) until the server is done. */
    for (i = 0; i < 2000 && wait_server(&s, 10) == 0; i++)
        SSL_handle_events(c);
    ASSERT_EQ(wait_server(&s, 0), 1);
    pthread_join(t, NULL);
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s.listener);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    BIO_ADDR_free(addr);
    close(sfd);
    close(cfd);
    free(buf);
    return 1;
}

static int test_assisted_client_is_served(void)
{
    int served = 0;

    ASSERT_TRUE(run(1, 20000, &served));
    ASSERT_EQ(served, 1);
    return 1;
}

static int test_plain_client_is_not(void)
{
    int served = 1;

    /* Half a second of inactivity: the server cannot finish without the client. */
    ASSERT_TRUE(run(0, 500, &served));
    ASSERT_EQ(served, 0);
    return 1;
}

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
    RUN(test_assisted_client_is_served);
    RUN(test_plain_client_is_not);
    return tu_finish();
}
