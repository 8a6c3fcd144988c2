/*
 * tls_peer: a TLS-over-TCP server and client written against OpenSSL's API only, for the
 * interop tests in tests/tls/run.sh.
 *
 *   tls_peer server [options] PORT
 *       Listens on 127.0.0.1:PORT (0: the system picks; prints "listening on N" when ready).
 *       Built against osslquic it uses the listener API (SSL_new_listener + SSL_set_fd +
 *       blocking SSL_accept_connection); against another OpenSSL (no OSSLQUIC_H) it calls
 *       accept(2) and SSL_new. One detached thread per connection serves one request:
 *       "GET /<N>\r\n" (or "GET /<N> HTTP/1.0\r\n...\r\n\r\n") is answered with N bytes of
 *       the pattern below, then close_notify. Each connection's outcome is one line on
 *       stdout: "conn K: served N bytes (TLSv1.3, alpn=x)" or "conn K: FAILED <where>: <why>".
 *       -c FILE  certificate chain (default build/certs/chain.pem)
 *       -k FILE  private key (default build/certs/key.pem)
 *       -a LIST  ALPN protocols the server accepts, comma-separated; chosen with
 *                SSL_CTX_set_alpn_select_cb; a client offering none of them gets a fatal
 *                no_application_protocol alert
 *       -A       also set the -a list with SSL_CTX_set_alpn_protos on the server context
 *                (ignored by OpenSSL's servers; osslquic's TLS servers, as of this writing,
 *                use only that list and never call the select callback)
 *       -2       TLS 1.2 only (SSL_CTX_set_max_proto_version)
 *       -t SECS  per-connection receive timeout (SO_RCVTIMEO on the accepted socket)
 *       -V FILE  require a client certificate from the CAs in FILE (SSL_VERIFY_PEER |
 *                SSL_VERIFY_FAIL_IF_NO_PEER_CERT, their names sent as the client CA list);
 *                each client's subject is printed: "conn K: client /C=../CN=.."
 *       -E N     TLS 1.3 early data: SSL_CTX_set_max_early_data(N); each connection first
 *                reads early data with SSL_read_early_data (it counts as the start of the
 *                request) and prints "conn K: early data N bytes (accepted|rejected|not sent)"
 *
 *   tls_peer client [options] HOST PORT PATH
 *       Connects, verifies the server, sends "GET PATH\r\n", reads to close_notify, checks
 *       the length (the number in PATH, or -n) and the pattern, answers the close_notify and
 *       prints "OK <version> alpn=<proto|-> bytes=<N>". Exit status 0 only then.
 *       -C FILE  CA file to verify the server with (default build/certs/ca.pem)
 *       -H NAME  host name to verify and send as SNI (default: HOST)
 *       -a LIST  ALPN protocols to offer, comma-separated
 *       -2 / -3  TLS 1.2 only / TLS 1.3 only
 *       -w       HTTP mode for `openssl s_server -WWW`: send "GET PATH HTTP/1.0\r\n\r\n",
 *                skip the response header
 *       -n N     expected body length (default: the digits at the end of PATH)
 *       -r       resumption: after the first connection, a second one offers its session
 *                (SSL_get1_session, SSL_set_session); each prints its OK line with
 *                " reused=<SSL_session_reused>" appended
 *       -e       with -r: the second connection sends its request as early data
 *                (SSL_write_early_data before SSL_connect), sends it again after the
 *                handshake if the server refused it, and appends
 *                " early=<accepted|rejected|not sent>" to its OK line
 *
 * The pattern: byte i is PATTERN[i % 62], printable so command-line peers can show it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const char PATTERN[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
#define PLEN 62

static const char *cert_file = "build/certs/chain.pem";
static const char *key_file = "build/certs/key.pem";
static const char *ca_file = "build/certs/ca.pem";
static const char *client_ca_file;
static unsigned char alpn_wire[256];
static unsigned int alpn_len;
static int tls12_only, tls13_only, http_mode, rcv_timeout, server_alpn_list, resume;
static int early_data;
static long max_early = -1;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

/* The thread's queued OpenSSL errors as one line ('; '-separated), via ERR_print_errors_cb
 * so the detail strings come along. */
