/*
 * test_tls_quic_poll: one non-blocking server loop serves a TLS listener (SSL_new_listener
 * over a listening TCP socket) and a QUIC listener (over a UDP socket) with one SSL_poll
 * call per round, while TLS and QUIC clients (blocking, one thread each) talk to it at once.
 *
 * Each client sends a 4-byte big-endian length and that many bytes of its own pattern; the
 * server checks every byte, sends them back, then ends its side (TLS: close_notify; QUIC:
 * FIN on the stream) and waits for the client to close. Each client checks every byte of
 * the answer and the end. One TLS and one QUIC client talk through an SSL BIO (BIO_f_ssl).
 * The QUIC clients' verify callback must have been called with their own SSL. SSL_poll's result_count is checked against the items' revents every round.
 *
 * Also: a TLS listener over an accept BIO (SSL_listen binds it, its poll descriptor is the
 * listening socket), non-blocking accept on a blocking listening socket, IC from SSL_poll.
 */
#include "tlsutil.h"

#include <stdatomic.h>

enum { N_TLS = 4, N_QUIC = 4, N = N_TLS + N_QUIC, MAX_ITEMS = 2 + N };

static size_t req_len(int id)
{
    return 1 + (size_t)id * 37001;
}

/* ---- clients */

struct client {
    int id, quic, ok;
    int bio; /* talks through an SSL BIO (BIO_f_ssl over its SSL, BIO_NOCLOSE) */
    unsigned short port;       /* TLS */
    const BIO_ADDR *quic_addr; /* QUIC */
    SSL_CTX *ctx;
    char why[160];
    pthread_t th;
};

static atomic_int clients_done, quic_verify_calls, quic_verify_bad;

static int quic_verify_cb(int ok, X509_STORE_CTX *x)
{
    SSL *s = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());

    atomic_fetch_add(&quic_verify_calls, 1);
    if (!ok || s == NULL || SSL_is_connection(s) != 1)
        atomic_fetch_add(&quic_verify_bad, 1);
    return ok;
}

#define CFAIL(...)                                                                             \
    do {                                                                                       \
        snprintf(c->why, sizeof(c->why), __VA_ARGS__);                                         \
        goto out;                                                                              \
    } while (0)

