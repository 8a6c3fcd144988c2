/*
 * test_zerocopy: the zero-copy datagram API (osslquic's implementation of OpenSSL's design) on
 * the socket BIO and on the dgram pair.
 *
 * Buffers are tracked one by one: every buffer the read callback allocates or the test
 * pushes is recorded, and must come back exactly once, either through BIO_read_dequeue (then
 * the test frees it or pushes it back) or through the free callback when the BIO is freed.
 * ASan and valgrind catch the rest.
 */
#include "testutil.h"

#define WAIT_MS 5000
#define MAXBUF 512

#if HAVE_OSSLQUIC

/* Read-side bookkeeping shared with the callbacks. */
struct rd {
    void *bufs[MAXBUF];
    int state[MAXBUF]; /* 0 unused slot, 1 held by the BIO, 2 handed to the app, 3 freed by cb */
    int n;
    int allocs, pushes, dequeues, frees, bad_frees;
    size_t alloc_len_min;
};

static int rd_find(struct rd *r, void *p)
{
    int i;

    for (i = 0; i < r->n; i++)
        if (r->bufs[i] == p)
            return i;
    return -1;
}

static void rd_add(struct rd *r, void *p)
{
    if (r->n < MAXBUF) {
        r->bufs[r->n] = p;
        r->state[r->n] = 1;
        r->n++;
    }
}

static void *alloc_cb(size_t len, void *arg)
{
    struct rd *r = arg;
    void *p = malloc(len);

    if (p == NULL)
        return NULL;
    r->allocs++;
    if (r->alloc_len_min == 0 || len < r->alloc_len_min)
        r->alloc_len_min = len;
    rd_add(r, p);
    return p;
}

static void free_cb(void *buf, size_t len, void *arg)
{
    struct rd *r = arg;
    int i = rd_find(r, buf);

    (void)len;
    if (i < 0 || r->state[i] != 1)
        r->bad_frees++; /* not ours, or handed out already, or freed twice */
    else
        r->state[i] = 3;
    r->frees++;
    free(buf);
}

static void rd_init(struct rd *r)
{
    memset(r, 0, sizeof(*r));
}

static int rd_push(BIO *b, struct rd *r, size_t len)
{
    void *p = malloc(len);

    if (p == NULL)
        return 0;
    rd_add(r, p);
    r->pushes++;
    if (BIO_dgram_push_read_buffer(b, p, len) != 1) {
        r->state[r->n - 1] = 0;
        free(p);
        return 0;
    }
    return 1;
}

/* Marks a dequeued buffer as the application's; 0 if it was not one the BIO held. */
static int rd_took(struct rd *r, void *p)
{
    int i = rd_find(r, p);

    if (i < 0 || r->state[i] != 1)
        return 0;
    r->state[i] = 2;
    r->dequeues++;
    return 1;
}

/* The application gives a dequeued buffer back to the BIO. */
static int rd_give_back(BIO *b, struct rd *r, void *p, size_t len)
{
    int i = rd_find(r, p);

    if (i < 0 || r->state[i] != 2)
        return 0;
    r->state[i] = 1;
    return BIO_dgram_push_read_buffer(b, p, len) == 1;
}

/* After the BIO is freed: every buffer is either the application's or went through free_cb. */
static int rd_all_returned(struct rd *r)
{
    int i, ok = 1;

    for (i = 0; i < r->n; i++) {
        if (r->state[i] == 1) {
            TU_FAIL("buffer %d (%p) was never returned through the free callback", i, r->bufs[i]);
            ok = 0;
        }
        if (r->state[i] == 2)
            free(r->bufs[i]);
    }
    if (r->bad_frees != 0) {
        TU_FAIL("%d free-callback calls for buffers the BIO did not hold", r->bad_frees);
        ok = 0;
    }
    return ok;
}

/* Write-side bookkeeping. */
struct wr {
    int n, ok, failed, freed, other;
    const void *buf[MAXBUF];
    size_t len[MAXBUF];
};

static void done_cb(const void *buf, size_t len, int status, void *arg)
{
    struct wr *w = arg;

    if (w->n < MAXBUF) {
        w->buf[w->n] = buf;
        w->len[w->n] = len;
    }
    w->n++;
    if (status == BIO_DGRAM_WRITE_DONE_OK)
        w->ok++;
    else if (status == BIO_DGRAM_WRITE_DONE_FAILED)
        w->failed++;
    else if (status == BIO_DGRAM_WRITE_DONE_FREED)
        w->freed++;
    else
        w->other++;
}

