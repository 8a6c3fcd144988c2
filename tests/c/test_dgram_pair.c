/*
 * test_dgram_pair: BIO_s_dgram_pair / BIO_new_bio_dgram_pair and BIO_s_dgram_mem, with
 * OpenSSL's semantics (reference notes §1.7): MTU, capacity, all-or-nothing writes, exact
 * in-order reads, truncation and no_trunc, caps negotiation before addresses pass, pending =
 * size of the next datagram, write guarantee, EOF and broken pipe after one half is freed.
 *
 * Sub-tests that make sense for both run twice: over a pair (write on A, read on B) and over
 * a dgram mem BIO (write and read the same BIO).
 */
#include "testutil.h"

static int mem_mode; /* 0: pair A -> B; 1: one dgram mem BIO */

struct ends {
    BIO *w, *r;  /* where to write, where to read */
    BIO *a, *b;  /* what to free */
};

static void ends_free(struct ends *e)
{
    BIO_free(e->a);
    BIO_free(e->b);
    memset(e, 0, sizeof(*e));
}

/* bufsize 0: the default (pair) or growing (mem). */
static int ends_new(struct ends *e, size_t bufsize)
{
    memset(e, 0, sizeof(*e));
    if (mem_mode) {
        e->a = BIO_new(BIO_s_dgram_mem());
        if (e->a == NULL)
            return 0;
        if (bufsize > 0 && BIO_set_write_buf_size(e->a, bufsize) != 1) {
            ends_free(e);
            return 0;
        }
        e->w = e->r = e->a;
        return 1;
    }
    if (BIO_new_bio_dgram_pair(&e->a, bufsize, &e->b, bufsize) != 1)
        return 0;
    e->w = e->a;
    e->r = e->b;
    return 1;
}

static const uint32_t ALL_CAPS = BIO_DGRAM_CAP_HANDLES_SRC_ADDR | BIO_DGRAM_CAP_HANDLES_DST_ADDR
                                 | BIO_DGRAM_CAP_PROVIDES_SRC_ADDR
                                 | BIO_DGRAM_CAP_PROVIDES_DST_ADDR;

static int test_method_types(void)
{
    struct ends e;

    ASSERT_TRUE(ends_new(&e, 0));
    ASSERT_EQ(BIO_method_type(e.w), mem_mode ? BIO_TYPE_DGRAM_MEM : BIO_TYPE_DGRAM_PAIR);
    ASSERT_EQ(BIO_TYPE_DGRAM_PAIR, 0x41A);
    ASSERT_EQ(BIO_TYPE_DGRAM_MEM, 0x41B);
    ends_free(&e);
    return 1;
}

static int test_mtu_default(void)
{
    struct ends e;

    ASSERT_TRUE(ends_new(&e, 0));
    ASSERT_GE(BIO_dgram_get_mtu(e.w), 1280);
    ASSERT_EQ(BIO_dgram_get_mtu(e.w), BIO_dgram_get_mtu(e.r));
    ends_free(&e);
    return 1;
}

/*
 * Random sizes up to the MTU until a write is refused: at least 9 fit the default buffer;
 * the refused write returns -1 with retry-write and writes nothing; the reads then return
 * exactly what was written, in order, and an empty read is -1 with retry-read, not EOF.
 */
