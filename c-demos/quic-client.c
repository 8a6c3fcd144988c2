/*
 * quic-client: fetches paths from an hq-interop server over one QUIC connection, one stream
 * per request, non-blocking, on osslquic's QUIC API.
 *
 *   quic-client [options] host port path [path...]
 *     -a ALPN       ALPN to offer (default hq-interop)
 *     -c CAFILE     trust anchors (default build/certs/ca.pem); the server certificate is
 *                   verified (SSL_VERIFY_PEER) against host, or -s NAME
 *     -s NAME       name to verify and send as SNI (default: host; no SNI for an IP address)
 *     -k            do not verify the server (SSL_VERIFY_NONE)
 *     -n COUNT      fetch every path COUNT times (default 1)
 *     -p PARALLEL   at most PARALLEL streams open at once (default: all requests at once)
 *     -t SECONDS    overall time limit (default 60): every wait is bounded by it
 *     -u            update the keys (SSL_key_update) once connected, before the requests
 *     -d COUNT      once connected, send COUNT RFC 9221 datagrams (sizes 1..1000, each a
 *                   distinct pattern) and wait for each to come back (an echoing server)
 *     -m ADDR       after the first request, move to a new socket bound to local IPv4
 *                   address ADDR (e.g. 127.0.0.2) with SSL_set_fd: an active migration
 *     -z            0-RTT: fetch the paths once, then again over a second connection that
 *                   resumes the first's session and sends its requests as early data
 *                   (SSL_write_early_data, SSL_stream_conclude) before the handshake completes;
 *                   prints whether the server accepted them (rejected ones are sent again)
 *     -v            print text bodies and one line per stream to stderr
 *
 * Each request is "GET /path\r\n" then FIN on a new bidirectional stream; the body is read
 * until FIN. For a path "/N" (N decimal) the body must be exactly N bytes with byte i equal
 * to i % 251 (see quic-server.c); other bodies are only counted. Prints one summary line
 * (requests, bytes, seconds, MB/s with MB = 10^6 bytes) and exits 0 only if every request
 * succeeded, the connection shut down cleanly and all of it fitted in the time limit.
 *
 * Built with -DNO_STREAM_API (a library without SSL_new_stream) it can make one request
 * only, on the connection's default stream.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PERIOD 251

enum req_state { REQ_WAITING, REQ_OPEN, REQ_DONE };

struct req {
    const char *path;
    SSL *s;
    enum req_state state;
    char line[1100];
    size_t line_len, line_off;
    int expect_pattern;
    uint64_t expect_len, got;
    double t0, t1;
};

static int verbose;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "quic-client: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    ERR_print_errors_fp(stderr);
    return 0;
}

static int parse_n(const char *s, uint64_t *n)
{
    uint64_t v = 0;
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *n = v;
    return 1;
}

/* A non-blocking UDP socket for host:port, and the peer address as a BIO_ADDR. */
static int wait_net(SSL *conn, double deadline, int nosleep);

/* -d: sends `count` datagrams (datagram i: i % 1000 + 1 bytes of value i % 251 after a 4-byte
 * index) and reads until every one came back intact; 1 if so within the deadline. */
static int datagram_echo(SSL *conn, long count, double deadline)
{
#ifdef OSSLQUIC_HAVE_OSSLQUIC_CTX_SET_DATAGRAMS
    unsigned char buf[2048], got[1024];
    long sent = 0, back = 0, i;
    size_t n, len;

    memset(got, 0, sizeof(got));
    if (count > (long)sizeof(got) * 8)
        count = (long)sizeof(got) * 8;
    while (back < count) {
        while (sent < count) {
            uint32_t idx = (uint32_t)sent;
            len = (size_t)(sent % 1000) + 5;
            memcpy(buf, &idx, 4);
            memset(buf + 4, (int)(sent % 251), len - 4);
            if (OSSLQUIC_write_datagram(conn, buf, len, &n) != 1)
                break; /* WANT_WRITE: the send buffer is full for now */
            sent++;
        }
        ERR_clear_error();
        while (OSSLQUIC_read_datagram(conn, buf, sizeof(buf), &n) == 1) {
            uint32_t idx;
            if (n < 5) {
                fprintf(stderr, "quic-client: a datagram of %zu bytes came back\n", n);
                return 0;
            }
            memcpy(&idx, buf, 4);
            for (i = 4; i < (long)n; i++)
                if (buf[i] != (unsigned char)(idx % 251) || n != (size_t)(idx % 1000) + 5 || idx >= (uint32_t)count) {
                    fprintf(stderr, "quic-client: datagram %u came back altered\n", (unsigned)idx);
                    return 0;
                }
            if (!(got[idx / 8] & (1u << (idx % 8)))) {
                got[idx / 8] |= (unsigned char)(1u << (idx % 8));
                back++;
            }
        }
        ERR_clear_error();
        if (back < count && !wait_net(conn, deadline, 0)) {
            fprintf(stderr, "quic-client: %ld of %ld datagrams came back in time\n", back, count);
            return 0;
        }
    }
    printf("quic-client: %ld datagrams sent, all came back intact (max size %zu)\n", count,
           OSSLQUIC_get_max_datagram_size(conn));
    return 1;
#else
    (void)conn, (void)count, (void)deadline;
    return 0;
#endif
}

