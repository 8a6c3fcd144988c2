/*
 * test_poll: SSL_poll over non-blocking QUIC objects (SSL_set_blocking_mode(x, 0)), over a
 * datagram pair and over UDP loopback.
 *
 *  - SSL_POLL_ITEM's layout and SSL_as_poll_descriptor; items at stride sizeof(SSL_POLL_ITEM)
 *    and embedded in a larger struct (bytes around them untouched);
 *  - every event bit a test can cause, each revents and result_count asserted exactly:
 *    listener IC; connection OSB/OSU, ISB/ISU, EC, ECD; stream R (data and FIN), W, ER, EW;
 *    F for an object that cannot be waited on (a blocking poll over a non-pollable pair);
 *  - timeouts: {0,0} returns at once, a finite timeout that expires returns 1 with nothing,
 *    NULL waits until another thread causes the event;
 *  - SSL_POLL_FLAG_NO_HANDLE_EVENTS: data sitting in the socket is not seen until events are
 *    handled (by SSL_handle_events, or by a blocking poll past its first readout);
 *  - 100 idle connections and one active one: only the active one is reported;
 *  - bad items: not an SSL object, a non-QUIC SSL, no items at all.
 *
 * The expected values are what OpenSSL 3.5 does (tests/c/check-openssl.sh runs this file
 * against it). Environment: TEST_SCALE (fraction, default 1) scales the 100 idle
 * connections down for valgrind.
 */
#include "quicutil.h"

#include <stddef.h>
#include <sys/ioctl.h>

#if HAVE_OSSLQUIC
/* TLS over TCP is not in osslquic yet (issue 5): use TLS_client_method when it appears. */
extern const SSL_METHOD *TLS_client_method(void) __attribute__((weak));
#endif
/* (Through a variable, so that the test for a missing weak symbol is not folded away.) */
static const SSL_METHOD *(*volatile tls_client_method)(void) = TLS_client_method;

#define EV_STREAM (SSL_POLL_EVENT_R | SSL_POLL_EVENT_W | SSL_POLL_EVENT_ER | SSL_POLL_EVENT_EW)
#define EV_CONN                                                                                \
    (SSL_POLL_EVENT_EC | SSL_POLL_EVENT_ECD | SSL_POLL_EVENT_ISB | SSL_POLL_EVENT_ISU |         \
     SSL_POLL_EVENT_OSB | SSL_POLL_EVENT_OSU)
#define EV_ALL                                                                                 \
    (SSL_POLL_EVENT_F | SSL_POLL_EVENT_EL | SSL_POLL_EVENT_IC | EV_STREAM | EV_CONN)
#define OS (SSL_POLL_EVENT_OSB | SSL_POLL_EVENT_OSU)
#define R_ SSL_POLL_EVENT_R
#define W_ SSL_POLL_EVENT_W

/* What poll1() returns when SSL_poll itself fails or its count disagrees with revents. */
#define POLL_FAILED (1ULL << 63)
#define POLL_BADCOUNT (1ULL << 62)

struct peers {
    SSL_CTX *sctx, *cctx;
    SSL *listener, *client, *server;
    BIO_ADDR *srv_addr;
    int sfd, cfd; /* -1 over a pair */
};

/* SSL_poll of one item with a zero timeout: its revents (result_count checked against it). */
static uint64_t poll1(SSL *s, uint64_t events, uint64_t flags)
{
    SSL_POLL_ITEM it;
    struct timeval zero = {0, 0};
    size_t n = 99;

    memset(&it, 0, sizeof(it));
    it.desc = SSL_as_poll_descriptor(s);
    it.events = events;
    it.revents = 0xdead;
    if (SSL_poll(&it, 1, sizeof(it), &zero, flags, &n) != 1)
        return POLL_FAILED;
    if (n != (it.revents != 0 ? 1u : 0u))
        return POLL_BADCOUNT;
    return it.revents;
}

static void pump(struct peers *p)
{
    SSL_handle_events(p->listener);
    SSL_handle_events(p->client);
}

/* Polls s (zero timeout, events `ev`) while running both sides, until revents is `want`
 * (10 s at most), then asserts it. */
#define POLL_UNTIL(p, s, ev, want)                                                             \
    do {                                                                                       \
        uint64_t dl_ = tu_now_ms() + 10000, got_;                                              \
        while ((got_ = poll1((s), (ev), 0)) != (uint64_t)(want) && tu_now_ms() < dl_)          \
            pump(p);                                                                           \
        ASSERT_U64_EQ(got_, (want));                                                           \
    } while (0)

#define ASSERT_REVENTS(s, ev, want) ASSERT_U64_EQ(poll1((s), (ev), 0), (want))

#define PUMP_UNTIL(p, cond)                                                                    \
    do {                                                                                       \
        uint64_t dl_ = tu_now_ms() + 10000;                                                    \
        while (!(cond)) {                                                                      \
            ASSERT_TRUE(tu_now_ms() < dl_);                                                    \
            pump(p);                                                                           \
        }                                                                                      \
    } while (0)

/* A listener and a client, not yet connected, non-blocking, no default streams. */
static int peers_new(struct peers *p, int udp)
{
    memset(p, 0, sizeof(*p));
    p->sfd = p->cfd = -1;
    p->sctx = qu_server_ctx(0);
    p->cctx = qu_client_ctx();
    ASSERT_NOT_NULL(p->sctx);
    ASSERT_NOT_NULL(p->cctx);
    p->listener = SSL_new_listener(p->sctx, SSL_LISTENER_FLAG_NO_VALIDATE);
    ASSERT_NOT_NULL(p->listener);
    if (udp) {
        p->sfd = tu_udp_socket(AF_INET, &p->srv_addr);
        p->cfd = tu_udp_socket(AF_INET, NULL);
        ASSERT_GE(p->sfd, 0);
        ASSERT_GE(p->cfd, 0);
        ASSERT_EQ(SSL_set_fd(p->listener, p->sfd), 1);
        p->client = qu_client(p->cctx, p->cfd, p->srv_addr, 0);
        ASSERT_NOT_NULL(p->client);
    } else {
        BIO *a = NULL, *b = NULL;

        ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 1 << 20, &b, 1 << 20), 1);
        SSL_set_bio(p->listener, a, a);
        p->client = SSL_new(p->cctx);
        ASSERT_NOT_NULL(p->client);
        SSL_set_bio(p->client, b, b);
        ASSERT_EQ(SSL_set1_host(p->client, "localhost"), 1);
        ASSERT_EQ(SSL_set_tlsext_host_name(p->client, "localhost"), 1);
        ASSERT_EQ(SSL_set_alpn_protos(p->client, qu_alpn, sizeof(qu_alpn)), 0);
    }
    ASSERT_EQ(SSL_set_blocking_mode(p->listener, 0), 1);
    ASSERT_EQ(SSL_set_blocking_mode(p->client, 0), 1);
    ASSERT_EQ(SSL_set_default_stream_mode(p->client, SSL_DEFAULT_STREAM_MODE_NONE), 1);
    ASSERT_EQ(SSL_listen(p->listener), 1);
    return 1;
}