static int test_fill_then_retry(void)
{
    struct ends e;
    enum { MAXN = 512 };
    static unsigned char buf[4096];
    size_t sizes[MAXN], mtu, n = 0, i;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    int r;

    /* The mem BIO grows unless sized: give it the pair's default size. */
    ASSERT_TRUE(ends_new(&e, mem_mode ? 9 * (1472 + 128) : 0));
    mtu = (size_t)BIO_dgram_get_mtu(e.w);
    ASSERT_GE(mtu, 1280);
    ASSERT_LE(mtu, sizeof(buf));
    for (;;) {
        size_t sz = 1 + (size_t)(tu_rand(&rng) % mtu);

        ASSERT_LT(n, MAXN);
        tu_fill_pattern(buf, sz, (uint32_t)n);
        r = BIO_write(e.w, buf, (int)sz);
        if (r < 0) {
            ASSERT_EQ(r, -1);
            ASSERT_TRUE(BIO_should_retry(e.w));
            ASSERT_TRUE(BIO_should_write(e.w));
            ASSERT_FALSE(BIO_should_read(e.w));
            ASSERT_TRUE(BIO_err_is_non_fatal(ERR_peek_last_error()));
            ERR_clear_error();
            /* the same write keeps failing: nothing was partially written */
            ASSERT_EQ(BIO_write(e.w, buf, (int)sz), -1);
            ERR_clear_error();
            break;
        }
        ASSERT_EQ(r, sz);
        ASSERT_FALSE(BIO_should_retry(e.w));
        sizes[n++] = sz;
    }
    ASSERT_GE(n, 9);
    for (i = 0; i < n; i++) {
        ASSERT_EQ(BIO_ctrl_pending(e.r), sizes[i]);
        memset(buf, 0, sizes[i]);
        r = BIO_read(e.r, buf, sizeof(buf));
        ASSERT_EQ(r, sizes[i]);
        ASSERT_TRUE(tu_check_pattern(buf, sizes[i], (uint32_t)i));
    }
    ASSERT_EQ(BIO_ctrl_pending(e.r), 0);
    ASSERT_EQ(BIO_read(e.r, buf, sizeof(buf)), -1);
    ASSERT_TRUE(BIO_should_retry(e.r));
    ASSERT_TRUE(BIO_should_read(e.r));
    ASSERT_EQ(BIO_eof(e.r), 0);
    ASSERT_NO_ERROR();
    /* and writing works again */
    ASSERT_EQ(BIO_write(e.w, "again", 5), 5);
    ASSERT_EQ(BIO_read(e.r, buf, sizeof(buf)), 5);
    ends_free(&e);
    return 1;
}

static int test_empty_read(void)
{
    struct ends e;
    char buf[16];
    BIO_MSG m;
    size_t done = 99;

    ASSERT_TRUE(ends_new(&e, 0));
    ASSERT_EQ(BIO_read(e.r, buf, sizeof(buf)), -1);
    ASSERT_TRUE(BIO_should_retry(e.r));
    ASSERT_TRUE(BIO_should_read(e.r));
    ASSERT_EQ(BIO_eof(e.r), 0);
    ASSERT_NO_ERROR();
    /* recvmmsg: 0 with a non-fatal error. */
    memset(&m, 0, sizeof(m));
    m.data = buf;
    m.data_len = sizeof(buf);
    ASSERT_EQ(BIO_recvmmsg(e.r, &m, sizeof(m), 1, 0, &done), 0);
    ASSERT_EQ(done, 0);
    ASSERT_TRUE(BIO_err_is_non_fatal(ERR_peek_last_error()));
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_NON_FATAL);
    ends_free(&e);
    return 1;
}

static int test_mmsg_19_46(void)
{
    struct ends e;
    BIO_MSG tx[2], rx[3];
    unsigned char a[19], b[46], ra[64], rb[64], rc[64];
    size_t done = 99;

    ASSERT_TRUE(ends_new(&e, 0));
    tu_fill_pattern(a, sizeof(a), 19);
    tu_fill_pattern(b, sizeof(b), 46);
    memset(tx, 0, sizeof(tx));
    memset(rx, 0, sizeof(rx));
    tx[0].data = a;
    tx[0].data_len = sizeof(a);
    tx[1].data = b;
    tx[1].data_len = sizeof(b);
    ASSERT_EQ(BIO_sendmmsg(e.w, tx, sizeof(BIO_MSG), 2, 0, &done), 1);
    ASSERT_EQ(done, 2);
    rx[0].data = ra;
    rx[1].data = rb;
    rx[2].data = rc;
    rx[0].data_len = rx[1].data_len = rx[2].data_len = 64;
    done = 99;
    ASSERT_EQ(BIO_recvmmsg(e.r, rx, sizeof(BIO_MSG), 3, 0, &done), 1);
    ASSERT_EQ(done, 2);
    ASSERT_EQ(rx[0].data_len, 19);
    ASSERT_EQ(rx[1].data_len, 46);
    ASSERT_MEM_EQ(ra, a, 19);
    ASSERT_MEM_EQ(rb, b, 46);
    ASSERT_EQ(rx[0].flags, 0);
    ASSERT_EQ(rx[1].flags, 0);
    /* the unused item is untouched */
    ASSERT_EQ(rx[2].data_len, 64);
    ASSERT_EQ(rx[2].flags, 0);
    ASSERT_NO_ERROR();
    ends_free(&e);
    return 1;
}

