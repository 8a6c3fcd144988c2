/*
 * test_dgram_sock: BIO_s_datagram / BIO_new_dgram over real UDP sockets on 127.0.0.1 and ::1.
 *
 * Every sub-test runs once per family. Sockets are non-blocking; a reader waits for data with
 * poll() and a timeout (tu_wait_readable), never with a sleep. mmsg loops accept partial
 * counts, as BIO_sendmmsg(3) says callers must.
 */
#include "testutil.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define WAIT_MS 5000

static int fam = AF_INET; /* the family the current round runs with */

/* Two UDP BIOs on loopback, A and B, each with its bound address and fd. */
struct duo {
    BIO *a, *b;
    BIO_ADDR *aa, *ba;
    int fa, fb;
};

static void duo_free(struct duo *d)
{
    BIO_free(d->a);
    BIO_free(d->b);
    BIO_ADDR_free(d->aa);
    BIO_ADDR_free(d->ba);
    memset(d, 0, sizeof(*d));
}

static int duo_new(struct duo *d)
{
    memset(d, 0, sizeof(*d));
    d->a = tu_udp_bio(fam, &d->aa, &d->fa);
    d->b = tu_udp_bio(fam, &d->ba, &d->fb);
    if (d->a == NULL || d->b == NULL) {
        duo_free(d);
        return 0;
    }
    return 1;
}

#define MSG_AT(m, stride, i) ((BIO_MSG *)((char *)(m) + (size_t)(i) * (stride)))

/*
 * Sends items [0, n) with as many BIO_sendmmsg calls as it takes: partial counts are
 * followed by another call, and a non-fatal failure by a bounded wait for writability.
 * Returns the number sent.
 */
static size_t send_all(BIO *b, int fd, void *m, size_t stride, size_t n)
{
    size_t sent = 0, done;
    uint64_t deadline = tu_now_ms() + WAIT_MS;

    while (sent < n && tu_now_ms() < deadline) {
        done = 0;
        if (BIO_sendmmsg(b, MSG_AT(m, stride, sent), stride, n - sent, 0, &done)) {
            sent += done;
            continue;
        }
        if (!BIO_err_is_non_fatal(ERR_peek_last_error()))
            break;
        ERR_clear_error();
        tu_wait_fd(fd, POLLOUT, 100);
    }
    return sent;
}

/* Receives into items [0, n) the same way; returns the number received. */
static size_t recv_all(BIO *b, int fd, void *m, size_t stride, size_t n)
{
    size_t got = 0, done;
    uint64_t deadline = tu_now_ms() + WAIT_MS;

    while (got < n && tu_now_ms() < deadline) {
        done = 0;
        if (BIO_recvmmsg(b, MSG_AT(m, stride, got), stride, n - got, 0, &done)) {
            got += done;
            continue;
        }
        if (!BIO_err_is_non_fatal(ERR_peek_last_error()))
            break;
        ERR_clear_error();
        tu_wait_readable(fd, 100);
    }
    return got;
}

static int test_write_read_and_peer(void)
{
    struct duo d;
    BIO_ADDR *peer = BIO_ADDR_new();
    char buf[256];

    ASSERT_NOT_NULL(peer);
    ASSERT_TRUE(duo_new(&d));
    ASSERT_EQ(BIO_dgram_set_peer(d.a, d.ba), 1);
    ASSERT_EQ(BIO_write(d.a, "hello, datagram", 15), 15);
    ASSERT_TRUE(tu_wait_readable(d.fb, WAIT_MS));
    ASSERT_EQ(BIO_read(d.b, buf, sizeof(buf)), 15);
    ASSERT_MEM_EQ(buf, "hello, datagram", 15);
    /* The reader's peer is now the sender's bound address. */
    ASSERT_GT(BIO_dgram_get_peer(d.b, peer), 0);
    ASSERT_ADDR_EQ(peer, d.aa);
    /* ... so B can answer with a plain BIO_write. */
    ASSERT_EQ(BIO_write(d.b, "reply", 5), 5);
    ASSERT_TRUE(tu_wait_readable(d.fa, WAIT_MS));
    ASSERT_EQ(BIO_read(d.a, buf, sizeof(buf)), 5);
    ASSERT_MEM_EQ(buf, "reply", 5);
    ASSERT_GT(BIO_dgram_get_peer(d.a, peer), 0);
    ASSERT_ADDR_EQ(peer, d.ba);
    /* BIO_write_ex / BIO_read_ex move one datagram too. */
    {
        size_t n = 0;

        ASSERT_EQ(BIO_write_ex(d.a, "ex", 2, &n), 1);
        ASSERT_EQ(n, 2);
        ASSERT_TRUE(tu_wait_readable(d.fb, WAIT_MS));
        n = 0;
        ASSERT_EQ(BIO_read_ex(d.b, buf, sizeof(buf), &n), 1);
        ASSERT_EQ(n, 2);
        ASSERT_MEM_EQ(buf, "ex", 2);
    }
    duo_free(&d);
    BIO_ADDR_free(peer);
    return 1;
}

/* A caller's struct that starts with a BIO_MSG: stride is larger than sizeof(BIO_MSG). */
struct big_msg {
    BIO_MSG m;
    uint64_t canary[3];
};

