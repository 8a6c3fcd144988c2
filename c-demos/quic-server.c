/*
 * quic-server: a non-blocking, single-threaded hq-interop server on osslquic's QUIC API.
 *
 *   quic-server [options] cert.pem key.pem [port]
 *     -b ADDR            address to bind (default 127.0.0.1; ::1 works too)
 *     --idle-exit SEC    exit when the socket has been silent for SEC seconds (default: never)
 *     --no-retry         skip address validation (SSL_LISTENER_FLAG_NO_VALIDATE)
 *     -q                 no per-stream log lines
 *     --datagram-echo    accept RFC 9221 datagrams and send each back on its connection
 *                        (osslquic: OSSLQUIC_CTX_set_datagrams and friends)
 *     --early-data       allow 0-RTT (SSL_CTX_set_max_early_data); the handshake line then
 *                        says whether the session was resumed and the early data accepted
 *     --log-paths        log each connection's peer address ("conn N: peer address A"), and
 *                        each change of it as the library follows a client that moved
 *                        ("conn N: peer address A -> B"; SSL_get_peer_addr, checked once per
 *                        pass of the event loop)
 *     --log-ecn          log each connection's ECN figures when it closes (osslquic:
 *                        OSSLQUIC_get_conn_stats)
 *   port 0 (the default) lets the system choose; "listening on PORT" is printed on stdout once
 *   the server is ready. ALPN: the comma-separated list in $DEMO_ALPN (server preference
 *   order), default "hq-interop,http/1.0".
 *
 * Protocol (hq-interop, as in the QUIC interop runner): each client-initiated bidirectional
 * stream carries one request line "GET /path\r\n" (a bare "\n" or FIN also ends it). Answers:
 *   /N      N decimal digits, N <= 2^40: N bytes of a fixed pattern, byte i = i % 251
 *           (251 is prime, so a misplaced block of any power-of-two size shows up);
 *   other   a short text line naming the path.
 * Then FIN. Anything that is not "GET /..." is answered with a bare FIN and logged with a hex
 * preview (this is how an h3 client's request shows up). Peer-initiated unidirectional
 * streams (h3 control/QPACK streams) are read and discarded.
 *
 * Event loop: SSL_handle_events on the listener drives every connection of its domain; the
 * process sleeps in poll() on the listener's socket for at most SSL_get_event_timeout, so an
 * idle server uses no CPU. SIGINT/SIGTERM end it cleanly. One line per connection and per
 * stream goes to stderr.
 *
 * Built with -DNO_STREAM_API (a library without SSL_new_stream/SSL_accept_stream) it serves
 * the client's first bidirectional stream only, through the connection's default stream.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ_MAX 4096
#define PERIOD 251
#define MAX_N ((uint64_t)1 << 40)
#define POLL_CAP_MS 1000 /* upper bound of one sleep, so the idle-exit clock is checked */

struct stream {
    SSL *ssl;        /* the stream object (or the connection itself with NO_STREAM_API) */
    uint64_t id;
    int uni;         /* peer's unidirectional stream: read and discard */
    char req[REQ_MAX + 1];
    size_t req_len;
    int have_req;    /* request line complete: the response is chosen */
    int bad;         /* not an hq-interop request: answered with a bare FIN */
    int fin_in;      /* the peer's FIN was read */
    int concluded;   /* our FIN was sent */
    int failed;
    int finished;    /* NO_STREAM_API: answered, kept until the connection goes */
    uint64_t rx;
    int pattern;     /* response kind: pattern of resp_len bytes, else text */
    uint64_t resp_len, resp_off;
    char text[REQ_MAX + 64];
    struct stream *next;
};

struct conn {
    SSL *ssl;
    unsigned id;
    int established;
    int dead;
    int accept_failed; /* SSL_accept_stream failed: the connection is unusable */
    double t0;
    unsigned nstreams;
    uint64_t tx, rx;
    char peer[80]; /* --log-paths: the peer address last logged, "host:port" */
    struct stream *streams;
    struct conn *next;
};