/* A zero-length BIO_write writes nothing; a zero-length mmsg item is a real datagram. */
static int test_zero_length(void)
{
    struct ends e;
    BIO_MSG m;
    char buf[8];
    size_t done = 99;

    ASSERT_TRUE(ends_new(&e, 0));
    ASSERT_EQ(BIO_write(e.w, "", 0), 0);
    ASSERT_EQ(BIO_ctrl_pending(e.r), 0);
    ASSERT_EQ(BIO_read(e.r, buf, sizeof(buf)), -1);
    ASSERT_TRUE(BIO_should_retry(e.r));

    memset(&m, 0, sizeof(m));
    m.data = buf;
    m.data_len = 0;
    ASSERT_EQ(BIO_sendmmsg(e.w, &m, sizeof(m), 1, 0, &done), 1);
    ASSERT_EQ(done, 1);
    m.data_len = sizeof(buf);
    done = 99;
    ASSERT_EQ(BIO_recvmmsg(e.r, &m, sizeof(m), 1, 0, &done), 1);
    ASSERT_EQ(done, 1);
    ASSERT_EQ(m.data_len, 0);
    ends_free(&e);
    return 1;
}

static int test_peer_needs_caps(void)
{
    struct ends e;
    BIO_ADDR *dst = tu_loopback(AF_INET, 1234);
    BIO_MSG m;
    size_t done = 99;

    ASSERT_NOT_NULL(dst);
    ASSERT_TRUE(ends_new(&e, 0));
    memset(&m, 0, sizeof(m));
    m.data = "to-peer";
    m.data_len = 7;
    m.peer = dst;
    ASSERT_EQ(BIO_sendmmsg(e.w, &m, sizeof(m), 1, 0, &done), 0);
    ASSERT_EQ(done, 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_PEER_ADDR_NOT_AVAILABLE);
    ASSERT_NO_ERROR();
    /* The writer's own caps do not help: it is the reading half that must handle them. */
    if (!mem_mode) {
        ASSERT_EQ(BIO_dgram_set_caps(e.w, ALL_CAPS), 1);
        ASSERT_EQ(BIO_sendmmsg(e.w, &m, sizeof(m), 1, 0, &done), 0);
        ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_PEER_ADDR_NOT_AVAILABLE);
    }
    ASSERT_EQ(BIO_dgram_set_caps(e.r, BIO_DGRAM_CAP_HANDLES_DST_ADDR), 1);
    done = 99;
    ASSERT_EQ(BIO_sendmmsg(e.w, &m, sizeof(m), 1, 0, &done), 1);
    ASSERT_EQ(done, 1);
    ASSERT_EQ(BIO_ctrl_pending(e.r), 7);
    ends_free(&e);
    BIO_ADDR_free(dst);
    return 1;
}

static int test_caps_crosswired(void)
{
    struct ends e;

    ASSERT_TRUE(ends_new(&e, 0));
    ASSERT_EQ(BIO_dgram_get_caps(e.w), 0);
    ASSERT_EQ(BIO_dgram_get_effective_caps(e.w), 0);
    ASSERT_EQ(BIO_dgram_set_caps(e.w, BIO_DGRAM_CAP_HANDLES_SRC_ADDR), 1);
    ASSERT_EQ(BIO_dgram_get_caps(e.w), BIO_DGRAM_CAP_HANDLES_SRC_ADDR);
    if (mem_mode) {
        /* one BIO: effective = its own */
        ASSERT_EQ(BIO_dgram_get_effective_caps(e.w), BIO_DGRAM_CAP_HANDLES_SRC_ADDR);
    } else {
        ASSERT_EQ(BIO_dgram_get_effective_caps(e.w), 0);
        ASSERT_EQ(BIO_dgram_get_effective_caps(e.r), BIO_DGRAM_CAP_HANDLES_SRC_ADDR);
        ASSERT_EQ(BIO_dgram_set_caps(e.r, BIO_DGRAM_CAP_PROVIDES_DST_ADDR), 1);
        ASSERT_EQ(BIO_dgram_get_caps(e.r), BIO_DGRAM_CAP_PROVIDES_DST_ADDR);
        ASSERT_EQ(BIO_dgram_get_effective_caps(e.w), BIO_DGRAM_CAP_PROVIDES_DST_ADDR);
        ASSERT_EQ(BIO_dgram_get_effective_caps(e.r), BIO_DGRAM_CAP_HANDLES_SRC_ADDR);
    }
    ASSERT_EQ(BIO_dgram_set_caps(e.w, ALL_CAPS), 1);
    ASSERT_EQ(BIO_dgram_get_caps(e.w), ALL_CAPS);
    ASSERT_EQ(BIO_dgram_get_effective_caps(e.r), ALL_CAPS);
    ends_free(&e);
    return 1;
}