#define CANARY 0x5a5a5a5a5a5a5a5aULL

static int test_mmsg_128_one_byte(void)
{
    struct duo d;
    struct big_msg *tx = calloc(128, sizeof(*tx)), *rx = calloc(128, sizeof(*rx));
    unsigned char txb[128], rxb[128];
    BIO_ADDR *peers[128];
    size_t i, n;

    ASSERT_NOT_NULL(tx);
    ASSERT_NOT_NULL(rx);
    ASSERT_TRUE(duo_new(&d));
    for (i = 0; i < 128; i++) {
        txb[i] = (unsigned char)i;
        tx[i].m.data = &txb[i];
        tx[i].m.data_len = 1;
        tx[i].m.peer = d.ba;
        tx[i].canary[0] = tx[i].canary[1] = tx[i].canary[2] = CANARY;
        peers[i] = BIO_ADDR_new();
        ASSERT_NOT_NULL(peers[i]);
        rxb[i] = 0xee;
        rx[i].m.data = &rxb[i];
        rx[i].m.data_len = 1;
        rx[i].m.peer = peers[i];
        rx[i].canary[0] = rx[i].canary[1] = rx[i].canary[2] = CANARY;
    }
    n = send_all(d.a, d.fa, tx, sizeof(tx[0]), 128);
    ASSERT_EQ(n, 128);
    n = recv_all(d.b, d.fb, rx, sizeof(rx[0]), 128);
    ASSERT_EQ(n, 128);
    for (i = 0; i < 128; i++) {
        ASSERT_EQ(tx[i].m.flags, 0);
        ASSERT_EQ(rx[i].m.data_len, 1);
        ASSERT_EQ(rxb[i], i);
        ASSERT_EQ(rx[i].m.flags, 0);
        ASSERT_ADDR_EQ(peers[i], d.aa);
        ASSERT_U64_EQ(rx[i].canary[0], CANARY);
        ASSERT_U64_EQ(rx[i].canary[2], CANARY);
        ASSERT_U64_EQ(tx[i].canary[1], CANARY);
        BIO_ADDR_free(peers[i]);
    }
    duo_free(&d);
    free(tx);
    free(rx);
    return 1;
}

/* Explicit partial counts: send 128 in slices of 1, 2, 3, ... and receive in slices of 5. */
#undef TU_ON_FAIL
#define TU_ON_FAIL goto out /* these clean up when an assertion fails */

static int test_mmsg_slices(void)
{
    struct duo d = {0};
    BIO_MSG tx[128], rx[128];
    unsigned char txb[128], rxb[128];
    size_t i, off, k, done;

    ASSERT_TRUE(duo_new(&d));
    memset(tx, 0, sizeof(tx));
    memset(rx, 0, sizeof(rx));
    for (i = 0; i < 128; i++) {
        txb[i] = (unsigned char)(i * 3);
        tx[i].data = &txb[i];
        tx[i].data_len = 1;
        tx[i].peer = d.ba;
        rx[i].data = &rxb[i];
        rx[i].data_len = 1;
    }
    for (off = 0, k = 1; off < 128; off += k, k++) {
        size_t want = k < 128 - off ? k : 128 - off;

        ASSERT_EQ(send_all(d.a, d.fa, &tx[off], sizeof(BIO_MSG), want), want);
    }
    for (off = 0; off < 128;) {
        size_t want = 128 - off < 5 ? 128 - off : 5;

        /* Wait on the BIO's read poll descriptor before every call, as an event loop does:
         * a datagram the BIO already took from the socket (say, a GRO segment beyond the
         * caller's batch) must not hide behind an fd that is no longer readable. */
        if (!tu_wait_readable(d.fb, 1000)) {
            done = 0;
            if (BIO_recvmmsg(d.b, &rx[off], sizeof(BIO_MSG), want, 0, &done) && done > 0)
                TU_FAIL("%zu datagram(s) were held inside the BIO while its fd was not readable",
                        done);
            break;
        }
        done = 77;
        if (!BIO_recvmmsg(d.b, &rx[off], sizeof(BIO_MSG), want, 0, &done)) {
            ASSERT_TRUE(BIO_err_is_non_fatal(ERR_peek_last_error()));
            ERR_clear_error();
            continue;
        }
        ASSERT_LE(done, want);
        off += done;
    }
    ASSERT_EQ(off, 128);
    for (i = 0; i < 128; i++)
        ASSERT_EQ(rxb[i], (unsigned char)(i * 3));
    /* num_msg 0 is a successful no-op. */
    done = 5;
    ASSERT_EQ(BIO_recvmmsg(d.b, rx, sizeof(BIO_MSG), 0, 0, &done), 1);
    ASSERT_EQ(done, 0);
    duo_free(&d);
    return 1;
out:
    duo_free(&d);
    return 0;
}

#undef TU_ON_FAIL
#define TU_ON_FAIL return 0