/* Dequeues one datagram, waiting on fd (if >= 0) while the BIO says retry. */
static int dequeue_wait(BIO *b, int fd, void **p, size_t *l)
{
    uint64_t end = tu_now_ms() + WAIT_MS;

    for (;;) {
        int r = BIO_read_dequeue(b, p, l);

        if (r == 1)
            return 1;
        if (r != 0 || !BIO_should_retry(b) || tu_now_ms() > end)
            return 0;
        ERR_clear_error();
        if (fd >= 0)
            tu_wait_readable(fd, 100);
    }
}

struct duo {
    BIO *a, *b;
    BIO_ADDR *aa, *ba;
    int fa, fb;
};

static int duo_new(struct duo *d)
{
    memset(d, 0, sizeof(*d));
    d->a = tu_udp_bio(AF_INET, &d->aa, &d->fa);
    d->b = tu_udp_bio(AF_INET, &d->ba, &d->fb);
    return d->a != NULL && d->b != NULL;
}

static void duo_free(struct duo *d)
{
    BIO_free(d->a);
    BIO_free(d->b);
    BIO_ADDR_free(d->aa);
    BIO_ADDR_free(d->ba);
    memset(d, 0, sizeof(*d));
}

/* Sends n datagrams "zc-<i>" padded to distinct sizes (so no GSO merges them). */
static int send_numbered(BIO *a, BIO_ADDR *to, int n, int same_size)
{
    BIO_MSG m[64];
    static char bufs[64][1200];
    size_t done = 0, sent = 0;
    int i;

    if (n > 64)
        return 0;
    memset(m, 0, sizeof(m));
    for (i = 0; i < n; i++) {
        size_t len = same_size ? 1000 : (size_t)(100 + i * 7);

        memset(bufs[i], 'a' + i % 26, len);
        snprintf(bufs[i], 16, "zc-%d", i);
        m[i].data = bufs[i];
        m[i].data_len = len;
        m[i].peer = to;
    }
    while (sent < (size_t)n) {
        if (!BIO_sendmmsg(a, &m[sent], sizeof(BIO_MSG), (size_t)n - sent, 0, &done))
            return 0;
        sent += done;
    }
    return 1;
}

static int check_numbered(const void *p, size_t l, int i, int same_size)
{
    char want[16];
    size_t wl = same_size ? 1000 : (size_t)(100 + i * 7);

    snprintf(want, sizeof(want), "zc-%d", i);
    return l == wl && memcmp(p, want, strlen(want) + 1) == 0
           && ((const unsigned char *)p)[wl - 1] == (unsigned char)('a' + i % 26);
}

static int test_socket_dequeue(void)
{
    struct duo d;
    struct rd r;
    BIO_ADDR *origin = BIO_ADDR_new(), *dest = BIO_ADDR_new();
    OSSLQUIC_BIO_STATS st;
    void *p;
    size_t l;
    int i;

    ASSERT_NOT_NULL(origin);
    ASSERT_NOT_NULL(dest);
    rd_init(&r);
    ASSERT_TRUE(duo_new(&d));
    ASSERT_EQ(BIO_dgram_set_read_callback(d.b, alloc_cb, &r), 1);
    ASSERT_EQ(BIO_dgram_set_read_free_callback(d.b, free_cb, &r), 1);
    ASSERT_EQ(BIO_dgram_set_local_addr_enable(d.b, 1), 1);
    ASSERT_TRUE(send_numbered(d.a, d.ba, 5, 0));
    for (i = 0; i < 5; i++) {
        p = NULL;
        l = 0;
        ASSERT_TRUE(dequeue_wait(d.b, d.fb, &p, &l));
        ASSERT_TRUE(rd_took(&r, p));
        ASSERT_TRUE(check_numbered(p, l, i, 0));
        ASSERT_EQ(BIO_get_incoming_dgram_origin(d.b, origin), 1);
        ASSERT_ADDR_EQ(origin, d.aa);
        ASSERT_EQ(BIO_get_incoming_dgram_dest(d.b, dest), 1);
        ASSERT_ADDR_EQ(dest, d.ba);
    }
    ASSERT_GE(r.alloc_len_min, 1200); /* buffers are big enough for a datagram */
    /* nothing more: 0 with retry-read */
    ASSERT_EQ(BIO_read_dequeue(d.b, &p, &l), 0);
    ASSERT_TRUE(BIO_should_retry(d.b));
    ASSERT_TRUE(BIO_should_read(d.b));
    ERR_clear_error();
    memset(&st, 0xff, sizeof(st));
    ASSERT_EQ(OSSLQUIC_BIO_get_stats(d.b, &st), 1);
    ASSERT_U64_EQ(st.recv_dgrams, 5);
    ASSERT_U64_EQ(st.copies, 0);
    duo_free(&d);
    ASSERT_TRUE(rd_all_returned(&r));
    BIO_ADDR_free(origin);
    BIO_ADDR_free(dest);
    return 1;
}