static volatile sig_atomic_t stop_signal;
static int quiet, datagram_echo, early_data, log_paths, log_ecn;
static unsigned long long total_dgrams;
static unsigned char pattern[PERIOD * 65];
static unsigned conn_seq;
static unsigned long long total_conns, total_streams, total_bytes, loops, repasses;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void log_errors(const char *what)
{
    if (ERR_peek_error() == 0)
        return;
    fprintf(stderr, "quic-server: %s:\n", what);
    ERR_print_errors_fp(stderr);
}

/*
 * Datagrams the library has taken from the socket so far. Every SSL call on a QUIC object
 * may handle events implicitly (OpenSSL's default), so a call made while serving one stream
 * can take in the datagram that carries another stream's request: the socket is then empty
 * and poll() would sleep while work is waiting. The loop therefore sleeps only after a pass
 * during which the library took in nothing. (SSL_poll is OpenSSL's answer to this; this
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

/* "a,b,c" -> ALPN wire format (length-prefixed names). */
static int alpn_wire(const char *list, unsigned char *out, size_t cap, size_t *out_len)
{
    size_t n = 0;
    while (*list != '\0') {
        const char *end = strchr(list, ',');
        size_t len = end ? (size_t)(end - list) : strlen(list);
        if (len == 0 || len > 255 || n + 1 + len > cap)
            return 0;
        out[n++] = (unsigned char)len;
        memcpy(out + n, list, len);
        n += len;
        list += len;
        if (*list == ',')
            list++;
    }
    *out_len = n;
    return n > 0;
}

static int udp_socket(const char *addr, unsigned port, unsigned *bound)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, bufsize = 4 << 20;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
        sl = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
        sl = sizeof(struct sockaddr_in6);
    } else {
        fprintf(stderr, "quic-server: bad address %s\n", addr);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("quic-server: socket");
        return -1;
    }
    /* Best effort: a larger buffer absorbs a burst of client datagrams. */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        perror("quic-server: bind");
        close(fd);
        return -1;
    }
    *bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                           : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

/* ---- one stream: request parsing and the answer */

static int parse_n(const char *s, uint64_t *n)
{
    uint64_t v = 0;
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > MAX_N)
            return 0;
    }
    *n = v;
    return 1;
}

/* The request line is complete (or can grow no more): choose the answer. */
static void choose_response(struct stream *st)
{
    char *line = st->req, *end;
    st->have_req = 1;
    st->req[st->req_len] = '\0';
    end = strchr(line, '\n');
    if (end != NULL)
        *end = '\0';
    end = strchr(line, '\r');
    if (end != NULL)
        *end = '\0';
    if (strncmp(line, "GET /", 5) != 0 || strlen(line) >= REQ_MAX) {
        st->bad = 1;
        st->pattern = 0;
        st->resp_len = 0;
        return;
    }
    if (parse_n(line + 5, &st->resp_len)) {
        st->pattern = 1;
    } else {
        st->pattern = 0;
        snprintf(st->text, sizeof(st->text), "osslquic quic-server: you asked for %s\n", line + 4);
        st->resp_len = strlen(st->text);
    }
}

static void take_request_bytes(struct stream *st, const unsigned char *p, size_t n)
{
    size_t room = REQ_MAX - st->req_len, k = n < room ? n : room;
    st->rx += n;
    if (st->uni || st->have_req)
        return;
    memcpy(st->req + st->req_len, p, k);
    st->req_len += k;
    if (memchr(p, '\n', k) != NULL || st->req_len == REQ_MAX)
        choose_response(st);
}

static void hex_preview(const struct stream *st, char *out, size_t cap)
{
    size_t i, n = st->req_len < 12 ? st->req_len : 12, off = 0;
    out[0] = '\0';
    for (i = 0; i < n && off + 4 < cap; i++)
        off += (size_t)snprintf(out + off, cap - off, "%s%02x", i ? " " : "", (unsigned char)st->req[i]);
}

/* Reads what is there; returns 0 when the stream failed. */
static int stream_read(struct conn *c, struct stream *st)
{
    unsigned char buf[16384];
    size_t n;
    while (!st->fin_in) {
        if (SSL_read_ex(st->ssl, buf, sizeof(buf), &n)) {
            take_request_bytes(st, buf, n);
            c->rx += n;
            continue;
        }
        switch (SSL_get_error(st->ssl, 0)) {
        case SSL_ERROR_WANT_READ:
            return 1;
        case SSL_ERROR_ZERO_RETURN:
            st->fin_in = 1;
            if (!st->have_req && !st->uni)
                choose_response(st);
            ERR_clear_error();
            return 1;
        default:
            return 0;
        }
    }
    return 1;
}

