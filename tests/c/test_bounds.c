/*
 * test_bounds: what a QUIC listener does when its application does not keep up (issue 14,
 * deliverable 3), over UDP loopback, all in one thread, non-blocking.
 *
 *  - the accept queue's bound (OSSLQUIC_set_max_pending_connections, default 1024): with
 *    room for 2, of 5 clients that connect at once while the server accepts none, 2
 *    complete their handshake and 3 are refused: their SSL_connect fails and
 *    SSL_get_conn_close_info reports the transport error CONNECTION_REFUSED (0x2); the
 *    listener counts them (OSSLQUIC_ENGINE_STATS.refused) and holds 2;
 *  - accepting one makes room for the next client; a bound of 0 refuses every new one
 *    (a server draining before it stops), and the connections already up keep working;
 *  - handshakes from unproven addresses on a listener without validation
 *    (OSSLQUIC_set_max_unvalidated_handshakes, default 128): beyond the bound a new client
 *    is sent a Retry (OSSLQUIC_ENGINE_STATS.retries), and connects after it;
 *  - TLS slowloris: a TLS server handshake is bounded (OSSLQUIC_CTX_set_handshake_timeout,
 *    default 30 s): a client that sends half a ClientHello and stops makes a blocking
 *    SSL_accept fail with "read timeout expired" once the bound passed; a non-blocking one
 *    learns the deadline from SSL_get_event_timeout, and SSL_handle_events after it fails the
 *    handshake; a handshake that finished has no deadline left.
 *
 * osslquic only: OpenSSL has no such bound.
 */
#include "tlsutil.h"

#if HAVE_OSSLQUIC

enum { CLIENTS = 5, ROOM = 2 };

struct client {
    SSL *ssl;
    int fd;
    int done; /* 1 connected, -1 failed */
};

static int client_new(struct client *c, SSL_CTX *cctx, const BIO_ADDR *addr)
{
    c->done = 0;
    c->fd = tu_udp_socket(AF_INET, NULL);
    ASSERT_GE(c->fd, 0);
    c->ssl = qu_client(cctx, c->fd, addr, 0);
    ASSERT_NOT_NULL(c->ssl);
    ASSERT_EQ(SSL_set_blocking_mode(c->ssl, 0), 1);
    return 1;
}

static void client_free(struct client *c)
{
    SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
}

/* Runs the listener and clients[0..n) until each client's handshake has ended (10 s at
 * most); returns how many connected. */
static int run_clients(SSL *l, struct client *cl, int n, int *connected)
{
    uint64_t deadline = tu_now_ms() + 10000;
    int left = n, i;

    *connected = 0;
    while (left > 0) {
        ASSERT_TRUE(tu_now_ms() < deadline);
        SSL_handle_events(l);
        for (i = 0; i < n; i++) {
            int r;

            if (cl[i].done)
                continue;
            r = SSL_connect(cl[i].ssl);
            if (r == 1) {
                cl[i].done = 1;
                ++*connected;
                left--;
            } else if (SSL_get_error(cl[i].ssl, r) != SSL_ERROR_WANT_READ) {
                cl[i].done = -1;
                left--;
            }
        }
    }
    ERR_clear_error();
    return 1;
}

static int refused_by_server(SSL *s)
{
    SSL_CONN_CLOSE_INFO info;

    memset(&info, 0, sizeof(info));
    ASSERT_EQ(SSL_get_conn_close_info(s, &info, sizeof(info)), 1);
    ASSERT_U64_EQ(info.error_code, 0x2); /* CONNECTION_REFUSED */
    ASSERT_TRUE(info.flags & SSL_CONN_CLOSE_FLAG_TRANSPORT);
    ASSERT_FALSE(info.flags & SSL_CONN_CLOSE_FLAG_LOCAL);
    return 1;
}

static OSSLQUIC_ENGINE_STATS engine_stats(SSL *l)
{
    OSSLQUIC_ENGINE_STATS st;

    memset(&st, 0, sizeof(st));
    if (OSSLQUIC_get_engine_stats(l, &st) != 1)
        memset(&st, 0xff, sizeof(st));
    return st;
}

static uint64_t refused_count(SSL *l)
{
    return engine_stats(l).refused;
}