static void *client_main(void *arg)
{
    struct client *c = arg;
    size_t len = req_len(c->id), got = 0, n, i;
    unsigned char *msg = malloc(4 + len), *in = malloc(len + 1);
    SSL *s = NULL;
    BIO *b = NULL;
    int fd = -1, r;

    if (msg == NULL || in == NULL)
        CFAIL("out of memory");
    msg[0] = (unsigned char)(len >> 24);
    msg[1] = (unsigned char)(len >> 16);
    msg[2] = (unsigned char)(len >> 8);
    msg[3] = (unsigned char)len;
    for (i = 0; i < len; i++)
        msg[4 + i] = tl_pat(i, (unsigned)c->id);
    if (c->quic) {
        fd = tu_udp_socket(AF_INET, NULL);
        if (fd < 0 || (s = qu_client(c->ctx, fd, c->quic_addr, 0)) == NULL)
            CFAIL("QUIC client setup failed");
    } else {
        if ((fd = tl_connect(c->port)) < 0)
            CFAIL("TCP connect failed");
        tl_timeouts(fd, 20);
        if ((s = SSL_new(c->ctx)) == NULL || SSL_set_fd(s, fd) != 1 ||
            SSL_set1_host(s, "localhost") != 1 || SSL_set_tlsext_host_name(s, "localhost") != 1)
            CFAIL("TLS client setup failed");
    }
    if (c->bio) {
        /* The same exchange through an SSL BIO: BIO_do_handshake, BIO_write, BIO_read, and 0
         * from BIO_read at the end (close_notify or FIN). */
        if ((b = BIO_new(BIO_f_ssl())) == NULL || BIO_set_ssl(b, s, BIO_NOCLOSE) != 1)
            CFAIL("SSL BIO setup failed");
        if ((r = (int)BIO_do_handshake(b)) != 1)
            CFAIL("BIO_do_handshake returned %d: SSL_get_error %d", r, SSL_get_error(s, r));
        if ((r = BIO_write(b, msg, (int)(4 + len))) != (int)(4 + len))
            CFAIL("BIO_write returned %d", r);
        while (got < len) {
            if ((r = BIO_read(b, in + got, (int)(len + 1 - got))) <= 0)
                CFAIL("BIO_read returned %d after %zu of %zu bytes", r, got, len);
            got += (size_t)r;
        }
        if ((r = BIO_read(b, in, 1)) != 0 || BIO_should_retry(b))
            CFAIL("no clean end after the answer: BIO_read returned %d", r);
    } else {
        if ((r = SSL_connect(s)) != 1)
            CFAIL("handshake failed: SSL_get_error %d", SSL_get_error(s, r));
        if (SSL_write_ex(s, msg, 4 + len, &n) != 1 || n != 4 + len)
            CFAIL("write failed");
        while (got < len) {
            if (SSL_read_ex(s, in + got, len + 1 - got, &n) != 1)
                CFAIL("read failed after %zu of %zu bytes: SSL_get_error %d", got, len,
                      SSL_get_error(s, 0));
            got += n;
        }
        r = SSL_read_ex(s, in, 1, &n);
        if (r != 0 || SSL_get_error(s, r) != SSL_ERROR_ZERO_RETURN)
            CFAIL("no clean end after the answer: r %d, SSL_get_error %d", r, SSL_get_error(s, r));
    }
    if (SSL_get_verify_result(s) != X509_V_OK)
        CFAIL("verify result %ld", SSL_get_verify_result(s));
    if (got != len || memcmp(in, msg + 4, len) != 0)
        CFAIL("answer differs (%zu bytes)", got);
    /* TLS: our close_notify completes the exchange (1); QUIC: a blocking shutdown returns 1
     * once the connection is closed. */
    if ((r = SSL_shutdown(s)) != 1)
        CFAIL("SSL_shutdown returned %d", r);
    c->ok = 1;
out:
    ERR_clear_error();
    BIO_free_all(b); /* BIO_NOCLOSE: the SSL stays */
    SSL_free(s);
    if (fd >= 0)
        close(fd);
    free(msg);
    free(in);
    atomic_fetch_add(&clients_done, 1);
    return NULL;
}

/* ---- the server */

enum { HDR, BODY, WRITE, SHUT, WAIT, DONE };

struct sconn {
    SSL *ssl;
    int quic, stage;
    unsigned char hdr[4];
    size_t hgot, len, got, sent;
    unsigned char *buf;
};

