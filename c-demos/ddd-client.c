/*
 * ddd-client: the load client of the DDD server demos, on osslquic's OpenSSL API.
 *
 *   ddd-client [-c CONCURRENCY] [-n CONNECTIONS] [-d SECONDS] [-p PATH] [-s STREAMS]
 *              [--ports P1,P2,...] [--ca FILE] [--name NAME] [-t SECONDS] [-q] host port
 *
 * Runs CONNECTIONS connections (default 1), CONCURRENCY at a time (default 1; one thread
 * each, blocking I/O). Connection i goes to the i-th port of --ports, round robin (default:
 * `port`). Each connection fetches PATH (default /1000): TLS (built without USE_QUIC): one
 * request "GET PATH\r\n" per connection, the answer read to close_notify; QUIC (-DUSE_QUIC):
 * STREAMS requests (default 1), each on a new bidirectional stream, each read to FIN; ALPN
 * from $DEMO_ALPN's first name (default hq-interop). A "/N" answer must be exactly N bytes,
 * byte i = i % 251; any other answer must be non-empty. The server certificate is verified
 * against --ca (default build/certs/ca.pem) for NAME (default: host).
 *
 * Prints one summary line on stdout:
 *   ok N failed N bytes N seconds S conn/s X MB/s Y requests N req/s X p50_ms X p99_ms Y
 * and one line per failed connection on stderr; exits 0 only if every connection succeeded.
 * requests: answers read in full, from every connection (a failed one's earlier answers too).
 * p50_ms, p99_ms: their latency, request sent (QUIC: stream opened) to answer read in full,
 * the handshake left out; nearest rank over the first LAT_MAX requests (0 if none).
 * -t bounds each connection's socket waits (default 30 s): no call blocks forever.
 * -d (benchmarks): start connections, and QUIC streams on them, for SECONDS, then finish the
 * requests in flight (a connection ends early, with fewer than STREAMS requests, rather than
 * stretch the run with a tail of fewer clients); -n is then an upper bound (default: none),
 * and only failures make the exit status non-zero.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PERIOD 251
#define MAX_PORTS 16
/* Latencies kept for the percentiles: 8 MB at most, touched only as far as used; far more
 * requests than a benchmark's seconds bring. Later requests are counted but not sampled. */
#define LAT_MAX (1 << 21)

static const char *host, *name, *path = "/1000", *cafile = "build/certs/ca.pem";
static int ports[MAX_PORTS], nports;
static int nconns = 1, concurrency = 1, streams = 1, quiet, timeout_s = 30, duration_s, have_n;
static double deadline; /* -d: no connection starts after this */
static uint64_t expect_len; /* for "/N" */
static int expect_pattern;
static SSL_CTX *ctx;
static struct sockaddr_in server;

static atomic_int next_conn;
static atomic_int n_ok, n_failed;
static atomic_uint_fast64_t n_bytes;
static atomic_uint_fast64_t n_reqs;
static uint32_t *lat_us; /* LAT_MAX entries */
static atomic_size_t n_lat;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One answer read in full, its request sent at t0 (now_s). */
static void request_done(double t0)
{
    double us = (now_s() - t0) * 1e6;
    size_t i = atomic_fetch_add(&n_lat, 1);
    atomic_fetch_add(&n_reqs, 1);
    if (i < LAT_MAX)
        lat_us[i] = us < 4e9 ? (uint32_t)us : UINT32_MAX;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0 < q <= 1) of the n sorted latencies, in ms, by nearest rank. */
static double quantile_ms(const uint32_t *v, size_t n, double q)
{
    size_t rank = (size_t)ceil(q * (double)n);
    if (n == 0)
        return 0;
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1] / 1e3;
}

static void fail(int idx, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char ebuf[200] = "";
    if (e != 0)
        ERR_error_string_n(e, ebuf, sizeof(ebuf));
    ERR_clear_error();
    fprintf(stderr, "ddd-client: connection %d: %s%s%s\n", idx, what, ebuf[0] ? ": " : "", ebuf);
}