/* Writes as much of the answer as flow control allows; FIN goes with the last bytes. */
static int stream_write(struct conn *c, struct stream *st)
{
    while (st->have_req && !st->concluded) {
        uint64_t left = st->resp_len - st->resp_off;
        const unsigned char *p;
        size_t len, w = 0;
        if (left == 0) {
            if (!SSL_stream_conclude(st->ssl, 0))
                goto blocked;
            st->concluded = 1;
            break;
        }
        if (st->pattern) {
            p = pattern + st->resp_off % PERIOD;
            len = sizeof(pattern) - PERIOD;
        } else {
            p = (const unsigned char *)st->text + st->resp_off;
            len = (size_t)left;
        }
        if (len > left)
            len = (size_t)left;
        if (!SSL_write_ex2(st->ssl, p, len, len == left ? SSL_WRITE_FLAG_CONCLUDE : 0, &w))
            goto blocked;
        st->resp_off += w;
        c->tx += w;
        total_bytes += w;
        if (st->resp_off == st->resp_len)
            st->concluded = 1;
    }
    return 1;
blocked:
    if (SSL_get_error(st->ssl, 0) == SSL_ERROR_WANT_WRITE)
        return 1;
    return 0;
}

static void stream_log(struct conn *c, struct stream *st, const char *outcome)
{
    char hex[64];
    if (quiet && !st->failed && !st->bad)
        return;
    if (st->uni) {
        fprintf(stderr, "conn %u stream %" PRIu64 " (peer uni): %" PRIu64 " bytes received, %s\n", c->id, st->id,
                st->rx, outcome);
    } else if (st->bad || !st->have_req) {
        hex_preview(st, hex, sizeof(hex));
        fprintf(stderr, "conn %u stream %" PRIu64 ": not an hq-interop request (%" PRIu64 " bytes received: %s), %s\n",
                c->id, st->id, st->rx, hex, outcome);
    } else {
        fprintf(stderr, "conn %u stream %" PRIu64 ": %s -> %" PRIu64 "/%" PRIu64 " bytes%s, %s\n", c->id, st->id,
                st->req, st->resp_off, st->resp_len, st->pattern ? " (pattern)" : " (text)", outcome);
    }
}

static void stream_free(struct conn *c, struct stream *st)
{
    if (st->ssl != c->ssl)
        SSL_free(st->ssl);
    free(st);
}

static struct stream *stream_new(struct conn *c, SSL *s, uint64_t id, int uni)
{
    struct stream *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->ssl = s;
    st->id = id;
    st->uni = uni;
    st->next = c->streams;
    c->streams = st;
    c->nstreams++;
    total_streams++;
    return st;
}

#ifndef NO_STREAM_API
static int conn_closed(struct conn *c, char *why, size_t cap);
#endif

/* 1 if the connection has terminated. */
static int conn_gone(struct conn *c)
{
#ifdef NO_STREAM_API
    (void)c;
    return 0; /* no SSL_get_conn_close_info: every stream failure is reported as such */
#else
    char why[8];
    return conn_closed(c, why, sizeof(why));
#endif
}

/* Serves every stream of a connection; frees the finished ones. */
static void serve_streams(struct conn *c)
{
    struct stream **pp = &c->streams;
    while (*pp != NULL) {
        struct stream *st = *pp;
        int ok, done;
        if (st->finished) {
            pp = &st->next;
            continue;
        }
        ok = stream_read(c, st) && stream_write(c, st);
        done = !st->uni && st->fin_in && st->concluded;
        if (!ok && conn_gone(c)) {
            /* The connection closed under it: reported with the connection. */
            ERR_clear_error();
            pp = &st->next;
            continue;
        }
        if (!ok) {
            st->failed = 1;
            stream_log(c, st, "failed");
            log_errors("stream");
        } else if (done) {
            stream_log(c, st, "done");
        }
        if (ok && !done) {
            pp = &st->next;
            continue;
        }
#ifdef NO_STREAM_API
        /* The default stream is the connection itself: it stays until the connection goes. */
        st->finished = 1;
        if (!ok)
            c->dead = 1;
        pp = &st->next;
#else
        *pp = st->next;
        stream_free(c, st);
#endif
    }
}

