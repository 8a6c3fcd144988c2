/*
 * fleet-client: the client of the fleet suite (tests/fleet/run.sh), against osslquic's OpenSSL
 * API. It talks to the DDD demos (c-demos) behind a balancer, over TLS or QUIC, with ONE
 * SSL_CTX for the whole run, so that what a server hands out carries over to the next
 * connection: the session (SSL_get1_session of connection i is offered by connection i+1
 * with SSL_set_session) and, over QUIC, NEW_TOKEN tokens (kept by the library per SSL_CTX).
 * The servers run with DEMO_SERVER_NAME, so "GET /whoami" is answered with a line
 * "server NAME sees ADDR:PORT": which server answered and the client address it saw.
 *
 *   fleet-client tls|quic [-C CA] [-N NAME] [-t SECS] [-k K] [-o store] ADDR PORT MODE [ARGS]
 *     run N        N connections one after another, each offering the session of the
 *                  connection K before it (default 1: the previous one); each asks /whoami
 *                  and prints
 *                    conn I ok server=S sees=A:P local=A:P reused=0|1 prev=S|- ms=T at=T
 *                  (prev: the server of the connection whose session was offered; at: seconds
 *                  since the start) or "conn I FAIL: why"; at the end "done OK FAILED"
 *     steps N      as run, but before each connection it prints "next I" and waits for a line
 *                  on stdin (the script reads the servers' counters between connections)
 *     loop N       as run, but stops early once stdin has a line or is at EOF
 *     rebind N K   QUIC: one connection: /whoami, then "GET /N" read and checked byte by byte;
 *                  after K bytes it prints "pause local=A:P", reads one line from stdin (the
 *                  script moves the client to another source port meanwhile), goes on, and
 *                  asks /whoami again on a new stream; prints "whoami ...", "received N bytes
 *                  (pattern)" and "done OK FAILED"
 *     reset        QUIC: one connection: /whoami, "hold server=S"; reads one line from stdin
 *                  (the script kills that server and points its route at another), then asks
 *                  /whoami on a new stream, which must fail; prints "closed reason=\"...\"
 *                  after_ms=MS" from SSL_get_conn_close_info, and "done OK FAILED"
 *
 * Every wait is bounded: TLS sockets time out after -t seconds (default 10); QUIC waits end at
 * the library's idle timeout; the script runs this under timeout(1) as well. Exits 0 only if
 * nothing failed.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int quic;
static SSL_CTX *ctx;
static struct sockaddr_in server;
static const char *name = "localhost";
static int timeout_s = 10;
static int back = 1; /* -k: a connection offers the session of the one this many before it */
static int no_store;  /* -o: SSL_SESS_CACHE_NO_INTERNAL_STORE */
static double t_start;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The last queued error as text (and the queue emptied), or the fallback. */
static const char *err_text(const char *fallback)
{
    static char buf[200];
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        return fallback;
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return buf;
}

static void addr_text(const struct sockaddr_in *a, char *buf, size_t cap)
{
    char h[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &a->sin_addr, h, sizeof(h));
    snprintf(buf, cap, "%s:%u", h, ntohs(a->sin_port));
}

/* One line from stdin (the script's go-ahead); 0 at EOF. */
static int wait_stdin(void)
{
    char line[64];
    return fgets(line, sizeof(line), stdin) != NULL;
}

