/*
 * bulk: one large transfer, then the writer shuts down at once; for tests/shutdown/run.sh.
 * Written against OpenSSL's API only: built against osslquic (ours) and against OpenSSL 3.5
 * (the reference twin), from the same source.
 *
 *   bulk quic|tls server [options] PORT CERT KEY
 *       Listens on 127.0.0.1:PORT (0: the system picks; prints "listening on N" when ready),
 *       serves one connection and exits. The client's first stream (QUIC: one it opens; TLS:
 *       the connection) starts with a request line:
 *         "GET /N\r\n"  the server writes N bytes of the pattern, concludes the stream (QUIC)
 *                       and shuts down at once: SSL_shutdown_ex (QUIC) or SSL_shutdown (TLS)
 *         "PUT /N\r\n"  N bytes of the pattern follow; the server reads to the end (FIN or
 *                       close_notify), checks them, then waits for the client's close
 *   bulk quic|tls client [options] HOST PORT get|put N
 *       get: sends "GET /N", reads to the end, checks length and pattern, then waits for the
 *       server's close (QUIC: SSL_SHUTDOWN_FLAG_WAIT_PEER, and the close must be an application
 *       close with code 0; TLS: answers the close_notify).
 *       put: sends "PUT /N" and N bytes, concludes the stream and shuts down at once.
 *   bulk gen quic|tls N
 *       The N-byte pattern on stdout (what a command-line peer must receive).
 *
 * Options:
 *   -R       QUIC: SSL_SHUTDOWN_FLAG_RAPID on the writer's SSL_shutdown_ex
 *   -1       TLS writer: one SSL_shutdown (close_notify sent), then close the socket, without
 *            waiting for the peer's close_notify (the default waits for it)
 *   -f       QUIC writer: SSL_free the stream right after concluding it, before SSL_shutdown_ex
 *            (the library must still deliver what the freed stream had not sent)
 *   -n       writer: non-blocking (QUIC: SSL_set_blocking_mode 0; TLS: an O_NONBLOCK socket):
 *            every would-block is waited out with poll (QUIC: the event timeout, then
 *            SSL_handle_events) and retried, SSL_shutdown(_ex) too, until it says done
 *   -d MS    reader: a slow reader, which stops reading for MS ms once half the data is in:
 *            the writer, by then in SSL_shutdown(_ex) or about to be, waits on flow control
 *   -c       QUIC reader: after the FIN, close the connection itself (SSL_shutdown_ex) instead
 *            of waiting for the writer's close, whose one CONNECTION_CLOSE a lossy path may drop
 *   -C FILE  client: CA file to verify the server with (default build/certs/ca.pem)
 *   -T K     self-check of the tests: the writer sends K bytes fewer than it announces
 *   -t SECS  the process ends (SIGALRM) after SECS seconds (default 60)
 *
 * The writer's last line on success: "sent N bytes, <how it shut down>"; the reader's:
 * "received N bytes (pattern), <how it ended>". Any failure: "FAILED <where>: <why>", exit 1.
 * QUIC's pattern is hq-interop's (byte i = i % 251, as tests/interop/hq_*.py), TLS's is
 * tests/tls's (byte i = PATTERN[i % 62], printable for command-line peers).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <openssl/err.h>
#include <openssl/quic.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536
static const char PATTERN62[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
static const unsigned char ALPN[] = "\x0ahq-interop";

static int quic;
static int rapid;
static int one_way;
static int close_self;
static int free_first;
static int nonblock;
static unsigned pause_ms;
static int io_fd = -1;   /* the socket the writer's connection uses (-n waits on it) */
static SSL *io_conn;     /* the connection whose events -n handles */
static unsigned long long truncate_by;

static void fail(const char *where, const char *fmt, ...)
{
    va_list ap;
    printf("FAILED %s: ", where);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    ERR_print_errors_fp(stdout);
    fflush(stdout);
    exit(1);
}

static unsigned char pat(unsigned long long i)
{
    return quic ? (unsigned char)(i % 251) : (unsigned char)PATTERN62[i % 62];
}

static void fill(unsigned char *b, size_t n, unsigned long long off)
{
    for (size_t i = 0; i < n; i++)
        b[i] = pat(off + i);
}