struct ebuf {
    char *buf;
    size_t len, off;
};

static int errors_cb(const char *str, size_t len, void *u)
{
    struct ebuf *b = u;

    while (len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r'))
        len--;
    if (b->off < b->len)
        b->off += (size_t)snprintf(b->buf + b->off, b->len - b->off, "%s%.*s",
                                   b->off ? "; " : "", (int)len, str);
    return 1;
}

static void errors(char *buf, size_t len)
{
    struct ebuf b = {buf, len, 0};

    buf[0] = '\0';
    ERR_print_errors_cb(errors_cb, &b);
    if (buf[0] == '\0')
        snprintf(buf, len, "(no error queued)");
}

/* One line on stdout, whole even with many threads. */
static void say(const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&out_lock);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
}

static const char *err_name(int e)
{
    switch (e) {
    case SSL_ERROR_NONE: return "SSL_ERROR_NONE";
    case SSL_ERROR_SSL: return "SSL_ERROR_SSL";
    case SSL_ERROR_WANT_READ: return "SSL_ERROR_WANT_READ";
    case SSL_ERROR_WANT_WRITE: return "SSL_ERROR_WANT_WRITE";
    case SSL_ERROR_SYSCALL: return "SSL_ERROR_SYSCALL";
    case SSL_ERROR_ZERO_RETURN: return "SSL_ERROR_ZERO_RETURN";
    default: return "SSL_ERROR_other";
    }
}

static const char *early_name(int st)
{
    switch (st) {
    case SSL_EARLY_DATA_ACCEPTED: return "accepted";
    case SSL_EARLY_DATA_REJECTED: return "rejected";
    default: return "not sent";
    }
}

/* "a,b" -> ALPN wire format. */
static int parse_alpn(const char *list)
{
    const char *p = list;

    alpn_len = 0;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);

        if (n == 0 || n > 255 || alpn_len + 1 + n > sizeof(alpn_wire))
            return 0;
        alpn_wire[alpn_len++] = (unsigned char)n;
        memcpy(alpn_wire + alpn_len, p, n);
        alpn_len += (unsigned int)n;
        p += n + (e ? 1 : 0);
    }
    return alpn_len > 0;
}

static const char *alpn_of(SSL *s, char *buf, size_t len)
{
    const unsigned char *sel = NULL;
    unsigned int n = 0;

    SSL_get0_alpn_selected(s, &sel, &n);
    if (sel == NULL || n == 0)
        return "-";
    snprintf(buf, len, "%.*s", (int)n, (const char *)sel);
    return buf;
}

/* ---- server ---- */

static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)s;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, alpn_wire, alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

struct conn {
    SSL *ssl;
    int fd; /* -1 when the SSL owns it */
    long id;
};

static void conn_fail(struct conn *c, const char *where, int r)
{
    char eb[1024];
    int e = SSL_get_error(c->ssl, r);
    int sys = errno;

    errors(eb, sizeof(eb));
    say("conn %ld: FAILED %s: %s (errno %d %s): %s", c->id, where, err_name(e),
        e == SSL_ERROR_SYSCALL ? sys : 0, e == SSL_ERROR_SYSCALL ? strerror(sys) : "-", eb);
}