/* Same-size datagrams (the sender may use GSO, the receiver GRO): still one per dequeue. */
static int test_socket_dequeue_gso_run(void)
{
    struct duo d;
    struct rd r;
    void *p;
    size_t l;
    int i;

    rd_init(&r);
    ASSERT_TRUE(duo_new(&d));
    ASSERT_EQ(BIO_dgram_set_read_callback(d.b, alloc_cb, &r), 1);
    ASSERT_EQ(BIO_dgram_set_read_free_callback(d.b, free_cb, &r), 1);
    ASSERT_TRUE(send_numbered(d.a, d.ba, 32, 1));
    for (i = 0; i < 32; i++) {
        ASSERT_TRUE(dequeue_wait(d.b, d.fb, &p, &l));
        ASSERT_TRUE(rd_took(&r, p));
        ASSERT_TRUE(check_numbered(p, l, i, 1));
    }
    ASSERT_EQ(BIO_read_dequeue(d.b, &p, &l), 0);
    ERR_clear_error();
    duo_free(&d);
    ASSERT_TRUE(rd_all_returned(&r));
    return 1;
}

static int test_socket_pushed_buffers_first(void)
{
    struct duo d;
    struct rd r;
    void *got[4];
    size_t lens[4];
    int i;

    rd_init(&r);
    ASSERT_TRUE(duo_new(&d));
    ASSERT_EQ(BIO_dgram_set_read_callback(d.b, alloc_cb, &r), 1);
    ASSERT_EQ(BIO_dgram_set_read_free_callback(d.b, free_cb, &r), 1);
    ASSERT_EQ(BIO_dgram_set_read_batch(d.b, 4), 1);
    for (i = 0; i < 4; i++)
        ASSERT_TRUE(rd_push(d.b, &r, 2048));
    ASSERT_TRUE(send_numbered(d.a, d.ba, 4, 0));
    for (i = 0; i < 4; i++) {
        ASSERT_TRUE(dequeue_wait(d.b, d.fb, &got[i], &lens[i]));
        ASSERT_TRUE(rd_took(&r, got[i]));
        ASSERT_TRUE(check_numbered(got[i], lens[i], i, 0));
    }
    ASSERT_EQ(r.allocs, 0); /* the callback was never asked */
    /* hand them back: used again before any allocation */
    for (i = 0; i < 4; i++)
        ASSERT_TRUE(rd_give_back(d.b, &r, got[i], 2048));
    ASSERT_TRUE(send_numbered(d.a, d.ba, 4, 0));
    for (i = 0; i < 4; i++) {
        void *p;
        size_t l;

        ASSERT_TRUE(dequeue_wait(d.b, d.fb, &p, &l));
        ASSERT_TRUE(rd_took(&r, p));
        ASSERT_TRUE(p == got[0] || p == got[1] || p == got[2] || p == got[3]);
        ASSERT_TRUE(check_numbered(p, l, i, 0));
    }
    ASSERT_EQ(r.allocs, 0);
    /* none left to reuse: now the callback is asked */
    ASSERT_TRUE(send_numbered(d.a, d.ba, 1, 0));
    {
        void *p;
        size_t l;

        ASSERT_TRUE(dequeue_wait(d.b, d.fb, &p, &l));
        ASSERT_TRUE(rd_took(&r, p));
    }
    ASSERT_GE(r.allocs, 1);
    ASSERT_LE(r.allocs, 4);
    duo_free(&d);
    ASSERT_TRUE(rd_all_returned(&r));
    return 1;
}