/* A non-blocking UDP socket bound to IPv4 address `addr`, any port: where -m moves to. */
static int migrate_socket(const char *addr)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    if (fd < 0 || inet_pton(AF_INET, addr, &sin.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int udp_to(const char *host, const char *port, BIO_ADDR **peer)
{
    struct addrinfo hints, *ai = NULL;
    int fd = -1, e;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_family = AF_UNSPEC;
    if ((e = getaddrinfo(host, port, &hints, &ai)) != 0) {
        fprintf(stderr, "quic-client: %s: %s\n", host, gai_strerror(e));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    *peer = BIO_ADDR_new();
    if (fd < 0 || *peer == NULL)
        goto bad;
    {
        int bufsize = 4 << 20; /* best effort: room for a burst of server datagrams */
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    }
    if (ai->ai_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ai->ai_addr;
        if (!BIO_ADDR_rawmake(*peer, AF_INET, &sin->sin_addr, sizeof(sin->sin_addr), sin->sin_port))
            goto bad;
    } else if (ai->ai_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ai->ai_addr;
        if (!BIO_ADDR_rawmake(*peer, AF_INET6, &sin6->sin6_addr, sizeof(sin6->sin6_addr), sin6->sin6_port))
            goto bad;
    } else {
        goto bad;
    }
    freeaddrinfo(ai);
    return fd;
bad:
    perror("quic-client: socket");
    if (fd >= 0)
        close(fd);
    BIO_ADDR_free(*peer);
    *peer = NULL;
    freeaddrinfo(ai);
    return -1;
}

/*
 * Datagrams the library has taken from the socket so far. Any SSL call may handle events
 * implicitly, so reading one stream can take in the datagram carrying another stream's data;
 * the socket is then empty and poll() would sleep while data waits. The main loop sleeps only
 * after a pass during which the library took in nothing. (SSL_poll is OpenSSL's answer; this
 * library does not offer it yet, so its datagram counter stands in.)
 */
static uint64_t dgrams_in(SSL *s)
{
    OSSLQUIC_BIO_STATS st;
    BIO *b = SSL_get_rbio(s);
    if (b == NULL || !OSSLQUIC_BIO_get_stats(b, &st))
        return 0;
    return st.recv_dgrams;
}

/* Sleeps until the connection's socket is ready or its next deadline, bounded by `deadline`;
 * with `nosleep`, only handles events. */
static int wait_net(SSL *conn, double deadline, int nosleep)
{
    BIO_POLL_DESCRIPTOR d;
    struct timeval tv;
    int inf = 1, ms;
    struct pollfd pfd;
    double left = deadline - now_s();

    if (left <= 0)
        return 0;
    if (!SSL_get_event_timeout(conn, &tv, &inf))
        inf = 1;
    ms = nosleep ? 0 : (int)(left * 1000) + 1;
    if (!inf && tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000 < ms)
        ms = (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
    if (!SSL_get_rpoll_descriptor(conn, &d) || d.type != BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD)
        return fail("no poll descriptor%s", "");
    pfd.fd = d.value.fd;
    pfd.events = POLLIN | (SSL_net_write_desired(conn) ? POLLOUT : 0);
    if (poll(&pfd, 1, ms) < 0 && errno != EINTR) {
        perror("quic-client: poll");
        return 0;
    }
    SSL_handle_events(conn);
    return 1;
}

/* Opens the request's stream; 0 = not now (stream credit), -1 = failure. */
static int req_open(SSL *conn, struct req *r)
{
#ifdef NO_STREAM_API
    r->s = conn; /* the default stream: created by the first write */
#else
    r->s = SSL_new_stream(conn, 0);
    if (r->s == NULL) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_STREAM_COUNT_LIMITED) {
            ERR_clear_error(); /* the server has not granted another stream yet */
            return 0;
        }
        fail("cannot open a stream for %s", r->path);
        return -1;
    }
#endif
    r->state = REQ_OPEN;
    r->t0 = now_s();
    return 1;
}

/* Sends what is left of the request line (with FIN) and reads the body. 1 = progress or
 * waiting, 0 = failed. */
static int req_step(struct req *r)
{
    unsigned char buf[65536];
    size_t n, i;

    while (r->line_off < r->line_len) {
        if (!SSL_write_ex2(r->s, r->line + r->line_off, r->line_len - r->line_off, SSL_WRITE_FLAG_CONCLUDE, &n)) {
            if (SSL_get_error(r->s, 0) == SSL_ERROR_WANT_WRITE)
                break;
            return fail("sending the request for %s failed", r->path);
        }
        r->line_off += n;
    }
    for (;;) {
        if (!SSL_read_ex(r->s, buf, sizeof(buf), &n)) {
            int e = SSL_get_error(r->s, 0);
            if (e == SSL_ERROR_WANT_READ)
                return 1;
            if (e != SSL_ERROR_ZERO_RETURN)
                return fail("reading the answer to %s failed", r->path);
            ERR_clear_error();
            r->t1 = now_s();
            r->state = REQ_DONE;
            if (r->expect_pattern && r->got != r->expect_len) {
                fprintf(stderr, "quic-client: %s: %" PRIu64 " bytes, expected %" PRIu64 "\n", r->path, r->got,
                        r->expect_len);
                return 0;
            }
            if (verbose)
                fprintf(stderr, "quic-client: %s: %" PRIu64 " bytes in %.3f s\n", r->path, r->got, r->t1 - r->t0);
            return 1;
        }
        if (r->expect_pattern) {
            if (r->got + n > r->expect_len) {
                fprintf(stderr, "quic-client: %s: more than the %" PRIu64 " bytes expected\n", r->path, r->expect_len);
                return 0;
            }
            for (i = 0; i < n; i++) {
                if (buf[i] != (unsigned char)((r->got + i) % PERIOD)) {
                    fprintf(stderr, "quic-client: %s: byte %" PRIu64 " is %u, expected %u\n", r->path, r->got + i,
                            buf[i], (unsigned)((r->got + i) % PERIOD));
                    return 0;
                }
            }
        } else if (verbose) {
            fwrite(buf, 1, n, stdout);
        }
        r->got += n;
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: quic-client [-a ALPN] [-c CAFILE] [-s NAME] [-k] [-n COUNT] [-p PARALLEL] [-t SECONDS] [-u] [-d N] [-m ADDR] [-z] [-v]\n"
                    "                   host port path [path...]\n");
}

int main(int argc, char **argv)
{
    const char *alpn = "hq-interop", *cafile = "build/certs/ca.pem", *name = NULL, *host, *port;
    int insecure = 0, ok = 0, fd = -1, opt;
    long repeat = 1, parallel = 0;
    double limit = 60, t_start, t_hs = 0, deadline;
    unsigned char alpn_wire[256];
    struct in6_addr ip6;
    SSL_CTX *ctx = NULL;
    SSL *conn = NULL;
    BIO_ADDR *peer = NULL;
    struct req *reqs = NULL;
    size_t nreq, i, done = 0, open = 0, next = 0;
    uint64_t bytes = 0;
    int r, key_update = 0, zero_rtt = 0, round;
    const char *migrate_to = NULL;
    long dgrams = 0;
    SSL_SESSION *sess = NULL;

    while ((opt = getopt(argc, argv, "a:c:d:s:kn:m:p:t:uvz")) != -1) {
        switch (opt) {
        case 'a': alpn = optarg; break;
        case 'c': cafile = optarg; break;
        case 's': name = optarg; break;
        case 'k': insecure = 1; break;
        case 'n': repeat = atol(optarg); break;
        case 'p': parallel = atol(optarg); break;
        case 't': limit = atof(optarg); break;
        case 'u': key_update = 1; break;
        case 'm': migrate_to = optarg; break;
        case 'd': dgrams = atol(optarg); break;
        case 'v': verbose = 1; break;
        case 'z': zero_rtt = 1; break;
        default: usage(); return 2;
        }
    }
    if (argc - optind < 3 || repeat < 1 || parallel < 0 || limit <= 0 || strlen(alpn) == 0 || strlen(alpn) > 255) {
        usage();
        return 2;
    }
    host = argv[optind];
    port = argv[optind + 1];
    if (name == NULL)
        name = host;
    nreq = (size_t)(argc - optind - 2) * (size_t)repeat;
    if (parallel == 0 || (size_t)parallel > nreq)
        parallel = (long)nreq;
#ifdef NO_STREAM_API
    if (nreq != 1) {
        fprintf(stderr, "quic-client: built without the stream API (SSL_new_stream): one request only, %zu asked\n",
                nreq);
        return 2;
    }
#endif
    reqs = calloc(nreq, sizeof(*reqs));
    if (reqs == NULL)
        return 1;
    for (i = 0; i < nreq; i++) {
        struct req *q = &reqs[i];
        q->path = argv[optind + 2 + i % (size_t)(argc - optind - 2)];
        if (q->path[0] != '/' || strlen(q->path) > 1024) {
            fprintf(stderr, "quic-client: a path starts with / and has at most 1024 bytes: %s\n", q->path);
            goto out;
        }
        q->expect_pattern = parse_n(q->path + 1, &q->expect_len);
        q->line_len = (size_t)snprintf(q->line, sizeof(q->line), "GET %s\r\n", q->path);
    }
    alpn_wire[0] = (unsigned char)strlen(alpn);
    memcpy(alpn_wire + 1, alpn, alpn_wire[0]);

    t_start = now_s();
    deadline = t_start + limit;
    ctx = SSL_CTX_new(OSSL_QUIC_client_method());
    if (ctx == NULL)
        goto fail_ssl;
    if (insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        if (!SSL_CTX_load_verify_locations(ctx, cafile, NULL))
            goto fail_ssl;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    if (dgrams > 0) {
#ifdef OSSLQUIC_HAVE_OSSLQUIC_CTX_SET_DATAGRAMS
        if (!OSSLQUIC_CTX_set_datagrams(ctx, (size_t)dgrams))
            goto fail_ssl;
#else
        fprintf(stderr, "quic-client: -d needs osslquic's datagram calls\n");
        goto out;
#endif
    }
    for (round = 0; round < (zero_rtt ? 2 : 1); round++) {
        if (round == 1) {
            /* The second connection: the first's session, the requests again. */
            sess = SSL_get1_session(conn);
            if (sess == NULL || !SSL_SESSION_is_resumable(sess)) {
                fail("no session to resume%s", "");
                goto out;
            }
            SSL_free(conn);
            conn = NULL;
            close(fd);
            fd = -1;
            BIO_ADDR_free(peer);
            peer = NULL;
            for (i = 0; i < nreq; i++) {
                reqs[i].state = REQ_WAITING;
                reqs[i].s = NULL;
                reqs[i].line_off = 0;
                reqs[i].got = 0;
            }
            done = open = next = 0;
            bytes = 0;
            t_start = now_s();
        }
        fd = udp_to(host, port, &peer);
        if (fd < 0)
            goto out;
        conn = SSL_new(ctx);
        if (conn == NULL || !SSL_set_blocking_mode(conn, 0) || !SSL_set_fd(conn, fd) ||
            !SSL_set1_initial_peer_addr(conn, peer) || SSL_set_alpn_protos(conn, alpn_wire, alpn_wire[0] + 1u) != 0 ||
            !SSL_set1_host(conn, name))
            goto fail_ssl;
        /* SNI carries DNS names only. */
        if (inet_pton(AF_INET6, name, &ip6) != 1 && inet_pton(AF_INET, name, &ip6) != 1 &&
            !SSL_set_tlsext_host_name(conn, name))
            goto fail_ssl;
    #ifndef NO_STREAM_API
        /* Every request gets its own stream; the connection itself carries none. */
        if (!SSL_set_default_stream_mode(conn, SSL_DEFAULT_STREAM_MODE_NONE))
            goto fail_ssl;
    #endif

        if (round == 1) {
            if (!SSL_set_session(conn, sess))
                goto fail_ssl;
            /* The requests go before the handshake completes, each on its own stream. */
            while (next < nreq && open < (size_t)parallel) {
                struct req *q = &reqs[next];
                if (req_open(conn, q) != 1)
                    goto out;
                if (!SSL_write_early_data(q->s, q->line, q->line_len, &q->line_off) || q->line_off != q->line_len ||
                    !SSL_stream_conclude(q->s, 0)) {
                    fail("early data for %s refused", q->path);
                    goto out;
                }
                open++;
                next++;
            }
        }
        while ((r = SSL_connect(conn)) != 1) {
            int e = SSL_get_error(conn, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                long v = SSL_get_verify_result(conn);
                if (v != X509_V_OK)
                    fprintf(stderr, "quic-client: certificate verification: %s\n", X509_verify_cert_error_string(v));
                fail("handshake with %s failed", host);
                goto out;
            }
            if (!wait_net(conn, deadline, 0)) {
                fail("handshake with %s timed out", host);
                goto out;
            }
        }
        t_hs = now_s() - t_start;
        if (round == 1)
            printf("quic-client: resumed %s, early data %s (%zu requests sent before the handshake completed)\n",
                   SSL_session_reused(conn) ? "yes" : "no",
                   SSL_get_early_data_status(conn) == SSL_EARLY_DATA_ACCEPTED   ? "accepted"
                   : SSL_get_early_data_status(conn) == SSL_EARLY_DATA_REJECTED ? "rejected (sent again)"
                                                                                : "not sent",
                   next);
        if (dgrams > 0 && !datagram_echo(conn, dgrams, deadline))
            goto out;
        if (key_update) {
            if (!SSL_key_update(conn, SSL_KEY_UPDATE_REQUESTED)) {
                fail("key update refused%s", "");
                goto out;
            }
            if (verbose)
                fprintf(stderr, "quic-client: keys updated\n");
        }
        if (verbose) {
            const unsigned char *sel;
            unsigned int sel_len;
            SSL_get0_alpn_selected(conn, &sel, &sel_len);
            fprintf(stderr, "quic-client: connected in %.3f s, ALPN %.*s\n", t_hs, (int)sel_len, (const char *)sel);
        }

        while (done < nreq) {
            uint64_t seen = dgrams_in(conn);
            int finished = 0; /* requests completed in this pass: their slots can be refilled */
            while (open < (size_t)parallel && next < nreq) {
                int o = req_open(conn, &reqs[next]);
                if (o < 0)
                    goto out;
                if (o == 0)
                    break;
                open++;
                next++;
            }
            for (i = 0; i < next; i++) {
                struct req *q = &reqs[i];
                if (q->state != REQ_OPEN)
                    continue;
                if (!req_step(q))
                    goto out;
                if (q->state == REQ_DONE) {
                    if (q->s != conn)
                        SSL_free(q->s);
                    q->s = NULL;
                    bytes += q->got;
                    done++;
                    open--;
                    finished++;
                }
            }
            if (done == nreq)
                break;
            if (migrate_to != NULL && done >= 1) {
                int nfd = migrate_socket(migrate_to);
                if (nfd < 0 || !SSL_set_fd(conn, nfd)) {
                    fail("cannot move to %s", migrate_to);
                    if (nfd >= 0)
                        close(nfd);
                    goto out;
                }
                close(fd);
                fd = nfd;
                migrate_to = NULL;
                if (verbose)
                    fprintf(stderr, "quic-client: moved to a new socket\n");
            }
            if (!wait_net(conn, deadline, dgrams_in(conn) != seen || (finished && next < nreq))) {
                fprintf(stderr, "quic-client: time limit (%.0f s) reached with %zu of %zu requests done\n", limit, done, nreq);
                goto out;
            }
        }
        {
            double t = now_s() - t_start;
            printf("quic-client: %zu requests ok, %" PRIu64 " bytes in %.3f s (handshake %.3f s), %.2f MB/s, ALPN %s, %ld "
                   "streams at once\n",
                   nreq, bytes, t, t_hs, t > 0 ? bytes / t / 1e6 : 0.0, alpn, parallel);
            fflush(stdout);
        }
        while ((r = SSL_shutdown(conn)) != 1) {
            if (r < 0) {
                fail("shutdown failed%s", "");
                goto out;
            }
            if (!wait_net(conn, deadline, 0)) {
                fail("shutdown did not finish in time%s", "");
                goto out;
            }
        }
    }
    ok = 1;
    goto out;
fail_ssl:
    fail("setup failed%s", "");
out:
    if (reqs != NULL)
        for (i = 0; i < nreq; i++)
            if (reqs[i].s != NULL && reqs[i].s != conn)
                SSL_free(reqs[i].s);
    free(reqs);
    SSL_free(conn);
    SSL_SESSION_free(sess);
    SSL_CTX_free(ctx);
    BIO_ADDR_free(peer);
    if (fd >= 0)
        close(fd);
    return ok ? 0 : 1;
}
