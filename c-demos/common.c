/*
 * common.c: the part shared by the DDD server demos. See common.h.
 */
#include "common.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *demo_name = "ddd";
void (*demo_on_child_exit)(pid_t pid, int status);
void (*demo_on_usr1)(void);

/* ---- logging */

void demo_log(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    int n = snprintf(line, sizeof(line), "[%s pid %d tid %d] ", demo_name, (int)getpid(), (int)gettid());
    size_t len;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    len = n < 0 ? 0 : (size_t)n;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated: still one line */
    line[len++] = '\n';
    /* One write(2): O_APPEND-free stderr still keeps a single write's bytes together for
     * writes this small (pipes and files alike), so concurrent lines never mix. */
    (void)!write(2, line, len);
}

static int log_error_line(const char *str, size_t len, void *u)
{
    (void)u;
    while (len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r'))
        len--;
    demo_log("  %.*s", (int)len, str);
    return 1;
}

void demo_log_errors(const char *what)
{
    demo_log("%s", what);
    ERR_print_errors_cb(log_error_line, NULL);
}

void demo_die(const char *what)
{
    demo_log("fatal: %s", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

double demo_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- arguments */

int demo_args(int argc, char **argv, const char **cert, const char **key, int *port)
{
    char *end;
    long p;
    if (argc != 4) {
        fprintf(stderr, "usage: %s cert.pem key.pem port\n  port 0: the system chooses (printed as \"listening on PORT\")\n",
                argv[0]);
        return 0;
    }
    p = strtol(argv[3], &end, 10);
    if (*argv[3] == '\0' || *end != '\0' || p < 0 || p > 65535) {
        fprintf(stderr, "%s: bad port %s\n", argv[0], argv[3]);
        return 0;
    }
    *cert = argv[1];
    *key = argv[2];
    *port = (int)p;
    return 1;
}

/* ---- context and ALPN */

static unsigned char alpn_list[512];
static unsigned int alpn_list_len;

/* "a,b,c" -> ALPN wire format (length-prefixed names); 0 if malformed. */
static int alpn_wire(const char *list, unsigned char *out, size_t cap, unsigned int *out_len)
{
    size_t n = 0;
    while (*list != '\0') {
        const char *comma = strchr(list, ',');
        size_t len = comma ? (size_t)(comma - list) : strlen(list);
        if (len == 0 || len > 255 || n + 1 + len > cap)
            return 0;
        out[n++] = (unsigned char)len;
        memcpy(out + n, list, len);
        n += len;
        list += len;
        if (*list == ',')
            list++;
    }
    *out_len = (unsigned int)n;
    return n > 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    unsigned char *chosen = NULL;
    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&chosen, outlen, alpn_list, alpn_list_len, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = chosen;
        return SSL_TLSEXT_ERR_OK;
    }
#ifdef USE_QUIC
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* QUIC cannot go on without an application protocol */
#else
    return SSL_TLSEXT_ERR_NOACK; /* TLS can: answer without ALPN */
#endif
}

/* ---- a fleet member: shared secret, PROXY protocol, QUIC-LB (osslquic's calls) */

/* Hex digits (no separators) into out; the byte count, or -1 if malformed or too long. */
static int unhex(const char *hex, unsigned char *out, size_t cap)
{
    size_t n = strlen(hex), i;
    if (n == 0 || n % 2 != 0 || n / 2 > cap)
        return -1;
    for (i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1 || !isxdigit((unsigned char)hex[2 * i]) ||
            !isxdigit((unsigned char)hex[2 * i + 1]))
            return -1;
        out[i] = (unsigned char)v;
    }
    return (int)(n / 2);
}

static void fleet_ctx(SSL_CTX *ctx)
{
    const char *secret = getenv("DEMO_FLEET_SECRET");
    const char *proxy = getenv("DEMO_PROXY");
    if (secret != NULL && *secret != '\0') {
#ifdef OSSLQUIC_HAVE_OSSLQUIC_CTX_SET_FLEET_SECRET
        unsigned char key[256];
        int n = unhex(secret, key, sizeof(key));
        if (n < 16) {
            demo_log("bad DEMO_FLEET_SECRET: hex digits for 16 to 256 bytes");
            exit(1);
        }
        if (!OSSLQUIC_CTX_set_fleet_secret(ctx, key, (size_t)n))
            demo_die("OSSLQUIC_CTX_set_fleet_secret");
        demo_log("fleet secret set (%d bytes)", n);
#else
        demo_log("DEMO_FLEET_SECRET: this library has no OSSLQUIC_CTX_set_fleet_secret");
        exit(1);
#endif
    }
    if (proxy != NULL && strcmp(proxy, "1") == 0) {
#if defined(USE_QUIC)
        demo_log("DEMO_PROXY: the PROXY protocol is for TLS over TCP, not QUIC");
        exit(1);
#elif defined(OSSLQUIC_HAVE_OSSLQUIC_CTX_SET_PROXY_PROTOCOL)
        if (!OSSLQUIC_CTX_set_proxy_protocol(ctx, 1))
            demo_die("OSSLQUIC_CTX_set_proxy_protocol");
        demo_log("PROXY protocol header required");
#else
        demo_log("DEMO_PROXY: this library has no OSSLQUIC_CTX_set_proxy_protocol");
        exit(1);
#endif
    }
}

#ifdef USE_QUIC
void demo_apply_quic_lb(SSL *obj)
{
    const char *spec = getenv("DEMO_QUIC_LB");
    char buf[256], *tok, *save = NULL;
    unsigned char sid[16], key[16];
    int cid = -1, sid_len = -1, nonce = -1, key_len = 0, enc_len = 0;
    if (spec == NULL || *spec == '\0')
        return;
    snprintf(buf, sizeof(buf), "%s", spec);
    for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (strncmp(tok, "cid=", 4) == 0)
            cid = atoi(tok + 4);
        else if (strncmp(tok, "sid=", 4) == 0)
            sid_len = unhex(tok + 4, sid, sizeof(sid));
        else if (strncmp(tok, "nonce=", 6) == 0)
            nonce = atoi(tok + 6);
        else if (strncmp(tok, "key=", 4) == 0)
            key_len = unhex(tok + 4, key, sizeof(key));
        else if (strncmp(tok, "len=", 4) == 0)
            enc_len = atoi(tok + 4);
        else
            key_len = -1;
    }
    if (cid < 0 || sid_len < 1 || nonce < 0 || (key_len != 0 && key_len != 16)) {
        demo_log("bad DEMO_QUIC_LB \"%s\": cid=C,sid=HEX,nonce=N[,key=32 hex digits][,len=1]", spec);
        exit(1);
    }
#ifdef OSSLQUIC_HAVE_OSSLQUIC_SET_QUIC_LB
    if (!OSSLQUIC_set_quic_lb(obj, cid, sid, (size_t)sid_len, (size_t)nonce, key_len ? key : NULL, enc_len))
        demo_die("OSSLQUIC_set_quic_lb");
    demo_log("QUIC-LB connection IDs: config %d, %d-octet server ID, %d-octet nonce, %s", cid, sid_len, nonce,
             key_len ? "encrypted" : "plaintext");
#else
    (void)obj;
    demo_log("DEMO_QUIC_LB: this library has no OSSLQUIC_set_quic_lb");
    exit(1);
#endif
}
#endif