static int test_socket_batch_size(void)
{
    struct duo d;
    struct rd r;
    OSSLQUIC_BIO_STATS st;
    void *p;
    size_t l;
    int i;

    rd_init(&r);
    ASSERT_TRUE(duo_new(&d));
    ASSERT_EQ(BIO_dgram_set_read_callback(d.b, alloc_cb, &r), 1);
    ASSERT_EQ(BIO_dgram_set_read_free_callback(d.b, free_cb, &r), 1);
    ASSERT_EQ(BIO_dgram_set_read_batch(d.b, 8), 1);
    ASSERT_TRUE(send_numbered(d.a, d.ba, 20, 0));
    ASSERT_TRUE(tu_wait_readable(d.fb, WAIT_MS));
    ASSERT_TRUE(dequeue_wait(d.b, d.fb, &p, &l));
    ASSERT_TRUE(rd_took(&r, p));
    memset(&st, 0, sizeof(st));
    ASSERT_EQ(OSSLQUIC_BIO_get_stats(d.b, &st), 1);
    ASSERT_U64_EQ(st.recv_calls, 1);
    ASSERT_EQ(st.recv_dgrams, 8); /* one recvmmsg filled the whole batch of 8 */
    ASSERT_LE(r.allocs, 8);
    for (i = 1; i < 20; i++) {
        ASSERT_TRUE(dequeue_wait(d.b, d.fb, &p, &l));
        ASSERT_TRUE(rd_took(&r, p));
        ASSERT_TRUE(check_numbered(p, l, i, 0));
    }
    ASSERT_EQ(OSSLQUIC_BIO_get_stats(d.b, &st), 1);
    ASSERT_U64_EQ(st.recv_dgrams, 20);
    ASSERT_GE(st.recv_calls, 3);
    duo_free(&d);
    ASSERT_TRUE(rd_all_returned(&r));
    return 1;
}