/* Reads an answer to its end (ZERO_RETURN) and checks it; returns its length or -1. */
static int64_t read_answer(SSL *s, int idx)
{
    unsigned char buf[65536];
    uint64_t got = 0;
    char msg[160];
    for (;;) {
        size_t n, i;
        int r = SSL_read_ex(s, buf, sizeof(buf), &n);
        if (r <= 0) {
            int e = SSL_get_error(s, r);
            if (e == SSL_ERROR_ZERO_RETURN)
                break;
            snprintf(msg, sizeof(msg), "read failed after %" PRIu64 " bytes (SSL error %d%s)", got, e,
                     e == SSL_ERROR_SYSCALL ? ", timeout or socket error" : "");
            fail(idx, msg);
            return -1;
        }
        if (expect_pattern) {
            if (got + n > expect_len) {
                snprintf(msg, sizeof(msg), "more than the %" PRIu64 " bytes expected", expect_len);
                fail(idx, msg);
                return -1;
            }
            for (i = 0; i < n; i++) {
                if (buf[i] != (unsigned char)((got + i) % PERIOD)) {
                    snprintf(msg, sizeof(msg), "byte %" PRIu64 " is %u, expected %u", got + i, buf[i],
                             (unsigned)((got + i) % PERIOD));
                    fail(idx, msg);
                    return -1;
                }
            }
        }
        got += n;
    }
    ERR_clear_error();
    if (expect_pattern && got != expect_len) {
        snprintf(msg, sizeof(msg), "%" PRIu64 " bytes, expected %" PRIu64, got, expect_len);
        fail(idx, msg);
        return -1;
    }
    if (!expect_pattern && got == 0) {
        fail(idx, "empty answer");
        return -1;
    }
    return (int64_t)got;
}

static int write_all(SSL *s, const char *p, size_t n)
{
    size_t w = 0;
    return SSL_write_ex(s, p, n, &w) == 1 && w == n;
}

/* One connection; returns the bytes received, or -1. */
static int64_t one_connection(int idx)
{
    int port = ports[idx % nports], fd, r;
    struct sockaddr_in sa = server;
    struct timeval tv = {timeout_s, 0};
    char req[1100];
    int64_t total = 0;
    SSL *ssl = NULL;

    snprintf(req, sizeof(req), "GET %s\r\n", path);
    sa.sin_port = htons((uint16_t)port);
#ifdef USE_QUIC
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
#else
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
#endif
    if (fd < 0) {
        fail(idx, strerror(errno));
        return -1;
    }
    /* The bound on every wait: the TLS socket's reads and writes time out (then fail). QUIC
     * waits are bounded by the library's idle timeout (30 s). */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
#ifndef USE_QUIC
    {
        /* The request follows the handshake's Finished at once: without this, Nagle holds it
         * back until the server's delayed ACK (40 ms on Linux). */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
#endif
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        char msg[80];
        snprintf(msg, sizeof(msg), "connect to port %d: %s", port, strerror(errno));
        fail(idx, msg);
        close(fd);
        return -1;
    }
    ssl = SSL_new(ctx);
    if (ssl == NULL || !SSL_set_fd(ssl, fd) || !SSL_set1_host(ssl, name)) {
        fail(idx, "SSL setup");
        goto bad;
    }
    /* SNI only for a name, not an address literal. */
    if (inet_addr(name) == INADDR_NONE && !SSL_set_tlsext_host_name(ssl, name)) {
        fail(idx, "SNI");
        goto bad;
    }
    if ((r = SSL_connect(ssl)) != 1) {
        char msg[80];
        snprintf(msg, sizeof(msg), "handshake with port %d failed (SSL error %d)", port, SSL_get_error(ssl, r));
        fail(idx, msg);
        goto bad;
    }
#ifdef USE_QUIC
    {
        int k;
        for (k = 0; k < streams; k++) {
            double t0;
            SSL *st;
            int64_t got;
            if (k > 0 && duration_s > 0 && now_s() >= deadline)
                break;
            t0 = now_s();
            st = SSL_new_stream(ssl, 0);
            if (st == NULL) {
                fail(idx, "SSL_new_stream");
                goto bad;
            }
            if (!write_all(st, req, strlen(req)) || !SSL_stream_conclude(st, 0)) {
                fail(idx, "sending the request");
                SSL_free(st);
                goto bad;
            }
            got = read_answer(st, idx);
            SSL_free(st);
            if (got < 0)
                goto bad;
            request_done(t0);
            total += got;
        }
    }
#else
    {
        double t0 = now_s();
        if (!write_all(ssl, req, strlen(req))) {
            fail(idx, "sending the request");
            goto bad;
        }
        if ((total = read_answer(ssl, idx)) < 0)
            goto bad;
        request_done(t0);
    }
#endif
#ifdef USE_QUIC
    /* Every answer is in, so CONNECTION_CLOSE at once (RAPID) and no closing period to sit
     * out: a waiting client would measure the closing period, not the server. */
    SSL_shutdown_ex(ssl, SSL_SHUTDOWN_FLAG_RAPID, NULL, 0);
#else
    SSL_shutdown(ssl); /* our close_notify; the server's was read */
#endif
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return total;
bad:
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return -1;
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        int idx = atomic_fetch_add(&next_conn, 1);
        int64_t got;
        if (idx >= nconns || (duration_s > 0 && now_s() >= deadline))
            break;
        got = one_connection(idx);
        if (got < 0) {
            atomic_fetch_add(&n_failed, 1);
        } else {
            atomic_fetch_add(&n_ok, 1);
            atomic_fetch_add(&n_bytes, (uint64_t)got);
        }
    }
    return NULL;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: ddd-client [-c CONCURRENCY] [-n CONNECTIONS] [-d SECONDS] [-p PATH] [-s STREAMS]\n"
            "                  [--ports P1,P2,...] [--ca FILE] [--name NAME] [-t SECONDS] [-q] host port\n");
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        return 0;
    *out = (int)v;
    return 1;
}