SSL_CTX *demo_server_ctx(const char *cert, const char *key)
{
    const char *alpn = getenv("DEMO_ALPN");
    SSL_CTX *ctx;
    if (alpn == NULL || *alpn == '\0')
        alpn = DEMO_DEFAULT_ALPN;
    if (!alpn_wire(alpn, alpn_list, sizeof(alpn_list), &alpn_list_len)) {
        demo_log("bad ALPN list in DEMO_ALPN: \"%s\" (comma-separated names of 1..255 bytes)", alpn);
        exit(1);
    }
#ifdef USE_QUIC
    ctx = SSL_CTX_new(OSSL_QUIC_server_method());
#else
    ctx = SSL_CTX_new(TLS_server_method());
#endif
    if (ctx == NULL)
        demo_die("SSL_CTX_new failed");
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) <= 0) {
        demo_log("cannot load the certificate chain from %s", cert);
        demo_die("certificate");
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) <= 0) {
        demo_log("cannot load the private key from %s", key);
        demo_die("private key");
    }
    if (!SSL_CTX_check_private_key(ctx)) {
        demo_log("the private key in %s does not match the certificate in %s", key, cert);
        demo_die("key check");
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    fleet_ctx(ctx);
    return ctx;
}

/* ---- sockets */

static int bound_port_of(int fd)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    if (getsockname(fd, (struct sockaddr *)&sin, &sl) != 0)
        return -1;
    return ntohs(sin.sin_port);
}