/*
 * -n: waits (at most 1 s) until the writer can make progress after a would-block `e` (an
 * SSL_get_error value; 0: the peer's close_notify is awaited). QUIC: the socket readable, or
 * writable if the library wants to write, or its next timer, then SSL_handle_events.
 */
static void wait_io(int e)
{
    struct pollfd p = {.fd = io_fd, .events = POLLIN};
    int ms = 1000;
    if (quic) {
        struct timeval tv;
        int infinite = 0;
        if (SSL_net_write_desired(io_conn))
            p.events |= POLLOUT;
        if (SSL_get_event_timeout(io_conn, &tv, &infinite) && !infinite && tv.tv_sec < 1)
            ms = (int)(tv.tv_usec + 999) / 1000;
        poll(&p, 1, ms);
        SSL_handle_events(io_conn);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE)
        p.events = POLLOUT;
    else if (e != SSL_ERROR_WANT_READ && e != 0)
        fail("wait", "SSL_get_error %d: not a would-block", e);
    poll(&p, 1, ms);
}

static int would_block(int e)
{
    return nonblock && (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE);
}

/* -n: the writer's connection (and stream) stop blocking. */
static void go_nonblocking(SSL *conn, SSL *stream, int fd)
{
    io_fd = fd;
    io_conn = conn;
    if (!nonblock)
        return;
    if (quic ? !SSL_set_blocking_mode(conn, 0) || !SSL_set_blocking_mode(stream, 0)
             : fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        fail("setup", "non-blocking mode");
}

static void write_all(SSL *s, const void *buf, size_t n, const char *what)
{
    const unsigned char *p = buf;
    while (n > 0) {
        size_t w = 0;
        if (!SSL_write_ex(s, p, n, &w)) {
            int e = SSL_get_error(s, 0);
            if (would_block(e)) {
                wait_io(e);
                continue;
            }
            fail(what, "SSL_write_ex: SSL_get_error %d", e);
        }
        p += w;
        n -= w;
    }
}

/* Writes N bytes of the pattern (minus -T's), in chunks of an odd size. */
static unsigned long long write_pattern(SSL *s, unsigned long long n)
{
    static unsigned char buf[CHUNK];
    unsigned long long off = 0, end = n > truncate_by ? n - truncate_by : 0;
    while (off < end) {
        size_t k = end - off < 50021 ? (size_t)(end - off) : 50021;
        fill(buf, k, off);
        write_all(s, buf, k, "write");
        off += k;
    }
    return off;
}

/* Reads a request line ("GET /N\r\n" or "PUT /N\r\n") byte by byte: no body byte is consumed. */
static void read_line(SSL *s, char *line, size_t cap)
{
    size_t n = 0;
    for (;;) {
        size_t r = 0;
        if (!SSL_read_ex(s, line + n, 1, &r))
            fail("request", "SSL_read_ex: SSL_get_error %d after %zu bytes", SSL_get_error(s, 0), n);
        if (line[n] == '\n')
            break;
        if (++n == cap - 1)
            fail("request", "no end of line in %zu bytes", n);
    }
    line[n] = 0;
    if (n > 0 && line[n - 1] == '\r')
        line[n - 1] = 0;
}

/*
 * Reads to the end, checking the pattern and the length; returns how it ended: "FIN" (QUIC) or
 * "close_notify" (TLS). Anything else (a reset, a connection closed first, an EOF without
 * close_notify, more or fewer bytes, an error left on the queue) fails.
 */
static const char *read_pattern(SSL *s, unsigned long long want)
{
    static unsigned char buf[CHUNK];
    unsigned long long got = 0;
    for (;;) {
        size_t r = 0;
        if (!SSL_read_ex(s, buf, sizeof(buf), &r)) {
            int e = SSL_get_error(s, 0);
            if (e != SSL_ERROR_ZERO_RETURN)
                fail("read", "SSL_get_error %d after %llu of %llu bytes", e, got, want);
            break;
        }
        for (size_t i = 0; i < r; i++)
            if (buf[i] != pat(got + i))
                fail("read", "byte %llu differs from the pattern", got + i);
        got += r;
        if (got > want)
            fail("read", "more than the %llu bytes announced", want);
        if (pause_ms > 0 && got >= want / 2) {
            struct timespec ts = {.tv_sec = pause_ms / 1000, .tv_nsec = (long)(pause_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
            pause_ms = 0;
        }
    }
    if (got != want)
        fail("read", "the stream ended after %llu of %llu bytes", got, want);
    /* A clean end queues no error (OpenSSL's SSL_get_error would report SSL_ERROR_SSL). */
    unsigned long q = ERR_peek_error();
    if (q != 0) {
        char r[160];
        ERR_error_string_n(q, r, sizeof(r));
        fail("read", "all %llu bytes and the end arrived, but the error queue holds %s", got, r);
    }
    return quic ? "FIN" : "close_notify";
}

static unsigned long long parse_n(const char *s, const char *what)
{
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != 0)
        fail(what, "not a number: %s", s);
    return n;
}

/* The writer's end: QUIC concludes the stream, then SSL_shutdown_ex on the connection. */
static const char *writer_shutdown(SSL *conn, SSL **stream)
{
    static char how[128];
    if (quic) {
        if (!SSL_stream_conclude(*stream, 0))
            fail("conclude", "SSL_stream_conclude failed");
        if (free_first) {
            SSL_free(*stream);
            *stream = NULL;
        }
        int r;
        /* Non-blocking: called until done, as SSL_shutdown_ex(3) says. */
        while ((r = SSL_shutdown_ex(conn, rapid ? SSL_SHUTDOWN_FLAG_RAPID : 0, NULL, 0)) == 0 && nonblock)
            wait_io(0);
        if (r < 0)
            fail("shutdown", "SSL_shutdown_ex returned %d", r);
        snprintf(how, sizeof(how), "concluded,%s SSL_shutdown_ex(%s) returned %d%s", free_first ? " freed," : "",
                 rapid ? "RAPID" : "0", r, nonblock ? " (non-blocking)" : "");
        return how;
    }
    int r;
    while ((r = SSL_shutdown(conn)) < 0 && would_block(SSL_get_error(conn, r)))
        wait_io(SSL_get_error(conn, r));
    if (r < 0)
        fail("shutdown", "SSL_shutdown returned %d", r);
    if (one_way || r == 1) {
        snprintf(how, sizeof(how), "close_notify sent (SSL_shutdown returned %d)%s", r,
                 nonblock ? " (non-blocking)" : "");
        return how;
    }
    /* The peer's close_notify: non-blocking, 0 or a would-block until it comes. */
    while ((r = SSL_shutdown(conn)) != 1 && nonblock && (r == 0 || would_block(SSL_get_error(conn, r))))
        wait_io(r == 0 ? 0 : SSL_get_error(conn, r));
    if (r != 1)
        fail("shutdown", "the second SSL_shutdown returned %d, SSL_get_error %d (no close_notify from the peer)", r,
             SSL_get_error(conn, r));
    return nonblock ? "close_notify both ways (non-blocking)" : "close_notify both ways";
}

/* The reader's end, after the data: QUIC waits for the peer's close (an application close,
 * code 0); TLS answers the close_notify. */
static const char *reader_end(SSL *conn)
{
    static char how[160];
    if (quic && close_self) {
        int r = SSL_shutdown_ex(conn, 0, NULL, 0);
        if (r < 0)
            fail("close", "SSL_shutdown_ex returned %d", r);
        snprintf(how, sizeof(how), "then closed by us (SSL_shutdown_ex returned %d)", r);
        return how;
    }
    if (quic) {
        int r = SSL_shutdown_ex(conn, SSL_SHUTDOWN_FLAG_WAIT_PEER, NULL, 0);
        SSL_CONN_CLOSE_INFO ci;
        if (r != 1 || !SSL_get_conn_close_info(conn, &ci, sizeof(ci)))
            fail("close", "SSL_shutdown_ex(WAIT_PEER) returned %d, no close info", r);
        if ((ci.flags & (SSL_CONN_CLOSE_FLAG_LOCAL | SSL_CONN_CLOSE_FLAG_TRANSPORT)) != 0 || ci.error_code != 0)
            fail("close", "not the peer's application close with code 0: flags %#x, code %llu, reason %.*s",
                 (unsigned)ci.flags, (unsigned long long)ci.error_code, (int)ci.reason_len,
                 ci.reason != NULL ? ci.reason : "");
        return "then the peer's close (application, code 0)";
    }
    int r = SSL_shutdown(conn);
    if (r < 0)
        fail("close", "SSL_shutdown after the close_notify returned %d", r);
    snprintf(how, sizeof(how), "answered (SSL_shutdown returned %d)", r);
    return how;
}

static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    (void)s;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, ALPN, sizeof(ALPN) - 1, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_OK;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int server(const char *port, const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(quic ? OSSL_QUIC_server_method() : TLS_server_method());
    if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, cert) <= 0 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) <= 0)
        fail("setup", "context, certificate or key");
    if (quic)
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    int fd = socket(AF_INET, quic ? SOCK_DGRAM : SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    socklen_t sl = sizeof(sa);
    int one = 1;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    /* TCP only: a UDP socket with SO_REUSEADDR may be given a port another one holds. */
    if (!quic)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || getsockname(fd, (struct sockaddr *)&sa, &sl) != 0 ||
        (!quic && listen(fd, 4) != 0))
        fail("setup", "socket");

    SSL *listener = NULL, *conn, *stream;
    int cfd = -1;
    if (quic) {
        if ((listener = SSL_new_listener(ctx, 0)) == NULL || !SSL_set_fd(listener, fd) || !SSL_listen(listener))
            fail("setup", "listener");
        printf("listening on %u\n", ntohs(sa.sin_port));
        fflush(stdout);
        if ((conn = SSL_accept_connection(listener, 0)) == NULL)
            fail("accept", "SSL_accept_connection");
        if (!SSL_set_default_stream_mode(conn, SSL_DEFAULT_STREAM_MODE_NONE))
            fail("accept", "SSL_set_default_stream_mode");
        if ((stream = SSL_accept_stream(conn, 0)) == NULL)
            fail("accept", "SSL_accept_stream");
    } else {
        printf("listening on %u\n", ntohs(sa.sin_port));
        fflush(stdout);
        if ((cfd = accept(fd, NULL, NULL)) < 0)
            fail("accept", "accept(2)");
        if ((conn = SSL_new(ctx)) == NULL || !SSL_set_fd(conn, cfd) || SSL_accept(conn) != 1)
            fail("accept", "handshake");
        stream = conn;
    }

    char line[128];
    read_line(stream, line, sizeof(line));
    if (strncmp(line, "GET /", 5) == 0) {
        unsigned long long n = parse_n(line + 5, "request");
        go_nonblocking(conn, stream, quic ? fd : cfd);
        unsigned long long sent = write_pattern(stream, n);
        const char *how = writer_shutdown(conn, &stream);
        printf("sent %llu bytes, %s\n", sent, how);
    } else if (strncmp(line, "PUT /", 5) == 0) {
        unsigned long long n = parse_n(line + 5, "request");
        const char *how = read_pattern(stream, n);
        printf("received %llu bytes (pattern), %s, %s\n", n, how, reader_end(conn));
    } else {
        fail("request", "neither GET /N nor PUT /N: %.40s", line);
    }
    if (stream != conn)
        SSL_free(stream); /* NULL after -f */
    SSL_free(conn);
    SSL_free(listener);
    SSL_CTX_free(ctx);
    if (cfd >= 0)
        close(cfd);
    close(fd);
    return 0;
}

