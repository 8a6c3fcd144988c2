/*
 * test_datagram: RFC 9221 datagrams (issue 16) through the exported calls, over UDP loopback,
 * in one thread: off unless both ends' contexts enable them (OSSLQUIC_CTX_set_datagrams);
 * datagrams both ways, whole and in order, compared byte for byte; SSL_poll's
 * OSSLQUIC_POLL_EVENT_DR and _DW; the size limit and a buffer too small (the datagram stays
 * queued); the bounded receive queue, its drops counted in OSSLQUIC_CONN_STATS; bad
 * arguments. Then blocking reads in a second thread: one that waits until the peer writes a
 * datagram, and one that the connection's closing (by the peer) wakes with an error.
 * Interop with aioquic's datagrams: tests/interop (datagram cases).
 */
#include "quicutil.h"

#if HAVE_OSSLQUIC

struct pair {
    SSL_CTX *sctx, *cctx;
    SSL *l, *c, *s;
    int lfd, cfd;
    BIO_ADDR *addr;
};

static void pump(struct pair *p)
{
    SSL_handle_events(p->l);
    SSL_handle_events(p->c);
    if (p->s != NULL)
        SSL_handle_events(p->s);
    (void)tu_wait_readable(p->cfd, 1);
}

/* A connected pair; datagram queues of `sq` (server) and `cq` (client) entries, 0: off. */
static int pair_up(struct pair *p, size_t sq, size_t cq)
{
    uint64_t dl = tu_now_ms() + 10000;
    int r = 0;

    memset(p, 0, sizeof(*p));
    p->sctx = qu_server_ctx(0);
    p->cctx = qu_client_ctx();
    ASSERT_TRUE(p->sctx != NULL && p->cctx != NULL);
    if (sq)
        ASSERT_EQ(OSSLQUIC_CTX_set_datagrams(p->sctx, sq), 1);
    if (cq)
        ASSERT_EQ(OSSLQUIC_CTX_set_datagrams(p->cctx, cq), 1);
    p->l = qu_listener(p->sctx, SSL_LISTENER_FLAG_NO_VALIDATE, &p->lfd, &p->addr);
    p->cfd = tu_udp_socket(AF_INET, NULL);
    ASSERT_TRUE(p->l != NULL && p->cfd >= 0);
    p->c = qu_client(p->cctx, p->cfd, p->addr, 0);
    ASSERT_NOT_NULL(p->c);
    ASSERT_EQ(SSL_set_blocking_mode(p->c, 0), 1);
    while ((r = SSL_connect(p->c)) != 1 || p->s == NULL) {
        ASSERT_LT(tu_now_ms(), dl);
        if (r != 1)
            ASSERT_EQ(SSL_get_error(p->c, r), SSL_ERROR_WANT_READ);
        if (p->s == NULL)
            p->s = SSL_accept_connection(p->l, SSL_ACCEPT_CONNECTION_NO_BLOCK);
        pump(p);
    }
    ERR_clear_error();
    return 1;
}

static void pair_down(struct pair *p)
{
    SSL_free(p->s);
    SSL_free(p->c);
    SSL_free(p->l);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    BIO_ADDR_free(p->addr);
    close(p->cfd);
    close(p->lfd);
}

static uint64_t poll1(SSL *s, uint64_t events)
{
    SSL_POLL_ITEM it;
    struct timeval zero = {0, 0};
    size_t n = 0;

    memset(&it, 0, sizeof(it));
    it.desc = SSL_as_poll_descriptor(s);
    it.events = events;
    if (SSL_poll(&it, 1, sizeof(it), &zero, 0, &n) != 1)
        return UINT64_MAX;
    return it.revents;
}

/* Reads one datagram on `r` (pumping, 10 s at most) into buf; its length. */
static size_t read_one(struct pair *p, SSL *r, unsigned char *buf, size_t cap)
{
    uint64_t dl = tu_now_ms() + 10000;
    size_t n = 0;

    while (OSSLQUIC_read_datagram(r, buf, cap, &n) != 1) {
        if (SSL_get_error(r, 0) != SSL_ERROR_WANT_READ || tu_now_ms() >= dl)
            return (size_t)-1;
        pump(p);
    }
    return n;
}

