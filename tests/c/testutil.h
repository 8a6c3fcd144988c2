/*
 * testutil.h: the little harness every C test program in tests/c shares.
 *
 * A program is a list of sub-tests `static int test_x(void)` that return 1 on success.
 * ASSERT_* macros print the failing expression with both sides, the file and line, and the
 * thread's OpenSSL error queue, then run TU_ON_FAIL (by default `return 0`; a function that
 * must clean up can redefine it, e.g. to `goto err`). main() calls tu_init(), RUN() for
 * each sub-test, and returns tu_finish(): 0 when every sub-test passed.
 *
 * Every wait is bounded: tu_wait_readable() polls with a timeout, and tu_init() arms a
 * watchdog (TEST_TIMEOUT seconds, default 120) that kills a hung program with a message.
 *
 * Built with -DTEST_REAL_OPENSSL the same programs compile against a real OpenSSL 3.5
 * libcrypto (to check that the tests themselves expect OpenSSL's behaviour); osslquic-only
 * checks are then skipped (HAVE_OSSLQUIC is 0).
 */
#ifndef OSSLQUIC_TESTUTIL_H
#define OSSLQUIC_TESTUTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifdef TEST_REAL_OPENSSL
#define HAVE_OSSLQUIC 0
#else
#define HAVE_OSSLQUIC 1
#endif

#define TU_UNUSED __attribute__((unused))

static const char *tu_current TU_UNUSED = "(none)";
static int tu_cur_failed TU_UNUSED;
static int tu_n_passed TU_UNUSED, tu_n_failed TU_UNUSED, tu_n_skipped TU_UNUSED;
static const char *tu_only TU_UNUSED;
static pthread_mutex_t tu_print_lock TU_UNUSED = PTHREAD_MUTEX_INITIALIZER;

/* Prints (and so empties) this thread's error queue, indented, to stderr. */
static inline int tu_err_line(const char *str, size_t len, void *u)
{
    (void)u;
    fprintf(stderr, "      queued: %.*s", (int)len, str);
    if (len == 0 || str[len - 1] != '\n')
        fputc('\n', stderr);
    return 1;
}

static inline void tu_dump_errors(void)
{
    ERR_print_errors_cb(tu_err_line, NULL);
}

#define TU_FAIL(...)                                                                           \
    do {                                                                                       \
        pthread_mutex_lock(&tu_print_lock);                                                    \
        fprintf(stderr, "    FAILED %s at %s:%d: ", tu_current, __FILE__, __LINE__);           \
        fprintf(stderr, __VA_ARGS__);                                                          \
        fputc('\n', stderr);                                                                   \
        tu_dump_errors();                                                                      \
        fflush(stderr);                                                                        \
        tu_cur_failed = 1; /* under the lock: test threads may fail at the same time */        \
        pthread_mutex_unlock(&tu_print_lock);                                                  \
    } while (0)

#ifndef TU_ON_FAIL
#define TU_ON_FAIL return 0
#endif