static int client(const char *host, const char *port, const char *ca, const char *op, unsigned long long n)
{
    SSL_CTX *ctx = SSL_CTX_new(quic ? OSSL_QUIC_client_method() : TLS_client_method());
    if (ctx == NULL || !SSL_CTX_load_verify_locations(ctx, ca, NULL))
        fail("setup", "context or CA file %s", ca);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = quic ? SOCK_DGRAM : SOCK_STREAM}, *ai;
    if (getaddrinfo("127.0.0.1", port, &hints, &ai) != 0)
        fail("setup", "port %s", port);
    int fd = socket(AF_INET, hints.ai_socktype, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        fail("connect", "connect(2) to 127.0.0.1:%s", port);
    SSL *conn = SSL_new(ctx), *stream;
    if (conn == NULL || !SSL_set_fd(conn, fd) || !SSL_set1_host(conn, host) || !SSL_set_tlsext_host_name(conn, host))
        fail("setup", "SSL object");
    if (quic) {
        BIO_ADDR *peer = BIO_ADDR_new();
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ai->ai_addr;
        if (peer == NULL || !BIO_ADDR_rawmake(peer, AF_INET, &sin->sin_addr, sizeof(sin->sin_addr), sin->sin_port) ||
            !SSL_set1_initial_peer_addr(conn, peer) || SSL_set_alpn_protos(conn, ALPN, sizeof(ALPN) - 1) != 0 ||
            !SSL_set_default_stream_mode(conn, SSL_DEFAULT_STREAM_MODE_NONE))
            fail("setup", "QUIC settings");
        BIO_ADDR_free(peer);
    }
    freeaddrinfo(ai);
    if (SSL_connect(conn) != 1)
        fail("connect", "handshake");
    if (quic) {
        if ((stream = SSL_new_stream(conn, 0)) == NULL)
            fail("connect", "SSL_new_stream");
    } else {
        stream = conn;
    }

    char line[64];
    snprintf(line, sizeof(line), "%s /%llu\r\n", strcmp(op, "get") == 0 ? "GET" : "PUT", n);
    write_all(stream, line, strlen(line), "request");
    if (strcmp(op, "get") == 0) {
        if (quic && !SSL_stream_conclude(stream, 0))
            fail("request", "SSL_stream_conclude");
        const char *how = read_pattern(stream, n);
        printf("received %llu bytes (pattern), %s, %s\n", n, how, reader_end(conn));
    } else {
        go_nonblocking(conn, stream, fd);
        unsigned long long sent = write_pattern(stream, n);
        const char *how = writer_shutdown(conn, &stream);
        printf("sent %llu bytes, %s\n", sent, how);
    }
    if (stream != conn)
        SSL_free(stream); /* NULL after -f */
    SSL_free(conn);
    SSL_CTX_free(ctx);
    close(fd);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bulk quic|tls server [-R] [-1] [-c] [-f] [-n] [-d MS] [-T K] [-t SECS] PORT CERT KEY\n"
                    "       bulk quic|tls client [-R] [-1] [-c] [-f] [-n] [-d MS] [-T K] [-t SECS] [-C CA] HOST PORT get|put N\n"
                    "       bulk gen quic|tls N\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "gen") == 0) {
        if (argc != 4)
            usage();
        quic = strcmp(argv[2], "quic") == 0;
        unsigned long long n = parse_n(argv[3], "gen");
        static unsigned char buf[CHUNK];
        for (unsigned long long off = 0; off < n; off += CHUNK) {
            size_t k = n - off < CHUNK ? (size_t)(n - off) : CHUNK;
            fill(buf, k, off);
            fwrite(buf, 1, k, stdout);
        }
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (strcmp(argv[1], "quic") != 0 && strcmp(argv[1], "tls") != 0)
        usage();
    quic = strcmp(argv[1], "quic") == 0;
    const char *role = argv[2], *ca = "build/certs/ca.pem";
    unsigned secs = 60;
    int opt;
    optind = 3;
    while ((opt = getopt(argc, argv, "R1cfnd:C:T:t:")) != -1) {
        switch (opt) {
        case 'R': rapid = 1; break;
        case '1': one_way = 1; break;
        case 'c': close_self = 1; break;
        case 'f': free_first = 1; break;
        case 'n': nonblock = 1; break;
        case 'd': pause_ms = (unsigned)parse_n(optarg, "-d"); break;
        case 'C': ca = optarg; break;
        case 'T': truncate_by = parse_n(optarg, "-T"); break;
        case 't': secs = (unsigned)parse_n(optarg, "-t"); break;
        default: usage();
        }
    }
    signal(SIGPIPE, SIG_IGN);
    alarm(secs);
    argv += optind;
    argc -= optind;
    if (strcmp(role, "server") == 0 && argc == 3)
        return server(argv[0], argv[1], argv[2]);
    if (strcmp(role, "client") == 0 && argc == 4 && (strcmp(argv[2], "get") == 0 || strcmp(argv[2], "put") == 0))
        return client(argv[0], argv[1], ca, argv[2], parse_n(argv[3], "N"));
    usage();
    return 2;
}