static int test_accept_queue_bound(void)
{
    SSL_CTX *sctx = qu_server_ctx(0), *cctx = qu_client_ctx();
    struct client cl[CLIENTS], late;
    BIO_ADDR *addr = NULL;
    int sfd, connected, i, refused = 0;
    SSL *l, *accepted;
    char buf[8];
    size_t n = 0;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    l = qu_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE, &sfd, &addr);
    ASSERT_NOT_NULL(l);
    ASSERT_EQ(OSSLQUIC_get_max_pending_connections(l), 1024);
    ASSERT_EQ(OSSLQUIC_set_max_pending_connections(l, ROOM), 1);
    ASSERT_EQ(OSSLQUIC_get_max_pending_connections(l), ROOM);
    ASSERT_EQ(OSSLQUIC_set_max_pending_connections(NULL, 1), 0);
    ERR_clear_error();

    for (i = 0; i < CLIENTS; i++)
        ASSERT_TRUE(client_new(&cl[i], cctx, addr));
    ASSERT_TRUE(run_clients(l, cl, CLIENTS, &connected));
    ASSERT_EQ(connected, ROOM);
    for (i = 0; i < CLIENTS; i++) {
        if (cl[i].done < 0) {
            ASSERT_TRUE(refused_by_server(cl[i].ssl));
            refused++;
        }
    }
    ASSERT_EQ(refused, CLIENTS - ROOM);
    ASSERT_U64_EQ(refused_count(l), CLIENTS - ROOM);
    ASSERT_EQ(SSL_get_accept_connection_queue_len(l), ROOM);

    /* Accepting one makes room for one more. */
    accepted = SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK);
    ASSERT_NOT_NULL(accepted);
    ASSERT_TRUE(client_new(&late, cctx, addr));
    ASSERT_TRUE(run_clients(l, &late, 1, &connected));
    ASSERT_EQ(connected, 1);
    ASSERT_EQ(SSL_get_accept_connection_queue_len(l), ROOM);
    client_free(&late);

    /* Draining: no new connection, while an accepted one still carries data. */
    ASSERT_EQ(OSSLQUIC_set_max_pending_connections(l, 0), 1);
    ASSERT_TRUE(client_new(&late, cctx, addr));
    ASSERT_TRUE(run_clients(l, &late, 1, &connected));
    ASSERT_EQ(connected, 0);
    ASSERT_TRUE(refused_by_server(late.ssl));
    ASSERT_U64_EQ(refused_count(l), CLIENTS - ROOM + 1);
    {
        /* Every server connection of the listener, and one of the first clients that
         * connected: its "ping" reaches one of them. */
        SSL *srv[ROOM + 1];
        int ns = 0, got = -1, k;
        uint64_t deadline = tu_now_ms() + 10000;

        srv[ns++] = accepted;
        accepted = NULL;
        while (ns < ROOM + 1 &&
               (srv[ns] = SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK)) != NULL)
            ns++;
        ERR_clear_error();
        ASSERT_EQ(ns, ROOM + 1);
        for (i = 0; i < CLIENTS && cl[i].done != 1; i++)
            ;
        ASSERT_LT(i, CLIENTS);
        ASSERT_EQ(SSL_write_ex(cl[i].ssl, "ping", 4, &n), 1);
        while (got < 0) {
            ASSERT_TRUE(tu_now_ms() < deadline);
            SSL_handle_events(l);
            SSL_handle_events(cl[i].ssl);
            for (k = 0; k < ns && got < 0; k++)
                if (SSL_read_ex(srv[k], buf, sizeof(buf), &n) == 1)
                    got = k;
            ERR_clear_error();
        }
        ASSERT_EQ(n, 4);
        ASSERT_MEM_EQ(buf, "ping", 4);
        for (k = 0; k < ns; k++)
            SSL_free(srv[k]);
    }

    client_free(&late);
    for (i = 0; i < CLIENTS; i++)
        client_free(&cl[i]);
    SSL_free(l);
    close(sfd);
    BIO_ADDR_free(addr);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* A listener without address validation, with no room for handshakes from unproven
 * addresses: every new client is sent a Retry, proves its address and connects. */
static int test_unvalidated_bound(void)
{
    SSL_CTX *sctx = qu_server_ctx(0), *cctx = qu_client_ctx();
    struct client cl[2];
    BIO_ADDR *addr = NULL;
    int sfd, connected, i;
    SSL *l;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    l = qu_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE, &sfd, &addr);
    ASSERT_NOT_NULL(l);
    ASSERT_EQ(OSSLQUIC_get_max_unvalidated_handshakes(l), 128);
    ASSERT_EQ(OSSLQUIC_set_max_unvalidated_handshakes(NULL, 1), 0);
    ASSERT_EQ(OSSLQUIC_get_max_unvalidated_handshakes(NULL), 0);
    ERR_clear_error();

    /* Room for one: the first client needs no Retry. */
    ASSERT_TRUE(client_new(&cl[0], cctx, addr));
    ASSERT_TRUE(run_clients(l, cl, 1, &connected));
    ASSERT_EQ(connected, 1);
    ASSERT_U64_EQ(engine_stats(l).retries, 0);

    /* No room: the next one is retried, and connects. */
    ASSERT_EQ(OSSLQUIC_set_max_unvalidated_handshakes(l, 0), 1);
    ASSERT_EQ(OSSLQUIC_get_max_unvalidated_handshakes(l), 0);
    ASSERT_TRUE(client_new(&cl[1], cctx, addr));
    ASSERT_TRUE(run_clients(l, &cl[1], 1, &connected));
    ASSERT_EQ(connected, 1);
    ASSERT_U64_EQ(engine_stats(l).retries, 1);
    ASSERT_U64_EQ(engine_stats(l).accepted, 2);

    for (i = 0; i < 2; i++)
        client_free(&cl[i]);
    SSL_free(l);
    close(sfd);
    BIO_ADDR_free(addr);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