static void *serve(void *arg)
{
    struct conn *c = arg;
    char req[1024], ab[64];
    size_t got = 0, n, sent = 0, want;
    int r;
    char chunk[16384];

    if (rcv_timeout > 0) {
        struct timeval tv = {.tv_sec = rcv_timeout};
        int fd = SSL_get_fd(c->ssl);

        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
            say("conn %ld: note: could not set SO_RCVTIMEO (fd %d)", c->id, fd);
    }
    if (max_early >= 0) {
        /* The request may start in early data (blocking: an error is a failure). */
        for (;;) {
            r = SSL_read_early_data(c->ssl, req + got, sizeof(req) - 1 - got, &n);
            if (r == SSL_READ_EARLY_DATA_ERROR) {
                conn_fail(c, "reading early data", r);
                goto done;
            }
            if (r == SSL_READ_EARLY_DATA_FINISH)
                break;
            got += n;
            if (got == sizeof(req) - 1) {
                say("conn %ld: FAILED early data: longer than %zu bytes", c->id, got);
                goto done;
            }
        }
        say("conn %ld: early data %zu bytes (%s)", c->id, got,
            early_name(SSL_get_early_data_status(c->ssl)));
    }
    if ((r = SSL_accept(c->ssl)) != 1) {
        conn_fail(c, "handshake", r);
        goto done;
    }
    if (client_ca_file != NULL) {
        X509 *peer = SSL_get1_peer_certificate(c->ssl);
        char name[256];

        if (peer == NULL ||
            X509_NAME_oneline(X509_get_subject_name(peer), name, sizeof(name)) == NULL) {
            X509_free(peer);
            say("conn %ld: FAILED client certificate: none after the handshake", c->id);
            goto done;
        }
        say("conn %ld: client %s (verify result %ld)", c->id, name, SSL_get_verify_result(c->ssl));
        X509_free(peer);
    }
    /* The request: one line, or an HTTP/1.0 request up to its empty line. */
    req[got] = '\0';
    for (;;) {
        char *eol;

        if (got > 0 && ((eol = strstr(req, "\r\n")) != NULL || (eol = strchr(req, '\n')) != NULL) &&
            !(strstr(req, " HTTP/") != NULL && strstr(req, " HTTP/") < eol &&
              strstr(req, "\r\n\r\n") == NULL && strstr(req, "\n\n") == NULL))
            break;
        if (got == sizeof(req) - 1) {
            say("conn %ld: FAILED request: longer than %zu bytes", c->id, sizeof(req) - 1);
            goto done;
        }
        if (!SSL_read_ex(c->ssl, req + got, sizeof(req) - 1 - got, &n)) {
            conn_fail(c, "reading the request", 0);
            goto done;
        }
        got += n;
        req[got] = '\0';
        if ((eol = strstr(req, "\r\n")) == NULL && (eol = strchr(req, '\n')) == NULL)
            continue;
        if (strstr(req, " HTTP/") != NULL && strstr(req, " HTTP/") < eol &&
            strstr(req, "\r\n\r\n") == NULL && strstr(req, "\n\n") == NULL)
            continue;
        break;
    }
    if (strncmp(req, "GET /", 5) != 0 || req[5] < '0' || req[5] > '9') {
        say("conn %ld: FAILED request: not GET /<N>: %.40s", c->id, req);
        goto done;
    }
    want = strtoul(req + 5, NULL, 10);
    while (sent < want) {
        size_t k = want - sent < sizeof(chunk) ? want - sent : sizeof(chunk), i;

        for (i = 0; i < k; i++)
            chunk[i] = PATTERN[(sent + i) % PLEN];
        if (!SSL_write_ex(c->ssl, chunk, k, &n)) {
            conn_fail(c, "writing the response", 0);
            goto done;
        }
        sent += n;
    }
    r = SSL_shutdown(c->ssl);
    if (r < 0) {
        conn_fail(c, "sending close_notify", r);
        goto done;
    }
    /* Wait for the peer's close_notify; a peer that just closes the socket is fine too. */
    if (r == 0 && (r = SSL_shutdown(c->ssl)) != 1) {
        int e = SSL_get_error(c->ssl, r);

        ERR_clear_error();
        say("conn %ld: served %zu bytes (%s, alpn=%s), no close_notify back (%s)", c->id, sent,
            SSL_get_version(c->ssl), alpn_of(c->ssl, ab, sizeof(ab)), err_name(e));
        goto done;
    }
    say("conn %ld: served %zu bytes (%s, alpn=%s)", c->id, sent, SSL_get_version(c->ssl),
        alpn_of(c->ssl, ab, sizeof(ab)));
done:
    ERR_clear_error();
    SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    return NULL;
}