/* Sets up the accepted connection like the client: non-blocking, no default stream. */
static int server_setup(SSL *server)
{
    ASSERT_EQ(SSL_set_blocking_mode(server, 0), 1);
    ASSERT_EQ(SSL_set_default_stream_mode(server, SSL_DEFAULT_STREAM_MODE_NONE), 1);
    ASSERT_EQ(SSL_set_incoming_stream_policy(server, SSL_INCOMING_STREAM_POLICY_ACCEPT, 0), 1);
    return 1;
}

/* Connects, accepts and completes the handshake on both sides. */
static int peers_connect(struct peers *p)
{
    int rc = 0, rs = 0;

    ERR_clear_error();
    PUMP_UNTIL(p, (p->server = SSL_accept_connection(p->listener, SSL_ACCEPT_CONNECTION_NO_BLOCK)) != NULL ||
                      ((rc = SSL_connect(p->client)) != 1 && SSL_get_error(p->client, rc) != SSL_ERROR_WANT_READ));
    ASSERT_NOT_NULL(p->server);
    ASSERT_TRUE(server_setup(p->server));
    PUMP_UNTIL(p, ((rc = SSL_connect(p->client)) == 1 || SSL_get_error(p->client, rc) != SSL_ERROR_WANT_READ) &&
                      ((rs = SSL_accept(p->server)) == 1 || SSL_get_error(p->server, rs) != SSL_ERROR_WANT_READ));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ERR_clear_error();
    return 1;
}

/* Runs both sides until neither has a timer due within 500 ms (handshake leftovers done). */
static int peers_quiet(struct peers *p)
{
    uint64_t dl = tu_now_ms() + 5000;

    for (;;) {
        struct timeval tl, tc;
        int il = 1, ic = 1;

        pump(p);
        ASSERT_EQ(SSL_get_event_timeout(p->listener, &tl, &il), 1);
        ASSERT_EQ(SSL_get_event_timeout(p->client, &tc, &ic), 1);
        if ((il || tl.tv_sec > 0 || tl.tv_usec >= 500000) &&
            (ic || tc.tv_sec > 0 || tc.tv_usec >= 500000))
            return 1;
        ASSERT_TRUE(tu_now_ms() < dl);
        if (p->cfd >= 0)
            (void)tu_wait_readable(p->cfd, 1);
    }
}

static void peers_free(struct peers *p)
{
    SSL_free(p->server);
    SSL_free(p->client);
    SSL_free(p->listener);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    BIO_ADDR_free(p->srv_addr);
    if (p->sfd >= 0)
        close(p->sfd);
    if (p->cfd >= 0)
        close(p->cfd);
}

/* Reads exactly len bytes (non-blocking, both sides pumped) and compares them. */
static int read_exact(struct peers *p, SSL *s, const char *want, size_t len)
{
    char buf[2048];
    size_t got = 0, n;
    uint64_t dl = tu_now_ms() + 10000;

    ASSERT_LE(len, sizeof(buf));
    while (got < len) {
        ASSERT_TRUE(tu_now_ms() < dl);
        if (SSL_read_ex(s, buf + got, len - got, &n) == 1)
            got += n;
        else
            pump(p);
    }
    ASSERT_MEM_EQ(buf, want, len);
    ERR_clear_error();
    return 1;
}

/* The next read reports FIN. */
static int read_fin(SSL *s)
{
    char c;
    size_t n;
    int r = SSL_read_ex(s, &c, 1, &n);

    ASSERT_EQ(r, 0);
    ASSERT_EQ(SSL_get_error(s, r), SSL_ERROR_ZERO_RETURN);
    ERR_clear_error();
    return 1;
}

/* ---- layout ----------------------------------------------------------------------- */

static int test_item_layout(void)
{
    SSL_CTX *cctx = qu_client_ctx();
    SSL *s = SSL_new(cctx);
    BIO_POLL_DESCRIPTOR d;

    ASSERT_NOT_NULL(s);
    ASSERT_EQ(sizeof(SSL_POLL_ITEM), 32);
    ASSERT_EQ(offsetof(SSL_POLL_ITEM, desc), 0);
    ASSERT_EQ(offsetof(SSL_POLL_ITEM, events), 16);
    ASSERT_EQ(offsetof(SSL_POLL_ITEM, revents), 24);
    d = SSL_as_poll_descriptor(s);
    ASSERT_EQ(d.type, BIO_POLL_DESCRIPTOR_TYPE_SSL);
    ASSERT_PTR_EQ(d.value.ssl, s);
    ASSERT_EQ(SSL_POLL_EVENT_F, 1);
    ASSERT_EQ(SSL_POLL_EVENT_EL, 2);
    ASSERT_EQ(SSL_POLL_EVENT_EC, 4);
    ASSERT_EQ(SSL_POLL_EVENT_ECD, 8);
    ASSERT_EQ(SSL_POLL_EVENT_ER, 0x10);
    ASSERT_EQ(SSL_POLL_EVENT_EW, 0x20);
    ASSERT_EQ(SSL_POLL_EVENT_R, 0x40);
    ASSERT_EQ(SSL_POLL_EVENT_W, 0x80);
    ASSERT_EQ(SSL_POLL_EVENT_IC, 0x100);
    ASSERT_EQ(SSL_POLL_EVENT_ISB, 0x200);
    ASSERT_EQ(SSL_POLL_EVENT_ISU, 0x400);
    ASSERT_EQ(SSL_POLL_EVENT_OSB, 0x800);
    ASSERT_EQ(SSL_POLL_EVENT_OSU, 0x1000);
    ASSERT_EQ(SSL_POLL_FLAG_NO_HANDLE_EVENTS, 1);
    SSL_free(s);
    SSL_CTX_free(cctx);
    return 1;
}

