/*
 * test_concurrency: one reader thread and one writer thread at a time on the same BIOs.
 *
 *  - a dgram pair, writer on A and reader on B, CONC_COUNT datagrams (default 1,000,000),
 *    sequence numbers, lengths and contents checked, all bounded by a deadline;
 *  - a pair end used by a reader and a writer thread at once, in both directions;
 *  - one UDP socket BIO that one thread writes while another reads (an echo on a second
 *    socket returns the datagrams; a window keeps the socket buffers from overflowing);
 *  - osslquic's pollable pair: a reader blocked in poll() on the eventfd wakes when the
 *    writer writes, and a busy reader makes far fewer wake-ups than datagrams.
 *
 * Environment: CONC_COUNT (datagrams), CONC_DEADLINE_S (per sub-test, default 100).
 */
#include "testutil.h"

#include <sched.h>
#include <stdatomic.h>

static long n_total;      /* datagrams for the main pair test */
static uint64_t deadline; /* of the running sub-test, in tu_now_ms() time */

static int past_deadline(void)
{
    return tu_now_ms() > deadline;
}

static void start_clock(void)
{
    deadline = tu_now_ms() + (uint64_t)tu_env_long("CONC_DEADLINE_S", 100) * 1000u;
}

/* Datagram `seq`: 8 bytes of sequence number, then a pattern; length 8 + seq % 57. */
static size_t dgram_len(uint64_t seq)
{
    return 8 + (size_t)(seq % 57);
}

static void dgram_make(unsigned char *buf, uint64_t seq)
{
    size_t len = dgram_len(seq), i;

    memcpy(buf, &seq, 8);
    for (i = 8; i < len; i++)
        buf[i] = (unsigned char)(seq + i);
}

/* 0 when good, else a description of the problem in `why`. */
static int dgram_check(const unsigned char *buf, size_t len, uint64_t want, char *why, size_t wl)
{
    uint64_t seq;
    size_t i;

    if (len < 8) {
        snprintf(why, wl, "datagram %llu: length %zu", (unsigned long long)want, len);
        return 0;
    }
    memcpy(&seq, buf, 8);
    if (seq != want) {
        snprintf(why, wl, "expected seq %llu, got %llu", (unsigned long long)want,
                 (unsigned long long)seq);
        return 0;
    }
    if (len != dgram_len(seq)) {
        snprintf(why, wl, "seq %llu: length %zu, expected %zu", (unsigned long long)seq, len,
                 dgram_len(seq));
        return 0;
    }
    for (i = 8; i < len; i++)
        if (buf[i] != (unsigned char)(seq + i)) {
            snprintf(why, wl, "seq %llu: byte %zu corrupted", (unsigned long long)seq, i);
            return 0;
        }
    return 1;
}

/* One direction of traffic: a writer thread and a reader thread. */
struct flow {
    BIO *w, *r;
    uint64_t n;
    int use_mmsg;
    atomic_int stop;
    atomic_ullong received;
    uint64_t sent;
    int w_ok, r_ok;
    char why[320];
    /* socket flavour */
    BIO_ADDR *dest;      /* where the writer sends (NULL: pair) */
    int wfd, rfd;        /* fds to wait on (-1: pair, spin) */
    uint64_t window;     /* max in flight (0: unlimited) */
};

static void flow_wait_write(struct flow *f)
{
    if (f->wfd >= 0)
        tu_wait_fd(f->wfd, POLLOUT, 50);
    else
        sched_yield();
}

static void flow_wait_read(struct flow *f)
{
    if (f->rfd >= 0)
        tu_wait_readable(f->rfd, 50);
    else
        sched_yield();
}

#define BATCH 32