/* 1 if the last call's failure only means "not now". */
static int retry(SSL *s, int r)
{
    int e = SSL_get_error(s, r);

    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Advances a connection as far as it goes without blocking. 0 on a protocol failure. */
static int step(struct sconn *c)
{
    size_t n, i;
    int r;
    unsigned char tmp[256];

    for (;;) {
        switch (c->stage) {
        case HDR:
            r = SSL_read_ex(c->ssl, c->hdr + c->hgot, 4 - c->hgot, &n);
            if (r != 1)
                return retry(c->ssl, r);
            c->hgot += n;
            if (c->hgot == 4) {
                c->len = (size_t)c->hdr[0] << 24 | (size_t)c->hdr[1] << 16 |
                         (size_t)c->hdr[2] << 8 | c->hdr[3];
                ASSERT_TRUE(c->len >= 1 && c->len <= req_len(N));
                c->buf = malloc(c->len);
                ASSERT_NOT_NULL(c->buf);
                c->stage = BODY;
            }
            break;
        case BODY:
            r = SSL_read_ex(c->ssl, c->buf + c->got, c->len - c->got, &n);
            if (r != 1)
                return retry(c->ssl, r);
            c->got += n;
            if (c->got == c->len) {
                /* The client's id is the one whose length this is. */
                unsigned id = (unsigned)((c->len - 1) / 37001);

                ASSERT_EQ(req_len((int)id), c->len);
                for (i = 0; i < c->len; i++)
                    if (c->buf[i] != tl_pat(i, id))
                        ASSERT_EQ(c->buf[i], tl_pat(i, id));
                c->stage = WRITE;
            }
            break;
        case WRITE:
            r = SSL_write_ex(c->ssl, c->buf + c->sent, c->len - c->sent, &n);
            if (r != 1)
                return retry(c->ssl, r);
            c->sent += n;
            if (c->sent == c->len)
                c->stage = SHUT;
            break;
        case SHUT:
            if (c->quic) {
                ASSERT_EQ(SSL_stream_conclude(c->ssl, 0), 1);
            } else {
                r = SSL_shutdown(c->ssl);
                if (r < 0)
                    return retry(c->ssl, r);
                ASSERT_EQ(r, 0); /* ours went out; the client's comes later */
            }
            c->stage = WAIT;
            break;
        case WAIT:
            /* Until the client closes: TLS close_notify (ZERO_RETURN), QUIC connection
             * closed (an error). No more data may come. */
            r = SSL_read_ex(c->ssl, tmp, sizeof(tmp), &n);
            ASSERT_EQ(r, 0);
            if (retry(c->ssl, r))
                return 1;
            ERR_clear_error();
            c->stage = DONE;
            return 1;
        default:
            return 1;
        }
    }
}

static uint64_t wanted(const struct sconn *c)
{
    switch (c->stage) {
    case WRITE:
    case SHUT:
        return SSL_POLL_EVENT_W;
    default:
        return SSL_POLL_EVENT_R | (c->quic ? SSL_POLL_EVENT_ISB | SSL_POLL_EVENT_EC : 0);
    }
}

static int test_one_loop(void)
{
    SSL_CTX *tls_sctx = tl_server_ctx(), *quic_sctx = qu_server_ctx(0);
    SSL_CTX *tls_cctx = tl_client_ctx(SSL_VERIFY_PEER), *quic_cctx = qu_client_ctx();
    struct client cl[N];
    struct sconn sc[N];
    SSL_POLL_ITEM items[MAX_ITEMS];
    int map[MAX_ITEMS];
    SSL *tl, *ql;
    BIO_ADDR *qaddr = NULL;
    unsigned short tport = 0;
    int lfd, ufd, nconn = 0, n_tls = 0, n_quic = 0, i, done, rounds = 0;
    uint64_t dl = tu_now_ms() + 60000;

    ASSERT_NOT_NULL(tls_sctx);
    ASSERT_NOT_NULL(quic_sctx);
    ASSERT_NOT_NULL(tls_cctx);
    ASSERT_NOT_NULL(quic_cctx);
    SSL_CTX_set_verify(quic_cctx, SSL_VERIFY_PEER, quic_verify_cb);
    atomic_store(&clients_done, 0);
    atomic_store(&quic_verify_calls, 0);
    atomic_store(&quic_verify_bad, 0);
    memset(sc, 0, sizeof(sc));

    /* The TLS listener over a listening TCP socket, the QUIC listener over a UDP socket. */
    lfd = tl_listen(16, &tport);
    ASSERT_GE(lfd, 0);
    ASSERT_EQ(fcntl(lfd, F_SETFL, O_NONBLOCK), 0);
    tl = SSL_new_listener(tls_sctx, 0);
    ASSERT_NOT_NULL(tl);
    ASSERT_EQ(SSL_set_blocking_mode(tl, 0), 1);
    ASSERT_EQ(SSL_set_fd(tl, lfd), 1);
    ASSERT_EQ(SSL_listen(tl), 1);
    ufd = tu_udp_socket(AF_INET, &qaddr);
    ASSERT_GE(ufd, 0);
    ql = SSL_new_listener(quic_sctx, 0);
    ASSERT_NOT_NULL(ql);
    ASSERT_EQ(SSL_set_blocking_mode(ql, 0), 1);
    ASSERT_EQ(SSL_set_fd(ql, ufd), 1);
    ASSERT_EQ(SSL_listen(ql), 1);

    for (i = 0; i < N; i++) {
        memset(&cl[i], 0, sizeof(cl[i]));
        cl[i].id = i;
        cl[i].quic = i >= N_TLS;
        cl[i].bio = i == 1 || i == N_TLS + 1;
        cl[i].ctx = cl[i].quic ? quic_cctx : tls_cctx;
        cl[i].port = tport;
        cl[i].quic_addr = qaddr;
        ASSERT_EQ(pthread_create(&cl[i].th, NULL, client_main, &cl[i]), 0);
    }

    for (;;) {
        struct timeval tmo = {1, 0};
        size_t count = 0, nitems = 0, with_events = 0;

        ASSERT_TRUE(tu_now_ms() < dl);
        for (done = 0, i = 0; i < nconn; i++)
            done += sc[i].stage == DONE;
        if (done == N && atomic_load(&clients_done) == N)
            break;
        memset(items, 0, sizeof(items));
        items[nitems].desc = SSL_as_poll_descriptor(tl);
        items[nitems].events = SSL_POLL_EVENT_IC;
        map[nitems++] = -1;
        items[nitems].desc = SSL_as_poll_descriptor(ql);
        items[nitems].events = SSL_POLL_EVENT_IC;
        map[nitems++] = -2;
        for (i = 0; i < nconn; i++) {
            if (sc[i].stage == DONE)
                continue;
            items[nitems].desc = SSL_as_poll_descriptor(sc[i].ssl);
            items[nitems].events = wanted(&sc[i]);
            map[nitems++] = i;
        }
        ASSERT_EQ(SSL_poll(items, nitems, sizeof(items[0]), &tmo, 0, &count), 1);
        rounds++;
        for (i = 0; i < (int)nitems; i++)
            with_events += items[i].revents != 0;
        ASSERT_EQ(count, with_events);
        for (i = 0; i < (int)nitems; i++) {
            if (items[i].revents == 0)
                continue;
            ASSERT_U64_EQ(items[i].revents & ~items[i].events, 0);
            if (map[i] < 0) {
                SSL *l = map[i] == -1 ? tl : ql, *s;

                ASSERT_U64_EQ(items[i].revents, SSL_POLL_EVENT_IC);
                while ((s = SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK)) != NULL) {
                    ASSERT_LT(nconn, N);
                    ASSERT_EQ(SSL_get_blocking_mode(s), 0);
                    sc[nconn].ssl = s;
                    sc[nconn].quic = l == ql;
                    n_tls += l == tl;
                    n_quic += l == ql;
                    nconn++;
                }
                ERR_clear_error();
            } else {
                ASSERT_TRUE(step(&sc[map[i]]));
            }
        }
    }

    for (i = 0; i < N; i++) {
        pthread_join(cl[i].th, NULL);
        if (!cl[i].ok)
            fprintf(stderr, "    client %d (%s): %s\n", i, cl[i].quic ? "QUIC" : "TLS", cl[i].why);
    }
    for (i = 0; i < N; i++)
        ASSERT_TRUE(cl[i].ok);
    ASSERT_EQ(n_tls, N_TLS);
    ASSERT_EQ(n_quic, N_QUIC);
    for (i = 0; i < nconn; i++) {
        ASSERT_EQ(sc[i].sent, sc[i].len);
        ASSERT_EQ(sc[i].len, sc[i].got);
    }
    ASSERT_GE(atomic_load(&quic_verify_calls), N_QUIC);
    ASSERT_EQ(atomic_load(&quic_verify_bad), 0);
    printf("    %d rounds of SSL_poll\n", rounds);

    for (i = 0; i < nconn; i++) {
        SSL_free(sc[i].ssl);
        free(sc[i].buf);
    }
    SSL_free(tl);
    SSL_free(ql);
    close(lfd);
    close(ufd);
    BIO_ADDR_free(qaddr);
    SSL_CTX_free(tls_sctx);
    SSL_CTX_free(quic_sctx);
    SSL_CTX_free(tls_cctx);
    SSL_CTX_free(quic_cctx);
    return 1;
}