static int test_send_no_peer_unconnected(void)
{
    struct duo d;
    BIO_MSG m;
    size_t done = 99;

    ASSERT_TRUE(duo_new(&d));
    memset(&m, 0, sizeof(m));
    m.data = "x";
    m.data_len = 1;
    ASSERT_EQ(BIO_sendmmsg(d.a, &m, sizeof(m), 1, 0, &done), 0);
    ASSERT_EQ(done, 0);
    ASSERT_ERROR_QUEUED();
    ASSERT_FALSE(BIO_err_is_non_fatal(ERR_peek_last_error()));
    ERR_clear_error();
    /* mmsg ignore the peer set with BIO_dgram_set_peer: still no destination. */
    ASSERT_EQ(BIO_dgram_set_peer(d.a, d.ba), 1);
    done = 99;
    ASSERT_EQ(BIO_sendmmsg(d.a, &m, sizeof(m), 1, 0, &done), 0);
    ASSERT_EQ(done, 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    /* A plain BIO_write with no peer at all fails too, and not as "retry later". */
    ASSERT_LE(BIO_write(d.b, "x", 1), 0);
    ASSERT_FALSE(BIO_should_retry(d.b));
    ERR_clear_error();
    duo_free(&d);
    return 1;
}

static int test_local_before_enable(void)
{
    struct duo d;
    BIO_MSG m;
    BIO_ADDR *local = BIO_ADDR_new();
    char buf[64];
    size_t done = 99;
    int en = -1;

    ASSERT_NOT_NULL(local);
    ASSERT_TRUE(duo_new(&d));
    ASSERT_EQ(BIO_dgram_get_local_addr_enable(d.a, &en), 1);
    ASSERT_EQ(en, 0);
    /* send with `local` before enabling */
    memset(&m, 0, sizeof(m));
    m.data = "abc";
    m.data_len = 3;
    m.peer = d.ba;
    m.local = d.aa;
    ASSERT_EQ(BIO_sendmmsg(d.a, &m, sizeof(m), 1, 0, &done), 0);
    ASSERT_EQ(done, 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_LOCAL_ADDR_NOT_AVAILABLE);
    ASSERT_NO_ERROR();
    /* a datagram really sent, then recv with `local` before enabling */
    m.local = NULL;
    ASSERT_EQ(send_all(d.a, d.fa, &m, sizeof(m), 1), 1);
    ASSERT_TRUE(tu_wait_readable(d.fb, WAIT_MS));
    memset(&m, 0, sizeof(m));
    m.data = buf;
    m.data_len = 61; /* flags must be 0 on input (BIO_sendmmsg(3)); data_len is the sentinel */
    m.local = local;
    done = 99;
    ASSERT_EQ(BIO_recvmmsg(d.b, &m, sizeof(m), 1, 0, &done), 0);
    ASSERT_EQ(done, 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_LOCAL_ADDR_NOT_AVAILABLE);
    ASSERT_NO_ERROR();
    ASSERT_EQ(m.data_len, 61);
    ASSERT_EQ(m.flags, 0);
    ASSERT_EQ(BIO_ADDR_family(local), AF_UNSPEC);
    /* The datagram is still there. */
    m.local = NULL;
    ASSERT_EQ(recv_all(d.b, d.fb, &m, sizeof(m), 1), 1);
    ASSERT_EQ(m.data_len, 3);
    ASSERT_MEM_EQ(buf, "abc", 3);
    duo_free(&d);
    BIO_ADDR_free(local);
    return 1;
}

static int test_local_after_enable(void)
{
    struct duo d;
    BIO_MSG m;
    BIO_ADDR *local = BIO_ADDR_new(), *peer = BIO_ADDR_new(), *badport;
    char buf[64];
    size_t done;
    int en = 0;

    ASSERT_NOT_NULL(local);
    ASSERT_NOT_NULL(peer);
    ASSERT_TRUE(duo_new(&d));
    ASSERT_GT(BIO_dgram_get_local_addr_cap(d.b), 0);
    ASSERT_EQ(BIO_dgram_set_local_addr_enable(d.b, 1), 1);
    ASSERT_EQ(BIO_dgram_get_local_addr_enable(d.b, &en), 1);
    ASSERT_EQ(en, 1);
    ASSERT_EQ(BIO_dgram_set_local_addr_enable(d.a, 1), 1);

    /* A sends with an explicit source (its own bound address, port included). */
    memset(&m, 0, sizeof(m));
    m.data = "local";
    m.data_len = 5;
    m.peer = d.ba;
    m.local = d.aa;
    ASSERT_EQ(send_all(d.a, d.fa, &m, sizeof(m), 1), 1);
    /* B learns the destination (its bound address) and the source. */
    memset(&m, 0, sizeof(m));
    m.data = buf;
    m.data_len = sizeof(buf);
    m.local = local;
    m.peer = peer;
    ASSERT_EQ(recv_all(d.b, d.fb, &m, sizeof(m), 1), 1);
    ASSERT_EQ(m.data_len, 5);
    ASSERT_MEM_EQ(buf, "local", 5);
    ASSERT_ADDR_EQ(local, d.ba);
    ASSERT_ADDR_EQ(peer, d.aa);

    /* Source port 0 means "the bound port". */
    badport = tu_loopback(fam, 0);
    ASSERT_NOT_NULL(badport);
    memset(&m, 0, sizeof(m));
    m.data = "p0";
    m.data_len = 2;
    m.peer = d.ba;
    m.local = badport;
    ASSERT_EQ(send_all(d.a, d.fa, &m, sizeof(m), 1), 1);
    memset(&m, 0, sizeof(m));
    m.data = buf;
    m.data_len = sizeof(buf);
    m.peer = peer;
    ASSERT_EQ(recv_all(d.b, d.fb, &m, sizeof(m), 1), 1);
    ASSERT_ADDR_EQ(peer, d.aa);
    BIO_ADDR_free(badport);

    /* Any other source port fails with PORT_MISMATCH. */
    badport = tu_loopback(fam, 9);
    ASSERT_NOT_NULL(badport);
    memset(&m, 0, sizeof(m));
    m.data = "pm";
    m.data_len = 2;
    m.peer = d.ba;
    m.local = badport;
    done = 99;
    ASSERT_EQ(BIO_sendmmsg(d.a, &m, sizeof(m), 1, 0, &done), 0);
    ASSERT_EQ(done, 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_PORT_MISMATCH);
    BIO_ADDR_free(badport);

    /* Disabling again makes `local` an error again. */
    ASSERT_EQ(BIO_dgram_set_local_addr_enable(d.a, 0), 1);
    memset(&m, 0, sizeof(m));
    m.data = "x";
    m.data_len = 1;
    m.peer = d.ba;
    m.local = d.aa;
    ASSERT_EQ(BIO_sendmmsg(d.a, &m, sizeof(m), 1, 0, &done), 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_LOCAL_ADDR_NOT_AVAILABLE);
    duo_free(&d);
    BIO_ADDR_free(local);
    BIO_ADDR_free(peer);
    return 1;
}

static int test_empty_nonblocking(void)
{
    struct duo d;
    BIO_MSG m;
    char buf[16];
    size_t done = 99;

    ASSERT_TRUE(duo_new(&d));
    memset(&m, 0, sizeof(m));
    m.data = buf;
    m.data_len = sizeof(buf);
    ASSERT_EQ(BIO_recvmmsg(d.b, &m, sizeof(m), 1, 0, &done), 0);
    ASSERT_EQ(done, 0);
    ASSERT_NE(ERR_peek_last_error(), 0);
    ASSERT_TRUE(BIO_err_is_non_fatal(ERR_peek_last_error()));
    ERR_clear_error();
    /* The legacy read path: -1 (or 0) with the retry flags, not an error. */
    ASSERT_LE(BIO_read(d.b, buf, sizeof(buf)), 0);
    ASSERT_TRUE(BIO_should_retry(d.b));
    ASSERT_TRUE(BIO_should_read(d.b));
    ERR_clear_error();
    duo_free(&d);
    return 1;
}

static int test_truncation(void)
{
    struct duo d;
    unsigned char big[100], buf[100];
    BIO_MSG m;

    ASSERT_TRUE(duo_new(&d));
    tu_fill_pattern(big, sizeof(big), 7);
    ASSERT_EQ(BIO_dgram_get_no_trunc(d.b), 0);
    ASSERT_EQ(BIO_dgram_set_peer(d.a, d.ba), 1);
    ASSERT_EQ(BIO_write(d.a, big, 100), 100);
    ASSERT_EQ(BIO_write(d.a, "next", 4), 4);
    ASSERT_EQ(BIO_write(d.a, big, 100), 100);
    ASSERT_TRUE(tu_wait_readable(d.fb, WAIT_MS));
    /* BIO_read silently truncates and discards the rest of the datagram. */
    memset(buf, 0, sizeof(buf));
    ASSERT_EQ(BIO_read(d.b, buf, 40), 40);
    ASSERT_MEM_EQ(buf, big, 40);
    ASSERT_TRUE(tu_wait_readable(d.fb, WAIT_MS));
    ASSERT_EQ(BIO_read(d.b, buf, sizeof(buf)), 4);
    ASSERT_MEM_EQ(buf, "next", 4);
    /* recvmmsg: data_len is what fits. */
    memset(&m, 0, sizeof(m));
    m.data = buf;
    m.data_len = 33;
    ASSERT_EQ(recv_all(d.b, d.fb, &m, sizeof(m), 1), 1);
    ASSERT_EQ(m.data_len, 33);
    ASSERT_MEM_EQ(buf, big, 33);
    duo_free(&d);
    return 1;
}

/* 1000 datagrams of varying size arrive in order (sent in batches, read between batches so
 * that the socket buffer never overflows). */
static int test_ordering_1000(void)
{
    struct duo d;
    enum { N = 1000, BATCH = 50, MAXSZ = 300 };
    static unsigned char txb[BATCH][MAXSZ], rxb[BATCH][MAXSZ + 16];
    BIO_MSG tx[BATCH], rx[BATCH];
    size_t base, i;

    ASSERT_TRUE(duo_new(&d));
    for (base = 0; base < N; base += BATCH) {
        memset(tx, 0, sizeof(tx));
        memset(rx, 0, sizeof(rx));
        for (i = 0; i < BATCH; i++) {
            uint32_t seq = (uint32_t)(base + i);
            size_t len = 4 + (seq * 37) % (MAXSZ - 4);

            memcpy(txb[i], &seq, 4);
            tu_fill_pattern(txb[i] + 4, len - 4, seq);
            tx[i].data = txb[i];
            tx[i].data_len = len;
            tx[i].peer = d.ba;
            rx[i].data = rxb[i];
            rx[i].data_len = sizeof(rxb[i]);
        }
        ASSERT_EQ(send_all(d.a, d.fa, tx, sizeof(BIO_MSG), BATCH), BATCH);
        ASSERT_EQ(recv_all(d.b, d.fb, rx, sizeof(BIO_MSG), BATCH), BATCH);
        for (i = 0; i < BATCH; i++) {
            uint32_t seq;

            ASSERT_EQ(rx[i].data_len, tx[i].data_len);
            memcpy(&seq, rxb[i], 4);
            ASSERT_EQ(seq, base + i);
            ASSERT_TRUE(tu_check_pattern(rxb[i] + 4, rx[i].data_len - 4, seq));
        }
    }
    duo_free(&d);
    return 1;
}

static TU_UNUSED int kernel_has_gso(void)
{
    int fd = socket(fam, SOCK_DGRAM, 0), v = 1000, ok;

    if (fd < 0)
        return 0;
    ok = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, sizeof(v)) == 0;
    close(fd);
    return ok;
}