/* With no source stamped, the reader's `peer` comes back AF_UNSPEC. */
static int test_peer_unspec_without_source(void)
{
    struct ends e;
    BIO_ADDR *peer = tu_loopback(AF_INET, 99);
    BIO_MSG m;
    char buf[16];
    size_t done = 0;

    ASSERT_NOT_NULL(peer);
    ASSERT_TRUE(ends_new(&e, 0));
    ASSERT_EQ(BIO_write(e.w, "anon", 4), 4);
    memset(&m, 0, sizeof(m));
    m.data = buf;
    m.data_len = sizeof(buf);
    m.peer = peer;
    ASSERT_EQ(BIO_recvmmsg(e.r, &m, sizeof(m), 1, 0, &done), 1);
    ASSERT_EQ(done, 1);
    ASSERT_EQ(m.data_len, 4);
    ASSERT_EQ(BIO_ADDR_family(peer), AF_UNSPEC);
    ends_free(&e);
    BIO_ADDR_free(peer);
    return 1;
}

/* Full addressing: the reader's `local` is the writer's destination and its `peer` the
 * writer's source. Local addressing needs caps on the other side first. */
static int test_addresses_pass(void)
{
    struct ends e;
    BIO_ADDR *src = tu_loopback(AF_INET, 1111), *dst = tu_loopback(AF_INET6, 2222);
    BIO_ADDR *gl = BIO_ADDR_new(), *gp = BIO_ADDR_new();
    BIO_MSG m;
    char buf[16];
    size_t done = 0;
    int en = -1;

    ASSERT_NOT_NULL(src);
    ASSERT_NOT_NULL(dst);
    ASSERT_NOT_NULL(gl);
    ASSERT_NOT_NULL(gp);
    ASSERT_TRUE(ends_new(&e, 0));
    /* Without the caps, local addressing cannot be enabled. */
    ASSERT_EQ(BIO_dgram_get_local_addr_cap(e.r), 0);
    ASSERT_EQ(BIO_dgram_set_local_addr_enable(e.r, 1), 0);
    ERR_clear_error();
    ASSERT_EQ(BIO_dgram_get_local_addr_enable(e.r, &en), 1);
    ASSERT_EQ(en, 0);
    /* A `local` before enabling fails on send and on receive. */
    memset(&m, 0, sizeof(m));
    m.data = "x";
    m.data_len = 1;
    m.local = src;
    ASSERT_EQ(BIO_sendmmsg(e.w, &m, sizeof(m), 1, 0, &done), 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_LOCAL_ADDR_NOT_AVAILABLE);
    ASSERT_EQ(BIO_write(e.w, "y", 1), 1);
    memset(&m, 0, sizeof(m));
    m.data = buf;
    m.data_len = 13;
    m.local = gl;
    ASSERT_EQ(BIO_recvmmsg(e.r, &m, sizeof(m), 1, 0, &done), 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_LOCAL_ADDR_NOT_AVAILABLE);
    ASSERT_EQ(m.data_len, 13);
    ASSERT_EQ(m.flags, 0);
    ASSERT_EQ(BIO_read(e.r, buf, sizeof(buf)), 1); /* still queued */

    ASSERT_EQ(BIO_dgram_set_caps(e.w, ALL_CAPS), 1);
    ASSERT_EQ(BIO_dgram_set_caps(e.r, ALL_CAPS), 1);
    ASSERT_EQ(BIO_dgram_get_local_addr_cap(e.r), 1);
    ASSERT_EQ(BIO_dgram_set_local_addr_enable(e.r, 1), 1);
    ASSERT_EQ(BIO_dgram_set_local_addr_enable(e.w, 1), 1);
    ASSERT_EQ(BIO_dgram_get_local_addr_enable(e.r, &en), 1);
    ASSERT_EQ(en, 1);

    memset(&m, 0, sizeof(m));
    m.data = "addressed";
    m.data_len = 9;
    m.peer = dst;
    m.local = src;
    ASSERT_EQ(BIO_sendmmsg(e.w, &m, sizeof(m), 1, 0, &done), 1);
    ASSERT_EQ(done, 1);
    memset(&m, 0, sizeof(m));
    m.data = buf;
    m.data_len = sizeof(buf);
    m.peer = gp;
    m.local = gl;
    ASSERT_EQ(BIO_recvmmsg(e.r, &m, sizeof(m), 1, 0, &done), 1);
    ASSERT_EQ(done, 1);
    ASSERT_EQ(m.data_len, 9);
    ASSERT_MEM_EQ(buf, "addressed", 9);
    ASSERT_ADDR_EQ(gl, dst);
    ASSERT_ADDR_EQ(gp, src);
    ends_free(&e);
    BIO_ADDR_free(src);
    BIO_ADDR_free(dst);
    BIO_ADDR_free(gl);
    BIO_ADDR_free(gp);
    return 1;
}

