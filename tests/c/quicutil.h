/*
 * quicutil.h: what the QUIC test programs share on top of testutil.h: certificates, client
 * and server contexts, the run-size knob, thread CPU time, a bounded pump.
 *
 * Certificates come from build/certs (made by `cargo run --release --example gencert`), or
 * $OSSLQUIC_CERTS. TEST_SCALE (a fraction, default 1) scales the counts of the bulky
 * sub-tests down for instrumented runs (valgrind: TEST_SCALE=0.1).
 */
#ifndef OSSLQUIC_QUICUTIL_H
#define OSSLQUIC_QUICUTIL_H

#include "testutil.h"

#include <openssl/ssl.h>

#include <sys/resource.h>

/* Pumps the QUIC listener `l`, the client `c` and the server end `s` (NULL: not yet
 * accepted, skipped) until `cond`, waiting up to 1 ms on the client's descriptor `cfd`
 * between tries; fails the test after 10 s. */
#define QU_PUMP(l, c, s, cfd, cond)                                                            \
    do {                                                                                       \
        uint64_t qu_dl_ = tu_now_ms() + 10000;                                                 \
        while (!(cond)) {                                                                      \
            ASSERT_TRUE(tu_now_ms() < qu_dl_);                                                 \
            SSL_handle_events(l);                                                              \
            SSL_handle_events(c);                                                              \
            if ((s) != NULL)                                                                   \
                SSL_handle_events(s);                                                          \
            (void)tu_wait_readable(cfd, 1);                                                    \
        }                                                                                      \
    } while (0)

static char qu_certs[512] TU_UNUSED;
static const unsigned char qu_alpn[] TU_UNUSED = {13,  'o', 's', 's', 'l', 'q', 'u',
                                                   'i', 'c', '-', 't', 'e', 's', 't'};

static inline void qu_init(void)
{
    const char *d = getenv("OSSLQUIC_CERTS");

    snprintf(qu_certs, sizeof(qu_certs), "%s", d != NULL ? d : "build/certs");
}

static inline const char *qu_cert_path(const char *name)
{
    static __thread char buf[4][600];
    static __thread int k;
    char *b = buf[k++ & 3];

    snprintf(b, 600, "%s/%s", qu_certs, name);
    return b;
}

/* TEST_SCALE as a fraction in (0, 1]; 1 when unset or malformed. */
static inline double qu_scale(void)
{
    const char *v = getenv("TEST_SCALE");
    double s = (v != NULL && *v != '\0') ? strtod(v, NULL) : 1.0;

    return (s > 0.0 && s <= 1.0) ? s : 1.0;
}

/* n scaled by TEST_SCALE, at least `min`. */
static inline long qu_scaled(long n, long min)
{
    long s = (long)((double)n * qu_scale() + 0.5);

    return s < min ? min : s;
}

/* The server's ALPN choice: the test protocol when the client offers it. (A server context
 * negotiates ALPN only through this callback; SSL_CTX_set_alpn_protos is the client's offer.) */