/*
 * Sends `n` datagrams from A to `dest` in one BIO_sendmmsg call (looping only on partial
 * counts), with sizes from sizes[i]; each carries its index and a pattern.
 */
static int send_sized(BIO *a, int fa, BIO_ADDR *const *dests, const size_t *sizes, size_t n,
                      unsigned char (*bufs)[1500])
{
    BIO_MSG *tx = calloc(n, sizeof(BIO_MSG));
    size_t i, sent;

    if (tx == NULL)
        return 0;
    for (i = 0; i < n; i++) {
        uint32_t seq = (uint32_t)i;

        memcpy(bufs[i], &seq, 4);
        tu_fill_pattern(bufs[i] + 4, sizes[i] - 4, seq);
        tx[i].data = bufs[i];
        tx[i].data_len = sizes[i];
        tx[i].peer = dests[i];
    }
    sent = send_all(a, fa, tx, sizeof(BIO_MSG), n);
    free(tx);
    return sent == n;
}

/* Receives `n` datagrams on b and checks sizes and contents against `want` indexes. */
static int recv_check(BIO *b, int fb, const size_t *sizes, const size_t *want, size_t n)
{
    BIO_MSG *rx = calloc(n, sizeof(BIO_MSG));
    unsigned char(*bufs)[2048] = calloc(n, sizeof(*bufs));
    size_t i;
    int ok = 0;

    if (rx == NULL || bufs == NULL)
        goto out;
    for (i = 0; i < n; i++) {
        rx[i].data = bufs[i];
        rx[i].data_len = sizeof(bufs[i]);
    }
    if (recv_all(b, fb, rx, sizeof(BIO_MSG), n) != n) {
        TU_FAIL("received fewer than %zu datagrams", n);
        goto out;
    }
    for (i = 0; i < n; i++) {
        uint32_t seq;

        memcpy(&seq, bufs[i], 4);
        if (seq != want[i] || rx[i].data_len != sizes[want[i]]
            || !tu_check_pattern(bufs[i] + 4, rx[i].data_len - 4, seq)) {
            TU_FAIL("datagram %zu: seq %u len %zu, expected seq %zu len %zu", i, seq,
                    rx[i].data_len, want[i], sizes[want[i]]);
            goto out;
        }
    }
    ok = 1;
out:
    free(rx);
    free(bufs);
    return ok;
}

