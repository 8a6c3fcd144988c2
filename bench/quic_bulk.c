/*
 * quic_bulk: `make bench`, QUIC bulk transfer. Our C server and C client, in two processes,
 * move BYTES (default 200,000,000) on one stream over UDP on 127.0.0.1, non-blocking, each
 * process sleeping in poll() on its socket for at most SSL_get_event_timeout.
 *
 *   quic_bulk [-n BYTES] [-c CERTDIR] [-t SECONDS]
 *
 * The process forks before touching the library: the child is the server (listener with
 * SSL_LISTENER_FLAG_NO_VALIDATE, one connection, writes BYTES of a pattern on the
 * connection's default stream with FIN, then SSL_shutdown until 1); the parent is the client
 * (verifies the server certificate against CERTDIR/ca.pem, reads to FIN into a 256 KiB
 * buffer, checks the pattern on the first and last byte of every read, then SSL_shutdown;
 * the server waits for that close before its own SSL_shutdown).
 * Byte i of the stream is i % 251.
 *
 * Timing: the client's clock runs from SSL_connect returning 1 to the FIN; each side's CPU
 * (getrusage, user + system) covers its own transfer: client from connected to FIN, server
 * from accepting the connection to SSL_shutdown returning 1. Prints one line:
 *   bulk osslquic bytes=N secs=S mbps=M client_cpu=C server_cpu=C
 * (MB = 10^6 bytes) and exits 0, or prints the reason and exits 1. Every wait is bounded by
 * -t (default 60 s); a watchdog alarm ends either process beyond it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PERIOD 251
#define CHUNK (PERIOD * 1044) /* bytes per SSL_write_ex call: about 256 KiB */
#define RDBUF (256 * 1024)    /* bytes per SSL_read_ex call */

static const unsigned char alpn[] = {10, 'o', 's', 's', 'l', 'q', 'b', 'e', 'n', 'c', 'h'};
static unsigned char pattern[CHUNK + PERIOD];
static const char *certdir = "build/certs";
static double limit = 60;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static int fail(const char *side, const char *what)
{
    fprintf(stderr, "quic_bulk %s: %s\n", side, what);
    ERR_print_errors_fp(stderr);
    return 0;
}

static const char *cert(const char *name)
{
    static char buf[4][600];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 600, "%s/%s", certdir, name);
    return b;
}