const char *demo_bind_addr(void)
{
    const char *a = getenv("DEMO_ADDR");
    return a != NULL && *a != '\0' ? a : "127.0.0.1";
}

static int inet_socket(int type, int port, int *bound_port, int quiet)
{
    struct sockaddr_in sin;
    int fd, one = 1;
    fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        demo_log("socket: %s", strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        demo_log("SO_REUSEADDR: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (type == SOCK_DGRAM) {
        /* Best effort: larger buffers absorb bursts from many clients. */
        int size = 4 << 20;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, demo_bind_addr(), &sin.sin_addr) != 1) {
        demo_log("bad DEMO_ADDR \"%s\": an IPv4 address", demo_bind_addr());
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        if (!quiet)
            demo_log("bind %s:%d: %s", demo_bind_addr(), port, strerror(errno));
        close(fd);
        return -1;
    }
    if (type == SOCK_STREAM && listen(fd, 128) != 0) {
        demo_log("listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (bound_port != NULL)
        *bound_port = bound_port_of(fd);
    return fd;
}

int demo_tcp_listen(int port, int *bound_port)
{
    return inet_socket(SOCK_STREAM, port, bound_port, 0);
}

int demo_udp_bind(int port, int *bound_port)
{
    return inet_socket(SOCK_DGRAM, port, bound_port, 0);
}

void demo_listening(int port)
{
    printf("listening on %d\n", port);
    fflush(stdout);
}

int demo_listen_consecutive(int base, int count, int *fds, int *first)
{
#ifdef USE_QUIC
    int type = SOCK_DGRAM;
#else
    int type = SOCK_STREAM;
#endif
    int attempt, i;
    for (attempt = 0; attempt < (base == 0 ? 20 : 1); attempt++) {
        int p0;
        fds[0] = inet_socket(type, base, &p0, 0);
        if (fds[0] < 0)
            return 0;
        for (i = 1; i < count; i++) {
            if (p0 + i > 65535)
                break;
            fds[i] = inet_socket(type, p0 + i, NULL, base == 0);
            if (fds[i] < 0)
                break;
        }
        if (i == count) {
            *first = p0;
            return 1;
        }
        while (i-- > 0)
            close(fds[i]);
    }
    demo_log("cannot bind %d consecutive ports%s", count, base == 0 ? " (20 attempts)" : "");
    return 0;
}

/* ---- the tiny protocol */

/* The end of the first line in buf[0..len), or NULL. */
static const char *line_end(const char *buf, size_t len)
{
    return memchr(buf, '\n', len);
}

/* Parses the request line buf[0..n) (no line terminator): sets path and http10. */
static int parse_line(demo_req *r, const char *line, size_t n)
{
    const char *p, *sp;
    size_t plen;
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
        n--;
    if (n < 5 || memcmp(line, "GET /", 5) != 0)
        return -1;
    p = line + 4;
    sp = memchr(p, ' ', n - 4);
    plen = sp ? (size_t)(sp - p) : n - 4;
    if (plen >= sizeof(r->path))
        return -1;
    if (sp != NULL) {
        size_t vlen = n - (size_t)(sp + 1 - line);
        if (vlen < 8 || memcmp(sp + 1, "HTTP/1.", 7) != 0)
            return -1;
        r->http10 = 1;
    }
    memcpy(r->path, p, plen);
    r->path[plen] = '\0';
    return 1;
}

/* 1 once the headers' blank line is in buf (HTTP/1.0 requests). */
static int headers_done(const demo_req *r)
{
    size_t i;
    for (i = 0; i + 1 < r->len; i++) {
        if (r->buf[i] != '\n')
            continue;
        if (r->buf[i + 1] == '\n')
            return 1;
        if (i + 2 < r->len && r->buf[i + 1] == '\r' && r->buf[i + 2] == '\n')
            return 1;
    }
    return 0;
}

int demo_req_feed(demo_req *r, const void *data, size_t n)
{
    size_t room;
    const char *eol;
    if (r->done)
        return 1;
    room = sizeof(r->buf) - r->len;
    if (n > room)
        n = room;
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    eol = line_end(r->buf, r->len);
    if (eol == NULL)
        return r->len == sizeof(r->buf) ? -1 : 0;
    if (r->path[0] == '\0' && parse_line(r, r->buf, (size_t)(eol - r->buf)) < 0)
        return -1;
    if (r->http10 && !headers_done(r))
        return r->len == sizeof(r->buf) ? -1 : 0;
    r->done = 1;
    return 1;
}

int demo_req_eof(demo_req *r)
{
    const char *eol;
    if (r->done)
        return 1;
    eol = line_end(r->buf, r->len);
    if (eol == NULL) {
        /* hq-interop: FIN may end the request line. */
        if (parse_line(r, r->buf, r->len) < 0)
            return -1;
    } else if (r->path[0] == '\0' && parse_line(r, r->buf, (size_t)(eol - r->buf)) < 0) {
        return -1;
    }
    r->done = 1; /* HTTP/1.0 headers cut short by EOF: answer anyway */
    return 1;
}

/* "/N" with N decimal (no sign, no leading junk), N <= DEMO_MAX_N. */
static int parse_n(const char *path, uint64_t *n)
{
    uint64_t v = 0;
    const char *s = path + 1;
    if (path[0] != '/' || *s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > DEMO_MAX_N)
            return 0;
    }
    *n = v;
    return 1;
}

void demo_resp_init(demo_resp *s, const demo_req *r, SSL *ssl)
{
    const char *server = getenv("DEMO_SERVER_NAME");
    uint64_t n;
    memset(s, 0, sizeof(*s));
    if (parse_n(r->path, &n)) {
        s->total = n;
        s->text = NULL;
    } else {
        int k = snprintf(s->textbuf, sizeof(s->textbuf), "osslquic %s: you asked for %s\n", demo_name, r->path);
        if (server != NULL && *server != '\0' && ssl != NULL && k > 0 && (size_t)k < sizeof(s->textbuf)) {
            char peer[80];
            demo_ssl_peer(ssl, peer, sizeof(peer));
            snprintf(s->textbuf + k, sizeof(s->textbuf) - (size_t)k, "server %.64s sees %s\n", server, peer);
        }
        s->text = s->textbuf;
        s->total = strlen(s->textbuf);
    }
    if (r->http10) {
        int k = snprintf(s->hdr, sizeof(s->hdr),
                         "HTTP/1.0 200 OK\r\nContent-Type: %s\r\nContent-Length: %llu\r\n\r\n",
                         s->text ? "text/plain" : "application/octet-stream", (unsigned long long)s->total);
        s->hdr_len = k > 0 && (size_t)k < sizeof(s->hdr) ? (size_t)k : 0;
    }
}

size_t demo_resp_fill(demo_resp *s, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    if (s->hdr_sent < s->hdr_len) {
        size_t k = s->hdr_len - s->hdr_sent;
        if (k > cap)
            k = cap;
        memcpy(buf, s->hdr + s->hdr_sent, k);
        s->hdr_sent += k;
        n += k;
    }
    if (n < cap && s->sent < s->total) {
        uint64_t left = s->total - s->sent;
        size_t k = cap - n, i;
        if (k > left)
            k = (size_t)left;
        if (s->text != NULL) {
            memcpy(buf + n, s->text + s->sent, k);
        } else {
            unsigned off = (unsigned)(s->sent % DEMO_PERIOD);
            for (i = 0; i < k; i++) {
                buf[n + i] = (uint8_t)off;
                if (++off == DEMO_PERIOD)
                    off = 0;
            }
        }
        s->sent += k;
        n += k;
    }
    return n;
}

uint64_t demo_resp_left(const demo_resp *s)
{
    return (uint64_t)(s->hdr_len - s->hdr_sent) + (s->total - s->sent);
}

/* ---- processes and signals */

static void (*stop_hook)(int sig);

static void sigset_demo(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGCHLD);
    sigaddset(set, SIGUSR1);
}