static int test_gso_same_size(void)
{
    struct duo d;
    static unsigned char bufs[32][1500];
    BIO_ADDR *dests[32];
    size_t sizes[32], want[32], i;

    ASSERT_TRUE(duo_new(&d));
    for (i = 0; i < 32; i++) {
        sizes[i] = 1200;
        want[i] = i;
        dests[i] = d.ba;
    }
    ASSERT_TRUE(send_sized(d.a, d.fa, dests, sizes, 32, bufs));
#if HAVE_OSSLQUIC
    {
        OSSLQUIC_BIO_STATS st;

        memset(&st, 0xff, sizeof(st));
        ASSERT_EQ(OSSLQUIC_BIO_get_stats(d.a, &st), 1);
        ASSERT_U64_EQ(st.sent_dgrams, 32);
        ASSERT_GE(st.send_calls, 1);
        ASSERT_LE(st.send_calls, 2);
        if (kernel_has_gso())
            ASSERT_GE(st.gso_sends, 1);
        else
            tu_skip("kernel refuses UDP_SEGMENT: gso_sends not checked");
    }
#endif
    ASSERT_TRUE(recv_check(d.b, d.fb, sizes, want, 32));
    duo_free(&d);
    return 1;
}

/* With GSO and GRO switched off (osslquic extra) the same traffic goes the plain way and
 * still arrives intact; with them on, the receiver counts coalesced arrivals. */