static int run_server(int port)
{
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    long id = 0;
    char eb[1024];
#ifdef OSSLQUIC_H
    SSL *listener;
#endif

    if (ctx == NULL || !SSL_CTX_use_certificate_chain_file(ctx, cert_file) ||
        !SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM)) {
        errors(eb, sizeof(eb));
        fprintf(stderr, "server: context: %s\n", eb);
        return 1;
    }
    if (tls12_only && !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION))
        return fprintf(stderr, "server: set_max_proto_version failed\n"), 1;
    if (max_early >= 0 && SSL_CTX_set_max_early_data(ctx, (uint32_t)max_early) != 1)
        return fprintf(stderr, "server: SSL_CTX_set_max_early_data failed\n"), 1;
    if (client_ca_file != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca_file);

        if (names == NULL || !SSL_CTX_load_verify_locations(ctx, client_ca_file, NULL))
            return fprintf(stderr, "server: cannot load %s\n", client_ca_file), 1;
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    if (alpn_len > 0)
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (alpn_len > 0 && server_alpn_list && SSL_CTX_set_alpn_protos(ctx, alpn_wire, alpn_len) != 0)
        return fprintf(stderr, "server: SSL_CTX_set_alpn_protos failed\n"), 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((unsigned short)port);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 256) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("server: listen");
        return 1;
    }
#ifdef OSSLQUIC_H
    if ((listener = SSL_new_listener(ctx, 0)) == NULL || SSL_set_fd(listener, lfd) != 1) {
        errors(eb, sizeof(eb));
        fprintf(stderr, "server: listener: %s\n", eb);
        return 1;
    }