static int test_socket_read_after_dequeue_fails(void)
{
    struct duo d;
    struct rd r;
    void *p;
    size_t l;
    char buf[64];

    rd_init(&r);
    ASSERT_TRUE(duo_new(&d));
    ASSERT_EQ(BIO_dgram_set_read_callback(d.b, alloc_cb, &r), 1);
    ASSERT_EQ(BIO_dgram_set_read_free_callback(d.b, free_cb, &r), 1);
    ASSERT_TRUE(send_numbered(d.a, d.ba, 2, 0));
    ASSERT_TRUE(dequeue_wait(d.b, d.fb, &p, &l));
    ASSERT_TRUE(rd_took(&r, p));
    ERR_clear_error();
    ASSERT_LE(BIO_read(d.b, buf, sizeof(buf)), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    /* the datagram BIO_read refused is still delivered by the zero-copy path */
    ASSERT_TRUE(dequeue_wait(d.b, d.fb, &p, &l));
    ASSERT_TRUE(rd_took(&r, p));
    ASSERT_TRUE(check_numbered(p, l, 1, 0));
    duo_free(&d);
    ASSERT_TRUE(rd_all_returned(&r));
    return 1;
}

static int test_socket_write_queue_flush(void)
{
    struct duo d;
    struct wr w;
    static unsigned char bufs[32][1000];
    unsigned char in[32][1100];
    BIO_MSG m[32];
    OSSLQUIC_BIO_STATS st;
    size_t got = 0, done;
    uint64_t end;
    int i;

    memset(&w, 0, sizeof(w));
    ASSERT_TRUE(duo_new(&d));
    ASSERT_EQ(BIO_dgram_set_write_done_callback(d.a, done_cb, &w), 1);
    ASSERT_EQ(BIO_set_outgoing_dgram_dest(d.a, d.ba), 1);
    for (i = 0; i < 32; i++) {
        tu_fill_pattern(bufs[i], sizeof(bufs[i]), (uint32_t)i);
        ASSERT_EQ(BIO_write_queue(d.a, bufs[i], sizeof(bufs[i])), 1);
    }
    /* queued, not sent */
    ASSERT_EQ(w.n, 0);
    ASSERT_FALSE(tu_wait_readable(d.fb, 0));
    ASSERT_EQ(BIO_flush(d.a), 1);
    ASSERT_EQ(w.n, 32);
    ASSERT_EQ(w.ok, 32);
    for (i = 0; i < 32; i++) {
        ASSERT_PTR_EQ(w.buf[i], bufs[i]);
        ASSERT_EQ(w.len[i], sizeof(bufs[i]));
    }
    memset(&st, 0, sizeof(st));
    ASSERT_EQ(OSSLQUIC_BIO_get_stats(d.a, &st), 1);
    ASSERT_U64_EQ(st.sent_dgrams, 32);
    ASSERT_LE(st.send_calls, 2);
    /* the receiver gets 32 exact datagrams */
    memset(m, 0, sizeof(m));
    for (i = 0; i < 32; i++) {
        m[i].data = in[i];
        m[i].data_len = sizeof(in[i]);
    }
    end = tu_now_ms() + WAIT_MS;
    while (got < 32 && tu_now_ms() < end) {
        done = 0;
        if (BIO_recvmmsg(d.b, &m[got], sizeof(BIO_MSG), 32 - got, 0, &done))
            got += done;
        else {
            ERR_clear_error();
            tu_wait_readable(d.fb, 100);
        }
    }
    ASSERT_EQ(got, 32);
    for (i = 0; i < 32; i++) {
        ASSERT_EQ(m[i].data_len, 1000);
        ASSERT_TRUE(tu_check_pattern(in[i], 1000, (uint32_t)i));
    }
    /* an empty flush is fine */
    ASSERT_EQ(BIO_flush(d.a), 1);
    ASSERT_EQ(w.n, 32);
    duo_free(&d);
    return 1;
}

static int test_socket_write_after_queue_fails(void)
{
    struct duo d;
    struct wr w;

    memset(&w, 0, sizeof(w));
    ASSERT_TRUE(duo_new(&d));
    ASSERT_EQ(BIO_dgram_set_write_done_callback(d.a, done_cb, &w), 1);
    ASSERT_EQ(BIO_set_outgoing_dgram_dest(d.a, d.ba), 1);
    ASSERT_EQ(BIO_dgram_set_peer(d.a, d.ba), 1);
    ASSERT_EQ(BIO_write_queue(d.a, "queued", 6), 1);
    ERR_clear_error();
    ASSERT_LE(BIO_write(d.a, "plain", 5), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(BIO_flush(d.a), 1);
    ASSERT_EQ(w.ok, 1);
    duo_free(&d);
    return 1;
}

/* The origin setter applies to the next queued datagrams. */
static int test_socket_outgoing_origin(void)
{
    struct duo d;
    struct wr w;
    BIO_ADDR *peer = BIO_ADDR_new();
    BIO_MSG m;
    char buf[32];
    size_t done = 0;

    ASSERT_NOT_NULL(peer);
    memset(&w, 0, sizeof(w));
    ASSERT_TRUE(duo_new(&d));
    ASSERT_EQ(BIO_dgram_set_local_addr_enable(d.a, 1), 1);
    ASSERT_EQ(BIO_dgram_set_write_done_callback(d.a, done_cb, &w), 1);
    ASSERT_EQ(BIO_set_outgoing_dgram_dest(d.a, d.ba), 1);
    ASSERT_EQ(BIO_set_outgoing_dgram_origin(d.a, d.aa), 1);
    ASSERT_EQ(BIO_write_queue(d.a, "origin", 6), 1);
    ASSERT_EQ(BIO_flush(d.a), 1);
    ASSERT_EQ(w.ok, 1);
    ASSERT_TRUE(tu_wait_readable(d.fb, WAIT_MS));
    memset(&m, 0, sizeof(m));
    m.data = buf;
    m.data_len = sizeof(buf);
    m.peer = peer;
    ASSERT_EQ(BIO_recvmmsg(d.b, &m, sizeof(m), 1, 0, &done), 1);
    ASSERT_EQ(done, 1);
    ASSERT_EQ(m.data_len, 6);
    ASSERT_ADDR_EQ(peer, d.aa);
    duo_free(&d);
    BIO_ADDR_free(peer);
    return 1;
}

static int test_socket_freed_status(void)
{
    struct duo d;
    struct wr w;
    static char bufs[5][100];
    int i;

    memset(&w, 0, sizeof(w));
    ASSERT_TRUE(duo_new(&d));
    ASSERT_EQ(BIO_dgram_set_write_done_callback(d.a, done_cb, &w), 1);
    ASSERT_EQ(BIO_set_outgoing_dgram_dest(d.a, d.ba), 1);
    for (i = 0; i < 5; i++)
        ASSERT_EQ(BIO_write_queue(d.a, bufs[i], sizeof(bufs[i])), 1);
    BIO_free(d.a);
    d.a = NULL;
    ASSERT_EQ(w.n, 5);
    ASSERT_EQ(w.freed, 5);
    for (i = 0; i < 5; i++)
        ASSERT_PTR_EQ(w.buf[i], bufs[i]);
    ASSERT_FALSE(tu_wait_readable(d.fb, 0)); /* nothing was sent */
    duo_free(&d);
    return 1;
}

static int test_socket_failed_status(void)
{
    struct duo d;
    struct wr w;
    BIO_ADDR *v6 = tu_loopback(AF_INET6, 9); /* an IPv6 destination on an IPv4 socket */
    int i;

    ASSERT_NOT_NULL(v6);
    memset(&w, 0, sizeof(w));
    ASSERT_TRUE(duo_new(&d));
    ASSERT_EQ(BIO_dgram_set_write_done_callback(d.a, done_cb, &w), 1);
    ASSERT_EQ(BIO_set_outgoing_dgram_dest(d.a, v6), 1);
    for (i = 0; i < 3; i++)
        ASSERT_EQ(BIO_write_queue(d.a, "nope", 4), 1);
    (void)BIO_flush(d.a);
    ERR_clear_error();
    ASSERT_EQ(w.n, 3);
    ASSERT_EQ(w.failed, 3);
    /* the BIO is usable afterwards */
    ASSERT_EQ(BIO_set_outgoing_dgram_dest(d.a, d.ba), 1);
    ASSERT_EQ(BIO_write_queue(d.a, "yes", 3), 1);
    ASSERT_EQ(BIO_flush(d.a), 1);
    ASSERT_EQ(w.ok, 1);
    ASSERT_TRUE(tu_wait_readable(d.fb, WAIT_MS));
    duo_free(&d);
    BIO_ADDR_free(v6);
    return 1;
}

/* Freeing returns every buffer the BIO still holds: pushed, filled-but-undelivered, spare. */
static int test_socket_free_returns_buffers(void)
{
    struct duo d;
    struct rd r;
    void *p;
    size_t l;

    rd_init(&r);
    ASSERT_TRUE(duo_new(&d));
    ASSERT_EQ(BIO_dgram_set_read_callback(d.b, alloc_cb, &r), 1);
    ASSERT_EQ(BIO_dgram_set_read_free_callback(d.b, free_cb, &r), 1);
    ASSERT_EQ(BIO_dgram_set_read_batch(d.b, 4), 1);
    ASSERT_TRUE(send_numbered(d.a, d.ba, 4, 0));
    ASSERT_TRUE(tu_wait_readable(d.fb, WAIT_MS));
    ASSERT_TRUE(dequeue_wait(d.b, d.fb, &p, &l));
    ASSERT_TRUE(rd_took(&r, p));
    ASSERT_TRUE(rd_push(d.b, &r, 1500));
    ASSERT_TRUE(rd_push(d.b, &r, 1500));
    BIO_free(d.b);
    d.b = NULL;
    ASSERT_EQ(r.frees, r.allocs + r.pushes - r.dequeues);
    ASSERT_GE(r.frees, 5); /* 3 filled + 2 pushed at least */
    duo_free(&d);
    ASSERT_TRUE(rd_all_returned(&r));
    return 1;
}

/* ---- the pair ---- */

static int test_pair_dequeue(void)
{
    BIO *a = NULL, *b = NULL;
    struct rd r;
    BIO_ADDR *stamp = tu_loopback(AF_INET, 4000), *stamp_copy = tu_loopback(AF_INET, 4000);
    BIO_ADDR *dst = tu_loopback(AF_INET6, 4001), *got = BIO_ADDR_new();
    BIO_MSG m[3];
    char data[3][64];
    size_t done = 0;
    void *p;
    size_t l;
    int i;

    ASSERT_NOT_NULL(got);
    rd_init(&r);
    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 0, &b, 0), 1);
    ASSERT_EQ(BIO_dgram_set_read_callback(b, alloc_cb, &r), 1);
    ASSERT_EQ(BIO_dgram_set_read_free_callback(b, free_cb, &r), 1);
    ASSERT_EQ(BIO_dgram_set_caps(b, BIO_DGRAM_CAP_HANDLES_DST_ADDR), 1);
    ASSERT_EQ(BIO_dgram_set0_local_addr(a, stamp), 1);
    memset(m, 0, sizeof(m));
    memset(data, 'd', sizeof(data));
    for (i = 0; i < 3; i++) {
        snprintf(data[i], sizeof(data[i]), "pair-%d", i);
        m[i].data = data[i];
        m[i].data_len = 10 + (size_t)i;
        m[i].peer = dst;
    }
    ASSERT_EQ(BIO_sendmmsg(a, m, sizeof(BIO_MSG), 3, 0, &done), 1);
    ASSERT_EQ(done, 3);
    for (i = 0; i < 3; i++) {
        ASSERT_EQ(BIO_read_dequeue(b, &p, &l), 1);
        ASSERT_TRUE(rd_took(&r, p));
        ASSERT_EQ(l, 10 + (size_t)i);
        ASSERT_MEM_EQ(p, data[i], l);
        ASSERT_EQ(BIO_get_incoming_dgram_origin(b, got), 1);
        ASSERT_ADDR_EQ(got, stamp_copy);
        ASSERT_EQ(BIO_get_incoming_dgram_dest(b, got), 1);
        ASSERT_ADDR_EQ(got, dst);
    }
    ASSERT_EQ(BIO_read_dequeue(b, &p, &l), 0);
    ASSERT_TRUE(BIO_should_retry(b));
    ASSERT_TRUE(BIO_should_read(b));
    ERR_clear_error();
    /* BIO_read is refused after the zero-copy path was used */
    ASSERT_EQ(BIO_write(a, "late", 4), 4);
    ASSERT_LE(BIO_read(b, data[0], sizeof(data[0])), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(BIO_read_dequeue(b, &p, &l), 1);
    ASSERT_TRUE(rd_took(&r, p));
    ASSERT_EQ(l, 4);
    /* pushed buffers are used before the callback */
    {
        int before = r.allocs;

        ASSERT_TRUE(rd_push(b, &r, 2048));
        ASSERT_EQ(BIO_write(a, "pushed", 6), 6);
        ASSERT_EQ(BIO_read_dequeue(b, &p, &l), 1);
        ASSERT_PTR_EQ(p, r.bufs[r.n - 1]);
        ASSERT_TRUE(rd_took(&r, p));
        ASSERT_EQ(r.allocs, before);
    }
    /* undelivered buffers come back on free */
    ASSERT_EQ(BIO_write(a, "left-1", 6), 6);
    ASSERT_EQ(BIO_write(a, "left-2", 6), 6);
    ASSERT_EQ(BIO_read_dequeue(b, &p, &l), 1);
    ASSERT_TRUE(rd_took(&r, p));
    ASSERT_TRUE(rd_push(b, &r, 512));
    BIO_free(b);
    ASSERT_EQ(r.frees, r.allocs + r.pushes - r.dequeues);
    BIO_free(a);
    ASSERT_TRUE(rd_all_returned(&r));
    BIO_ADDR_free(stamp_copy);
    BIO_ADDR_free(dst);
    BIO_ADDR_free(got);
    return 1;
}

static int test_pair_write_queue(void)
{
    BIO *a = NULL, *b = NULL;
    struct wr w;
    static char bufs[10][50];
    char in[64];
    int i;

    memset(&w, 0, sizeof(w));
    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 0, &b, 0), 1);
    ASSERT_EQ(BIO_dgram_set_write_done_callback(a, done_cb, &w), 1);
    for (i = 0; i < 10; i++) {
        tu_fill_pattern((unsigned char *)bufs[i], 20 + (size_t)i, (uint32_t)i);
        ASSERT_EQ(BIO_write_queue(a, bufs[i], 20 + (size_t)i), 1);
    }
    ASSERT_EQ(BIO_ctrl_pending(b), 0); /* only queued */
    ASSERT_EQ(w.n, 0);
    ASSERT_LE(BIO_write(a, "plain", 5), 0); /* refused after BIO_write_queue */
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(BIO_flush(a), 1);
    ASSERT_EQ(w.ok, 10);
    for (i = 0; i < 10; i++) {
        ASSERT_PTR_EQ(w.buf[i], bufs[i]);
        ASSERT_EQ(BIO_read(b, in, sizeof(in)), 20 + i);
        ASSERT_TRUE(tu_check_pattern((unsigned char *)in, 20 + (size_t)i, (uint32_t)i));
    }
    /* queued when freed: FREED */
    for (i = 0; i < 3; i++)
        ASSERT_EQ(BIO_write_queue(a, bufs[i], 10), 1);
    BIO_free(a);
    ASSERT_EQ(w.freed, 3);
    ASSERT_EQ(w.n, 13);
    BIO_free(b);
    return 1;
}