/* ---- every event bit -------------------------------------------------------------- */

static int events_scenario(int udp)
{
    struct peers p;
    SSL *cs = NULL, *ss = NULL, *su = NULL, *cu = NULL, *cr = NULL, *sr = NULL;
    size_t n;
    uint64_t code = 0;

    ASSERT_TRUE(peers_new(&p, udp));

    /* Before the client starts: the listener has nothing; a connection that has not
     * started reports only W (OpenSSL: "we can only try to write"). */
    ASSERT_REVENTS(p.listener, EV_ALL, 0);
    ASSERT_REVENTS(p.client, EV_ALL, W_);
    ASSERT_REVENTS(p.client, EV_CONN, 0);

    /* IC: the client's first flight queues a connection on the listener. */
    ASSERT_EQ(SSL_connect(p.client), -1);
    ASSERT_EQ(SSL_get_error(p.client, -1), SSL_ERROR_WANT_READ);
    POLL_UNTIL(&p, p.listener, EV_ALL, SSL_POLL_EVENT_IC);
    ASSERT_REVENTS(p.listener, SSL_POLL_EVENT_EL, 0); /* only what was asked for */
    ASSERT_TRUE(peers_connect(&p));
    ASSERT_REVENTS(p.listener, EV_ALL, 0); /* accepted: the queue is empty */

    /* OSB|OSU: both sides may open streams; no default stream, so no R/W on connections. */
    POLL_UNTIL(&p, p.client, EV_ALL, OS);
    POLL_UNTIL(&p, p.server, EV_ALL, OS);
    ASSERT_REVENTS(p.client, SSL_POLL_EVENT_OSU, SSL_POLL_EVENT_OSU);
    ASSERT_REVENTS(p.client, R_ | W_, 0);

    /* A new local bidi stream: W only. */
    cs = SSL_new_stream(p.client, 0);
    ASSERT_NOT_NULL(cs);
    ASSERT_REVENTS(cs, EV_ALL, W_);
    ASSERT_EQ(SSL_write_ex(cs, "hello", 5, &n), 1);

    /* ISB on the server connection until the stream is accepted. */
    POLL_UNTIL(&p, p.server, EV_ALL, OS | SSL_POLL_EVENT_ISB);
    ASSERT_REVENTS(p.server, SSL_POLL_EVENT_ISU, 0);
    ss = SSL_accept_stream(p.server, SSL_ACCEPT_STREAM_NO_BLOCK);
    ASSERT_NOT_NULL(ss);
    ASSERT_REVENTS(p.server, EV_ALL, OS);

    /* R: data waiting; W: the peer's stream is bidi. */
    POLL_UNTIL(&p, ss, EV_ALL, R_ | W_);
    ASSERT_REVENTS(ss, SSL_POLL_EVENT_ER | SSL_POLL_EVENT_EW, 0);
    ASSERT_REVENTS(ss, R_, R_);
    ASSERT_TRUE(read_exact(&p, ss, "hello", 5));
    ASSERT_REVENTS(ss, EV_ALL, W_);

    /* FIN: the concluded stream loses W; the peer's FIN makes R, which stays after the FIN
     * has been read (OpenSSL reports R for a stream whose data is all read, FIN included). */
    ASSERT_EQ(SSL_stream_conclude(cs, 0), 1);
    ASSERT_REVENTS(cs, EV_ALL, 0);
    POLL_UNTIL(&p, ss, EV_ALL, R_ | W_);
    ASSERT_TRUE(read_fin(ss));
    ASSERT_REVENTS(ss, EV_ALL, R_ | W_);
    ASSERT_EQ(SSL_write_ex2(ss, "world", 5, SSL_WRITE_FLAG_CONCLUDE, &n), 1);
    ASSERT_REVENTS(ss, EV_ALL, R_);
    POLL_UNTIL(&p, cs, EV_ALL, R_);
    ASSERT_TRUE(read_exact(&p, cs, "world", 5));
    ASSERT_TRUE(read_fin(cs));
    ASSERT_REVENTS(cs, EV_ALL, R_);

    /* ISU on the client for a server uni stream; the receiving end has R, never W. */
    su = SSL_new_stream(p.server, SSL_STREAM_FLAG_UNI);
    ASSERT_NOT_NULL(su);
    ASSERT_REVENTS(su, EV_ALL, W_);
    ASSERT_EQ(SSL_write_ex(su, "z", 1, &n), 1);
    POLL_UNTIL(&p, p.client, EV_ALL, OS | SSL_POLL_EVENT_ISU);
    cu = SSL_accept_stream(p.client, SSL_ACCEPT_STREAM_NO_BLOCK);
    ASSERT_NOT_NULL(cu);
    ASSERT_REVENTS(p.client, EV_ALL, OS);
    POLL_UNTIL(&p, cu, EV_ALL, R_);
    ASSERT_TRUE(read_exact(&p, cu, "z", 1));
    ASSERT_REVENTS(cu, EV_ALL, 0);

    /* EW: freeing the receiving end before FIN sends STOP_SENDING. */
    SSL_free(cu);
    cu = NULL;
    POLL_UNTIL(&p, su, EV_ALL, SSL_POLL_EVENT_EW);

    /* ER: the peer resets its sending part. */
    cr = SSL_new_stream(p.client, 0);
    ASSERT_NOT_NULL(cr);
    ASSERT_EQ(SSL_write_ex(cr, "x", 1, &n), 1);
    POLL_UNTIL(&p, p.server, SSL_POLL_EVENT_ISB, SSL_POLL_EVENT_ISB);
    sr = SSL_accept_stream(p.server, SSL_ACCEPT_STREAM_NO_BLOCK);
    ASSERT_NOT_NULL(sr);
    POLL_UNTIL(&p, sr, EV_ALL, R_ | W_);
    {
        SSL_STREAM_RESET_ARGS a = {9};

        ASSERT_EQ(SSL_stream_reset(cr, &a, sizeof(a)), 1);
    }
    ASSERT_REVENTS(cr, EV_ALL, 0);
    POLL_UNTIL(&p, sr, EV_ALL, SSL_POLL_EVENT_ER | W_);
    ASSERT_EQ(SSL_get_stream_read_state(sr), SSL_STREAM_STATE_RESET_REMOTE);
    ASSERT_EQ(SSL_get_stream_read_error_code(sr, &code), 1);
    ASSERT_U64_EQ(code, 9);

    /* EC while terminating, EC|ECD once terminated; no stream can be opened or written. */
    ASSERT_EQ(SSL_shutdown(p.client), 0);
    ASSERT_REVENTS(p.client, EV_ALL, SSL_POLL_EVENT_EC);
    POLL_UNTIL(&p, p.server, EV_ALL, SSL_POLL_EVENT_EC);
    ASSERT_REVENTS(sr, W_, 0);
    POLL_UNTIL(&p, p.server, EV_ALL, SSL_POLL_EVENT_EC | SSL_POLL_EVENT_ECD);
    POLL_UNTIL(&p, p.client, EV_ALL, SSL_POLL_EVENT_EC | SSL_POLL_EVENT_ECD);
    ASSERT_REVENTS(p.listener, EV_ALL, 0);
    ERR_clear_error();

    SSL_free(cs);
    SSL_free(ss);
    SSL_free(su);
    SSL_free(cr);
    SSL_free(sr);
    peers_free(&p);
    return 1;
}