static void reap_children(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (demo_on_child_exit != NULL)
            demo_on_child_exit(pid, status);
        if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
            demo_log("child %d exited with status %d", (int)pid, WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
            demo_log("child %d killed by signal %d", (int)pid, WTERMSIG(status));
    }
}

static void *signal_main(void *arg)
{
    sigset_t set;
    (void)arg;
    sigset_demo(&set);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGCHLD) {
            reap_children();
            continue;
        }
        if (sig == SIGUSR1) {
            if (demo_on_usr1 != NULL)
                demo_on_usr1();
            continue;
        }
        demo_log("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        if (demo_on_usr1 != NULL)
            demo_on_usr1();
        if (stop_hook != NULL)
            stop_hook(sig);
        demo_log("exiting");
        /* _exit: other threads may be inside the library; nothing needs unwinding. */
        _exit(0);
    }
    return NULL;
}

int demo_signal_thread(void (*on_stop)(int sig))
{
    sigset_t set;
    pthread_t t;
    int e;
    stop_hook = on_stop;
    sigset_demo(&set);
    if ((e = pthread_sigmask(SIG_BLOCK, &set, NULL)) != 0) {
        demo_log("pthread_sigmask: %s", strerror(e));
        return 0;
    }
    if ((e = pthread_create(&t, NULL, signal_main, NULL)) != 0) {
        demo_log("pthread_create: %s", strerror(e));
        return 0;
    }
    pthread_detach(t);
    return 1;
}