static int parse_ports(const char *s)
{
    char buf[256], *tok, *save = NULL;
    snprintf(buf, sizeof(buf), "%s", s);
    nports = 0;
    for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (nports == MAX_PORTS || !parse_int(tok, 1, 65535, &ports[nports]))
            return 0;
        nports++;
    }
    return nports > 0;
}

int main(int argc, char **argv)
{
    int i, npos = 0, port = 0, have_ports = 0;
    pthread_t *threads;
    double t0, secs;
    size_t nlat;
    const char *alpn_env = getenv("DEMO_ALPN");
    unsigned char alpn[256];
    size_t alen;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-c") == 0 && v) {
            if (!parse_int(v, 1, 10000, &concurrency))
                return usage(), 2;
            i++;
        } else if (strcmp(a, "-n") == 0 && v) {
            if (!parse_int(v, 0, 100000000, &nconns))
                return usage(), 2;
            have_n = 1, i++;
        } else if (strcmp(a, "-d") == 0 && v) {
            if (!parse_int(v, 1, 3600, &duration_s))
                return usage(), 2;
            i++;
        } else if (strcmp(a, "-s") == 0 && v) {
            if (!parse_int(v, 1, 100000, &streams))
                return usage(), 2;
            i++;
        } else if (strcmp(a, "-t") == 0 && v) {
            if (!parse_int(v, 1, 3600, &timeout_s))
                return usage(), 2;
            i++;
        } else if (strcmp(a, "-p") == 0 && v) {
            path = v, i++;
        } else if (strcmp(a, "--ports") == 0 && v) {
            if (!parse_ports(v))
                return usage(), 2;
            have_ports = 1, i++;
        } else if (strcmp(a, "--ca") == 0 && v) {
            cafile = v, i++;
        } else if (strcmp(a, "--name") == 0 && v) {
            name = v, i++;
        } else if (strcmp(a, "-q") == 0) {
            quiet = 1;
        } else if (a[0] == '-') {
            return usage(), 2;
        } else if (npos == 0) {
            host = a, npos++;
        } else if (npos == 1) {
            if (!parse_int(a, 1, 65535, &port))
                return usage(), 2;
            npos++;
        } else {
            return usage(), 2;
        }
    }
    if (npos != 2 || path[0] != '/' || strlen(path) > 1000)
        return usage(), 2;
    if (!have_ports) {
        ports[0] = port;
        nports = 1;
    }
    if (name == NULL)
        name = host;
    memset(&server, 0, sizeof(server));
    server.sin_family = AF_INET;
    if (inet_pton(AF_INET, host, &server.sin_addr) != 1) {
        fprintf(stderr, "ddd-client: host must be an IPv4 address (loopback), not %s\n", host);
        return 2;
    }
    {
        uint64_t v = 0;
        const char *s = path + 1;
        expect_pattern = *s != '\0';
        for (; *s != '\0'; s++) {
            if (*s < '0' || *s > '9' || v > ((uint64_t)1 << 40)) {
                expect_pattern = 0;
                break;
            }
            v = v * 10 + (uint64_t)(*s - '0');
        }
        expect_len = v;
    }