static int test_offload_fallback(void)
{
#if HAVE_OSSLQUIC
    struct duo d;
    static unsigned char bufs[32][1500];
    BIO_ADDR *dests[32];
    size_t sizes[32], want[32], i;
    OSSLQUIC_BIO_STATS st;

    ASSERT_TRUE(duo_new(&d));
    for (i = 0; i < 32; i++) {
        sizes[i] = 1200;
        want[i] = i;
        dests[i] = d.ba;
    }
    ASSERT_EQ(OSSLQUIC_BIO_dgram_set_offload(d.a, 0, 0), 1);
    ASSERT_EQ(OSSLQUIC_BIO_dgram_set_offload(d.b, 0, 0), 1);
    ASSERT_TRUE(send_sized(d.a, d.fa, dests, sizes, 32, bufs));
    ASSERT_TRUE(recv_check(d.b, d.fb, sizes, want, 32));
    memset(&st, 0xff, sizeof(st));
    ASSERT_EQ(OSSLQUIC_BIO_get_stats(d.a, &st), 1);
    ASSERT_U64_EQ(st.gso_sends, 0);
    ASSERT_U64_EQ(st.sent_dgrams, 32);
    memset(&st, 0xff, sizeof(st));
    ASSERT_EQ(OSSLQUIC_BIO_get_stats(d.b, &st), 1);
    ASSERT_U64_EQ(st.gro_dgrams, 0);
    ASSERT_U64_EQ(st.recv_dgrams, 32);

    /* offload back on: GSO out, GRO in (where the kernel has them) */
    ASSERT_EQ(OSSLQUIC_BIO_dgram_set_offload(d.a, 1, 1), 1);
    ASSERT_EQ(OSSLQUIC_BIO_dgram_set_offload(d.b, 1, 1), 1);
    ASSERT_TRUE(send_sized(d.a, d.fa, dests, sizes, 32, bufs));
    ASSERT_TRUE(recv_check(d.b, d.fb, sizes, want, 32));
    ASSERT_EQ(OSSLQUIC_BIO_get_stats(d.b, &st), 1);
    ASSERT_U64_EQ(st.recv_dgrams, 64);
    if (kernel_has_gso()) {
        ASSERT_EQ(OSSLQUIC_BIO_get_stats(d.a, &st), 1);
        ASSERT_GE(st.gso_sends, 1);
        ASSERT_EQ(OSSLQUIC_BIO_get_stats(d.b, &st), 1);
        ASSERT_GE(st.gro_dgrams, 2);
    }
    duo_free(&d);
#else
    tu_skip("osslquic extension");
#endif
    return 1;
}

/* GSO output must look like 32 ordinary datagrams to a plain recvfrom() reader. */
static int test_gso_plain_receiver(void)
{
    BIO *a;
    BIO_ADDR *aa = NULL, *ra = NULL, *dests[32];
    static unsigned char bufs[32][1500];
    unsigned char in[2048];
    size_t sizes[32], i;
    int fa, rfd;

    a = tu_udp_bio(fam, &aa, &fa);
    ASSERT_NOT_NULL(a);
    rfd = tu_udp_socket(fam, &ra);
    ASSERT_GE(rfd, 0);
    for (i = 0; i < 32; i++) {
        sizes[i] = 1000;
        dests[i] = ra;
    }
    ASSERT_TRUE(send_sized(a, fa, dests, sizes, 32, bufs));
    for (i = 0; i < 32; i++) {
        ssize_t r;
        uint32_t seq;

        ASSERT_TRUE(tu_wait_readable(rfd, WAIT_MS));
        r = recvfrom(rfd, in, sizeof(in), 0, NULL, NULL);
        ASSERT_EQ(r, 1000);
        memcpy(&seq, in, 4);
        ASSERT_EQ(seq, i);
        ASSERT_TRUE(tu_check_pattern(in + 4, 996, seq));
    }
    ASSERT_FALSE(tu_wait_readable(rfd, 0));
    BIO_free(a);
    close(rfd);
    BIO_ADDR_free(aa);
    BIO_ADDR_free(ra);
    return 1;
}

/* A run with a shorter last datagram (allowed in one GSO send) arrives with exact sizes. */
static int test_gso_short_tail(void)
{
    struct duo d;
    static unsigned char bufs[11][1500];
    BIO_ADDR *dests[11];
    size_t sizes[11], want[11], i;

    ASSERT_TRUE(duo_new(&d));
    for (i = 0; i < 11; i++) {
        sizes[i] = i < 10 ? 1000 : 300;
        want[i] = i;
        dests[i] = d.ba;
    }
    ASSERT_TRUE(send_sized(d.a, d.fa, dests, sizes, 11, bufs));
    ASSERT_TRUE(recv_check(d.b, d.fb, sizes, want, 11));
    /* And a longer datagram after a run (must not be merged into it). */
    for (i = 0; i < 11; i++)
        sizes[i] = i < 10 ? 500 : 1400;
    ASSERT_TRUE(send_sized(d.a, d.fa, dests, sizes, 11, bufs));
    ASSERT_TRUE(recv_check(d.b, d.fb, sizes, want, 11));
    duo_free(&d);
    return 1;
}