enum { HS_LIMIT_MS = 300 };

/* A TCP pair whose client end has sent half a ClientHello (a record header announcing more
 * than follows) and then nothing; the server end blocking or not. */
static int half_hello_pair(int *srv, int *cli, int blocking)
{
    static const unsigned char half[] = {0x16, 0x03, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0xfc};

    ASSERT_TRUE(tl_tcp_pair(srv, cli));
    ASSERT_EQ(write(*cli, half, sizeof(half)), (ssize_t)sizeof(half));
    if (blocking)
        ASSERT_EQ(fcntl(*srv, F_SETFL, 0), 0);
    return 1;
}

static int failed_with_timeout(SSL *s, int r)
{
    ASSERT_TRUE(r <= 0);
    ASSERT_EQ(SSL_get_error(s, r), SSL_ERROR_SSL);
    ASSERT_ERROR_IS(ERR_LIB_SSL, 312); /* SSL_R_READ_TIMEOUT_EXPIRED */
    ERR_clear_error();
    return 1;
}

static int test_tls_slowloris(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_NONE);
    struct timeval tv;
    struct pollfd pfd;
    uint64_t t0;
    int srv, cli, inf = 0, r, rc, rs;
    SSL *s, *c;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_U64_EQ(OSSLQUIC_CTX_get_handshake_timeout(sctx), 30000);
    ASSERT_EQ(OSSLQUIC_CTX_set_handshake_timeout(NULL, 1), 0);
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_CTX_set_handshake_timeout(sctx, HS_LIMIT_MS), 1);
    ASSERT_U64_EQ(OSSLQUIC_CTX_get_handshake_timeout(sctx), HS_LIMIT_MS);

    /* Blocking: SSL_accept waits for the rest of the ClientHello until the bound, then
     * fails; a second call reports the same. */
    ASSERT_TRUE(half_hello_pair(&srv, &cli, 1));
    s = SSL_new(sctx);
    ASSERT_NOT_NULL(s);
    ASSERT_EQ(SSL_set_fd(s, srv), 1);
    t0 = tu_now_ms();
    r = SSL_accept(s);
    ASSERT_TRUE(tu_now_ms() - t0 >= HS_LIMIT_MS);
    ASSERT_TRUE(failed_with_timeout(s, r));
    ASSERT_TRUE(failed_with_timeout(s, SSL_accept(s)));
    SSL_free(s);
    close(srv);
    close(cli);

    /* Non-blocking: the event timeout says when; SSL_handle_events then fails it. */
    ASSERT_TRUE(half_hello_pair(&srv, &cli, 0));
    s = SSL_new(sctx);
    ASSERT_NOT_NULL(s);
    ASSERT_EQ(SSL_set_fd(s, srv), 1);
    r = SSL_accept(s);
    ASSERT_EQ(SSL_get_error(s, r), SSL_ERROR_WANT_READ);
    ASSERT_EQ(SSL_get_event_timeout(s, &tv, &inf), 1);
    ASSERT_EQ(inf, 0);
    ASSERT_TRUE(tv.tv_sec == 0 && tv.tv_usec <= HS_LIMIT_MS * 1000);
    pfd.fd = srv;
    pfd.events = POLLIN;
    pfd.revents = 0;
    ASSERT_EQ(poll(&pfd, 1, (int)(tv.tv_usec / 1000) + 1), 0); /* the client sends nothing */
    ASSERT_EQ(SSL_handle_events(s), 1);
    ASSERT_EQ(SSL_get_event_timeout(s, &tv, &inf), 1);
    ASSERT_EQ(inf, 1);
    ASSERT_TRUE(failed_with_timeout(s, SSL_accept(s)));
    SSL_free(s);
    close(srv);
    close(cli);

    /* A handshake that finishes in time has no deadline left. */
    ASSERT_TRUE(tl_tcp_pair(&srv, &cli));
    s = SSL_new(sctx);
    c = SSL_new(cctx);
    ASSERT_TRUE(s != NULL && c != NULL);
    ASSERT_EQ(SSL_set_fd(s, srv), 1);
    ASSERT_EQ(SSL_set_fd(c, cli), 1);
    ASSERT_TRUE(tl_handshake(c, s, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_EQ(SSL_get_event_timeout(s, &tv, &inf), 1);
    ASSERT_EQ(inf, 1);
    SSL_free(s);
    SSL_free(c);
    close(srv);
    close(cli);

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
    RUN(test_accept_queue_bound);
    RUN(test_unvalidated_bound);
    RUN(test_tls_slowloris);
#endif
    return tu_finish();
}