/* Off unless both ends enable them: the one that did not, or whose peer did not, refuses. */
static int test_off_unless_both(void)
{
    struct pair p;
    size_t n = 7;

    ASSERT_TRUE(pair_up(&p, 0, 0));
    ASSERT_EQ(OSSLQUIC_get_max_datagram_size(p.c), 0);
    ASSERT_EQ(OSSLQUIC_write_datagram(p.c, "x", 1, &n), 0);
    ASSERT_EQ(n, 0);
    ASSERT_EQ(SSL_get_error(p.c, 0), SSL_ERROR_SSL);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    pair_down(&p);

    ASSERT_TRUE(pair_up(&p, 4, 0)); /* the server takes them, the client does not */
    ASSERT_EQ(OSSLQUIC_write_datagram(p.c, "x", 1, &n), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_get_max_datagram_size(p.s), 0);
    ASSERT_EQ(OSSLQUIC_write_datagram(p.s, "x", 1, &n), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(poll1(p.s, OSSLQUIC_POLL_EVENT_DW), 0);
    pair_down(&p);
    return 1;
}

static int test_both_ways(void)
{
    struct pair p;
    unsigned char out[2048], in[2048];
    size_t n, max, i, sizes[] = {1, 100, 1000, 0, 0};
    OSSLQUIC_CONN_STATS st;

    ASSERT_TRUE(pair_up(&p, 16, 16));
    max = OSSLQUIC_get_max_datagram_size(p.c);
    ASSERT_GE(max, 1000);
    ASSERT_LE(max, 2000);
    ASSERT_EQ(OSSLQUIC_get_max_datagram_size(p.s), max);
    sizes[3] = max;
    sizes[4] = 17;
    /* Writable now; nothing to read yet. */
    ASSERT_EQ(poll1(p.c, OSSLQUIC_POLL_EVENT_DW | OSSLQUIC_POLL_EVENT_DR), OSSLQUIC_POLL_EVENT_DW);
    ASSERT_EQ(poll1(p.s, OSSLQUIC_POLL_EVENT_DR), 0);
    ASSERT_EQ(OSSLQUIC_read_datagram(p.s, in, sizeof(in), &n), 0);
    ASSERT_EQ(SSL_get_error(p.s, 0), SSL_ERROR_WANT_READ);
    ERR_clear_error();

    /* Client to server, in order, each whole. */
    for (i = 0; i < 5; i++) {
        tu_fill_pattern(out, sizes[i], (uint32_t)i);
        ASSERT_EQ(OSSLQUIC_write_datagram(p.c, out, sizes[i], &n), 1);
        ASSERT_EQ(n, sizes[i]);
    }
    {
        uint64_t dl = tu_now_ms() + 10000;

        while (!(poll1(p.s, OSSLQUIC_POLL_EVENT_DR) & OSSLQUIC_POLL_EVENT_DR)) {
            ASSERT_LT(tu_now_ms(), dl);
            pump(&p);
        }
    }
    for (i = 0; i < 5; i++) {
        n = read_one(&p, p.s, in, sizeof(in));
        ASSERT_EQ(n, sizes[i]);
        tu_fill_pattern(out, sizes[i], (uint32_t)i);
        ASSERT_MEM_EQ(in, out, n);
    }
    ASSERT_EQ(poll1(p.s, OSSLQUIC_POLL_EVENT_DR), 0);

    /* Server to client (an echo), through a stream object of the connection too. */
    tu_fill_pattern(out, 300, 77);
    ASSERT_EQ(OSSLQUIC_write_datagram(p.s, out, 300, &n), 1);
    n = read_one(&p, p.c, in, sizeof(in));
    ASSERT_EQ(n, 300);
    ASSERT_MEM_EQ(in, out, 300);

    /* Too large to send (the limit follows the path's MTU, which discovery may have raised:
     * asked again); a buffer too small keeps the datagram queued. */
    max = OSSLQUIC_get_max_datagram_size(p.c);
    ASSERT_LE(max, 2000);
    ASSERT_EQ(OSSLQUIC_write_datagram(p.c, out, max + 1, &n), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
    ERR_clear_error();
    tu_fill_pattern(out, 200, 5);
    ASSERT_EQ(OSSLQUIC_write_datagram(p.c, out, 200, &n), 1);
    {
        uint64_t dl = tu_now_ms() + 10000;

        while (!(poll1(p.s, OSSLQUIC_POLL_EVENT_DR) & OSSLQUIC_POLL_EVENT_DR)) {
            ASSERT_LT(tu_now_ms(), dl);
            pump(&p);
        }
    }
    ASSERT_EQ(OSSLQUIC_read_datagram(p.s, in, 199, &n), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
    ERR_clear_error();
    ASSERT_EQ(read_one(&p, p.s, in, 200), 200);
    ASSERT_MEM_EQ(in, out, 200);

    ASSERT_EQ(OSSLQUIC_get_conn_stats(p.c, &st), 1);
    ASSERT_U64_EQ(st.dgram_sent, 6);
    ASSERT_U64_EQ(st.dgram_received, 1);
    ASSERT_U64_EQ(st.dgram_dropped, 0);
    ASSERT_EQ(OSSLQUIC_get_conn_stats(p.s, &st), 1);
    ASSERT_U64_EQ(st.dgram_received, 6);

    /* Bad arguments. */
    ASSERT_EQ(OSSLQUIC_write_datagram(NULL, out, 1, &n), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_write_datagram(p.c, NULL, 1, &n), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_read_datagram(p.l, in, sizeof(in), &n), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_CTX_set_datagrams(NULL, 4), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    pair_down(&p);
    return 1;
}

/* The receive queue holds 4: of 20 sent while the server does not read, it reads the last 4;
 * the 16 others are counted as dropped. */
static int test_queue_bound(void)
{
    struct pair p;
    unsigned char in[64];
    size_t n;
    uint32_t i;
    OSSLQUIC_CONN_STATS st;
    uint64_t dl = tu_now_ms() + 10000;

    ASSERT_TRUE(pair_up(&p, 4, 4));
    for (i = 0; i < 20; i++)
        ASSERT_EQ(OSSLQUIC_write_datagram(p.c, &i, sizeof(i), &n), 1);
    do {
        ASSERT_LT(tu_now_ms(), dl);
        pump(&p);
        ASSERT_EQ(OSSLQUIC_get_conn_stats(p.s, &st), 1);
    } while (st.dgram_received < 20);
    ASSERT_U64_EQ(st.dgram_dropped, 16);
    for (i = 16; i < 20; i++) {
        uint32_t v;

        ASSERT_EQ(OSSLQUIC_read_datagram(p.s, in, sizeof(in), &n), 1);
        ASSERT_EQ(n, sizeof(v));
        memcpy(&v, in, sizeof(v));
        ASSERT_EQ(v, i);
    }
    ASSERT_EQ(OSSLQUIC_read_datagram(p.s, in, sizeof(in), &n), 0);
    ASSERT_EQ(SSL_get_error(p.s, 0), SSL_ERROR_WANT_READ);
    ERR_clear_error();
    pair_down(&p);
    return 1;
}

/* ---- blocking reads in a second thread -------------------------------------------- */

/* The client connection belongs to the reader thread while it runs; the main thread drives
 * only the server side (listener and its connection), which is non-blocking. The reader
 * reports through a pipe: 'b' just before it calls OSSLQUIC_read_datagram, 'd' when the call
 * has returned and its outcome is recorded, so every wait of the main thread is a bounded
 * poll() on the pipe. */
struct reader {
    SSL *c;
    int pipe[2];
    pthread_t t;
    int r;
    size_t n;
    int ssl_error;          /* SSL_get_error after the call */
    unsigned long err;      /* the first error it queued (0: none) */
    int closed;             /* SSL_get_conn_close_info succeeded after the call */
    SSL_CONN_CLOSE_INFO info;
    unsigned char buf[2048];
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;

    if (write(rd->pipe[1], "b", 1) != 1)
        return NULL;
    rd->r = OSSLQUIC_read_datagram(rd->c, rd->buf, sizeof(rd->buf), &rd->n);
    rd->ssl_error = SSL_get_error(rd->c, rd->r);
    rd->err = ERR_peek_error(); /* the queue is this thread's */
    ERR_clear_error();
    rd->closed = SSL_get_conn_close_info(rd->c, &rd->info, sizeof(rd->info));
    ERR_clear_error();
    if (write(rd->pipe[1], "d", 1) != 1)
        return NULL;
    return NULL;
}

/* Drives the server side until the reader's next report (or ms milliseconds pass); the byte
 * it sent, or 0 on timeout. */
static char reader_report(struct pair *p, struct reader *rd, int ms)
{
    uint64_t dl = tu_now_ms() + (uint64_t)ms;
    char b;

    for (;;) {
        SSL_handle_events(p->l);
        SSL_handle_events(p->s);
        if (tu_wait_readable(rd->pipe[0], 5))
            return read(rd->pipe[0], &b, 1) == 1 ? b : 0;
        if (tu_now_ms() >= dl)
            return 0;
    }
}

/* Starts the reader on the (now blocking) client and waits until it is about to block, then
 * checks that the read does not return by itself: nothing is queued, so a blocking read must
 * still be waiting 300 ms later (this also lets it get to its wait before the peer acts). */
static int reader_start(struct pair *p, struct reader *rd)
{
    memset(rd, 0, sizeof(*rd));
    rd->c = p->c;
    ASSERT_EQ(SSL_set_blocking_mode(p->c, 1), 1);
    ASSERT_EQ(SSL_get_blocking_mode(p->c), 1);
    ASSERT_EQ(pipe(rd->pipe), 0);
    ASSERT_EQ(pthread_create(&rd->t, NULL, reader_main, rd), 0);
    ASSERT_EQ(reader_report(p, rd, 10000), 'b');
    ASSERT_EQ(reader_report(p, rd, 300), 0);
    return 1;
}

/* After the reader reported 'd': joins it (it has nothing left to do) and closes the pipe. */
static void reader_join(struct reader *rd)
{
    pthread_join(rd->t, NULL);
    close(rd->pipe[0]);
    close(rd->pipe[1]);
}

/* A blocking read in a second thread waits until the peer writes a datagram, and returns it
 * whole. */
static int test_blocking_read_thread(void)
{
    struct pair p;
    struct reader rd;
    unsigned char out[1000];
    size_t n;
    char b;

    ASSERT_TRUE(pair_up(&p, 16, 16));
    ASSERT_TRUE(reader_start(&p, &rd));
    tu_fill_pattern(out, sizeof(out), 1616);
    ASSERT_EQ(OSSLQUIC_write_datagram(p.s, out, sizeof(out), &n), 1);
    ASSERT_EQ(n, sizeof(out));
    /* On a timeout the reader still owns the client: nothing is freed (the run fails). */
    b = reader_report(&p, &rd, 10000);
    ASSERT_EQ(b, 'd');
    reader_join(&rd);
    ASSERT_EQ(rd.r, 1);
    ASSERT_EQ(rd.ssl_error, SSL_ERROR_NONE);
    ASSERT_EQ(rd.err, 0);
    ASSERT_EQ(rd.n, sizeof(out));
    ASSERT_MEM_EQ(rd.buf, out, sizeof(out));

    /* The client is usable from this thread again: the next one, without waiting. */
    ASSERT_EQ(OSSLQUIC_write_datagram(p.s, out, 10, &n), 1);
    ASSERT_EQ(SSL_set_blocking_mode(p.c, 0), 1);
    n = read_one(&p, p.c, rd.buf, sizeof(rd.buf));
    ASSERT_EQ(n, 10);
    ASSERT_MEM_EQ(rd.buf, out, 10);
    pair_down(&p);
    return 1;
}

/* A blocking read in a second thread, with nothing coming, is woken by the peer's closing
 * the connection: it fails (0, SSL_ERROR_SSL, "protocol is shutdown") and the connection's
 * close information is the peer's code and reason. */
static int test_blocking_read_woken_by_close(void)
{
    struct pair p;
    struct reader rd;
    SSL_SHUTDOWN_EX_ARGS args = {42, "done"};
    uint64_t dl;
    int shut = 0;
    char b = 0;

    ASSERT_TRUE(pair_up(&p, 16, 16));
    ASSERT_TRUE(reader_start(&p, &rd));
    dl = tu_now_ms() + 10000;
    while (b == 0 && tu_now_ms() < dl) {
        if (!shut) {
            int r = SSL_shutdown_ex(p.s, SSL_SHUTDOWN_FLAG_RAPID, &args, sizeof(args));

            ASSERT_GE(r, 0);
            shut = r == 1;
            ERR_clear_error();
        }
        b = reader_report(&p, &rd, 100);
    }
    ASSERT_EQ(b, 'd');
    reader_join(&rd);
    ASSERT_EQ(rd.r, 0);
    ASSERT_EQ(rd.n, 0);
    ASSERT_EQ(rd.ssl_error, SSL_ERROR_SSL);
    ASSERT_EQ(ERR_GET_LIB(rd.err), ERR_LIB_SSL);
    ASSERT_EQ(ERR_GET_REASON(rd.err), SSL_R_PROTOCOL_IS_SHUTDOWN);
    ASSERT_EQ(rd.closed, 1);
    ASSERT_U64_EQ(rd.info.error_code, 42);
    ASSERT_EQ(rd.info.flags & (SSL_CONN_CLOSE_FLAG_LOCAL | SSL_CONN_CLOSE_FLAG_TRANSPORT), 0);
    ASSERT_EQ(rd.info.reason_len, 4);
    ASSERT_MEM_EQ(rd.info.reason, "done", 4);

    /* Again from this thread, and without blocking: the same failure at once. */
    ASSERT_EQ(OSSLQUIC_read_datagram(p.c, rd.buf, sizeof(rd.buf), &rd.n), 0);
    ASSERT_EQ(SSL_get_error(p.c, 0), SSL_ERROR_SSL);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_PROTOCOL_IS_SHUTDOWN);
    ERR_clear_error();
    pair_down(&p);
    return 1;
}

#endif /* HAVE_OSSLQUIC */

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
#if HAVE_OSSLQUIC
    RUN(test_off_unless_both);
    RUN(test_both_ways);
    RUN(test_queue_bound);
    RUN(test_blocking_read_thread);
    RUN(test_blocking_read_woken_by_close);
#endif
    return tu_finish();
}