static void *writer_main(void *arg)
{
    struct flow *f = arg;
    static _Thread_local unsigned char bufs[BATCH][64];
    BIO_MSG m[BATCH];
    uint64_t seq = 0;

    while (seq < f->n && !atomic_load(&f->stop)) {
        size_t k = 0, done = 0, room = BATCH;

        if (past_deadline()) {
            snprintf(f->why, sizeof(f->why), "writer: deadline passed after %llu sent",
                     (unsigned long long)seq);
            atomic_store(&f->stop, 1);
            return NULL;
        }
        if (f->window > 0) {
            uint64_t inflight = seq - atomic_load(&f->received);

            if (inflight >= f->window) {
                sched_yield();
                continue;
            }
            room = (size_t)(f->window - inflight) < BATCH ? (size_t)(f->window - inflight) : BATCH;
        }
        if (!f->use_mmsg) {
            int r;

            dgram_make(bufs[0], seq);
            r = BIO_write(f->w, bufs[0], (int)dgram_len(seq));
            if (r == (int)dgram_len(seq)) {
                seq++;
                continue;
            }
            if (r <= 0 && BIO_should_retry(f->w)) {
                ERR_clear_error();
                flow_wait_write(f);
                continue;
            }
            snprintf(f->why, sizeof(f->why), "writer: BIO_write returned %d at seq %llu", r,
                     (unsigned long long)seq);
            atomic_store(&f->stop, 1);
            return NULL;
        }
        memset(m, 0, sizeof(m));
        for (k = 0; k < room && seq + k < f->n; k++) {
            dgram_make(bufs[k], seq + k);
            m[k].data = bufs[k];
            m[k].data_len = dgram_len(seq + k);
            m[k].peer = f->dest;
        }
        if (BIO_sendmmsg(f->w, m, sizeof(BIO_MSG), k, 0, &done)) {
            seq += done;
            if (done == 0)
                flow_wait_write(f);
            continue;
        }
        if (!BIO_err_is_non_fatal(ERR_peek_last_error())) {
            char e[160];

            ERR_error_string_n(ERR_peek_last_error(), e, sizeof(e));
            snprintf(f->why, sizeof(f->why), "writer: sendmmsg failed at seq %llu: %s",
                     (unsigned long long)seq, e);
            atomic_store(&f->stop, 1);
            return NULL;
        }
        ERR_clear_error();
        flow_wait_write(f);
    }
    f->sent = seq;
    f->w_ok = seq == f->n;
    return NULL;
}

static void *reader_main(void *arg)
{
    struct flow *f = arg;
    static _Thread_local unsigned char bufs[BATCH][128];
    BIO_MSG m[BATCH];
    uint64_t seq = 0;
    size_t i;

    while (seq < f->n && !atomic_load(&f->stop)) {
        size_t done = 0;

        if (past_deadline()) {
            snprintf(f->why, sizeof(f->why), "reader: deadline passed after %llu received",
                     (unsigned long long)seq);
            atomic_store(&f->stop, 1);
            return NULL;
        }
        if (!f->use_mmsg) {
            int r = BIO_read(f->r, bufs[0], sizeof(bufs[0]));

            if (r > 0) {
                if (!dgram_check(bufs[0], (size_t)r, seq, f->why, sizeof(f->why))) {
                    atomic_store(&f->stop, 1);
                    return NULL;
                }
                atomic_store(&f->received, ++seq);
                continue;
            }
            if (BIO_should_retry(f->r)) {
                flow_wait_read(f);
                continue;
            }
            snprintf(f->why, sizeof(f->why), "reader: BIO_read returned %d at seq %llu", r,
                     (unsigned long long)seq);
            atomic_store(&f->stop, 1);
            return NULL;
        }
        memset(m, 0, sizeof(m));
        for (i = 0; i < BATCH; i++) {
            m[i].data = bufs[i];
            m[i].data_len = sizeof(bufs[i]);
        }
        if (BIO_recvmmsg(f->r, m, sizeof(BIO_MSG), BATCH, 0, &done)) {
            for (i = 0; i < done; i++) {
                if (!dgram_check(bufs[i], m[i].data_len, seq, f->why, sizeof(f->why))) {
                    atomic_store(&f->stop, 1);
                    return NULL;
                }
                seq++;
            }
            atomic_store(&f->received, seq);
            continue;
        }
        if (!BIO_err_is_non_fatal(ERR_peek_last_error())) {
            char e[160];

            ERR_error_string_n(ERR_peek_last_error(), e, sizeof(e));
            snprintf(f->why, sizeof(f->why), "reader: recvmmsg failed at seq %llu: %s",
                     (unsigned long long)seq, e);
            atomic_store(&f->stop, 1);
            return NULL;
        }
        ERR_clear_error();
        flow_wait_read(f);
    }
    f->r_ok = seq == f->n;
    return NULL;
}