/* BIO_dgram_set0_local_addr stamps the default source; an explicit `local` overrides it. */
static int test_set0_local_addr(void)
{
    struct ends e;
    BIO_ADDR *stamp = tu_loopback(AF_INET, 7000), *expect = tu_loopback(AF_INET, 7000);
    BIO_ADDR *other = tu_loopback(AF_INET6, 7001), *gp = BIO_ADDR_new();
    BIO_MSG m;
    char buf[16];
    size_t done = 0;

    ASSERT_NOT_NULL(stamp);
    ASSERT_NOT_NULL(gp);
    ASSERT_NOT_NULL(other);
    ASSERT_TRUE(ends_new(&e, 0));
    ASSERT_EQ(BIO_dgram_set0_local_addr(e.w, stamp), 1); /* ownership passes */
    ASSERT_EQ(BIO_write(e.w, "s", 1), 1);
    memset(&m, 0, sizeof(m));
    m.data = buf;
    m.data_len = sizeof(buf);
    m.peer = gp;
    ASSERT_EQ(BIO_recvmmsg(e.r, &m, sizeof(m), 1, 0, &done), 1);
    ASSERT_ADDR_EQ(gp, expect);

    ASSERT_EQ(BIO_dgram_set_caps(e.w, ALL_CAPS), 1);
    ASSERT_EQ(BIO_dgram_set_caps(e.r, ALL_CAPS), 1);
    ASSERT_EQ(BIO_dgram_set_local_addr_enable(e.w, 1), 1);
    memset(&m, 0, sizeof(m));
    m.data = "o";
    m.data_len = 1;
    m.local = other;
    ASSERT_EQ(BIO_sendmmsg(e.w, &m, sizeof(m), 1, 0, &done), 1);
    memset(&m, 0, sizeof(m));
    m.data = buf;
    m.data_len = sizeof(buf);
    m.peer = gp;
    ASSERT_EQ(BIO_recvmmsg(e.r, &m, sizeof(m), 1, 0, &done), 1);
    ASSERT_ADDR_EQ(gp, other);
    ends_free(&e);
    BIO_ADDR_free(expect);
    BIO_ADDR_free(other);
    BIO_ADDR_free(gp);
    return 1;
}

static int test_no_trunc(void)
{
    struct ends e;
    unsigned char d64[64], buf[64];

    ASSERT_TRUE(ends_new(&e, 0));
    tu_fill_pattern(d64, sizeof(d64), 64);
    ASSERT_EQ(BIO_dgram_get_no_trunc(e.r), 0);
    ASSERT_EQ(BIO_dgram_set_no_trunc(e.r, 1), 1);
    ASSERT_EQ(BIO_dgram_get_no_trunc(e.r), 1);
    ASSERT_EQ(BIO_write(e.w, d64, 64), 64);
    ASSERT_EQ(BIO_read(e.r, buf, 32), -1);
    ASSERT_EQ(BIO_pending(e.r), 64);
    ASSERT_EQ(BIO_ctrl_pending(e.r), 64);
    memset(buf, 0, sizeof(buf));
    ASSERT_EQ(BIO_read(e.r, buf, 64), 64);
    ASSERT_MEM_EQ(buf, d64, 64);
    ERR_clear_error();

    ASSERT_EQ(BIO_dgram_set_no_trunc(e.r, 0), 1);
    ASSERT_EQ(BIO_dgram_get_no_trunc(e.r), 0);
    ASSERT_EQ(BIO_write(e.w, d64, 64), 64);
    ASSERT_EQ(BIO_write(e.w, "tail", 4), 4);
    memset(buf, 0, sizeof(buf));
    ASSERT_EQ(BIO_read(e.r, buf, 32), 32);
    ASSERT_MEM_EQ(buf, d64, 32);
    /* the rest of the truncated datagram is gone */
    ASSERT_EQ(BIO_pending(e.r), 4);
    ASSERT_EQ(BIO_read(e.r, buf, 64), 4);
    ASSERT_MEM_EQ(buf, "tail", 4);
    ends_free(&e);
    return 1;
}