void demo_child_signals(void)
{
    sigset_t set;
    sigset_demo(&set);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

void demo_stop_children(pid_t *pids, int n, int sig, int secs)
{
    int i, left = 0;
    struct timespec deadline_ts;
    double deadline = demo_now() + secs;
    sigset_t chld;
    for (i = 0; i < n; i++) {
        if (pids[i] > 0) {
            kill(pids[i], sig);
            left++;
        }
    }
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    while (left > 0) {
        double rest;
        for (i = 0; i < n; i++) {
            int status;
            if (pids[i] > 0 && waitpid(pids[i], &status, WNOHANG) == pids[i]) {
                if (demo_on_child_exit != NULL)
                    demo_on_child_exit(pids[i], status);
                pids[i] = 0;
                left--;
            }
        }
        if (left == 0)
            break;
        rest = deadline - demo_now();
        if (rest <= 0) {
            demo_log("%d children still running after %d s: SIGKILL", left, secs);
            for (i = 0; i < n; i++) {
                if (pids[i] > 0) {
                    kill(pids[i], SIGKILL);
                    waitpid(pids[i], NULL, 0);
                    pids[i] = 0;
                }
            }
            break;
        }
        /* Sleep until a child exits (SIGCHLD, blocked in this thread) or the deadline. */
        deadline_ts.tv_sec = (time_t)rest;
        deadline_ts.tv_nsec = (long)((rest - (double)(time_t)rest) * 1e9);
        (void)sigtimedwait(&chld, NULL, &deadline_ts);
    }
}

/* ---- peers */

void demo_fd_peer(int fd, char *buf, size_t cap)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char a[INET_ADDRSTRLEN];
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&sin, &sl) != 0 || sin.sin_family != AF_INET ||
        inet_ntop(AF_INET, &sin.sin_addr, a, sizeof(a)) == NULL) {
        snprintf(buf, cap, "?");
        return;
    }
    snprintf(buf, cap, "%s:%u", a, ntohs(sin.sin_port));
}