static void flow_init(struct flow *f, BIO *w, BIO *r, uint64_t n, int use_mmsg)
{
    memset(f, 0, sizeof(*f));
    f->w = w;
    f->r = r;
    f->n = n;
    f->use_mmsg = use_mmsg;
    f->wfd = f->rfd = -1;
    atomic_init(&f->stop, 0);
    atomic_init(&f->received, 0);
}

static int flow_report(struct flow *f, const char *name)
{
    if (f->w_ok && f->r_ok)
        return 1;
    TU_FAIL("%s: %llu of %llu sent, %llu received: %s", name, (unsigned long long)f->sent,
            (unsigned long long)f->n, (unsigned long long)atomic_load(&f->received),
            f->why[0] ? f->why : "(no detail)");
    return 0;
}

static int test_pair_writer_reader(void)
{
    BIO *a = NULL, *b = NULL;
    struct flow f;
    pthread_t tw, tr;
    uint64_t t0;

    start_clock();
    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 1 << 20, &b, 1 << 20), 1);
    flow_init(&f, a, b, (uint64_t)n_total, 1);
    t0 = tu_now_ms();
    ASSERT_EQ(pthread_create(&tr, NULL, reader_main, &f), 0);
    ASSERT_EQ(pthread_create(&tw, NULL, writer_main, &f), 0);
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    printf("    %ld datagrams through the pair in %llu ms\n", n_total,
           (unsigned long long)(tu_now_ms() - t0));
    BIO_free(a);
    BIO_free(b);
    return flow_report(&f, "pair A->B (mmsg)");
}

static int test_pair_write_read_legacy(void)
{
    BIO *a = NULL, *b = NULL;
    struct flow f;
    pthread_t tw, tr;

    start_clock();
    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 0, &b, 0), 1); /* default (small) buffer: full often */
    flow_init(&f, a, b, (uint64_t)(n_total / 5 > 1000 ? n_total / 5 : 1000), 0);
    ASSERT_EQ(pthread_create(&tr, NULL, reader_main, &f), 0);
    ASSERT_EQ(pthread_create(&tw, NULL, writer_main, &f), 0);
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    BIO_free(a);
    BIO_free(b);
    return flow_report(&f, "pair A->B (BIO_write/BIO_read)");
}

/* Each end is written by one thread and read by another at the same time. */
static int test_pair_both_directions(void)
{
    BIO *a = NULL, *b = NULL;
    struct flow ab, ba;
    pthread_t t[4];
    uint64_t n = (uint64_t)(n_total / 10 > 1000 ? n_total / 10 : 1000);
    int i, ok;

    start_clock();
    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 1 << 16, &b, 1 << 16), 1);
    flow_init(&ab, a, b, n, 1);
    flow_init(&ba, b, a, n, 1);
    ASSERT_EQ(pthread_create(&t[0], NULL, reader_main, &ab), 0);
    ASSERT_EQ(pthread_create(&t[1], NULL, reader_main, &ba), 0);
    ASSERT_EQ(pthread_create(&t[2], NULL, writer_main, &ab), 0);
    ASSERT_EQ(pthread_create(&t[3], NULL, writer_main, &ba), 0);
    for (i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    BIO_free(a);
    BIO_free(b);
    ok = flow_report(&ab, "A->B");
    ok &= flow_report(&ba, "B->A");
    return ok;
}