static int test_events_pair(void)
{
    return events_scenario(0);
}

static int test_events_udp(void)
{
    return events_scenario(1);
}

/* ---- F: waiting needs socket poll descriptors -------------------------------------- */

static int test_fail_unpollable(void)
{
    struct peers p;
    SSL_POLL_ITEM it[2];
    struct timeval tmo = {0, 100000};
    size_t n = 99;
    SSL *cs;

    ASSERT_TRUE(peers_new(&p, 0));
    ASSERT_TRUE(peers_connect(&p));
    cs = SSL_new_stream(p.client, 0);
    ASSERT_NOT_NULL(cs);
    /* Nothing ready and a timeout to wait for: the pair has no fd to wait on, so the first
     * item fails (F), the rest are zeroed, and SSL_poll returns 0. */
    memset(it, 0, sizeof(it));
    it[0].desc = SSL_as_poll_descriptor(p.client);
    it[0].events = SSL_POLL_EVENT_ISB;
    it[1].desc = SSL_as_poll_descriptor(cs);
    it[1].events = SSL_POLL_EVENT_R;
    it[1].revents = 0xdead;
    ERR_clear_error();
    ASSERT_EQ(SSL_poll(it, 2, sizeof(it[0]), &tmo, 0, &n), 0);
    ASSERT_U64_EQ(it[0].revents, SSL_POLL_EVENT_F);
    ASSERT_U64_EQ(it[1].revents, 0);
    ASSERT_EQ(n, 1);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_POLL_REQUEST_NOT_SUPPORTED);
    ASSERT_NO_ERROR();
    /* With something ready there is no wait, and no failure. */
    it[1].events = SSL_POLL_EVENT_W;
    ASSERT_EQ(SSL_poll(it, 2, sizeof(it[0]), &tmo, 0, &n), 1);
    ASSERT_U64_EQ(it[0].revents, 0);
    ASSERT_U64_EQ(it[1].revents, SSL_POLL_EVENT_W);
    ASSERT_EQ(n, 1);
    ASSERT_NO_ERROR();
    SSL_free(cs);
    peers_free(&p);
    return 1;
}

/* ---- stride ----------------------------------------------------------------------- */

struct big_item {
    uint64_t before;
    SSL_POLL_ITEM item;
    uint64_t tag;
    unsigned char pad[24];
};

static int test_stride(void)
{
    enum { N = 5 };
    struct peers p;
    struct big_item big[N];
    SSL_POLL_ITEM flat[N];
    struct timeval zero = {0, 0};
    uint64_t want[N] = {SSL_POLL_EVENT_IC, OS, OS, W_, R_ | W_};
    size_t n = 99, i;
    SSL *cs, *ss, *extra, *objs[N];
    int xfd;

    ASSERT_TRUE(peers_new(&p, 1));
    ASSERT_TRUE(peers_connect(&p));
    cs = SSL_new_stream(p.client, 0);
    ASSERT_NOT_NULL(cs);
    ASSERT_EQ(SSL_write_ex(cs, "abc", 3, &n), 1);
    PUMP_UNTIL(&p, (ss = SSL_accept_stream(p.server, SSL_ACCEPT_STREAM_NO_BLOCK)) != NULL);
    ERR_clear_error();
    POLL_UNTIL(&p, ss, R_, R_);
    /* A second client starts connecting and is not accepted: IC on the listener. */
    xfd = tu_udp_socket(AF_INET, NULL);
    ASSERT_GE(xfd, 0);
    extra = qu_client(p.cctx, xfd, p.srv_addr, 0);
    ASSERT_NOT_NULL(extra);
    ASSERT_EQ(SSL_set_blocking_mode(extra, 0), 1);
    ASSERT_EQ(SSL_connect(extra), -1);
    ERR_clear_error();
    POLL_UNTIL(&p, p.listener, EV_ALL, SSL_POLL_EVENT_IC);

    objs[0] = p.listener;
    objs[1] = p.client;
    objs[2] = p.server;
    objs[3] = cs;
    objs[4] = ss;
    memset(big, 0xA5, sizeof(big));
    for (i = 0; i < N; i++) {
        big[i].before = 0x1111111111111111ULL * (i + 1);
        big[i].tag = 0xfeedface00000000ULL + i;
        big[i].item.desc = SSL_as_poll_descriptor(objs[i]);
        big[i].item.events = EV_ALL;
        big[i].item.revents = 0xdead;
        flat[i] = big[i].item;
    }
    ASSERT_EQ(SSL_poll(&big[0].item, N, sizeof(struct big_item), &zero, 0, &n), 1);
    ASSERT_EQ(n, N);
    for (i = 0; i < N; i++) {
        size_t k;

        ASSERT_U64_EQ(big[i].item.revents, want[i]);
        ASSERT_U64_EQ(big[i].item.events, EV_ALL);
        ASSERT_PTR_EQ(big[i].item.desc.value.ssl, objs[i]);
        ASSERT_U64_EQ(big[i].before, 0x1111111111111111ULL * (i + 1));
        ASSERT_U64_EQ(big[i].tag, 0xfeedface00000000ULL + i);
        for (k = 0; k < sizeof(big[i].pad); k++)
            ASSERT_EQ(big[i].pad[k], 0xA5);
    }
    /* The same items as a plain array. */
    n = 99;
    ASSERT_EQ(SSL_poll(flat, N, sizeof(SSL_POLL_ITEM), &zero, 0, &n), 1);
    ASSERT_EQ(n, N);
    for (i = 0; i < N; i++)
        ASSERT_U64_EQ(flat[i].revents, want[i]);
    SSL_free(extra);
    close(xfd);
    SSL_free(cs);
    SSL_free(ss);
    peers_free(&p);
    return 1;
}