/* ---- connections */

static void conn_log_close(struct conn *c, const char *why)
{
    struct stream *st;
    for (st = c->streams; st != NULL; st = st->next)
        if (!st->finished && (st->rx > 0 || !st->uni))
            stream_log(c, st, "still open when the connection closed");
    fprintf(stderr, "conn %u: closed (%s) after %.3f s: %u streams, %" PRIu64 " bytes in, %" PRIu64 " bytes out\n", c->id,
            why, now_s() - c->t0, c->nstreams, c->rx, c->tx);
#ifdef OSSLQUIC_HAVE_OSSLQUIC_BIO_DGRAM_SET_ECN
    if (log_ecn) {
        OSSLQUIC_CONN_STATS st;
        if (OSSLQUIC_get_conn_stats(c->ssl, &st) == 1)
            fprintf(stderr,
                    "conn %u: ecn: %" PRIu64 " datagrams sent ECT(0); received %" PRIu64 " ECT(0), %" PRIu64
                    " ECT(1), %" PRIu64 " CE; validated %" PRIu64 "\n",
                    c->id, st.ecn_ect0_sent, st.ecn_ect0_received, st.ecn_ect1_received, st.ecn_ce_received,
                    st.ecn_validated);
        else
            log_errors("ECN figures");
        ERR_clear_error();
    }
#endif
}

static void conn_free(struct conn *c)
{
    while (c->streams != NULL) {
        struct stream *st = c->streams;
        c->streams = st->next;
        stream_free(c, st);
    }
    SSL_free(c->ssl);
    free(c);
}

static struct conn *conn_new(SSL *ssl)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->ssl = ssl;
    c->id = ++conn_seq;
    c->t0 = now_s();
    total_conns++;
#ifndef NO_STREAM_API
    /* Every stream is accepted and served on its own; no default stream. */
    if (!SSL_set_default_stream_mode(ssl, SSL_DEFAULT_STREAM_MODE_NONE) ||
        !SSL_set_incoming_stream_policy(ssl, SSL_INCOMING_STREAM_POLICY_ACCEPT, 0)) {
        log_errors("stream mode");
        c->dead = 1;
    }
#endif
    fprintf(stderr, "conn %u: accepted\n", c->id);
    return c;
}

#ifndef NO_STREAM_API
/* 1 when the connection has terminated (either side, or idle timeout). */
static int conn_closed(struct conn *c, char *why, size_t cap)
{
    SSL_CONN_CLOSE_INFO info;
    if (!SSL_get_conn_close_info(c->ssl, &info, sizeof(info)))
        return 0;
    snprintf(why, cap, "%s %s, code %" PRIu64 "%s%.*s", (info.flags & SSL_CONN_CLOSE_FLAG_LOCAL) ? "by us" : "by peer",
             (info.flags & SSL_CONN_CLOSE_FLAG_TRANSPORT) ? "transport" : "application", info.error_code,
             info.reason_len ? ": " : "", (int)info.reason_len, info.reason ? info.reason : "");
    return 1;
}

static void accept_streams(struct conn *c)
{
    SSL *s;
    while ((s = SSL_accept_stream(c->ssl, SSL_ACCEPT_STREAM_NO_BLOCK)) != NULL) {
        uint64_t id = SSL_get_stream_id(s);
        int uni = SSL_get_stream_type(s) == SSL_STREAM_TYPE_READ;
        if (stream_new(c, s, id, uni) == NULL) {
            SSL_free(s);
            c->dead = 1;
            return;
        }
    }
    /* NULL with nothing queued means "none yet"; with an error, the connection is gone
     * (serve_conn reports how; the error is shown if the library cannot say). */
    if (ERR_peek_error() != 0) {
        char why[300];
        if (!conn_closed(c, why, sizeof(why)))
            log_errors("accepting streams");
        ERR_clear_error();
        c->accept_failed = 1;
    }
}