#define ASSERT_TRUE(c)                                                                         \
    do {                                                                                       \
        if (!(c)) {                                                                            \
            TU_FAIL("expected true: %s", #c);                                                  \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
    } while (0)

#define ASSERT_FALSE(c)                                                                        \
    do {                                                                                       \
        if (c) {                                                                               \
            TU_FAIL("expected false: %s", #c);                                                 \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
    } while (0)

#define TU_CMP(a, op, b)                                                                       \
    do {                                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                                    \
        if (!(a_ op b_)) {                                                                     \
            TU_FAIL("%s %s %s: left %lld (0x%llx), right %lld (0x%llx)", #a, #op, #b, a_,      \
                    (unsigned long long)a_, b_, (unsigned long long)b_);                       \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
    } while (0)

#define ASSERT_EQ(a, b) TU_CMP(a, ==, b)
#define ASSERT_NE(a, b) TU_CMP(a, !=, b)
#define ASSERT_LT(a, b) TU_CMP(a, <, b)
#define ASSERT_LE(a, b) TU_CMP(a, <=, b)
#define ASSERT_GT(a, b) TU_CMP(a, >, b)
#define ASSERT_GE(a, b) TU_CMP(a, >=, b)

#define ASSERT_U64_EQ(a, b)                                                                    \
    do {                                                                                       \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);         \
        if (a_ != b_) {                                                                        \
            TU_FAIL("%s == %s: left %llu (0x%llx), right %llu (0x%llx)", #a, #b, a_, a_, b_,   \
                    b_);                                                                       \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
    } while (0)

#define ASSERT_NULL(p)                                                                         \
    do {                                                                                       \
        const void *p_ = (const void *)(p);                                                    \
        if (p_ != NULL) {                                                                      \
            TU_FAIL("%s == NULL: got %p", #p, p_);                                             \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
    } while (0)

#define ASSERT_NOT_NULL(p)                                                                     \
    do {                                                                                       \
        if ((const void *)(p) == NULL) {                                                       \
            TU_FAIL("%s != NULL: got NULL", #p);                                               \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
    } while (0)

#define ASSERT_PTR_EQ(a, b)                                                                    \
    do {                                                                                       \
        const void *a_ = (const void *)(a), *b_ = (const void *)(b);                           \
        if (a_ != b_) {                                                                        \
            TU_FAIL("%s == %s: left %p, right %p", #a, #b, a_, b_);                            \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                    \
    do {                                                                                       \
        const char *a_ = (a), *b_ = (b);                                                       \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                                 \
            TU_FAIL("%s == %s: left \"%s\", right \"%s\"", #a, #b, a_ ? a_ : "(null)",         \
                    b_ ? b_ : "(null)");                                                       \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
    } while (0)

#define ASSERT_STR_CONTAINS(hay, needle)                                                       \
    do {                                                                                       \
        const char *h_ = (hay), *n_ = (needle);                                                \
        if (h_ == NULL || n_ == NULL || strstr(h_, n_) == NULL) {                              \
            TU_FAIL("%s contains %s: \"%s\" does not contain \"%s\"", #hay, #needle,           \
                    h_ ? h_ : "(null)", n_ ? n_ : "(null)");                                   \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
    } while (0)

/* Compares n bytes; on a difference prints the first differing offset and both bytes. */
#define ASSERT_MEM_EQ(a, b, n)                                                                 \
    do {                                                                                       \
        const unsigned char *a_ = (const unsigned char *)(a), *b_ = (const unsigned char *)(b); \
        size_t n_ = (size_t)(n), i_;                                                           \
        for (i_ = 0; i_ < n_ && a_[i_] == b_[i_]; i_++)                                        \
            ;                                                                                  \
        if (i_ < n_) {                                                                         \
            TU_FAIL("%s == %s over %zu bytes: first difference at offset %zu: 0x%02x vs 0x%02x", \
                    #a, #b, n_, i_, a_[i_], b_[i_]);                                           \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
    } while (0)

/*
 * The contract for a failing call: at least one error is queued. ASSERT_ONE_ERROR also
 * requires that it is the only one, and leaves the queue empty.
 */
#define ASSERT_ERROR_QUEUED()                                                                  \
    do {                                                                                       \
        if (ERR_peek_error() == 0) {                                                           \
            TU_FAIL("expected an error on the queue, the queue is empty");                     \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
    } while (0)

#define ASSERT_NO_ERROR()                                                                      \
    do {                                                                                       \
        if (ERR_peek_error() != 0) {                                                           \
            TU_FAIL("expected an empty error queue");                                          \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
    } while (0)

#define ASSERT_ONE_ERROR()                                                                     \
    do {                                                                                       \
        unsigned long e1_ = ERR_peek_error();                                                  \
        if (e1_ == 0) {                                                                        \
            TU_FAIL("expected exactly one queued error, the queue is empty");                  \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
        ERR_get_error();                                                                       \
        if (ERR_peek_error() != 0) {                                                           \
            char b1_[256];                                                                     \
            ERR_error_string_n(e1_, b1_, sizeof(b1_));                                         \
            TU_FAIL("expected exactly one queued error; first was %s, more follow", b1_);      \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
    } while (0)

/* The oldest queued error is (lib, reason); it is removed. */
#define ASSERT_ERROR_IS(lib, reason)                                                           \
    do {                                                                                       \
        unsigned long e_ = ERR_peek_error();                                                   \
        if (e_ == 0 || ERR_GET_LIB(e_) != (lib) || ERR_GET_REASON(e_) != (reason)) {           \
            char b_[256] = "(empty queue)";                                                    \
            if (e_ != 0)                                                                       \
                ERR_error_string_n(e_, b_, sizeof(b_));                                        \
            TU_FAIL("expected error lib %d reason %d (%s, %s); got lib %d reason %d: %s",      \
                    (int)(lib), (int)(reason), #lib, #reason, e_ ? ERR_GET_LIB(e_) : 0,        \
                    e_ ? ERR_GET_REASON(e_) : 0, b_);                                          \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
        ERR_get_error();                                                                       \
    } while (0)

static inline uint64_t tu_now_ms(void);

/* Sub-test bookkeeping. */
static inline void tu_skip(const char *why)
{
    printf("    skip: %s: %s\n", tu_current, why);
    fflush(stdout);
    tu_n_skipped++;
}

#define RUN(fn) tu_run(#fn, fn)

static inline void tu_run(const char *name, int (*fn)(void))
{
    int ok;
    uint64_t t0;

    if (tu_only != NULL && strstr(name, tu_only) == NULL)
        return;
    tu_current = name;
    tu_cur_failed = 0;
    ERR_clear_error();
    t0 = tu_now_ms();
    ok = fn();
    if (!ok)
        tu_cur_failed = 1;
    if (tu_cur_failed) {
        tu_n_failed++;
        printf("  not ok %s (%llu ms)\n", name, (unsigned long long)(tu_now_ms() - t0));
    } else {
        tu_n_passed++;
        printf("  ok %s (%llu ms)\n", name, (unsigned long long)(tu_now_ms() - t0));
    }
    fflush(stdout);
    ERR_clear_error();
}

static inline void tu_watchdog(int sig)
{
    char msg[256];
    int n;

    (void)sig;
    n = snprintf(msg, sizeof(msg), "    TIMEOUT: watchdog fired in %s\n", tu_current);
    if (n > 0 && write(2, msg, (size_t)n) < 0)
        _exit(3);
    _exit(3);
}

static inline long tu_env_long(const char *name, long dflt)
{
    const char *v = getenv(name);

    return (v != NULL && *v != '\0') ? strtol(v, NULL, 10) : dflt;
}

static inline void tu_init(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, tu_watchdog);
    alarm((unsigned int)tu_env_long("TEST_TIMEOUT", 120));
    if (argc > 1)
        tu_only = argv[1];
    printf("%s\n", argv[0]);
}

static inline int tu_finish(void)
{
    printf("  %d sub-tests ok, %d not ok, %d skips\n", tu_n_passed, tu_n_failed, tu_n_skipped);
    return tu_n_failed != 0 || tu_n_passed == 0;
}

/* Time and waiting. */
static inline uint64_t tu_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* 1 when fd is readable within timeout_ms, 0 on timeout. */
static inline int tu_wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p;
    int r;

    p.fd = fd;
    p.events = events;
    p.revents = 0;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    return r > 0 && (p.revents & events) != 0;
}

static inline int tu_wait_readable(int fd, int timeout_ms)
{
    return tu_wait_fd(fd, POLLIN, timeout_ms);
}

/* Addresses. */
static inline BIO_ADDR *tu_loopback(int family, unsigned short port_host)
{
    BIO_ADDR *a = BIO_ADDR_new();
    int ok = 0;

    if (a == NULL)
        return NULL;
    if (family == AF_INET) {
        struct in_addr in;

        in.s_addr = htonl(INADDR_LOOPBACK);
        ok = BIO_ADDR_rawmake(a, AF_INET, &in, sizeof(in), htons(port_host));
    } else {
        ok = BIO_ADDR_rawmake(a, AF_INET6, &in6addr_loopback, sizeof(in6addr_loopback),
                              htons(port_host));
    }
    if (!ok) {
        BIO_ADDR_free(a);
        return NULL;
    }
    return a;
}

/* 1 when a and b name the same family, address and port. */
static inline int tu_addr_eq(const BIO_ADDR *a, const BIO_ADDR *b)
{
    unsigned char ra[128], rb[128];
    size_t la = sizeof(ra), lb = sizeof(rb);

    if (BIO_ADDR_family(a) != BIO_ADDR_family(b))
        return 0;
    if (BIO_ADDR_family(a) == AF_UNSPEC)
        return 1;
    if (!BIO_ADDR_rawaddress(a, ra, &la) || !BIO_ADDR_rawaddress(b, rb, &lb))
        return 0;
    return la == lb && memcmp(ra, rb, la) == 0 && BIO_ADDR_rawport(a) == BIO_ADDR_rawport(b);
}

/* "[host]:port" of a, for failure messages (static buffer: one use per printf). */
static inline const char *tu_addr_str(const BIO_ADDR *a, char *buf, size_t len)
{
    char *h, *s;

    if (a == NULL) {
        snprintf(buf, len, "(null)");
        return buf;
    }
    if (BIO_ADDR_family(a) == AF_UNSPEC) {
        snprintf(buf, len, "AF_UNSPEC");
        return buf;
    }
    h = BIO_ADDR_hostname_string(a, 1);
    s = BIO_ADDR_service_string(a, 1);
    snprintf(buf, len, "family %d [%s]:%s", BIO_ADDR_family(a), h ? h : "?", s ? s : "?");
    OPENSSL_free(h);
    OPENSSL_free(s);
    return buf;
}

#define ASSERT_ADDR_EQ(a, b)                                                                   \
    do {                                                                                       \
        if (!tu_addr_eq((a), (b))) {                                                           \
            char sa_[128], sb_[128];                                                           \
            TU_FAIL("address %s == %s: left %s, right %s", #a, #b,                             \
                    tu_addr_str((a), sa_, sizeof(sa_)), tu_addr_str((b), sb_, sizeof(sb_)));   \
            TU_ON_FAIL;                                                                        \
        }                                                                                      \
    } while (0)

/* The address fd is bound to, as a new BIO_ADDR (or NULL). */
static inline BIO_ADDR *tu_sockname(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    BIO_ADDR *a;
    int ok = 0;

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return NULL;
    a = BIO_ADDR_new();
    if (a == NULL)
        return NULL;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        ok = BIO_ADDR_rawmake(a, AF_INET, &s4->sin_addr, sizeof(s4->sin_addr), s4->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        ok = BIO_ADDR_rawmake(a, AF_INET6, &s6->sin6_addr, sizeof(s6->sin6_addr),
                              s6->sin6_port);
    }
    if (!ok) {
        BIO_ADDR_free(a);
        return NULL;
    }
    return a;
}

/*
 * A non-blocking UDP socket bound to the loopback address of `family` on an ephemeral port.
 * Returns the fd (or -1); *bound (if not NULL) gets the bound address, port read back.
 */
static inline int tu_udp_socket(int family, BIO_ADDR **bound)
{
    BIO_ADDR *any = tu_loopback(family, 0);
    int fd, rcvbuf = 4 << 20;

    if (any == NULL)
        return -1;
    fd = BIO_socket(family, SOCK_DGRAM, IPPROTO_UDP, 0);
    if (fd < 0 || !BIO_bind(fd, any, 0) || !BIO_socket_nbio(fd, 1)) {
        if (fd >= 0)
            close(fd);
        BIO_ADDR_free(any);
        return -1;
    }
    BIO_ADDR_free(any);
    /* Loopback drops datagrams when the receive buffer is full: give tests head-room. */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (bound != NULL) {
        *bound = tu_sockname(fd);
        if (*bound == NULL) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* A BIO_s_datagram over a fresh socket (see tu_udp_socket), owning the fd. */
static inline BIO *tu_udp_bio(int family, BIO_ADDR **bound, int *fd_out)
{
    int fd = tu_udp_socket(family, bound);
    BIO *b;

    if (fd < 0)
        return NULL;
    b = BIO_new_dgram(fd, BIO_CLOSE);
    if (b == NULL) {
        close(fd);
        if (bound != NULL) {
            BIO_ADDR_free(*bound);
            *bound = NULL;
        }
        return NULL;
    }
    if (fd_out != NULL)
        *fd_out = fd;
    return b;
}

/* 1 when ::1 can be bound here. */
static inline int tu_have_ipv6(void)
{
    struct sockaddr_in6 s6;
    int fd = socket(AF_INET6, SOCK_DGRAM, 0), ok;

    if (fd < 0)
        return 0;
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_addr = in6addr_loopback;
    ok = bind(fd, (struct sockaddr *)&s6, sizeof(s6)) == 0;
    close(fd);
    return ok;
}

/* A small deterministic PRNG (xorshift64*), so failures reproduce. */
static inline uint64_t tu_rand(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ULL;
}

/* Fills buf with a pattern determined by (seed, len), checked by tu_check_pattern. */
static inline void tu_fill_pattern(unsigned char *buf, size_t len, uint32_t seed)
{
    size_t i;

    for (i = 0; i < len; i++)
        buf[i] = (unsigned char)((seed * 31u + i * 7u + (seed >> 8)) & 0xff);
}

static inline int tu_check_pattern(const unsigned char *buf, size_t len, uint32_t seed)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (buf[i] != (unsigned char)((seed * 31u + i * 7u + (seed >> 8)) & 0xff))
            return 0;
    return 1;
}

#endif /* OSSLQUIC_TESTUTIL_H */