/* Echo server on the main thread: returns what arrives on `y` to `to`, until told to stop. */
static int echo_loop(BIO *y, int fy, BIO_ADDR *to, struct flow *f)
{
    static unsigned char bufs[BATCH][128];
    BIO_MSG m[BATCH];
    uint64_t echoed = 0;
    size_t i;

    while (echoed < f->n && !atomic_load(&f->stop) && !past_deadline()) {
        size_t done = 0, sent = 0;

        memset(m, 0, sizeof(m));
        for (i = 0; i < BATCH; i++) {
            m[i].data = bufs[i];
            m[i].data_len = sizeof(bufs[i]);
        }
        if (!BIO_recvmmsg(y, m, sizeof(BIO_MSG), BATCH, 0, &done)) {
            ERR_clear_error();
            tu_wait_readable(fy, 50);
            continue;
        }
        for (i = 0; i < done; i++)
            m[i].peer = to;
        while (sent < done && !past_deadline()) {
            size_t k = 0;

            if (BIO_sendmmsg(y, &m[sent], sizeof(BIO_MSG), done - sent, 0, &k))
                sent += k;
            else {
                ERR_clear_error();
                tu_wait_fd(fy, POLLOUT, 50);
            }
        }
        echoed += done;
    }
    return echoed == f->n;
}

static int test_socket_one_bio_two_threads(void)
{
    BIO *x, *y;
    BIO_ADDR *xa = NULL, *ya = NULL;
    int fx, fy, echoed;
    struct flow f;
    pthread_t tw, tr;
    long n = n_total / 20;

    start_clock();
    if (n > 50000)
        n = 50000;
    if (n < 200)
        n = 200;
    x = tu_udp_bio(AF_INET, &xa, &fx);
    y = tu_udp_bio(AF_INET, &ya, &fy);
    ASSERT_NOT_NULL(x);
    ASSERT_NOT_NULL(y);
    flow_init(&f, x, x, (uint64_t)n, 1);
    f.dest = ya;
    f.wfd = fx;
    f.rfd = fx;
    f.window = 64;
    ASSERT_EQ(pthread_create(&tr, NULL, reader_main, &f), 0);
    ASSERT_EQ(pthread_create(&tw, NULL, writer_main, &f), 0);
    echoed = echo_loop(y, fy, xa, &f);
    if (!echoed)
        atomic_store(&f.stop, 1);
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    BIO_free(x);
    BIO_free(y);
    BIO_ADDR_free(xa);
    BIO_ADDR_free(ya);
    return flow_report(&f, "UDP socket BIO, writer and reader threads");
}

#if HAVE_OSSLQUIC

struct sleeper {
    BIO *b;
    int fd, rounds;
    atomic_int polling; /* round number the reader is about to poll for */
    atomic_int finished;
    int ok, spurious;
    char why[160];
};

static void *sleeper_rounds(struct sleeper *s);

static void *sleeper_main(void *arg)
{
    struct sleeper *s = arg;

    sleeper_rounds(s);
    atomic_store(&s->finished, 1);
    return NULL;
}

static void *sleeper_rounds(struct sleeper *s)
{
    char buf[64];
    int i;

    for (i = 1; i <= s->rounds; i++) {
        uint64_t t0 = tu_now_ms();
        int r;

        atomic_store(&s->polling, i);
        for (;;) {
            if (!tu_wait_readable(s->fd, 5000)) {
                snprintf(s->why, sizeof(s->why), "round %d: not woken within 5 s", i);
                return NULL;
            }
            r = BIO_read(s->b, buf, sizeof(buf));
            if (r == 4 && memcmp(buf, "wake", 4) == 0)
                break;
            /* A wake-up with nothing to read (the eventfd may stay readable until the reader
             * sees the pair empty) is tolerated once per round; more would be a busy loop. */
            if (r < 0 && BIO_should_retry(s->b) && ++s->spurious <= s->rounds
                && tu_now_ms() - t0 < 5000)
                continue;
            snprintf(s->why, sizeof(s->why),
                     "round %d: woken after %llu ms but read returned %d (%d spurious wake-ups)",
                     i, (unsigned long long)(tu_now_ms() - t0), r, s->spurious);
            return NULL;
        }
    }
    s->ok = 1;
    return NULL;
}

#undef TU_ON_FAIL
#define TU_ON_FAIL goto out /* frees the pair when an assertion fails */