void demo_ssl_peer(SSL *ssl, char *buf, size_t cap)
{
#ifdef HAVE_SSL_GET_PEER_ADDR
    /* Over TLS too: behind a balancer sending a PROXY header it is the header's client. */
    BIO_ADDR *a = BIO_ADDR_new();
    char *host = NULL, *serv = NULL;
    int ok = 0;
    if (a != NULL && SSL_get_peer_addr(ssl, a) == 1 && (host = BIO_ADDR_hostname_string(a, 1)) != NULL &&
        (serv = BIO_ADDR_service_string(a, 1)) != NULL) {
        snprintf(buf, cap, "%s:%s", host, serv);
        ok = 1;
    }
    OPENSSL_free(host);
    OPENSSL_free(serv);
    BIO_ADDR_free(a);
    ERR_clear_error();
    if (ok)
        return;
#endif
#ifdef USE_QUIC
    (void)ssl;
    snprintf(buf, cap, "?");
#else
    demo_fd_peer(SSL_get_fd(ssl), buf, cap);
#endif
}

/* ---- serving with blocking I/O */

static void set_failed(demo_conn_result *res, const char *fmt, const char *what, SSL *s, int r)
{
    unsigned long e = ERR_peek_last_error();
    char ebuf[120] = "";
    int se = SSL_get_error(s, r);
    if (e != 0)
        ERR_error_string_n(e, ebuf, sizeof(ebuf));
    res->failed = 1;
    snprintf(res->why, sizeof(res->why), fmt, what, se, ebuf[0] ? ebuf : "no queued error");
    ERR_clear_error();
}

int demo_serve_request(SSL *s, demo_conn_result *res)
{
    demo_req req;
    demo_resp resp;
    uint8_t buf[65536];
    int st = 0;
    size_t n;
    memset(&req, 0, sizeof(req));
    while (st == 0) {
        int r = SSL_read_ex(s, buf, sizeof(buf), &n);
        if (r > 0) {
            st = demo_req_feed(&req, buf, n);
        } else if (SSL_get_error(s, r) == SSL_ERROR_ZERO_RETURN) {
            ERR_clear_error();
            st = demo_req_eof(&req);
            if (st < 0 && req.len == 0) {
                res->failed = 1;
                snprintf(res->why, sizeof(res->why), "closed before a request");
                return 0;
            }
        } else {
            set_failed(res, "%s: SSL error %d: %s", "reading the request", s, r);
            return 0;
        }
    }
    if (st < 0) {
        res->failed = 1;
        snprintf(res->why, sizeof(res->why), "not a request: \"%.40s\"", req.buf);
#ifdef USE_QUIC
        SSL_stream_conclude(s, 0); /* a bare FIN, as c-demos/quic-server does */
#endif
        return 0;
    }
    demo_resp_init(&resp, &req, s);
    while ((n = demo_resp_fill(&resp, buf, sizeof(buf))) > 0) {
        size_t w = 0;
        int r = SSL_write_ex(s, buf, n, &w); /* blocking: all or an error */
        if (r <= 0) {
            set_failed(res, "%s: SSL error %d: %s", "writing the answer", s, r);
            return 0;
        }
        res->bytes_out += w;
    }
#ifdef USE_QUIC
    if (!SSL_stream_conclude(s, 0)) {
        set_failed(res, "%s: SSL error %d: %s", "concluding the stream", s, 0);
        return 0;
    }
#endif
    res->requests++;
    return 1;
}

#ifdef USE_QUIC
/* Milliseconds from the environment variable `name`, else `dflt`. */
static long env_ms(const char *name, long dflt)
{
    const char *v = getenv(name);
    long ms = v != NULL ? strtol(v, NULL, 10) : 0;
    return ms > 0 ? ms : dflt;
}