/* A non-blocking UDP socket on 127.0.0.1 (port 0 = any) with 4 MiB buffers (best effort). */
static int udp_socket(unsigned *port)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), sz = 4 << 20;

    if (fd < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || getsockname(fd, (struct sockaddr *)&sin, &sl) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

/* Sleeps until `fd` is readable (or writable, when the library wants that) or the object's
 * next deadline, at most until `deadline`; then lets the library handle events. */
static int wait_net(SSL *s, int fd, double deadline)
{
    struct timeval tv;
    int inf = 1, ms;
    struct pollfd pfd;
    double left = deadline - now_s();

    if (left <= 0)
        return 0;
    ms = (int)(left * 1000) + 1;
    if (SSL_get_event_timeout(s, &tv, &inf) && !inf) {
        long t = (long)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
        if (t < ms)
            ms = (int)t;
    }
    pfd.fd = fd;
    pfd.events = POLLIN | (SSL_net_write_desired(s) ? POLLOUT : 0);
    if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
        return 0;
    SSL_handle_events(s);
    return 1;
}

static int shutdown_all(SSL *conn, int fd, double deadline)
{
    int r;
    while ((r = SSL_shutdown(conn)) != 1) {
        if (r < 0 || !wait_net(conn, fd, deadline))
            return 0;
    }
    return 1;
}

/* ---- server (child) */

static int server(int port_pipe, int result_pipe, uint64_t total)
{
    SSL_CTX *ctx = SSL_CTX_new(OSSL_QUIC_server_method());
    SSL *l = NULL, *conn = NULL;
    unsigned port = 0;
    int fd = udp_socket(&port), ok = 0, r;
    double deadline = now_s() + limit, c0, c1;
    uint64_t off = 0;
    char line[128];
    SSL_CONN_CLOSE_INFO info;

    if (fd < 0)
        return fail("server", "cannot bind a UDP socket on 127.0.0.1");
    if (ctx == NULL || !SSL_CTX_use_certificate_chain_file(ctx, cert("chain.pem")) ||
        !SSL_CTX_use_PrivateKey_file(ctx, cert("key.pem"), SSL_FILETYPE_PEM) ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn)) != 0)
        return fail("server", "context setup failed");
    l = SSL_new_listener(ctx, SSL_LISTENER_FLAG_NO_VALIDATE);
    if (l == NULL || !SSL_set_blocking_mode(l, 0) || !SSL_set_fd(l, fd) || !SSL_listen(l))
        return fail("server", "listener setup failed");
    snprintf(line, sizeof(line), "%u\n", port);
    if (write(port_pipe, line, strlen(line)) < 0)
        return fail("server", "cannot report the port");
    close(port_pipe);

    while ((conn = SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK)) == NULL)
        if (!wait_net(l, fd, deadline))
            return fail("server", "no connection in time");
    c0 = cpu_s();
    while (off < total) {
        size_t len = total - off < CHUNK ? (size_t)(total - off) : CHUNK, w = 0;
        if (SSL_write_ex2(conn, pattern + off % PERIOD, len, len == total - off ? SSL_WRITE_FLAG_CONCLUDE : 0, &w)) {
            off += w;
            continue;
        }
        /* WANT_READ: the handshake is still finishing (accepted connections start early). */
        r = SSL_get_error(conn, 0);
        if (r != SSL_ERROR_WANT_WRITE && r != SSL_ERROR_WANT_READ)
            return fail("server", "write failed");
        if (!wait_net(conn, fd, deadline))
            return fail("server", "write timed out");
    }
    /* The reader closes. Our SSL_shutdown closes as soon as the peer's transport has
     * acknowledged everything, and the client then cannot read what it has received but not
     * yet read (osslquic fails SSL_read_ex once the connection is closed; OpenSSL returns
     * buffered data first). So wait for the client's close, as SSL_SHUTDOWN_FLAG_WAIT_PEER
     * would; quinn's side does the same. */
    while (SSL_get_conn_close_info(conn, &info, sizeof(info)) != 1)
        if (!wait_net(conn, fd, deadline))
            return fail("server", "the client did not close in time");
    ERR_clear_error();
    if (!shutdown_all(conn, fd, deadline))
        return fail("server", "shutdown did not finish");
    c1 = cpu_s();
    snprintf(line, sizeof(line), "%.4f\n", c1 - c0);
    ok = write(result_pipe, line, strlen(line)) > 0;
    SSL_free(conn);
    SSL_free(l);
    SSL_CTX_free(ctx);
    close(fd);
    return ok;
}

/* ---- client (parent) */