/* ---- timeouts --------------------------------------------------------------------- */

struct late_writer {
    SSL *s;
    int ok;
};

static void *late_writer_main(void *arg)
{
    struct late_writer *w = arg;
    struct timespec d = {0, 100 * 1000 * 1000};
    size_t n;

    /* Not synchronisation: the poll below returns whenever the data arrives; the pause only
     * makes it likely that the poll is already waiting when it does. */
    while (nanosleep(&d, &d) != 0 && errno == EINTR)
        ;
    w->ok = SSL_write_ex(w->s, "ping", 4, &n) == 1 && n == 4;
    ERR_clear_error();
    return NULL;
}

static int test_timeouts(void)
{
    struct peers p;
    SSL_POLL_ITEM it;
    struct timeval zero = {0, 0}, tmo = {0, 200000};
    size_t n = 99;
    uint64_t t0, el;
    SSL *cs, *ss;
    pthread_t t;
    struct late_writer w;

    ASSERT_TRUE(peers_new(&p, 1));
    ASSERT_TRUE(peers_connect(&p));
    cs = SSL_new_stream(p.client, 0);
    ASSERT_NOT_NULL(cs);
    ASSERT_EQ(SSL_write_ex(cs, "q", 1, &n), 1);
    PUMP_UNTIL(&p, (ss = SSL_accept_stream(p.server, SSL_ACCEPT_STREAM_NO_BLOCK)) != NULL);
    ERR_clear_error();
    ASSERT_TRUE(read_exact(&p, ss, "q", 1));
    memset(&it, 0, sizeof(it));
    it.desc = SSL_as_poll_descriptor(cs);
    it.events = SSL_POLL_EVENT_R;

    /* Zero: at once, nothing. */
    it.revents = 0xdead;
    t0 = qu_now_us();
    ASSERT_EQ(SSL_poll(&it, 1, sizeof(it), &zero, 0, &n), 1);
    el = qu_now_us() - t0;
    ASSERT_EQ(n, 0);
    ASSERT_U64_EQ(it.revents, 0);
    ASSERT_LT(el, 1000000); /* loose: "at once" */

    /* 200 ms that expire: 1, nothing, after at least 200 ms. */
    it.revents = 0xdead;
    n = 99;
    t0 = qu_now_us();
    ASSERT_EQ(SSL_poll(&it, 1, sizeof(it), &tmo, 0, &n), 1);
    el = qu_now_us() - t0;
    ASSERT_EQ(n, 0);
    ASSERT_U64_EQ(it.revents, 0);
    ASSERT_GE(el, 199000); /* (1 ms for the two clocks' granularity) */
    ASSERT_LT(el, 5000000);

    /* NULL: waits until another thread makes the peer write. */
    w.s = ss;
    w.ok = 0;
    ASSERT_EQ(pthread_create(&t, NULL, late_writer_main, &w), 0);
    it.revents = 0xdead;
    n = 99;
    ASSERT_EQ(SSL_poll(&it, 1, sizeof(it), NULL, 0, &n), 1);
    pthread_join(t, NULL);
    ASSERT_TRUE(w.ok);
    ASSERT_EQ(n, 1);
    ASSERT_U64_EQ(it.revents, SSL_POLL_EVENT_R);
    ASSERT_TRUE(read_exact(&p, cs, "ping", 4));
    SSL_free(cs);
    SSL_free(ss);
    peers_free(&p);
    return 1;
}

/* ---- SSL_POLL_FLAG_NO_HANDLE_EVENTS ----------------------------------------------- */

/* Waits until the client's socket holds a datagram of at least `min` bytes. */
static int wait_datagram(int fd, int min)
{
    int avail = 0;

    ASSERT_TRUE(tu_wait_readable(fd, 5000));
    ASSERT_EQ(ioctl(fd, FIONREAD, &avail), 0); /* UDP: the size of the next datagram */
    ASSERT_GE(avail, min);
    return 1;
}