/* A TLS listener over an accept BIO: SSL_listen binds and listens (BIO_get_accept_port
 * tells the port); a non-blocking accept on its (blocking) socket returns NULL at once while
 * nobody waits; SSL_poll reports IC once a client connects; the connection works. */
static int test_accept_bio_listener(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_PEER);
    BIO *a = BIO_new_accept("127.0.0.1:0");
    SSL *l, *s, *c;
    SSL_POLL_ITEM it;
    BIO_POLL_DESCRIPTOR d;
    struct timeval zero = {0, 0}, tmo = {10, 0};
    size_t n;
    int port, cfd, rc, rs, r;
    char buf[8];
    uint64_t dl;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_NOT_NULL(a);
    l = SSL_new_listener(sctx, 0);
    ASSERT_NOT_NULL(l);
    SSL_set_bio(l, a, a);
    ASSERT_EQ(SSL_listen(l), 1);
    ASSERT_NOT_NULL(BIO_get_accept_port(a));
    port = atoi(BIO_get_accept_port(a));
    ASSERT_GT(port, 0);
    ASSERT_EQ(SSL_get_blocking_mode(l), 1);
    ASSERT_EQ(SSL_get_rpoll_descriptor(l, &d), 1);
    ASSERT_EQ(d.type, BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD);
    ASSERT_EQ(d.value.fd, BIO_get_fd(a, NULL));
    ASSERT_NULL(SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK));
    ASSERT_NO_ERROR();

    memset(&it, 0, sizeof(it));
    it.desc = SSL_as_poll_descriptor(l);
    it.events = SSL_POLL_EVENT_IC;
    ASSERT_EQ(SSL_poll(&it, 1, sizeof(it), &zero, 0, &n), 1);
    ASSERT_EQ(n, 0);
    cfd = tl_connect((unsigned short)port);
    ASSERT_GE(cfd, 0);
    ASSERT_EQ(fcntl(cfd, F_SETFL, O_NONBLOCK), 0);
    ASSERT_EQ(SSL_poll(&it, 1, sizeof(it), &tmo, 0, &n), 1);
    ASSERT_EQ(n, 1);
    ASSERT_U64_EQ(it.revents, SSL_POLL_EVENT_IC);
    s = SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK);
    ASSERT_NOT_NULL(s);
    ASSERT_PTR_EQ(SSL_get0_listener(s), l);
    ASSERT_EQ(SSL_set_blocking_mode(s, 0), 1);
    c = SSL_new(cctx);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(SSL_set_fd(c, cfd), 1);
    ASSERT_EQ(SSL_set1_host(c, "localhost"), 1);
    ASSERT_TRUE(tl_handshake(c, s, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_EQ(SSL_write_ex(c, "ping", 4, &n), 1);
    dl = tu_now_ms() + 10000;
    while ((r = SSL_read_ex(s, buf, sizeof(buf), &n)) != 1) {
        ASSERT_EQ(SSL_get_error(s, r), SSL_ERROR_WANT_READ);
        ASSERT_TRUE(tu_now_ms() < dl);
    }
    ASSERT_EQ(n, 4);
    ASSERT_MEM_EQ(buf, "ping", 4);
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    SSL_free(l); /* frees the accept BIO and its socket */
    close(cfd);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
    RUN(test_one_loop);
    RUN(test_accept_bio_listener);
    return tu_finish();
}