#endif

/* Drives one connection: handshake, streams, closure. Returns 0 when it should be freed. */
static int serve_conn(struct conn *c)
{
    char why[300] = "error";
    if (!c->established && !c->dead) {
        int r = SSL_do_handshake(c->ssl);
        if (r == 1) {
            const unsigned char *alpn = NULL;
            unsigned int alpn_len = 0;
            c->established = 1;
            SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
            fprintf(stderr, "conn %u: handshake done in %.3f s, ALPN %.*s%s%s\n", c->id, now_s() - c->t0, (int)alpn_len,
                    alpn ? (const char *)alpn : "", !early_data ? "" : SSL_session_reused(c->ssl) ? ", resumed" : ", full",
                    !early_data                                                      ? ""
                    : SSL_get_early_data_status(c->ssl) == SSL_EARLY_DATA_ACCEPTED ? ", early data accepted"
                                                                                     : ", no early data");
        } else if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_WRITE) {
            snprintf(why, sizeof(why), "handshake failed");
            log_errors("handshake");
            c->dead = 1;
        }
    }
    if (c->established && !c->dead) {
#ifdef NO_STREAM_API
        if (c->streams == NULL)
            stream_new(c, c->ssl, 0, 0);
        serve_streams(c);
        /* The client closes the connection once it has read the answer (closing it from
         * here could destroy data it has not read yet). Without SSL_get_conn_close_info, a
         * lost connection shows as a failing SSL_do_handshake in this library. */
        if (!c->dead && SSL_do_handshake(c->ssl) != 1) {
            ERR_clear_error();
            snprintf(why, sizeof(why), "connection ended");
            c->dead = 1;
        }
#else
        accept_streams(c);
        serve_streams(c);
        if (conn_closed(c, why, sizeof(why))) {
            ERR_clear_error();
            conn_log_close(c, why);
            return 0;
        }
        if (c->accept_failed) {
            snprintf(why, sizeof(why), "error accepting streams");
            c->dead = 1;
        }
#endif
    }
    if (c->dead) {
        conn_log_close(c, why);
        return 0;
    }
    return 1;
}

/* --log-paths: logs the connection's peer address when first seen and whenever it changes
 * (a NAT rebinding or a migration the library followed: tests/interop, rebind cases). */
static void log_peer(struct conn *c)
{
#ifdef OSSLQUIC_HAVE_SSL_GET_PEER_ADDR
    BIO_ADDR *a = BIO_ADDR_new();
    char *host = NULL, *serv = NULL, now[sizeof(c->peer)];

    if (a != NULL && SSL_get_peer_addr(c->ssl, a) == 1 && (host = BIO_ADDR_hostname_string(a, 1)) != NULL &&
        (serv = BIO_ADDR_service_string(a, 1)) != NULL) {
        snprintf(now, sizeof(now), "%s:%s", host, serv);
        if (c->peer[0] == '\0')
            fprintf(stderr, "conn %u: peer address %s\n", c->id, now);
        else if (strcmp(c->peer, now) != 0)
            fprintf(stderr, "conn %u: peer address %s -> %s\n", c->id, c->peer, now);
        snprintf(c->peer, sizeof(c->peer), "%s", now);
    }
    ERR_clear_error();
    OPENSSL_free(host);
    OPENSSL_free(serv);
    BIO_ADDR_free(a);
#else
    (void)c;
#endif
}

/* What the listener's engine saw, and the most memory the process held, for tests that
 * bound what peers can make the server hold (tests/flood). */
/* --datagram-echo: every datagram the connection received goes back to its sender. */
static void echo_datagrams(struct conn *c)
{
#ifdef OSSLQUIC_HAVE_OSSLQUIC_CTX_SET_DATAGRAMS
    unsigned char buf[65536];
    size_t n, w;

    while (OSSLQUIC_read_datagram(c->ssl, buf, sizeof(buf), &n) == 1) {
        if (OSSLQUIC_write_datagram(c->ssl, buf, n, &w) == 1)
            total_dgrams++;
    }
    ERR_clear_error();
#else
    (void)c;
#endif
}