/* With a destination set, the reader must handle destination addresses (caps), as mmsg. */
static int test_pair_outgoing_dest_needs_caps(void)
{
    BIO *a = NULL, *b = NULL;
    struct wr w;
    BIO_ADDR *dst = tu_loopback(AF_INET, 4002), *got = BIO_ADDR_new();
    BIO_MSG m;
    char in[16];
    size_t done = 0;

    ASSERT_NOT_NULL(dst);
    ASSERT_NOT_NULL(got);
    memset(&w, 0, sizeof(w));
    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 0, &b, 0), 1);
    ASSERT_EQ(BIO_dgram_set_write_done_callback(a, done_cb, &w), 1);
    ASSERT_EQ(BIO_dgram_set_caps(a, BIO_DGRAM_CAP_HANDLES_SRC_ADDR | BIO_DGRAM_CAP_PROVIDES_DST_ADDR), 1);
    ASSERT_EQ(BIO_dgram_set_caps(b, BIO_DGRAM_CAP_HANDLES_DST_ADDR), 1);
    ASSERT_EQ(BIO_dgram_set_local_addr_enable(b, 1), 1);
    ASSERT_EQ(BIO_set_outgoing_dgram_dest(a, dst), 1);
    ASSERT_EQ(BIO_write_queue(a, "dst", 3), 1);
    ASSERT_EQ(BIO_flush(a), 1);
    ASSERT_EQ(w.ok, 1);
    memset(&m, 0, sizeof(m));
    m.data = in;
    m.data_len = sizeof(in);
    m.local = got;
    ASSERT_EQ(BIO_recvmmsg(b, &m, sizeof(m), 1, 0, &done), 1);
    ASSERT_EQ(done, 1);
    ASSERT_ADDR_EQ(got, dst);
    /* NULL clears the sticky destination */
    ASSERT_EQ(BIO_set_outgoing_dgram_dest(a, NULL), 1);
    ASSERT_EQ(BIO_write_queue(a, "nodst", 5), 1);
    ASSERT_EQ(BIO_flush(a), 1);
    ASSERT_EQ(BIO_recvmmsg(b, &m, sizeof(m), 1, 0, &done), 1);
    ASSERT_EQ(BIO_ADDR_family(got), AF_UNSPEC);
    BIO_free(a);
    BIO_free(b);
    BIO_ADDR_free(dst);
    BIO_ADDR_free(got);
    return 1;
}

#endif /* HAVE_OSSLQUIC */

int main(int argc, char **argv)
{
    tu_init(argc, argv);
#if HAVE_OSSLQUIC
    RUN(test_socket_dequeue);
    RUN(test_socket_dequeue_gso_run);
    RUN(test_socket_pushed_buffers_first);
    RUN(test_socket_batch_size);
    RUN(test_socket_read_after_dequeue_fails);
    RUN(test_socket_write_queue_flush);
    RUN(test_socket_write_after_queue_fails);
    RUN(test_socket_outgoing_origin);
    RUN(test_socket_freed_status);
    RUN(test_socket_failed_status);
    RUN(test_socket_free_returns_buffers);
    RUN(test_pair_dequeue);
    RUN(test_pair_write_queue);
    RUN(test_pair_outgoing_dest_needs_caps);
#else
    printf("    skip: the zero-copy API is osslquic's (OpenSSL never shipped it)\n");
    tu_n_passed++;
#endif
    return tu_finish();
}