static int test_mtu_round_trip(void)
{
    struct ends e;

    ASSERT_TRUE(ends_new(&e, 0));
    ASSERT_EQ(BIO_dgram_set_mtu(e.w, 1400), 1);
    ASSERT_EQ(BIO_dgram_get_mtu(e.w), 1400);
    ASSERT_EQ(BIO_dgram_get_mtu(e.r), 1400);
    ASSERT_EQ(BIO_dgram_set_mtu(e.r, 1300), 1);
    ASSERT_EQ(BIO_dgram_get_mtu(e.r), 1300);
    ASSERT_EQ(BIO_dgram_get_mtu(e.w), 1300);
    ends_free(&e);
    return 1;
}

static int test_pending_is_next_size(void)
{
    struct ends e;
    char buf[64];

    ASSERT_TRUE(ends_new(&e, 0));
    ASSERT_EQ(BIO_ctrl_pending(e.r), 0);
    ASSERT_EQ(BIO_write(e.w, "0123456789", 10), 10);
    ASSERT_EQ(BIO_write(e.w, "01234567890123456789", 20), 20);
    ASSERT_EQ(BIO_ctrl_pending(e.r), 10);
    ASSERT_EQ(BIO_pending(e.r), 10);
    ASSERT_EQ(BIO_read(e.r, buf, sizeof(buf)), 10);
    ASSERT_EQ(BIO_ctrl_pending(e.r), 20);
    ASSERT_EQ(BIO_read(e.r, buf, sizeof(buf)), 20);
    ASSERT_EQ(BIO_ctrl_pending(e.r), 0);
    /* A pair's writer side sees nothing to read from its own writes. */
    if (!mem_mode) {
        ASSERT_EQ(BIO_write(e.w, "x", 1), 1);
        ASSERT_EQ(BIO_ctrl_pending(e.w), 0);
    }
    ends_free(&e);
    return 1;
}

/* "Any write of at most the guarantee succeeds"; 0 once less than an MTU is free. */
static int test_write_guarantee(void)
{
    struct ends e;
    static unsigned char buf[2048];
    size_t g, first, mtu;
    int n = 0;

    ASSERT_TRUE(ends_new(&e, mem_mode ? 16384 : 0));
    mtu = (size_t)BIO_dgram_get_mtu(e.w);
    first = BIO_ctrl_get_write_guarantee(e.w);
    ASSERT_GE(first, mtu);
    ASSERT_EQ(BIO_get_write_guarantee(e.w), first);
    while ((g = BIO_ctrl_get_write_guarantee(e.w)) > 0) {
        size_t sz = g < mtu ? g : mtu;

        ASSERT_GE(g, mtu);
        ASSERT_LE(sz, sizeof(buf));
        ASSERT_EQ(BIO_write(e.w, buf, (int)sz), sz);
        ASSERT_LT(BIO_ctrl_get_write_guarantee(e.w), g);
        ASSERT_LT(++n, 1000);
    }
    ASSERT_GE(n, 1);
    ASSERT_EQ(BIO_ctrl_get_write_guarantee(e.w), 0);
    /* reading frees room again */
    ASSERT_EQ(BIO_read(e.r, buf, sizeof(buf)), mtu);
    ASSERT_GE(BIO_ctrl_get_write_guarantee(e.w), mtu);
    ends_free(&e);
    return 1;
}

/* How many `sz`-byte datagrams fit before a write is refused. */
static int fill_count(BIO *w, size_t sz)
{
    static unsigned char buf[2048];
    int n = 0;

    while (n < 100000 && BIO_write(w, buf, (int)sz) == (int)sz)
        n++;
    ERR_clear_error();
    return n;
}

static int test_explicit_sizes(void)
{
    BIO *a = NULL, *b = NULL;
    int na, nb;

    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 2048, &b, 65536), 1);
    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_get_write_buf_size(a, 0), 2048);
    ASSERT_EQ(BIO_get_write_buf_size(b, 0), 65536);
    na = fill_count(a, 1000);
    nb = fill_count(b, 1000);
    ASSERT_GE(na, 1);
    ASSERT_LE(na, 2);
    ASSERT_GE(nb, 50);
    ASSERT_LE(nb, 65);
    ASSERT_EQ(BIO_ctrl_pending(b), 1000);
    ASSERT_EQ(BIO_ctrl_pending(a), 1000);
    BIO_free(a);
    BIO_free(b);
    return 1;
}