static void log_engine_stats(SSL *listener)
{
    OSSLQUIC_ENGINE_STATS es;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        fprintf(stderr, "quic-server: peak RSS %ld KiB\n", ru.ru_maxrss);
    if (!OSSLQUIC_get_engine_stats(listener, &es)) {
        log_errors("engine stats");
        return;
    }
    fprintf(stderr,
            "quic-server: engine: %" PRIu64 " datagrams in, %" PRIu64 " connections accepted, %" PRIu64 " refused"
#ifdef OSSLQUIC_HAVE_OSSLQUIC_SET_MAX_UNVALIDATED_HANDSHAKES
            ", %" PRIu64 " Retries sent"
#endif
            "\n",
            es.datagrams_in, es.accepted, es.refused
#ifdef OSSLQUIC_HAVE_OSSLQUIC_SET_MAX_UNVALIDATED_HANDSHAKES
            ,
            es.retries
#endif
    );
}

static void usage(void)
{
    fprintf(stderr, "usage: quic-server [-b ADDR] [--idle-exit SEC] [--no-retry] [--datagram-echo] [--early-data]\n"
                    "                   [--log-paths] [--log-ecn] [-q] cert.pem key.pem [port]\n"
                    "  ALPN list from $DEMO_ALPN (comma-separated; default hq-interop,http/1.0)\n");
}