static int test_no_handle_events(void)
{
    static char data[800];
    struct peers p;
    SSL_POLL_ITEM it;
    struct timeval zero = {0, 0}, tmo = {5, 0};
    size_t n = 99, i;
    SSL *cs, *ss;

    for (i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);
    ASSERT_TRUE(peers_new(&p, 1));
    ASSERT_TRUE(peers_connect(&p));
    cs = SSL_new_stream(p.client, 0);
    ASSERT_NOT_NULL(cs);
    ASSERT_EQ(SSL_write_ex(cs, "q", 1, &n), 1);
    PUMP_UNTIL(&p, (ss = SSL_accept_stream(p.server, SSL_ACCEPT_STREAM_NO_BLOCK)) != NULL);
    ERR_clear_error();
    ASSERT_TRUE(read_exact(&p, ss, "q", 1));
    ASSERT_TRUE(peers_quiet(&p));
    memset(&it, 0, sizeof(it));
    it.desc = SSL_as_poll_descriptor(cs);
    it.events = SSL_POLL_EVENT_R;

    /* The server's data sits in the client's socket: without event handling, not readable. */
    ASSERT_EQ(SSL_write_ex(ss, data, 600, &n), 1);
    ASSERT_TRUE(wait_datagram(p.cfd, 600));
    it.revents = 0xdead;
    ASSERT_EQ(SSL_poll(&it, 1, sizeof(it), &zero, SSL_POLL_FLAG_NO_HANDLE_EVENTS, &n), 1);
    ASSERT_EQ(n, 0);
    ASSERT_U64_EQ(it.revents, 0);
    ASSERT_TRUE(wait_datagram(p.cfd, 600)); /* still there */
    /* SSL_handle_events takes it in; now R, with or without the flag. */
    ASSERT_EQ(SSL_handle_events(p.client), 1);
    ASSERT_EQ(SSL_poll(&it, 1, sizeof(it), &zero, SSL_POLL_FLAG_NO_HANDLE_EVENTS, &n), 1);
    ASSERT_EQ(n, 1);
    ASSERT_U64_EQ(it.revents, SSL_POLL_EVENT_R);
    ASSERT_TRUE(read_exact(&p, cs, data, 600));
    ASSERT_REVENTS(cs, SSL_POLL_EVENT_R, 0);

    /* Without the flag a zero-timeout poll handles events itself. */
    ASSERT_TRUE(peers_quiet(&p));
    ASSERT_EQ(SSL_write_ex(ss, data, 700, &n), 1);
    ASSERT_TRUE(wait_datagram(p.cfd, 700));
    ASSERT_EQ(SSL_poll(&it, 1, sizeof(it), &zero, 0, &n), 1);
    ASSERT_EQ(n, 1);
    ASSERT_U64_EQ(it.revents, SSL_POLL_EVENT_R);
    ASSERT_TRUE(read_exact(&p, cs, data, 700));

    /* The flag skips only the first readout's event handling: a poll with a timeout goes on
     * to wait, and waiting handles events, so the data is reported well before 5 s. */
    ASSERT_TRUE(peers_quiet(&p));
    ASSERT_EQ(SSL_write_ex(ss, data, 800, &n), 1);
    ASSERT_TRUE(wait_datagram(p.cfd, 800));
    it.revents = 0xdead;
    ASSERT_EQ(SSL_poll(&it, 1, sizeof(it), &tmo, SSL_POLL_FLAG_NO_HANDLE_EVENTS, &n), 1);
    ASSERT_EQ(n, 1);
    ASSERT_U64_EQ(it.revents, SSL_POLL_EVENT_R);
    ASSERT_TRUE(read_exact(&p, cs, data, 800));
    SSL_free(cs);
    SSL_free(ss);
    peers_free(&p);
    return 1;
}

/* ---- many items ------------------------------------------------------------------- */