static int test_manual_pair(void)
{
    BIO *a = BIO_new(BIO_s_dgram_pair()), *b = BIO_new(BIO_s_dgram_pair()), *c;
    char buf[16];

    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_set_write_buf_size(a, 4096), 1);
    ASSERT_EQ(BIO_get_write_buf_size(a, 0), 4096);
    /* below the 1024-byte minimum: clamped */
    ASSERT_EQ(BIO_set_write_buf_size(b, 10), 1);
    ASSERT_EQ(BIO_get_write_buf_size(b, 0), 1024);
    ASSERT_EQ(BIO_make_bio_pair(a, b), 1);
    ASSERT_EQ(BIO_write(a, "ab", 2), 2);
    ASSERT_EQ(BIO_write(b, "ba", 2), 2);
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), 2);
    ASSERT_MEM_EQ(buf, "ab", 2);
    ASSERT_EQ(BIO_read(a, buf, sizeof(buf)), 2);
    ASSERT_MEM_EQ(buf, "ba", 2);
    /* sizes are fixed once paired */
    ASSERT_EQ(BIO_set_write_buf_size(a, 8192), 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_IN_USE);
    /* a half already paired cannot be paired again */
    c = BIO_new(BIO_s_dgram_pair());
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(BIO_make_bio_pair(a, c), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    BIO_free(c);
    BIO_free(a);
    BIO_free(b);
    return 1;
}

/* After one half is freed, the other's reads and writes fail and BIO_eof is 1. */
static int test_free_one_half(void)
{
    BIO *a = NULL, *b = NULL;
    char buf[16];
    BIO_MSG m;
    size_t done = 99;
    unsigned long e;

    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 0, &b, 0), 1);
    ASSERT_EQ(BIO_write(b, "pending", 7), 7);
    BIO_free(b);
    ASSERT_EQ(BIO_eof(a), 1);
    ASSERT_EQ(BIO_read(a, buf, sizeof(buf)), -1);
    ASSERT_FALSE(BIO_should_retry(a));
    e = ERR_get_error();
    /* OpenSSL 3.5 reports UNINITIALIZED (the half is torn down); BROKEN_PIPE is also fine. */
    ASSERT_EQ(ERR_GET_LIB(e), ERR_LIB_BIO);
    ASSERT_TRUE(ERR_GET_REASON(e) == BIO_R_BROKEN_PIPE || ERR_GET_REASON(e) == BIO_R_UNINITIALIZED);
    ASSERT_NO_ERROR();
    ASSERT_EQ(BIO_write(a, "x", 1), -1);
    ASSERT_FALSE(BIO_should_retry(a));
    e = ERR_get_error();
    ASSERT_EQ(ERR_GET_LIB(e), ERR_LIB_BIO);
    ASSERT_TRUE(ERR_GET_REASON(e) == BIO_R_BROKEN_PIPE || ERR_GET_REASON(e) == BIO_R_UNINITIALIZED);
    ASSERT_NO_ERROR();
    memset(&m, 0, sizeof(m));
    m.data = buf;
    m.data_len = sizeof(buf);
    ASSERT_EQ(BIO_recvmmsg(a, &m, sizeof(m), 1, 0, &done), 0);
    ASSERT_EQ(done, 0);
    ASSERT_ERROR_QUEUED();
    ASSERT_FALSE(BIO_err_is_non_fatal(ERR_peek_last_error()));
    ERR_clear_error();
    done = 99;
    ASSERT_EQ(BIO_sendmmsg(a, &m, sizeof(m), 1, 0, &done), 0);
    ASSERT_EQ(done, 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    BIO_free(a);
    return 1;
}

/* The mem BIO without a size grows: far more than 9 MTU-sized datagrams fit. */
static int test_mem_grows(void)
{
    BIO *m = BIO_new(BIO_s_dgram_mem());
    static unsigned char buf[1472];
    int i;

    ASSERT_NOT_NULL(m);
    for (i = 0; i < 200; i++) {
        tu_fill_pattern(buf, sizeof(buf), (uint32_t)i);
        ASSERT_EQ(BIO_write(m, buf, sizeof(buf)), sizeof(buf));
    }
    for (i = 0; i < 200; i++) {
        ASSERT_EQ(BIO_read(m, buf, sizeof(buf)), sizeof(buf));
        ASSERT_TRUE(tu_check_pattern(buf, sizeof(buf), (uint32_t)i));
    }
    ASSERT_EQ(BIO_read(m, buf, sizeof(buf)), -1);
    ASSERT_TRUE(BIO_should_retry(m));
    /* The dgram mem BIO has no settable EOF return. */
    ASSERT_LE(BIO_set_mem_eof_return(m, 0), 0);
    ERR_clear_error();
    BIO_free(m);
    return 1;
}