/* Mixed sizes and destinations in one call: each receiver gets exactly its own, in order. */
static int test_mixed_sizes_and_peers(void)
{
    struct duo d;
    BIO *c;
    BIO_ADDR *ca = NULL, *dests[40];
    int fc;
    static unsigned char bufs[40][1500];
    size_t sizes[40], to_b[40], to_c[40], nb = 0, nc = 0, i;

    ASSERT_TRUE(duo_new(&d));
    c = tu_udp_bio(fam, &ca, &fc);
    ASSERT_NOT_NULL(c);
    for (i = 0; i < 40; i++) {
        /* runs of equal sizes, broken by size changes and destination changes */
        sizes[i] = (i / 4) % 3 == 0 ? 1200 : (i / 4) % 3 == 1 ? 700 : 64 + i;
        if ((i / 6) % 2 == 0) {
            dests[i] = d.ba;
            to_b[nb++] = i;
        } else {
            dests[i] = ca;
            to_c[nc++] = i;
        }
    }
    ASSERT_TRUE(send_sized(d.a, d.fa, dests, sizes, 40, bufs));
    ASSERT_TRUE(recv_check(d.b, d.fb, sizes, to_b, nb));
    ASSERT_TRUE(recv_check(c, fc, sizes, to_c, nc));
    BIO_free(c);
    BIO_ADDR_free(ca);
    duo_free(&d);
    return 1;
}

#undef TU_ON_FAIL
#define TU_ON_FAIL goto out

static int test_ctrls(void)
{
    struct duo d = {0};
    BIO_ADDR *peer = BIO_ADDR_new();
    BIO_POLL_DESCRIPTOR pd;
    int fd = -2, fl;

    ASSERT_NOT_NULL(peer);
    ASSERT_TRUE(duo_new(&d));
    ASSERT_EQ(BIO_method_type(d.a), BIO_TYPE_DGRAM);
    ASSERT_EQ(BIO_get_fd(d.a, &fd), d.fa);
    ASSERT_EQ(fd, d.fa);
    ASSERT_EQ(BIO_get_fd(d.a, NULL), d.fa);
    ASSERT_EQ(BIO_get_close(d.a), BIO_CLOSE);

    ASSERT_EQ(BIO_dgram_set_mtu(d.a, 1400), 1400);
    ASSERT_EQ(BIO_dgram_get_mtu(d.a), 1400);
    ASSERT_EQ(BIO_dgram_get_effective_caps(d.a),
              BIO_DGRAM_CAP_HANDLES_SRC_ADDR | BIO_DGRAM_CAP_HANDLES_DST_ADDR
                  | BIO_DGRAM_CAP_PROVIDES_SRC_ADDR | BIO_DGRAM_CAP_PROVIDES_DST_ADDR);
    ASSERT_EQ(BIO_dgram_get_no_trunc(d.a), 0);
    ASSERT_EQ(BIO_pending(d.a), 0);
    ASSERT_EQ(BIO_wpending(d.a), 0);
    ASSERT_EQ(BIO_flush(d.a), 1);

    memset(&pd, 0xff, sizeof(pd));
    ASSERT_EQ(BIO_get_rpoll_descriptor(d.a, &pd), 1);
    ASSERT_EQ(pd.type, BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD);
    ASSERT_EQ(pd.value.fd, d.fa);
    memset(&pd, 0xff, sizeof(pd));
    ASSERT_EQ(BIO_get_wpoll_descriptor(d.a, &pd), 1);
    ASSERT_EQ(pd.type, BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD);
    ASSERT_EQ(pd.value.fd, d.fa);

    /* set_nbio toggles O_NONBLOCK on the fd. */
    ASSERT_EQ(BIO_set_nbio(d.a, 0), 1);
    fl = fcntl(d.fa, F_GETFL);
    ASSERT_EQ(fl & O_NONBLOCK, 0);
    ASSERT_EQ(BIO_set_nbio(d.a, 1), 1);
    fl = fcntl(d.fa, F_GETFL);
    ASSERT_NE(fl & O_NONBLOCK, 0);

    /* No peer: detect finds nothing on an unconnected socket. */
    ASSERT_EQ(BIO_dgram_detect_peer_addr(d.a, peer), 0);
    ERR_clear_error();
    /* BIO_ctrl_dgram_connect only records the peer; the socket stays unconnected. */
    ASSERT_EQ(BIO_ctrl_dgram_connect(d.a, d.ba), 1);
    ASSERT_GT(BIO_dgram_get_peer(d.a, peer), 0);
    ASSERT_ADDR_EQ(peer, d.ba);
    ASSERT_GT(BIO_dgram_detect_peer_addr(d.a, peer), 0);
    ASSERT_ADDR_EQ(peer, d.ba);
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);

        ASSERT_EQ(getpeername(d.fa, (struct sockaddr *)&ss, &sl), -1);
        ASSERT_EQ(errno, ENOTCONN);
    }
    /* set_connected(NULL) forgets the peer. */
    ASSERT_EQ(BIO_ctrl_set_connected(d.a, NULL), 1);
    (void)BIO_dgram_get_peer(d.a, peer);
    ASSERT_EQ(BIO_ADDR_family(peer), AF_UNSPEC);
    duo_free(&d);
    BIO_ADDR_free(peer);
    return 1;