static int test_many_items(void)
{
    struct peers p;
    int nconn = (int)qu_scaled(100, 10) + 1, active = nconn / 3, i, done;
    SSL **cli = calloc((size_t)nconn, sizeof(SSL *)), **srv = calloc((size_t)nconn, sizeof(SSL *));
    int *cfd = calloc((size_t)nconn, sizeof(int));
    SSL_POLL_ITEM *it = calloc((size_t)nconn, sizeof(SSL_POLL_ITEM));
    struct timeval tmo = {5, 0}, zero = {0, 0};
    size_t n = 99;
    uint64_t dl;
    char want[32];
    SSL *st;

    ASSERT_NOT_NULL(cli);
    ASSERT_NOT_NULL(srv);
    ASSERT_NOT_NULL(cfd);
    ASSERT_NOT_NULL(it);
    ASSERT_TRUE(peers_new(&p, 1)); /* its own client stays unused */
    for (i = 0; i < nconn; i++) {
        cfd[i] = tu_udp_socket(AF_INET, NULL);
        ASSERT_GE(cfd[i], 0);
        cli[i] = qu_client(p.cctx, cfd[i], p.srv_addr, 0);
        ASSERT_NOT_NULL(cli[i]);
        ASSERT_EQ(SSL_set_blocking_mode(cli[i], 0), 1);
        ASSERT_EQ(SSL_set_default_stream_mode(cli[i], SSL_DEFAULT_STREAM_MODE_NONE), 1);
    }
    dl = tu_now_ms() + 60000;
    for (;;) {
        int naccepted = 0;

        ASSERT_TRUE(tu_now_ms() < dl);
        done = 0;
        for (i = 0; i < nconn; i++)
            done += SSL_connect(cli[i]) == 1;
        SSL_handle_events(p.listener);
        for (i = 0; i < nconn; i++) {
            if (srv[i] == NULL &&
                (srv[i] = SSL_accept_connection(p.listener, SSL_ACCEPT_CONNECTION_NO_BLOCK)) != NULL)
                ASSERT_TRUE(server_setup(srv[i]));
            naccepted += srv[i] != NULL && SSL_accept(srv[i]) == 1;
        }
        if (done == nconn && naccepted == nconn)
            break;
    }
    ERR_clear_error();
    for (i = 0; i < nconn; i++) {
        it[i].desc = SSL_as_poll_descriptor(srv[i]);
        it[i].events = SSL_POLL_EVENT_ISB | SSL_POLL_EVENT_ISU | SSL_POLL_EVENT_EC |
                       SSL_POLL_EVENT_ECD | SSL_POLL_EVENT_IC;
        it[i].revents = 0xdead;
    }
    ASSERT_EQ(SSL_poll(it, (size_t)nconn, sizeof(*it), &zero, 0, &n), 1);
    ASSERT_EQ(n, 0);
    for (i = 0; i < nconn; i++)
        ASSERT_U64_EQ(it[i].revents, 0);

    /* One client opens a stream and names itself; the poll reports only its connection. */
    st = SSL_new_stream(cli[active], 0);
    ASSERT_NOT_NULL(st);
    snprintf(want, sizeof(want), "client %d", active);
    ASSERT_EQ(SSL_write_ex2(st, want, strlen(want), SSL_WRITE_FLAG_CONCLUDE, &n), 1);
    for (i = 0; i < nconn; i++)
        it[i].revents = 0xdead;
    n = 99;
    ASSERT_EQ(SSL_poll(it, (size_t)nconn, sizeof(*it), &tmo, 0, &n), 1);
    ASSERT_EQ(n, 1);
    {
        int hit = -1;

        for (i = 0; i < nconn; i++) {
            if (it[i].revents != 0) {
                ASSERT_EQ(hit, -1);
                hit = i;
                ASSERT_U64_EQ(it[i].revents, SSL_POLL_EVENT_ISB);
            }
        }
        ASSERT_GE(hit, 0);
        /* It is the active client's connection: its stream carries the name. */
        {
            SSL *ss = SSL_accept_stream(srv[hit], SSL_ACCEPT_STREAM_NO_BLOCK);
            char buf[32];
            size_t got = 0;

            ASSERT_NOT_NULL(ss);
            dl = tu_now_ms() + 10000;
            while (got < strlen(want)) {
                ASSERT_TRUE(tu_now_ms() < dl);
                if (SSL_read_ex(ss, buf + got, sizeof(buf) - got, &n) == 1)
                    got += n;
                else
                    SSL_handle_events(p.listener);
            }
            ASSERT_EQ(got, strlen(want));
            ASSERT_MEM_EQ(buf, want, got);
            ERR_clear_error();
            SSL_free(ss);
        }
        /* The same array again with a zero timeout: while nothing changes the answer may be
         * this thread's last one, but the next change (a second stream) must show. */
        for (i = 0; i < 3; i++) {
            ASSERT_EQ(SSL_poll(it, (size_t)nconn, sizeof(*it), &zero, 0, &n), 1);
            ASSERT_EQ(n, 0);
        }
        {
            SSL *st2 = SSL_new_stream(cli[active], 0);

            ASSERT_NOT_NULL(st2);
            ASSERT_EQ(SSL_write_ex2(st2, "again", 5, SSL_WRITE_FLAG_CONCLUDE, &n), 1);
            dl = tu_now_ms() + 10000;
            do {
                ASSERT_TRUE(tu_now_ms() < dl);
                SSL_handle_events(cli[active]);
                ASSERT_EQ(SSL_poll(it, (size_t)nconn, sizeof(*it), &zero, 0, &n), 1);
            } while (n == 0);
            ASSERT_EQ(n, 1);
            ASSERT_U64_EQ(it[hit].revents, SSL_POLL_EVENT_ISB);
            /* Nothing changed since (no events handled: the server's domain stays as it is):
             * the same answer, written again over revents the caller scribbled on. */
            for (i = 0; i < nconn; i++)
                it[i].revents = 0xdead;
            ASSERT_EQ(SSL_poll(it, (size_t)nconn, sizeof(*it), &zero, SSL_POLL_FLAG_NO_HANDLE_EVENTS, &n), 1);
            ASSERT_EQ(n, 1);
            for (i = 0; i < nconn; i++)
                ASSERT_U64_EQ(it[i].revents, i == hit ? SSL_POLL_EVENT_ISB : 0);
            /* The same objects asked for other events: not the last answer. */
            it[hit].events = SSL_POLL_EVENT_EC;
            ASSERT_EQ(SSL_poll(it, (size_t)nconn, sizeof(*it), &zero, SSL_POLL_FLAG_NO_HANDLE_EVENTS, &n), 1);
            ASSERT_EQ(n, 0);
            ASSERT_U64_EQ(it[hit].revents, 0);
            /* Another object in the item's place (the items swapped): its own answer. */
            it[hit].events = it[(hit + 1) % nconn].events;
            {
                SSL_POLL_ITEM tmp = it[hit];

                it[hit] = it[(hit + 1) % nconn];
                it[(hit + 1) % nconn] = tmp;
            }
            ASSERT_EQ(SSL_poll(it, (size_t)nconn, sizeof(*it), &zero, SSL_POLL_FLAG_NO_HANDLE_EVENTS, &n), 1);
            ASSERT_EQ(n, 1);
            ASSERT_U64_EQ(it[hit].revents, 0);
            ASSERT_U64_EQ(it[(hit + 1) % nconn].revents, SSL_POLL_EVENT_ISB);
            SSL_free(st2);
        }
    }
    SSL_free(st);
    for (i = 0; i < nconn; i++) {
        SSL_free(cli[i]);
        SSL_free(srv[i]);
        close(cfd[i]);
    }
    free(cli);
    free(srv);
    free(cfd);
    free(it);
    peers_free(&p);
    return 1;
}

/* ---- bad input -------------------------------------------------------------------- */