/* The reader sleeps in poll() on the pair's eventfd; each write wakes it. */
static int test_pollable_wakes_blocked_reader(void)
{
    BIO *a = NULL, *b = NULL;
    BIO_POLL_DESCRIPTOR pd;
    struct sleeper s;
    pthread_t t;
    OSSLQUIC_BIO_STATS st;
    int i;

    start_clock();
    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 0, &b, 0), 1);
    ASSERT_EQ(OSSLQUIC_dgram_pair_set_pollable(b), 1);
    ASSERT_EQ(BIO_get_rpoll_descriptor(b, &pd), 1);
    ASSERT_EQ(pd.type, BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD);
    memset(&s, 0, sizeof(s));
    s.b = b;
    s.fd = pd.value.fd;
    s.rounds = 20;
    atomic_init(&s.polling, 0);
    atomic_init(&s.finished, 0);
    ASSERT_EQ(pthread_create(&t, NULL, sleeper_main, &s), 0);
    for (i = 1; i <= s.rounds; i++) {
        /* write once the reader has announced this round (it is in or about to enter poll) */
        while (atomic_load(&s.polling) < i && !atomic_load(&s.finished) && !past_deadline())
            sched_yield();
        if (atomic_load(&s.finished) || BIO_write(a, "wake", 4) != 4)
            break;
    }
    pthread_join(t, NULL);
    if (!s.ok)
        TU_FAIL("blocked reader: %s", s.why);
    printf("    %d rounds, %d wake-ups with nothing to read\n", s.rounds, s.spurious);
    memset(&st, 0, sizeof(st));
    ASSERT_EQ(OSSLQUIC_BIO_get_stats(b, &st), 1);
    ASSERT_GE(st.wakeups, 1);
    ASSERT_LE(st.wakeups, 20);
    BIO_free(a);
    BIO_free(b);
    return s.ok;
out:
    BIO_free(a);
    BIO_free(b);
    return 0;
}

#undef TU_ON_FAIL
#define TU_ON_FAIL return 0

/* A busy reader: wake-ups stay far below the number of datagrams. */
static int test_pollable_busy_few_wakeups(void)
{
    BIO *a = NULL, *b = NULL;
    BIO_POLL_DESCRIPTOR pd;
    struct flow f;
    pthread_t tw, tr;
    OSSLQUIC_BIO_STATS st;
    uint64_t n = (uint64_t)(n_total / 5 > 2000 ? n_total / 5 : 2000);
    int ok;

    start_clock();
    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 1 << 20, &b, 1 << 20), 1);
    ASSERT_EQ(OSSLQUIC_dgram_pair_set_pollable(b), 1);
    ASSERT_EQ(BIO_get_rpoll_descriptor(b, &pd), 1);
    flow_init(&f, a, b, n, 1);
    f.rfd = pd.value.fd; /* the reader sleeps on the eventfd when the pair is empty */
    ASSERT_EQ(pthread_create(&tr, NULL, reader_main, &f), 0);
    ASSERT_EQ(pthread_create(&tw, NULL, writer_main, &f), 0);
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    ok = flow_report(&f, "pollable pair");
    memset(&st, 0, sizeof(st));
    ASSERT_EQ(OSSLQUIC_BIO_get_stats(b, &st), 1);
    printf("    %llu datagrams, %llu wake-ups\n", (unsigned long long)n,
           (unsigned long long)st.wakeups);
    ASSERT_LT(st.wakeups * 8, n);
    BIO_free(a);
    BIO_free(b);
    return ok;
}

#endif

int main(int argc, char **argv)
{
    tu_init(argc, argv);
    n_total = tu_env_long("CONC_COUNT", 1000000);
    if (n_total < 1000)
        n_total = 1000;
    RUN(test_pair_writer_reader);
    RUN(test_pair_write_read_legacy);
    RUN(test_pair_both_directions);
    RUN(test_socket_one_bio_two_threads);
#if HAVE_OSSLQUIC
    RUN(test_pollable_wakes_blocked_reader);
    RUN(test_pollable_busy_few_wakeups);
#endif
    return tu_finish();
}
