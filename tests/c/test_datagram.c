/*
 * test_datagram: RFC 9221 datagrams (issue 16) through the exported calls, over UDP loopback,
 * in one thread: off unless both ends' contexts enable them (OSSLQUIC_CTX_set_datagrams);
 * datagrams both ways, whole and in order, compared byte for byte; SSL_poll's
 * OSSLQUIC_POLL_EVENT_DR and _DW; the size limit and a buffer too small (the datagram stays
 * queued); the bounded receive queue, its drops counted in OSSLQUIC_CONN_STATS; bad
 * arguments. Interop with aioquic's datagrams: tests/interop (datagram cases).
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

#endif /* HAVE_OSSLQUIC */

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
#if HAVE_OSSLQUIC
    RUN(test_off_unless_both);
    RUN(test_both_ways);
    RUN(test_queue_bound);
#endif
    return tu_finish();
}