static inline int qu_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                 const unsigned char *in, unsigned int inlen, void *arg)
{
    unsigned char *sel = NULL;

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&sel, outlen, qu_alpn, sizeof(qu_alpn), in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/*
 * A server context: the test chain and key, the test ALPN. When `threads` is set, the
 * context asks for a domain that supports blocking calls from many threads at once
 * (OpenSSL's server method defaults to MULTI_THREAD|LEGACY_BLOCKING, which its
 * openssl-quic-concurrency(7) calls unreliable with several threads blocked on one domain).
 */
/* QU_GROUPS (a groups list) narrows a context's key exchange: the race checkers set x25519,
 * since under valgrind an X25519MLKEM768 handshake (AWS-LC's ML-KEM in C, not assembly)
 * is slow enough for the blocking tests' handshakes to reach their idle timeout. */
static inline int qu_groups(SSL_CTX *c)
{
    const char *g = getenv("QU_GROUPS");

    return g == NULL || *g == '\0' || SSL_CTX_set1_groups_list(c, g) == 1;
}

static inline SSL_CTX *qu_server_ctx(int threads)
{
    SSL_CTX *c = SSL_CTX_new(OSSL_QUIC_server_method());

    if (c == NULL || !SSL_CTX_use_certificate_chain_file(c, qu_cert_path("chain.pem")) ||
        !SSL_CTX_use_PrivateKey_file(c, qu_cert_path("key.pem"), SSL_FILETYPE_PEM) ||
        !SSL_CTX_check_private_key(c)) {
        SSL_CTX_free(c);
        return NULL;
    }
    SSL_CTX_set_alpn_select_cb(c, qu_alpn_select, NULL);
    if (!qu_groups(c)) {
        SSL_CTX_free(c);
        return NULL;
    }
#ifdef SSL_DOMAIN_FLAG_BLOCKING
    if (threads &&
        !SSL_CTX_set_domain_flags(c, SSL_DOMAIN_FLAG_MULTI_THREAD | SSL_DOMAIN_FLAG_BLOCKING)) {
        SSL_CTX_free(c);
        return NULL;
    }
#else
    (void)threads;
#endif
    return c;
}

/* A client context that verifies the server against the test CA. */
static inline SSL_CTX *qu_client_ctx(void)
{
    SSL_CTX *c = SSL_CTX_new(OSSL_QUIC_client_method());

    if (c == NULL || !SSL_CTX_load_verify_locations(c, qu_cert_path("ca.pem"), NULL)) {
        SSL_CTX_free(c);
        return NULL;
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    if (!qu_groups(c)) {
        SSL_CTX_free(c);
        return NULL;
    }
    return c;
}

/* SSL_in_before, SSL_in_init and SSL_is_init_finished of `s` are `before`, `init`, `done`. */
static inline int qu_init_state_is(const SSL *s, int before, int init, int done)
{
    ASSERT_EQ(SSL_in_before(s), before);
    ASSERT_EQ(SSL_in_init(s), init);
    ASSERT_EQ(SSL_is_init_finished(s), done);
    return 1;
}

/* A non-blocking QUIC listener (SSL_new_listener `flags`) on a fresh UDP socket on 127.0.0.1:
 * its fd in *fd, its address in *addr; NULL on failure. */
static inline SSL *qu_listener(SSL_CTX *sctx, uint64_t flags, int *fd, BIO_ADDR **addr)
{
    SSL *l;

    *fd = tu_udp_socket(AF_INET, addr);
    if (*fd < 0)
        return NULL;
    l = SSL_new_listener(sctx, flags);
    if (l == NULL || SSL_set_blocking_mode(l, 0) != 1 || SSL_set_fd(l, *fd) != 1 ||
        SSL_listen(l) != 1) {
        SSL_free(l);
        return NULL;
    }
    return l;
}

/*
 * A client SSL for `peer` over socket fd: through SSL_set_fd, or (use_bio) through
 * SSL_set_bio with a BIO_s_datagram that does not own the fd. Host name and ALPN set.
 */
static inline SSL *qu_client(SSL_CTX *cctx, int fd, const BIO_ADDR *peer, int use_bio)
{
    SSL *s = SSL_new(cctx);

    if (s == NULL)
        return NULL;
    if (use_bio) {
        BIO *b = BIO_new_dgram(fd, BIO_NOCLOSE);

        if (b == NULL) {
            SSL_free(s);
            return NULL;
        }
        SSL_set_bio(s, b, b);
    } else if (SSL_set_fd(s, fd) != 1) {
        SSL_free(s);
        return NULL;
    }
    if (SSL_set1_initial_peer_addr(s, peer) != 1 || SSL_set1_host(s, "localhost") != 1 ||
        SSL_set_tlsext_host_name(s, "localhost") != 1 ||
        SSL_set_alpn_protos(s, qu_alpn, sizeof(qu_alpn)) != 0) {
        SSL_free(s);
        return NULL;
    }
    return s;
}

/*
 * Blocking SSL_shutdown, called until it returns 1 (bounded by 10 s). It returns 1 at once
 * when our streams flushed. When the peer closed first, before it acknowledged all we sent,
 * the flush can never finish: OpenSSL then returns 0 at once, without blocking, until the
 * connection has drained. Between such calls this waits for the network or the next timer,
 * as a non-blocking caller would, rather than spinning.
 */
static inline int qu_shutdown_blocking(SSL *s)
{
    uint64_t deadline = tu_now_ms() + 10000;
    int r;

    while ((r = SSL_shutdown(s)) != 1) {
        BIO_POLL_DESCRIPTOR d;
        struct timeval tv;
        int inf = 1;
        long ms = 100;

        ASSERT_EQ(r, 0);
        ASSERT_LT(tu_now_ms(), deadline);
        ASSERT_EQ(SSL_get_rpoll_descriptor(s, &d), 1);
        ASSERT_EQ(d.type, BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD);
        ASSERT_EQ(SSL_get_event_timeout(s, &tv, &inf), 1);
        if (!inf && tv.tv_sec * 1000 + tv.tv_usec / 1000 < ms)
            ms = tv.tv_sec * 1000 + tv.tv_usec / 1000 + 1;
        (void)tu_wait_readable(d.value.fd, (int)ms);
    }
    ERR_clear_error();
    return 1;
}

/* CPU time used so far by the calling thread, in microseconds. */
static inline uint64_t qu_thread_cpu_us(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_THREAD, &ru) != 0)
        return 0;
    return (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
           (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

/* CPU time used so far by the whole process, in microseconds. */
static inline uint64_t qu_process_cpu_us(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
           (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

/* Microseconds on the monotonic clock. */
static inline uint64_t qu_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

#endif /* OSSLQUIC_QUICUTIL_H */