/* A connection that sits without a new stream for DEMO_KEEPALIVE_MS (default 500 ms) is
 * closed by us, its answers flushed while the client keeps answering (given up after
 * DEMO_FLUSH_MS, default 1000 ms, of silence). Workers that serve one connection at a time
 * (prefork) must not be held by a client that went away without closing (OpenSSL's ddd-05 and ddd-06 clients free their network BIO before their
 * connection, so their close never leaves, nor their last acknowledgement) until the 30 s
 * idle timeout: the next client on that worker waits at most the sum (ddd-05 gives up after
 * 2 s of silence). A live client acknowledges within a round trip. */
static long keepalive_ms(void)
{
    return env_ms("DEMO_KEEPALIVE_MS", 500);
}

/* Closes an idle connection: flushes what was answered while the peer keeps answering (the
 * engine keeps receiving datagrams: acknowledgements), and gives up once DEMO_FLUSH_MS pass
 * without one, closing without waiting further. A fixed bound cut off live clients that were
 * slow to take a large answer (20 aioquic clients on a loaded machine needed more than a
 * second for their megabyte); a client that went away sends nothing at all. */
static uint64_t datagrams_in(SSL *conn)
{
    OSSLQUIC_ENGINE_STATS st;
    return OSSLQUIC_get_engine_stats(conn, &st) ? st.datagrams_in : 0;
}

static void close_idle(SSL *conn)
{
    long bound = env_ms("DEMO_FLUSH_MS", 1000);
    struct timespec t0, t;
    SSL_POLL_ITEM it;
    struct timeval tv = {0, 10000};
    uint64_t seen = datagrams_in(conn), now_in;
    size_t n;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (SSL_shutdown_ex(conn, SSL_SHUTDOWN_FLAG_NO_BLOCK, NULL, 0) == 0) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((now_in = datagrams_in(conn)) != seen) {
            seen = now_in;
            t0 = t;
        }
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= bound) {
            SSL_shutdown_ex(conn, SSL_SHUTDOWN_FLAG_NO_BLOCK | SSL_SHUTDOWN_FLAG_RAPID |
                                      SSL_SHUTDOWN_FLAG_NO_STREAM_FLUSH, NULL, 0);
            break;
        }
        /* Handles the connection's events for up to 10 ms (acknowledgements end it early). */
        memset(&it, 0, sizeof(it));
        it.desc = SSL_as_poll_descriptor(conn);
        it.events = SSL_POLL_EVENT_EC | SSL_POLL_EVENT_ECD;
        (void)SSL_poll(&it, 1, sizeof(it), &tv, 0, &n);
    }
    ERR_clear_error();
}

/* The client's next stream, or NULL when the connection has ended or stayed idle for the
 * keep-alive time (*idle set). */
static SSL *next_stream(SSL *conn, int *idle)
{
    SSL_POLL_ITEM it;
    long ms = keepalive_ms();
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    size_t n = 0;

    memset(&it, 0, sizeof(it));
    it.desc = SSL_as_poll_descriptor(conn);
    it.events = SSL_POLL_EVENT_ISB | SSL_POLL_EVENT_ISU | SSL_POLL_EVENT_EC | SSL_POLL_EVENT_ECD;
    if (!SSL_poll(&it, 1, sizeof(it), &tv, 0, &n))
        return NULL;
    if (n == 0) {
        *idle = 1;
        return NULL;
    }
    return SSL_accept_stream(conn, SSL_ACCEPT_STREAM_NO_BLOCK);
}
#endif