static int client(unsigned port, uint64_t total, double *secs, double *cpu)
{
    SSL_CTX *ctx = SSL_CTX_new(OSSL_QUIC_client_method());
    SSL *conn = NULL;
    BIO_ADDR *peer = BIO_ADDR_new();
    struct in_addr lo;
    unsigned myport;
    int fd = udp_socket(&myport), r;
    double deadline = now_s() + limit, t0, c0;
    unsigned char *buf = malloc(RDBUF);
    uint64_t got = 0;

    lo.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || buf == NULL || peer == NULL || !BIO_ADDR_rawmake(peer, AF_INET, &lo, sizeof(lo), htons(port)))
        return fail("client", "socket setup failed");
    if (ctx == NULL || !SSL_CTX_load_verify_locations(ctx, cert("ca.pem"), NULL))
        return fail("client", "context setup failed");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    conn = SSL_new(ctx);
    if (conn == NULL || !SSL_set_blocking_mode(conn, 0) || !SSL_set_fd(conn, fd) ||
        !SSL_set1_initial_peer_addr(conn, peer) || SSL_set_alpn_protos(conn, alpn, sizeof(alpn)) != 0 ||
        !SSL_set1_host(conn, "localhost"))
        return fail("client", "connection setup failed");
    while ((r = SSL_connect(conn)) != 1) {
        int e = SSL_get_error(conn, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return fail("client", "handshake failed");
        if (!wait_net(conn, fd, deadline))
            return fail("client", "handshake timed out");
    }
    t0 = now_s();
    c0 = cpu_s();
    for (;;) {
        size_t n = 0;
        if (SSL_read_ex(conn, buf, RDBUF, &n)) {
            if (buf[0] != (unsigned char)(got % PERIOD) || buf[n - 1] != (unsigned char)((got + n - 1) % PERIOD))
                return fail("client", "received bytes do not match the pattern");
            got += n;
            continue;
        }
        r = SSL_get_error(conn, 0);
        if (r == SSL_ERROR_ZERO_RETURN)
            break;
        if (r != SSL_ERROR_WANT_READ) {
            fprintf(stderr, "quic_bulk client: read failed after %" PRIu64 " bytes\n", got);
            return fail("client", "read failed");
        }
        if (!wait_net(conn, fd, deadline))
            return fail("client", "read timed out");
    }
    *secs = now_s() - t0;
    *cpu = cpu_s() - c0;
    ERR_clear_error();
    if (got != total) {
        fprintf(stderr, "quic_bulk client: %" PRIu64 " bytes received, %" PRIu64 " sent\n", got, total);
        return 0;
    }
    if (!shutdown_all(conn, fd, deadline))
        return fail("client", "shutdown did not finish");
    SSL_free(conn);
    SSL_CTX_free(ctx);
    BIO_ADDR_free(peer);
    free(buf);
    close(fd);
    return 1;
}

/* Reads one line from a pipe, waiting at most `ms`. */
static int read_line(int fd, char *buf, size_t cap, int ms)
{
    size_t n = 0;
    double deadline = now_s() + ms / 1000.0;
    while (n + 1 < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        int left = (int)((deadline - now_s()) * 1000);
        ssize_t k;
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return 0;
        k = read(fd, buf + n, 1);
        if (k <= 0)
            return 0;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return 1;
}

int main(int argc, char **argv)
{
    uint64_t total = 200000000;
    int opt, port_p[2], res_p[2], ok = 0, status;
    pid_t pid;
    char line[128];
    double secs = 0, ccpu = 0, scpu = 0;
    size_t i;

    while ((opt = getopt(argc, argv, "n:c:t:")) != -1) {
        switch (opt) {
        case 'n': total = strtoull(optarg, NULL, 10); break;
        case 'c': certdir = optarg; break;
        case 't': limit = atof(optarg); break;
        default:
            fprintf(stderr, "usage: quic_bulk [-n BYTES] [-c CERTDIR] [-t SECONDS]\n");
            return 2;
        }
    }
    if (total == 0 || limit <= 0)
        return 2;
    for (i = 0; i < sizeof(pattern); i++)
        pattern[i] = (unsigned char)(i % PERIOD);
    if (pipe(port_p) != 0 || pipe(res_p) != 0)
        return 1;
    fflush(stdout);
    pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close(port_p[0]);
        close(res_p[0]);
        alarm((unsigned)limit + 5);
        _exit(server(port_p[1], res_p[1], total) ? 0 : 1);
    }
    close(port_p[1]);
    close(res_p[1]);
    alarm((unsigned)limit + 10);
    if (!read_line(port_p[0], line, sizeof(line), 10000)) {
        fprintf(stderr, "quic_bulk: the server did not start\n");
        goto out;
    }
    if (!client((unsigned)atoi(line), total, &secs, &ccpu))
        goto out;
    if (!read_line(res_p[0], line, sizeof(line), (int)(limit * 1000))) {
        fprintf(stderr, "quic_bulk: the server did not finish\n");
        goto out;
    }
    scpu = atof(line);
    printf("bulk osslquic bytes=%" PRIu64 " secs=%.4f mbps=%.1f client_cpu=%.3f server_cpu=%.3f\n", total, secs,
           (double)total / secs / 1e6, ccpu, scpu);
    ok = 1;
out:
    /* Bounded reap: the server exits on its own once its result is sent. */
    for (i = 0; i < 50; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
        usleep(100000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return 1;
}