#ifdef USE_QUIC
    ctx = SSL_CTX_new(OSSL_QUIC_client_method());
#else
    ctx = SSL_CTX_new(TLS_client_method());
#endif
    if (ctx == NULL || !SSL_CTX_load_verify_locations(ctx, cafile, NULL)) {
        fprintf(stderr, "ddd-client: cannot load the CA file %s\n", cafile);
        ERR_print_errors_fp(stderr);
        return 2;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
#ifdef USE_QUIC
    /* ALPN: the first name of $DEMO_ALPN (the servers' list), default hq-interop. */
    {
        const char *a = alpn_env && *alpn_env ? alpn_env : "hq-interop";
        const char *comma = strchr(a, ',');
        alen = comma ? (size_t)(comma - a) : strlen(a);
        if (alen == 0 || alen > 255) {
            fprintf(stderr, "ddd-client: bad DEMO_ALPN\n");
            return 2;
        }
        alpn[0] = (unsigned char)alen;
        memcpy(alpn + 1, a, alen);
        if (SSL_CTX_set_alpn_protos(ctx, alpn, (unsigned)alen + 1) != 0) {
            ERR_print_errors_fp(stderr);
            return 2;
        }
    }
#else
    (void)alpn_env, (void)alpn, (void)alen;
#endif

    if (duration_s > 0 && !have_n)
        nconns = 100000000;
    if (concurrency > nconns)
        concurrency = nconns > 0 ? nconns : 1;
    threads = calloc((size_t)concurrency, sizeof(*threads));
    lat_us = malloc(LAT_MAX * sizeof(*lat_us));
    if (threads == NULL || lat_us == NULL)
        return 2;
    t0 = now_s();
    deadline = t0 + duration_s;
    for (i = 0; i < concurrency; i++) {
        if (pthread_create(&threads[i], NULL, worker, NULL) != 0) {
            fprintf(stderr, "ddd-client: pthread_create failed\n");
            return 2;
        }
    }
    for (i = 0; i < concurrency; i++)
        pthread_join(threads[i], NULL);
    secs = now_s() - t0;
    if (secs <= 0)
        secs = 1e-9;
    nlat = atomic_load(&n_lat) < LAT_MAX ? atomic_load(&n_lat) : LAT_MAX;
    qsort(lat_us, nlat, sizeof(*lat_us), cmp_u32);
    /* New fields go at the end: callers match the line's start (tests/demos) or look fields
     * up by name (bench/ddd.sh). */
    printf("ok %d failed %d bytes %" PRIu64 " seconds %.3f conn/s %.1f MB/s %.2f requests %" PRIu64
           " req/s %.1f p50_ms %.3f p99_ms %.3f\n",
           atomic_load(&n_ok), atomic_load(&n_failed), (uint64_t)atomic_load(&n_bytes), secs,
           atomic_load(&n_ok) / secs, (double)atomic_load(&n_bytes) / secs / 1e6, (uint64_t)atomic_load(&n_reqs),
           (double)atomic_load(&n_reqs) / secs, quantile_ms(lat_us, nlat, 0.50), quantile_ms(lat_us, nlat, 0.99));
    if (!quiet && atomic_load(&n_failed) > 0)
        fprintf(stderr, "ddd-client: %d of %d connections failed\n", atomic_load(&n_failed),
                atomic_load(&n_ok) + atomic_load(&n_failed));
    free(threads);
    free(lat_us);
    SSL_CTX_free(ctx);
    if (duration_s > 0)
        return atomic_load(&n_failed) == 0 ? 0 : 1;
    return atomic_load(&n_failed) == 0 && atomic_load(&n_ok) == nconns ? 0 : 1;
}