int demo_serve_conn(SSL *conn, demo_conn_result *res)
{
#ifdef USE_QUIC
    SSL *stream;
    SSL_CONN_CLOSE_INFO info;
    int idle = 0;
    /* Every client stream is accepted and served on its own (no default stream). */
    if (!SSL_set_default_stream_mode(conn, SSL_DEFAULT_STREAM_MODE_NONE) ||
        !SSL_set_incoming_stream_policy(conn, SSL_INCOMING_STREAM_POLICY_ACCEPT, 0)) {
        set_failed(res, "%s: SSL error %d: %s", "stream mode", conn, 0);
        return 0;
    }
    /* Waits (bounded by the keep-alive) for each stream; NULL once the connection has ended
     * (normally: the client closed it after its last answer) or stayed idle. */
    while ((stream = next_stream(conn, &idle)) != NULL) {
        if (SSL_get_stream_type(stream) == SSL_STREAM_TYPE_BIDI)
            demo_serve_request(stream, res);
        SSL_free(stream);
    }
    ERR_clear_error();
    if (idle) {
        close_idle(conn); /* not a failure */
        return !res->failed;
    }
    if (!SSL_get_conn_close_info(conn, &info, sizeof(info))) {
        set_failed(res, "%s: SSL error %d: %s", "accepting a stream", conn, 0);
    } else if ((info.flags & SSL_CONN_CLOSE_FLAG_LOCAL) || info.error_code != 0) {
        res->failed = 1;
        snprintf(res->why, sizeof(res->why), "closed %s with %s code %llu (%.*s)",
                 (info.flags & SSL_CONN_CLOSE_FLAG_LOCAL) ? "by us" : "by the peer",
                 (info.flags & SSL_CONN_CLOSE_FLAG_TRANSPORT) ? "transport" : "application",
                 (unsigned long long)info.error_code, info.reason ? (int)info.reason_len : 0,
                 info.reason ? info.reason : "");
    }
    ERR_clear_error();
    if (res->failed || (info.flags & SSL_CONN_CLOSE_FLAG_LOCAL)) {
        /* Blocking: returns once the closing period is over. */
        while (SSL_shutdown(conn) == 0)
            ;
    } else {
        /* The client closed the connection after its last answer: nothing is left to flush
         * and nothing to send, only the draining period to sit out, which would hold up a
         * worker serving connections one after another (prefork) for ~3 PTO. */
        SSL_shutdown_ex(conn, SSL_SHUTDOWN_FLAG_NO_BLOCK, NULL, 0);
    }
    ERR_clear_error();
#else
    int one = 1, r;
    /* The answer and close_notify are small writes after the handshake's: without this, Nagle
     * holds them back until the client's delayed ACK (40 ms on Linux). */
    (void)setsockopt(SSL_get_fd(conn), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    r = SSL_accept(conn);
    if (r != 1) {
        set_failed(res, "%s: SSL error %d: %s", "handshake", conn, r);
        return 0;
    }
    if (demo_serve_request(conn, res)) {
        /* close_notify; the client reads it and goes (its own close_notify is not awaited). */
        r = SSL_shutdown(conn);
        if (r < 0)
            set_failed(res, "%s: SSL error %d: %s", "shutdown", conn, r);
    }
#endif
    return !res->failed;
}

void demo_log_conn(SSL *conn, int port, const demo_conn_result *res)
{
    char peer[80];
    demo_ssl_peer(conn, peer, sizeof(peer));
    demo_log("conn from %s port %d: %llu requests, %llu bytes sent, %s%s", peer, port,
             (unsigned long long)res->requests, (unsigned long long)res->bytes_out, res->failed ? "failed: " : "ok",
             res->failed ? res->why : "");
}

#ifdef USE_QUIC
void demo_log_engine_stats(SSL *obj, const char *label)
{
    OSSLQUIC_ENGINE_STATS st;
    if (!OSSLQUIC_get_engine_stats(obj, &st)) {
        demo_log_errors("OSSLQUIC_get_engine_stats failed");
        return;
    }
    demo_log("%s: in=%llu foreign=%llu forwarded=%llu accepted=%llu refused=%llu retries=%llu", label,
             (unsigned long long)st.datagrams_in, (unsigned long long)st.foreign_in, (unsigned long long)st.forwarded,
             (unsigned long long)st.accepted, (unsigned long long)st.refused, (unsigned long long)st.retries);
}
#endif