static int test_bad_items(void)
{
    struct peers p;
    SSL_POLL_ITEM it[3];
    struct timeval zero = {0, 0}, tmo = {0, 100000};
    size_t n = 99;
    uint64_t t0;
    SSL *cs, *cs2;

    ASSERT_TRUE(peers_new(&p, 0));
    ASSERT_TRUE(peers_connect(&p));
    cs = SSL_new_stream(p.client, 0);
    cs2 = SSL_new_stream(p.client, 0);
    ASSERT_NOT_NULL(cs);
    ASSERT_NOT_NULL(cs2);
    ERR_clear_error();

    /* An fd item between two ready streams: the ones before keep their revents (and
     * count), the bad one gets F, the ones after are zeroed, SSL_poll returns 0. */
    memset(it, 0, sizeof(it));
    it[0].desc = SSL_as_poll_descriptor(cs);
    it[0].events = SSL_POLL_EVENT_W;
    it[1].desc.type = BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD;
    it[1].desc.value.fd = 0;
    it[1].events = SSL_POLL_EVENT_R;
    it[2].desc = SSL_as_poll_descriptor(cs2);
    it[2].events = SSL_POLL_EVENT_W;
    it[2].revents = 0xdead;
    ASSERT_EQ(SSL_poll(it, 3, sizeof(it[0]), &zero, 0, &n), 0);
    ASSERT_U64_EQ(it[0].revents, SSL_POLL_EVENT_W);
    ASSERT_U64_EQ(it[1].revents, SSL_POLL_EVENT_F);
    ASSERT_U64_EQ(it[2].revents, 0);
    ASSERT_EQ(n, 2);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_POLL_REQUEST_NOT_SUPPORTED);
    ASSERT_NO_ERROR();

    /* Descriptor type NONE, and a custom type: F as well. */
    it[1].desc.type = BIO_POLL_DESCRIPTOR_TYPE_NONE;
    n = 99;
    ASSERT_EQ(SSL_poll(it, 3, sizeof(it[0]), &zero, 0, &n), 0);
    ASSERT_U64_EQ(it[1].revents, SSL_POLL_EVENT_F);
    ASSERT_U64_EQ(it[2].revents, 0);
    ASSERT_EQ(n, 2);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_POLL_REQUEST_NOT_SUPPORTED);
    ASSERT_NO_ERROR();
    it[1].desc.type = BIO_POLL_DESCRIPTOR_CUSTOM_START;
    it[1].desc.value.custom = &p;
    ASSERT_EQ(SSL_poll(it, 3, sizeof(it[0]), &zero, 0, &n), 0);
    ASSERT_U64_EQ(it[1].revents, SSL_POLL_EVENT_F);
    ASSERT_EQ(n, 2);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_POLL_REQUEST_NOT_SUPPORTED);
    ASSERT_NO_ERROR();

    /* An SSL item whose SSL is NULL is skipped: revents 0, no failure. */
    it[1].desc.type = BIO_POLL_DESCRIPTOR_TYPE_SSL;
    it[1].desc.value.ssl = NULL;
    it[1].revents = 0xdead;
    ASSERT_EQ(SSL_poll(it, 3, sizeof(it[0]), &zero, 0, &n), 1);
    ASSERT_U64_EQ(it[0].revents, SSL_POLL_EVENT_W);
    ASSERT_U64_EQ(it[1].revents, 0);
    ASSERT_U64_EQ(it[2].revents, SSL_POLL_EVENT_W);
    ASSERT_EQ(n, 2);
    ASSERT_NO_ERROR();

    /* A non-QUIC SSL object: F, POLL_REQUEST_NOT_SUPPORTED. */
    if (tls_client_method != NULL) {
        SSL_CTX *tctx = SSL_CTX_new(tls_client_method());
        SSL *tls = tctx != NULL ? SSL_new(tctx) : NULL;

        ASSERT_NOT_NULL(tls);
        it[1].desc = SSL_as_poll_descriptor(tls);
        it[1].events = SSL_POLL_EVENT_R | SSL_POLL_EVENT_W;
#if HAVE_OSSLQUIC
        /* osslquic polls TLS objects too (issue 5): one with no socket yet has no events. */
        ASSERT_EQ(SSL_poll(it, 3, sizeof(it[0]), &zero, 0, &n), 1);
        ASSERT_U64_EQ(it[0].revents, SSL_POLL_EVENT_W);
        ASSERT_U64_EQ(it[1].revents, 0);
        ASSERT_U64_EQ(it[2].revents, SSL_POLL_EVENT_W);
        ASSERT_EQ(n, 2);
        ASSERT_NO_ERROR();
        SSL_free(tls);
        SSL_CTX_free(tctx);
        goto tls_done;
#endif
        ASSERT_EQ(SSL_poll(it, 3, sizeof(it[0]), &zero, 0, &n), 0);
        ASSERT_U64_EQ(it[0].revents, SSL_POLL_EVENT_W);
        ASSERT_U64_EQ(it[1].revents, SSL_POLL_EVENT_F);
        ASSERT_U64_EQ(it[2].revents, 0);
        ASSERT_EQ(n, 2);
        ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_POLL_REQUEST_NOT_SUPPORTED);
        ASSERT_NO_ERROR();
        SSL_free(tls);
        SSL_CTX_free(tctx);
    } else {
        tu_skip("no TLS_client_method in this library: the non-QUIC SSL item is not checked");
    }
#if HAVE_OSSLQUIC
tls_done:
#endif

#if HAVE_OSSLQUIC
    /* A NULL array with items: the NULL-argument contract (OpenSSL 3.5 dereferences it). */
    n = 99;
    ASSERT_EQ(SSL_poll(NULL, 1, sizeof(SSL_POLL_ITEM), &zero, 0, &n), 0);
    ASSERT_EQ(n, 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_PASSED_NULL_PARAMETER);
    ASSERT_NO_ERROR();
#endif

    /* No items: 1 and a count of 0; a finite timeout is slept through; NULL (which would
     * wait forever) returns at once. */
    n = 99;
    ASSERT_EQ(SSL_poll(NULL, 0, sizeof(SSL_POLL_ITEM), &zero, 0, &n), 1);
    ASSERT_EQ(n, 0);
    n = 99;
    t0 = qu_now_us();
    ASSERT_EQ(SSL_poll(it, 0, sizeof(SSL_POLL_ITEM), &tmo, 0, &n), 1);
    ASSERT_GE(qu_now_us() - t0, 99000);
    ASSERT_EQ(n, 0);
    n = 99;
    ASSERT_EQ(SSL_poll(NULL, 0, sizeof(SSL_POLL_ITEM), NULL, 0, &n), 1);
    ASSERT_EQ(n, 0);
    ASSERT_NO_ERROR();
    SSL_free(cs);
    SSL_free(cs2);
    peers_free(&p);
    return 1;
}

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
    RUN(test_item_layout);
    RUN(test_events_pair);
    RUN(test_events_udp);
    RUN(test_fail_unpollable);
    RUN(test_stride);
    RUN(test_timeouts);
    RUN(test_no_handle_events);
    RUN(test_many_items);
    RUN(test_bad_items);
    return tu_finish();
}