static int test_reset(void)
{
    struct ends e;

    ASSERT_TRUE(ends_new(&e, 0));
    ASSERT_EQ(BIO_write(e.w, "one", 3), 3);
    ASSERT_EQ(BIO_write(e.w, "two", 3), 3);
    ASSERT_EQ(BIO_ctrl_pending(e.r), 3);
    ASSERT_EQ(BIO_reset(e.w), 1);
    ASSERT_EQ(BIO_ctrl_pending(e.r), 0);
    ASSERT_EQ(BIO_write(e.w, "three", 5), 5);
    ASSERT_EQ(BIO_ctrl_pending(e.r), 5);
    ends_free(&e);
    return 1;
}

static int test_flush_and_wpending(void)
{
    struct ends e;

    ASSERT_TRUE(ends_new(&e, 0));
    ASSERT_EQ(BIO_flush(e.w), 1);
    ends_free(&e);
    return 1;
}

/* osslquic extra: a pollable half has an eventfd readable exactly while a datagram waits. */
#undef TU_ON_FAIL
#define TU_ON_FAIL goto out /* frees the pair when an assertion fails */

static int test_pollable(void)
{
#if HAVE_OSSLQUIC
    BIO *a = NULL, *b = NULL;
    BIO_POLL_DESCRIPTOR pd;
    char buf[16];
    int i;

    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 0, &b, 0), 1);
    ASSERT_EQ(OSSLQUIC_dgram_pair_set_pollable(b), 1);
    memset(&pd, 0, sizeof(pd));
    ASSERT_EQ(BIO_get_rpoll_descriptor(b, &pd), 1);
    ASSERT_EQ(pd.type, BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD);
    ASSERT_GE(pd.value.fd, 0);
    ASSERT_FALSE(tu_wait_readable(pd.value.fd, 0));
    for (i = 0; i < 3; i++) {
        ASSERT_EQ(BIO_write(a, "wake", 4), 4);
        ASSERT_TRUE(tu_wait_readable(pd.value.fd, 2000));
    }
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), 4);
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), 4);
    ASSERT_TRUE(tu_wait_readable(pd.value.fd, 0)); /* one still waits */
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), 4);
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), -1); /* empty: the fd goes quiet */
    ASSERT_FALSE(tu_wait_readable(pd.value.fd, 0));
    /* again after draining */
    ASSERT_EQ(BIO_write(a, "more", 4), 4);
    ASSERT_TRUE(tu_wait_readable(pd.value.fd, 2000));
    BIO_free(a);
    BIO_free(b);
    return 1;
out:
    BIO_free(a);
    BIO_free(b);
    return 0;
#else
    tu_skip("osslquic extension");
#endif
    return 1;
}

#undef TU_ON_FAIL
#define TU_ON_FAIL return 0

/* Without the extension a pair half has no read poll descriptor (OpenSSL: "not pollable"). */
static int test_not_pollable_by_default(void)
{
    struct ends e;
    BIO_POLL_DESCRIPTOR pd;

    ASSERT_TRUE(ends_new(&e, 0));
    memset(&pd, 0, sizeof(pd));
    if (BIO_get_rpoll_descriptor(e.r, &pd) == 1)
        ASSERT_EQ(pd.type, BIO_POLL_DESCRIPTOR_TYPE_NONE);
    ERR_clear_error();
    ends_free(&e);
    return 1;
}

static void run_mode(int mem)
{
    mem_mode = mem;
    printf("  -- %s\n", mem ? "BIO_s_dgram_mem" : "BIO_s_dgram_pair");
    RUN(test_method_types);
    RUN(test_mtu_default);
    RUN(test_fill_then_retry);
    RUN(test_empty_read);
    RUN(test_mmsg_19_46);
    RUN(test_zero_length);
    RUN(test_peer_needs_caps);
    RUN(test_caps_crosswired);
    RUN(test_peer_unspec_without_source);
    RUN(test_addresses_pass);
    RUN(test_no_trunc);
    RUN(test_mtu_round_trip);
    RUN(test_pending_is_next_size);
    RUN(test_write_guarantee);
    RUN(test_reset);
    RUN(test_flush_and_wpending);
    RUN(test_not_pollable_by_default);
    if (!mem) {
        RUN(test_set0_local_addr);
        RUN(test_explicit_sizes);
        RUN(test_manual_pair);
        RUN(test_free_one_half);
        RUN(test_pollable);
    } else {
        RUN(test_mem_grows);
    }
}

int main(int argc, char **argv)
{
    tu_init(argc, argv);
    run_mode(0);
    run_mode(1);
    return tu_finish();
}