#endif
    printf("listening on %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    for (;;) {
        struct conn *c = calloc(1, sizeof(*c));
        pthread_t t;

        if (c == NULL)
            return 1;
        c->id = ++id;
        c->fd = -1;
#ifdef OSSLQUIC_H
        c->ssl = SSL_accept_connection(listener, 0);
        if (c->ssl == NULL) {
            errors(eb, sizeof(eb));
            say("accept: SSL_accept_connection returned NULL: %s", eb);
            free(c);
            usleep(10000);
            continue;
        }
#else
        c->fd = accept(lfd, NULL, NULL);
        if (c->fd < 0) {
            say("accept: %s", strerror(errno));
            free(c);
            usleep(10000);
            continue;
        }
        c->ssl = SSL_new(ctx);
        if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
            return fprintf(stderr, "server: SSL_new/SSL_set_fd failed\n"), 1;
#endif
        if (pthread_create(&t, NULL, serve, c) != 0) {
            say("conn %ld: FAILED pthread_create", c->id);
            SSL_free(c->ssl);
            if (c->fd >= 0)
                close(c->fd);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
}

/* ---- client ---- */

static int tcp_connect(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai, *p;
    int fd = -1, rc;

    if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
        fprintf(stderr, "client: %s:%s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    for (p = ai; p != NULL; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype, p->ai_protocol);
        if (fd >= 0 && connect(fd, p->ai_addr, p->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        fprintf(stderr, "client: connect %s:%s: %s\n", host, port, strerror(errno));
    return fd;
}

static int client_fail(SSL *s, const char *where, int r)
{
    char eb[1024];
    int e = SSL_get_error(s, r), sys = errno;

    errors(eb, sizeof(eb));
    fprintf(stderr, "client: FAILED %s: %s (errno %d %s): %s\n", where, err_name(e),
            e == SSL_ERROR_SYSCALL ? sys : 0, e == SSL_ERROR_SYSCALL ? strerror(sys) : "-", eb);
    if (SSL_get_verify_result(s) != X509_V_OK)
        fprintf(stderr, "client: verify result: %s\n",
                X509_verify_cert_error_string(SSL_get_verify_result(s)));
    return 1;
}

/* One connection of `ctx`, offering `offer` if not NULL; with `keep`, its session goes to
 * *keep (a reference). */
static int client_once(SSL_CTX *ctx, const char *host, const char *port, const char *path,
                       long expect, SSL_SESSION *offer, SSL_SESSION **keep)
{
    SSL *s;
    char req[600], ab[64], eb[1024];
    char *buf;
    size_t cap = 1 << 20, got = 0, n, i, body = 0;
    int fd, r, e;
    const char *name = getenv("TLS_PEER_VERIFY_HOST") ? getenv("TLS_PEER_VERIFY_HOST") : host;

    if ((fd = tcp_connect(host, port)) < 0)
        return 1;
    s = SSL_new(ctx);
    if (s == NULL || SSL_set_fd(s, fd) != 1 || SSL_set1_host(s, name) != 1)
        return client_fail(s, "setup", 0);
    if (offer != NULL && SSL_set_session(s, offer) != 1)
        return client_fail(s, "SSL_set_session", 0);
    if (inet_pton(AF_INET, name, req) != 1 && inet_pton(AF_INET6, name, req) != 1 &&
        SSL_set_tlsext_host_name(s, name) != 1)
        return client_fail(s, "SNI", 0);
    if (alpn_len > 0 && SSL_set_alpn_protos(s, alpn_wire, alpn_len) != 0)
        return client_fail(s, "SSL_set_alpn_protos", 0);
    if (http_mode)
        snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
    else
        snprintf(req, sizeof(req), "GET %s\r\n", path);
    if (early_data && offer != NULL &&
        (!SSL_write_early_data(s, req, strlen(req), &n) || n != strlen(req)))
        return client_fail(s, "SSL_write_early_data", 0);
    if ((r = SSL_connect(s)) != 1)
        return client_fail(s, "handshake", r);
    /* Refused early data is sent again (SSL_write_early_data(3)). */
    if ((!early_data || offer == NULL || SSL_get_early_data_status(s) != SSL_EARLY_DATA_ACCEPTED) &&
        (!SSL_write_ex(s, req, strlen(req), &n) || n != strlen(req)))
        return client_fail(s, "sending the request", 0);
    if ((buf = malloc(cap)) == NULL)
        return 1;
    for (;;) {
        if (got == cap && (buf = realloc(buf, cap *= 2)) == NULL)
            return 1;
        if (SSL_read_ex(s, buf + got, cap - got, &n)) {
            got += n;
            continue;
        }
        e = SSL_get_error(s, 0);
        if (e == SSL_ERROR_ZERO_RETURN)
            break;
        return client_fail(s, "reading the response (before close_notify)", 0);
    }
    if (http_mode) {
        char *end = memmem(buf, got, "\r\n\r\n", 4);

        if (end == NULL || got < 12 || memcmp(buf + 9, "200", 3) != 0) {
            fprintf(stderr, "client: FAILED: not an HTTP 200 response: %.60s\n", buf);
            return 1;
        }
        body = (size_t)(end + 4 - buf);
    }
    if (expect >= 0 && got - body != (size_t)expect) {
        fprintf(stderr, "client: FAILED: got %zu bytes, expected %ld\n", got - body, expect);
        return 1;
    }
    for (i = body; i < got; i++) {
        if (buf[i] != PATTERN[(i - body) % PLEN]) {
            fprintf(stderr, "client: FAILED: byte %zu is 0x%02x, expected '%c'\n", i - body,
                    (unsigned char)buf[i], PATTERN[(i - body) % PLEN]);
            return 1;
        }
    }
    /* Answer the close_notify: the peer's has arrived, so this returns 1. */
    if ((r = SSL_shutdown(s)) != 1) {
        errors(eb, sizeof(eb));
        fprintf(stderr, "client: FAILED: SSL_shutdown after the peer's close_notify returned %d "
                        "(expected 1): %s\n", r, eb);
        return 1;
    }
    printf("OK %s alpn=%s bytes=%zu", SSL_get_version(s), alpn_of(s, ab, sizeof(ab)),
           got - body);
    if (resume)
        printf(" reused=%d", SSL_session_reused(s));
    if (early_data && offer != NULL)
        printf(" early=%s", early_name(SSL_get_early_data_status(s)));
    printf("\n");
    if (keep != NULL && (*keep = SSL_get1_session(s)) == NULL)
        return client_fail(s, "SSL_get1_session", 0);
    free(buf);
    SSL_free(s);
    close(fd);
    return 0;
}

static int run_client(const char *host, const char *port, const char *path, long expect)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_SESSION *sess = NULL;
    char eb[1024];
    int r;

    if (ctx == NULL)
        return fprintf(stderr, "client: SSL_CTX_new failed\n"), 1;
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        errors(eb, sizeof(eb));
        return fprintf(stderr, "client: CA file %s: %s\n", ca_file, eb), 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (tls12_only && !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION))
        return fprintf(stderr, "client: set_max_proto_version failed\n"), 1;
    if (tls13_only && !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION))
        return fprintf(stderr, "client: set_min_proto_version failed\n"), 1;
    r = client_once(ctx, host, port, path, expect, NULL, resume ? &sess : NULL);
    if (r == 0 && resume)
        r = client_once(ctx, host, port, path, expect, sess, NULL);
    SSL_SESSION_free(sess);
    SSL_CTX_free(ctx);
    return r;
}

static int usage(void)
{
    fprintf(stderr, "usage: tls_peer server [-c chain] [-k key] [-a alpn,...] [-A] [-2] [-t secs] [-V ca] [-E max] PORT\n"
                    "       tls_peer client [-C ca] [-a alpn,...] [-2|-3] [-w] [-r [-e]] [-n len] HOST "
                    "PORT PATH\n");
    return 2;
}

int main(int argc, char **argv)
{
    int server, opt;
    long expect = -2;

    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "server") == 0)
        server = 1;
    else if (strcmp(argv[1], "client") == 0)
        server = 0;
    else
        return usage();
    argv++;
    argc--;
    while ((opt = getopt(argc, argv, "c:k:C:H:a:A23wn:t:rV:eE:")) != -1) {
        switch (opt) {
        case 'c': cert_file = optarg; break;
        case 'k': key_file = optarg; break;
        case 'C': ca_file = optarg; break;
        case 'H': setenv("TLS_PEER_VERIFY_HOST", optarg, 1); break;
        case 'a':
            if (!parse_alpn(optarg))
                return fprintf(stderr, "bad ALPN list: %s\n", optarg), 2;
            break;
        case 'A': server_alpn_list = 1; break;
        case '2': tls12_only = 1; break;
        case '3': tls13_only = 1; break;
        case 'w': http_mode = 1; break;
        case 'n': expect = strtol(optarg, NULL, 10); break;
        case 't': rcv_timeout = atoi(optarg); break;
        case 'r': resume = 1; break;
        case 'V': client_ca_file = optarg; break;
        case 'e': early_data = 1; break;
        case 'E': max_early = strtol(optarg, NULL, 10); break;
        default: return usage();
        }
    }
    if (server) {
        if (argc - optind != 1)
            return usage();
        return run_server(atoi(argv[optind]));
    }
    if (argc - optind != 3)
        return usage();
    if (expect == -2) {
        const char *p = argv[optind + 2] + strlen(argv[optind + 2]);

        while (p > argv[optind + 2] && p[-1] >= '0' && p[-1] <= '9')
            p--;
        expect = *p ? strtol(p, NULL, 10) : -1;
    }
    return run_client(argv[optind], argv[optind + 1], argv[optind + 2], expect);
}