/* 1 if stdin has a line or is at EOF (without waiting). */
static int stdin_ready(void)
{
    struct pollfd p = {0, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

struct conn {
    int fd;
    SSL *ssl;
    char local[64];
};

/* A connection to the balancer, its handshake done; offers `sess` if not NULL. On failure,
 * why is set and 0 returned (c cleaned up). */
static int conn_open(struct conn *c, SSL_SESSION *sess, char *why, size_t cap)
{
    struct timeval tv = {timeout_s, 0};
    struct sockaddr_in me;
    socklen_t ml = sizeof(me);
    int r;

    c->ssl = NULL;
    c->fd = socket(AF_INET, (quic ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(why, cap, "socket: %s", strerror(errno));
        return 0;
    }
    (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (!quic) {
        int one = 1;
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (connect(c->fd, (struct sockaddr *)&server, sizeof(server)) != 0) {
        snprintf(why, cap, "connect: %s", strerror(errno));
        goto bad;
    }
    if (getsockname(c->fd, (struct sockaddr *)&me, &ml) == 0)
        addr_text(&me, c->local, sizeof(c->local));
    else
        snprintf(c->local, sizeof(c->local), "?");
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || !SSL_set_fd(c->ssl, c->fd) || !SSL_set1_host(c->ssl, name) ||
        !SSL_set_tlsext_host_name(c->ssl, name)) {
        snprintf(why, cap, "SSL setup: %s", err_text("?"));
        goto bad;
    }
    if (sess != NULL && !SSL_set_session(c->ssl, sess)) {
        snprintf(why, cap, "SSL_set_session: %s", err_text("?"));
        goto bad;
    }
    if (quic && (!SSL_set_blocking_mode(c->ssl, 1) ||
                 !SSL_set_default_stream_mode(c->ssl, SSL_DEFAULT_STREAM_MODE_NONE))) {
        snprintf(why, cap, "QUIC setup: %s", err_text("?"));
        goto bad;
    }
    if ((r = SSL_connect(c->ssl)) != 1) {
        snprintf(why, cap, "handshake: SSL error %d: %s", SSL_get_error(c->ssl, r), err_text("no queued error"));
        goto bad;
    }
    return 1;
bad:
    SSL_free(c->ssl);
    c->ssl = NULL;
    close(c->fd);
    return 0;
}

static void conn_close(struct conn *c)
{
    if (quic)
        SSL_shutdown_ex(c->ssl, SSL_SHUTDOWN_FLAG_RAPID, NULL, 0); /* every answer is in */
    else
        SSL_shutdown(c->ssl);
    ERR_clear_error();
    SSL_free(c->ssl);
    close(c->fd);
}

/* Sends "GET path" on s (a TLS connection or a QUIC stream, concluded after it). */
static int send_request(SSL *s, const char *path, char *why, size_t cap)
{
    char req[256];
    size_t w = 0, n = (size_t)snprintf(req, sizeof(req), "GET %s\r\n", path);
    if (SSL_write_ex(s, req, n, &w) != 1 || w != n || (quic && !SSL_stream_conclude(s, 0))) {
        snprintf(why, cap, "sending the request: %s", err_text("?"));
        return 0;
    }
    return 1;
}

/* Reads a text answer to its end (FIN or close_notify) into buf; 0 (why set) on failure. */
static int read_text(SSL *s, char *buf, size_t cap, char *why, size_t wcap)
{
    size_t len = 0, n;
    for (;;) {
        int r = SSL_read_ex(s, buf + len, cap - 1 - len, &n);
        if (r == 1) {
            len += n;
            if (len == cap - 1)
                break;
            continue;
        }
        if (SSL_get_error(s, r) == SSL_ERROR_ZERO_RETURN)
            break;
        snprintf(why, wcap, "reading the answer: SSL error %d: %s", SSL_get_error(s, r), err_text("no queued error"));
        return 0;
    }
    buf[len] = '\0';
    ERR_clear_error();
    return 1;
}

/* From an answer, "server NAME sees ADDR": name and addr; 0 if absent. */
static int parse_whoami(const char *text, char *srv, size_t scap, char *sees, size_t acap)
{
    const char *p = strstr(text, "server ");
    char a[64], b[64];
    if (p == NULL || sscanf(p, "server %63s sees %63s", a, b) != 2)
        return 0;
    snprintf(srv, scap, "%s", a);
    snprintf(sees, acap, "%s", b);
    return 1;
}

/* /whoami on c (TLS: the connection itself; QUIC: a new stream). */
static int whoami(struct conn *c, char *srv, size_t scap, char *sees, size_t acap, char *why, size_t wcap)
{
    char text[1300];
    SSL *s = c->ssl;
    int ok;
    if (quic && (s = SSL_new_stream(c->ssl, 0)) == NULL) {
        snprintf(why, wcap, "SSL_new_stream: %s", err_text("?"));
        return 0;
    }
    ok = send_request(s, "/whoami", why, wcap) && read_text(s, text, sizeof(text), why, wcap);
    if (s != c->ssl)
        SSL_free(s);
    if (ok && !parse_whoami(text, srv, scap, sees, acap)) {
        snprintf(why, wcap, "no \"server NAME sees ADDR\" in the answer: %.80s", text);
        ok = 0;
    }
    return ok;
}

#define RING 9 /* sessions kept: -k is at most RING - 1 */

/* run / steps / loop: n connections one after another, each offering the session of the
 * connection `back` before it (-k; default the previous one), if that one succeeded. */
static int mode_run(int n, int step, int stop_on_stdin)
{
    SSL_SESSION *ring[RING] = {NULL};
    char ring_srv[RING][64];
    int i, ok = 0, failed = 0;
    for (i = 1; i <= n; i++) {
        struct conn c;
        char why[300], srv[64], sees[64];
        double t0 = now_s();
        SSL_SESSION *sess = i > back ? ring[(i - back) % RING] : NULL;
        const char *prev = sess != NULL ? ring_srv[(i - back) % RING] : "-";
        SSL_SESSION_free(ring[i % RING]); /* connection i - RING's, no longer needed */
        ring[i % RING] = NULL;
        if (stop_on_stdin && stdin_ready())
            break;
        if (step) {
            printf("next %d\n", i);
            if (!wait_stdin())
                break;
            t0 = now_s();
        }
        if (!conn_open(&c, sess, why, sizeof(why))) {
            printf("conn %d FAIL: %s at=%.3f\n", i, why, now_s() - t_start);
            failed++;
            continue;
        }
        if (!whoami(&c, srv, sizeof(srv), sees, sizeof(sees), why, sizeof(why))) {
            printf("conn %d FAIL: %s at=%.3f\n", i, why, now_s() - t_start);
            failed++;
            conn_close(&c);
            continue;
        }
        printf("conn %d ok server=%s sees=%s local=%s reused=%d prev=%s ms=%.1f at=%.3f\n", i, srv, sees, c.local,
               SSL_session_reused(c.ssl), prev, (now_s() - t0) * 1000, now_s() - t_start);
        ok++;
        /* The newest session (the tickets came with the answer), for connection i + back. */
        ring[i % RING] = SSL_get1_session(c.ssl);
        snprintf(ring_srv[i % RING], sizeof(ring_srv[0]), "%s", srv);
        conn_close(&c);
    }
    for (i = 0; i < RING; i++)
        SSL_SESSION_free(ring[i]);
    printf("done %d %d\n", ok, failed);
    return failed == 0 && ok > 0;
}

/* rebind: a large answer read with a pause in the middle, then /whoami again. */
static int mode_rebind(uint64_t total, uint64_t pause_at)
{
    struct conn c;
    char why[300] = "", srv[64], sees[64], srv2[64], sees2[64];
    uint8_t buf[65536];
    char path[32];
    uint64_t got = 0;
    int ok = 0, paused = 0, bad = 0;
    SSL *st;

    if (!conn_open(&c, NULL, why, sizeof(why)) || !whoami(&c, srv, sizeof(srv), sees, sizeof(sees), why, sizeof(why))) {
        printf("FAIL: %s\ndone 0 1\n", why);
        return 0;
    }
    printf("whoami server=%s sees=%s local=%s\n", srv, sees, c.local);
    fflush(stdout);
    snprintf(path, sizeof(path), "/%llu", (unsigned long long)total);
    if ((st = SSL_new_stream(c.ssl, 0)) == NULL || !send_request(st, path, why, sizeof(why))) {
        if (why[0] == '\0')
            snprintf(why, sizeof(why), "SSL_new_stream: %s", err_text("?"));
        printf("FAIL: %s\ndone 0 1\n", why);
        return 0;
    }
    for (;;) {
        size_t n, i;
        size_t want = sizeof(buf);
        int r;
        if (!paused && pause_at - got < want)
            want = (size_t)(pause_at - got);
        if (!paused && got >= pause_at) {
            /* The script moves this client to another source port meanwhile. */
            printf("pause local=%s received=%llu\n", c.local, (unsigned long long)got);
            fflush(stdout);
            paused = 1;
            if (!wait_stdin()) {
                printf("FAIL: stdin closed during the pause\ndone 0 1\n");
                return 0;
            }
            printf("resumed\n");
            fflush(stdout);
            continue;
        }
        r = SSL_read_ex(st, buf, want, &n);
        if (r != 1) {
            if (SSL_get_error(st, r) == SSL_ERROR_ZERO_RETURN)
                break;
            snprintf(why, sizeof(why), "reading after %llu bytes: SSL error %d: %s", (unsigned long long)got,
                     SSL_get_error(st, r), err_text("no queued error"));
            break;
        }
        for (i = 0; i < n; i++) {
            if (buf[i] != (uint8_t)((got + i) % 251)) {
                bad = 1;
                break;
            }
        }
        got += n;
        if (bad) {
            snprintf(why, sizeof(why), "byte %llu differs from the pattern", (unsigned long long)(got - n + i));
            break;
        }
    }
    SSL_free(st);
    ERR_clear_error();
    if (why[0] == '\0' && got != total)
        snprintf(why, sizeof(why), "%llu bytes, not %llu", (unsigned long long)got, (unsigned long long)total);
    if (why[0] == '\0') {
        printf("received %llu bytes (pattern)\n", (unsigned long long)got);
        if (whoami(&c, srv2, sizeof(srv2), sees2, sizeof(sees2), why, sizeof(why))) {
            printf("whoami server=%s sees=%s\n", srv2, sees2);
            ok = 1;
        }
    }
    if (!ok)
        printf("FAIL: %s\n", why);
    conn_close(&c);
    printf("done %d %d\n", ok, !ok);
    return ok;
}

/* reset: a connection whose server goes away; the next request must end it promptly. */
static int mode_reset(void)
{
    struct conn c;
    char why[300] = "", srv[64], sees[64], text[1300];
    SSL_CONN_CLOSE_INFO info;
    double t0;
    SSL *st;
    int failed_as_expected = 0;

    if (!conn_open(&c, NULL, why, sizeof(why)) || !whoami(&c, srv, sizeof(srv), sees, sizeof(sees), why, sizeof(why))) {
        printf("FAIL: %s\ndone 0 1\n", why);
        return 0;
    }
    printf("hold server=%s sees=%s local=%s\n", srv, sees, c.local);
    fflush(stdout);
    if (!wait_stdin()) {
        printf("FAIL: stdin closed while holding\ndone 0 1\n");
        return 0;
    }
    t0 = now_s();
    st = SSL_new_stream(c.ssl, 0);
    if (st == NULL) {
        failed_as_expected = 1;
        snprintf(why, sizeof(why), "SSL_new_stream failed: %s", err_text("?"));
    } else {
        if (!send_request(st, "/whoami", why, sizeof(why)) || !read_text(st, text, sizeof(text), why, sizeof(why)))
            failed_as_expected = 1;
        else
            snprintf(why, sizeof(why), "answered after the server was killed: %.80s", text);
        SSL_free(st);
    }
    /* The connection has ended by now if a reset came; else this shows it is still up. */
    memset(&info, 0, sizeof(info));
    if (SSL_get_conn_close_info(c.ssl, &info, sizeof(info)))
        printf("closed reason=\"%.*s\" code=%llu transport=%d local=%d after_ms=%.1f\n",
               info.reason != NULL ? (int)info.reason_len : 0, info.reason != NULL ? info.reason : "",
               (unsigned long long)info.error_code, (info.flags & SSL_CONN_CLOSE_FLAG_TRANSPORT) != 0,
               (info.flags & SSL_CONN_CLOSE_FLAG_LOCAL) != 0, (now_s() - t0) * 1000);
    else
        printf("not closed after_ms=%.1f: %s\n", (now_s() - t0) * 1000, why);
    ERR_clear_error();
    printf("request: %s\n", why);
    SSL_free(c.ssl);
    close(c.fd);
    printf("done %d %d\n", failed_as_expected, !failed_as_expected);
    return failed_as_expected;
}

static void usage(void)
{
    fprintf(stderr, "usage: fleet-client tls|quic [-C CA] [-N NAME] [-t SECS] [-k K] [-o store] ADDR PORT\n"
                    "                    run N | steps N |\n"
                    "                    loop N | rebind BYTES PAUSE_AT | reset\n");
}

int main(int argc, char **argv)
{
    const char *ca = "build/certs/ca.pem", *mode;
    int i = 2, port, ok;
    static const unsigned char alpn[] = {10, 'h', 'q', '-', 'i', 'n', 't', 'e', 'r', 'o', 'p'};

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2 || (strcmp(argv[1], "tls") != 0 && strcmp(argv[1], "quic") != 0)) {
        usage();
        return 2;
    }
    quic = strcmp(argv[1], "quic") == 0;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "-C") == 0)
            ca = argv[i + 1];
        else if (strcmp(argv[i], "-N") == 0)
            name = argv[i + 1];
        else if (strcmp(argv[i], "-t") == 0)
            timeout_s = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-k") == 0 && atoi(argv[i + 1]) >= 1 && atoi(argv[i + 1]) < RING)
            back = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-o") == 0 && strcmp(argv[i + 1], "store") == 0)
            no_store = 1;
        else {
            usage();
            return 2;
        }
    }
    if (argc - i < 3) {
        usage();
        return 2;
    }
    memset(&server, 0, sizeof(server));
    server.sin_family = AF_INET;
    port = atoi(argv[i + 1]);
    if (inet_pton(AF_INET, argv[i], &server.sin_addr) != 1 || port <= 0 || port > 65535) {
        fprintf(stderr, "fleet-client: bad address %s or port %s\n", argv[i], argv[i + 1]);
        return 2;
    }
    server.sin_port = htons((uint16_t)port);
    mode = argv[i + 2];
    i += 3;

    ctx = SSL_CTX_new(quic ? OSSL_QUIC_client_method() : TLS_client_method());
    if (ctx == NULL || !SSL_CTX_load_verify_locations(ctx, ca, NULL)) {
        fprintf(stderr, "fleet-client: cannot load the CA file %s\n", ca);
        ERR_print_errors_fp(stderr);
        return 2;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* -o store: no internal session store. osslquic keeps a client's sessions in the
     * context's store even without SSL_SESS_CACHE_CLIENT and resumes from it on its own (the
     * oldest ticket first) when no session was set, which empties SSL_SESSION objects the
     * application holds (OpenSSL never resumes a client on its own): with -k K, the first K
     * connections would use up the sessions connections K+1... offer. */
    if (no_store)
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    if (quic && SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn)) != 0) {
        ERR_print_errors_fp(stderr);
        return 2;
    }
    t_start = now_s();
    if ((strcmp(mode, "run") == 0 || strcmp(mode, "steps") == 0 || strcmp(mode, "loop") == 0) && argc - i == 1)
        ok = mode_run(atoi(argv[i]), strcmp(mode, "steps") == 0, strcmp(mode, "loop") == 0);
    else if (strcmp(mode, "rebind") == 0 && quic && argc - i == 2)
        ok = mode_rebind(strtoull(argv[i], NULL, 10), strtoull(argv[i + 1], NULL, 10));
    else if (strcmp(mode, "reset") == 0 && quic && argc - i == 0)
        ok = mode_reset();
    else {
        usage();
        return 2;
    }
    SSL_CTX_free(ctx);
    return ok ? 0 : 1;
}