out:
    duo_free(&d);
    BIO_ADDR_free(peer);
    return 0;
}

#undef TU_ON_FAIL
#define TU_ON_FAIL return 0

/* A socket connect()ed before BIO_set_fd: the BIO takes the peer from getpeername and uses
 * send/recv; BIO_ctrl_set_connected does the same for a socket connected later. */
static int test_connected_socket(void)
{
    struct duo d;
    BIO *c;
    BIO_ADDR *peer = BIO_ADDR_new();
    char buf[32];
    int fd;

    ASSERT_NOT_NULL(peer);
    ASSERT_TRUE(duo_new(&d));
    fd = BIO_socket(fam, SOCK_DGRAM, IPPROTO_UDP, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(BIO_connect(fd, d.ba, 0), 1);
    ASSERT_EQ(BIO_socket_nbio(fd, 1), 1);
    c = BIO_new(BIO_s_datagram());
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(BIO_set_fd(c, fd, BIO_CLOSE), 1);
    ASSERT_GT(BIO_dgram_get_peer(c, peer), 0);
    ASSERT_ADDR_EQ(peer, d.ba);
    ASSERT_GT(BIO_dgram_detect_peer_addr(c, peer), 0);
    ASSERT_ADDR_EQ(peer, d.ba);
    ASSERT_EQ(BIO_write(c, "conn", 4), 4);
    ASSERT_TRUE(tu_wait_readable(d.fb, WAIT_MS));
    ASSERT_EQ(BIO_read(d.b, buf, sizeof(buf)), 4);
    ASSERT_MEM_EQ(buf, "conn", 4);
    /* mmsg with peer NULL works on a connected socket. */
    {
        BIO_MSG m;

        memset(&m, 0, sizeof(m));
        m.data = "mm";
        m.data_len = 2;
        ASSERT_EQ(send_all(c, fd, &m, sizeof(m), 1), 1);
        ASSERT_TRUE(tu_wait_readable(d.fb, WAIT_MS));
        ASSERT_EQ(BIO_read(d.b, buf, sizeof(buf)), 2);
    }
    BIO_free(c);

    /* A connected later, then told so. */
    ASSERT_EQ(BIO_connect(d.fa, d.ba, 0), 1);
    ASSERT_EQ(BIO_ctrl_set_connected(d.a, d.ba), 1);
    ASSERT_EQ(BIO_write(d.a, "late", 4), 4);
    ASSERT_TRUE(tu_wait_readable(d.fb, WAIT_MS));
    ASSERT_EQ(BIO_read(d.b, buf, sizeof(buf)), 4);
    ASSERT_MEM_EQ(buf, "late", 4);
    duo_free(&d);
    BIO_ADDR_free(peer);
    return 1;
}

/* BIO_NOCLOSE leaves the fd open after BIO_free. */
static int test_noclose(void)
{
    int fd = tu_udp_socket(fam, NULL);
    BIO *b;

    ASSERT_GE(fd, 0);
    b = BIO_new_dgram(fd, BIO_NOCLOSE);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_get_close(b), BIO_NOCLOSE);
    BIO_free(b);
    ASSERT_NE(fcntl(fd, F_GETFD), -1);
    close(fd);
    return 1;
}

/* up_ref: two references, two frees. */
static int test_up_ref(void)
{
    int fd = tu_udp_socket(fam, NULL);
    BIO *b;

    ASSERT_GE(fd, 0);
    b = BIO_new_dgram(fd, BIO_CLOSE);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_up_ref(b), 1);
    ASSERT_EQ(BIO_free(b), 1);
    ASSERT_NE(fcntl(fd, F_GETFD), -1); /* still one reference: fd open */
    ASSERT_EQ(BIO_get_fd(b, NULL), fd);
    ASSERT_EQ(BIO_free(b), 1);
    ASSERT_EQ(fcntl(fd, F_GETFD), -1); /* last reference closed it */
    return 1;
}

static void run_family(int f)
{
    fam = f;
    printf("  -- %s\n", f == AF_INET ? "IPv4 127.0.0.1" : "IPv6 ::1");
    RUN(test_write_read_and_peer);
    RUN(test_mmsg_128_one_byte);
    RUN(test_mmsg_slices);
    RUN(test_send_no_peer_unconnected);
    RUN(test_local_before_enable);
    RUN(test_local_after_enable);
    RUN(test_empty_nonblocking);
    RUN(test_truncation);
    RUN(test_ordering_1000);
    RUN(test_gso_same_size);
    RUN(test_gso_plain_receiver);
    RUN(test_offload_fallback);
    RUN(test_gso_short_tail);
    RUN(test_mixed_sizes_and_peers);
    RUN(test_ctrls);
    RUN(test_connected_socket);
    RUN(test_noclose);
    RUN(test_up_ref);
}

int main(int argc, char **argv)
{
    tu_init(argc, argv);
    run_family(AF_INET);
    if (tu_have_ipv6())
        run_family(AF_INET6);
    else
        printf("    skip: IPv6 loopback unavailable\n");
    return tu_finish();
}