int main(int argc, char **argv)
{
    const char *bind_addr = "127.0.0.1", *cert = NULL, *key = NULL, *alpn_env = getenv("DEMO_ALPN");
    double idle_exit = 0, last_rx;
    unsigned port = 0, bound = 0;
    uint64_t lflags = 0;
    unsigned char alpn[512];
    size_t alpn_len = 0, i;
    int fd = -1, rc = 1, npos = 0;
    SSL_CTX *ctx = NULL;
    SSL *listener = NULL;
    struct conn *conns = NULL;
    struct sigaction sa;
    const char *exit_why = "signal";

    for (i = 1; i < (size_t)argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-b") == 0 && i + 1 < (size_t)argc) {
            bind_addr = argv[++i];
        } else if (strcmp(a, "--idle-exit") == 0 && i + 1 < (size_t)argc) {
            idle_exit = atof(argv[++i]);
        } else if (strcmp(a, "--no-retry") == 0) {
            lflags |= SSL_LISTENER_FLAG_NO_VALIDATE;
        } else if (strcmp(a, "-q") == 0) {
            quiet = 1;
        } else if (strcmp(a, "--log-ecn") == 0) {
            log_ecn = 1;
        } else if (strcmp(a, "--datagram-echo") == 0) {
            datagram_echo = 1;
        } else if (strcmp(a, "--early-data") == 0) {
            early_data = 1;
        } else if (strcmp(a, "--log-paths") == 0) {
            log_paths = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            usage();
            return 2;
        } else if (npos == 0) {
            cert = a, npos++;
        } else if (npos == 1) {
            key = a, npos++;
        } else if (npos == 2) {
            char *end;
            unsigned long p = strtoul(a, &end, 10);
            if (*end != '\0' || p > 65535) {
                usage();
                return 2;
            }
            port = (unsigned)p, npos++;
        } else {
            usage();
            return 2;
        }
    }
    if (npos < 2) {
        usage();
        return 2;
    }
    if (!alpn_wire(alpn_env && *alpn_env ? alpn_env : "hq-interop,http/1.0", alpn, sizeof(alpn), &alpn_len)) {
        fprintf(stderr, "quic-server: bad ALPN list in DEMO_ALPN\n");
        return 2;
    }
    for (i = 0; i < sizeof(pattern); i++)
        pattern[i] = (unsigned char)(i % PERIOD);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    ctx = SSL_CTX_new(OSSL_QUIC_server_method());
    if (ctx == NULL || !SSL_CTX_use_certificate_chain_file(ctx, cert) ||
        !SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) || !SSL_CTX_check_private_key(ctx) ||
        SSL_CTX_set_alpn_protos(ctx, alpn, (unsigned int)alpn_len) != 0) {
        log_errors("context");
        goto out;
    }
    if (datagram_echo) {
#ifdef OSSLQUIC_HAVE_OSSLQUIC_CTX_SET_DATAGRAMS
        if (!OSSLQUIC_CTX_set_datagrams(ctx, 256)) {
            log_errors("datagrams");
            goto out;
        }
#else
        fprintf(stderr, "quic-server: --datagram-echo needs osslquic's datagram calls\n");
        goto out;
#endif
    }
    if (early_data && !SSL_CTX_set_max_early_data(ctx, 0xffffffffu)) {
        log_errors("early data");
        goto out;
    }
    fd = udp_socket(bind_addr, port, &bound);
    if (fd < 0)
        goto out;
    listener = SSL_new_listener(ctx, lflags);
    /* Non-blocking: this one thread serves every connection (they inherit the mode). */
    if (listener == NULL || !SSL_set_blocking_mode(listener, 0) || !SSL_set_fd(listener, fd) ||
        !SSL_listen(listener)) {
        log_errors("listener");
        goto out;
    }
    printf("listening on %u\n", bound);
    fflush(stdout);
    fprintf(stderr, "quic-server: listening on %s port %u, ALPN %s%s\n", bind_addr, bound,
            alpn_env && *alpn_env ? alpn_env : "hq-interop,http/1.0",
            (lflags & SSL_LISTENER_FLAG_NO_VALIDATE) ? ", no Retry" : ", address validation by Retry");

    last_rx = now_s();
    while (!stop_signal) {
        struct conn **pp;
        SSL *cs;
        struct timeval tv;
        int inf = 1, timeout_ms;
        uint64_t seen;
        struct pollfd pfd;
        BIO_POLL_DESCRIPTOR d;

        loops++;
        SSL_handle_events(listener);
        seen = dgrams_in(listener);
        while ((cs = SSL_accept_connection(listener, SSL_ACCEPT_CONNECTION_NO_BLOCK)) != NULL) {
            struct conn *c = conn_new(cs);
            if (c == NULL) {
                SSL_free(cs);
                continue;
            }
            c->next = conns;
            conns = c;
        }
        ERR_clear_error();
        for (pp = &conns; *pp != NULL;) {
            struct conn *c = *pp;
            if (datagram_echo)
                echo_datagrams(c);
            if (log_paths)
                log_peer(c);
            if (serve_conn(c)) {
                pp = &c->next;
            } else {
                *pp = c->next;
                conn_free(c);
            }
        }
        ERR_clear_error();

        /* Sleep until the socket is readable (or writable, when the library wants that) or
         * the library's next deadline, whichever comes first; not at all if this pass took
         * in datagrams that it may not have looked at (see dgrams_in). */
        if (!SSL_get_event_timeout(listener, &tv, &inf))
            inf = 1;
        timeout_ms = inf ? POLL_CAP_MS : (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
        if (timeout_ms > POLL_CAP_MS)
            timeout_ms = POLL_CAP_MS;
        if (dgrams_in(listener) != seen) {
            timeout_ms = 0;
            last_rx = now_s();
            repasses++;
        }
        if (!SSL_get_rpoll_descriptor(listener, &d) || d.type != BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD) {
            fprintf(stderr, "quic-server: no poll descriptor\n");
            goto out;
        }
        pfd.fd = d.value.fd;
        pfd.events = POLLIN | (SSL_net_write_desired(listener) ? POLLOUT : 0);
        pfd.revents = 0;
        if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR) {
            perror("quic-server: poll");
            goto out;
        }
        if (pfd.revents & POLLIN)
            last_rx = now_s();
        else if (idle_exit > 0 && now_s() - last_rx >= idle_exit) {
            exit_why = "idle";
            break;
        }
    }
    rc = 0;
    fprintf(stderr,
            "quic-server: exiting (%s): %llu connections, %llu streams, %llu bytes sent, %llu datagrams echoed, %llu "
            "loop iterations (%llu without sleeping)\n",
            stop_signal ? (stop_signal == SIGTERM ? "SIGTERM" : "SIGINT") : exit_why, total_conns, total_streams,
            total_bytes, total_dgrams, loops, repasses);
    log_engine_stats(listener);
out:
    while (conns != NULL) {
        struct conn *c = conns;
        conns = c->next;
        conn_free(c);
    }
    SSL_free(listener);
    SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    return rc;
}
