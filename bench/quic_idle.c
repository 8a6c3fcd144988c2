/*
 * quic_idle: `make bench`, the CPU cost of idle QUIC connections. A listener process holds
 * CONNS established connections, all idle, and measures its own CPU over SECONDS.
 *
 *   quic_idle [-n CONNS] [-s SECONDS] [-u SETUP_SECONDS] [-c CERTDIR]
 *
 * The process raises RLIMIT_NOFILE to its hard limit (each client needs its own UDP socket;
 * CONNS is lowered to fit), then forks. The child is the listener
 * (SSL_LISTENER_FLAG_NO_VALIDATE) on 127.0.0.1, the way a server runs one: poll() on its
 * socket for at most SSL_get_event_timeout, then SSL_handle_events, then
 * SSL_accept_connection until the queue is empty; it keeps every connection. The parent is
 * the clients: CONNS client SSL objects, each on its own UDP socket, at most 100 handshakes
 * in flight (no certificate verification: setup is not measured), driven from one epoll loop (a ready socket or a due SSL_get_event_timeout gets
 * SSL_connect / SSL_handle_events on its connection only).
 *
 * Setup is capped at SETUP_SECONDS (default 15): clients not connected by then are left
 * out, and the count says so (the 30 s idle timeout must not fall inside the window). After
 * setup, 1 s for handshake leftovers (acks, HANDSHAKE_DONE, MTU probes) to settle; then the
 * listener measures over SECONDS (default 10): its CPU (getrusage, user + system), the
 * per-connection work of its domain (OSSLQUIC_SSL_get_conn_ticks delta), and how often its
 * loop woke up. The clients keep running their loop meanwhile (their CPU is shown too). Prints
 *   idle osslquic conns=N secs=S listener_cpu=C ticks=T wakeups=W client_cpu=C setup=S
 *        setup_cpu_listener=C setup_cpu_clients=C
 * (the last two: each process's CPU from its start to the end of setup and settling),
 *        ... server_heap_kb=H server_rss_kb=R client_heap_kb=H client_rss_kb=R
 * memory per established idle connection, in KiB: heap in use (glibc's mallinfo2, every
 * arena plus mmapped chunks) and resident set, each as the growth of its process from just
 * before the first connection to the end of setup and settling, divided by the connections
 * (listener: accepted; clients: connected, each with its own SSL object, domain and socket).
 * Every wait is bounded; a watchdog alarm ends either process if anything hangs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define INFLIGHT 100 /* most handshakes at once */
#define SETTLE 1.0   /* seconds between the last handshake and the measurement */

static const unsigned char alpn[] = {10, 'o', 's', 's', 'l', 'q', 'b', 'e', 'n', 'c', 'h'};
static const char *certdir = "build/certs";

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

/* Bytes this process has allocated and not freed (glibc's count over every arena, plus
 * mmapped chunks): what a connection holds, whatever the allocator keeps cached. */
static double heap_bytes(void)
{
    struct mallinfo2 m = mallinfo2();
    return (double)m.uordblks + (double)m.hblkhd;
}

/* Resident set size in bytes (what the first figures were). */
static double rss_bytes(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (double)res * (double)sysconf(_SC_PAGESIZE);
}

static const char *cert(const char *name)
{
    static char buf[4][600];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 600, "%s/%s", certdir, name);
    return b;
}

static int fail(const char *side, const char *what)
{
    fprintf(stderr, "quic_idle %s: %s\n", side, what);
    ERR_print_errors_fp(stderr);
    return 0;
}

/* Absolute time of the object's next deadline (INFINITY if none). */
/* Microseconds per SSL_poll call (zero timeout, every event a connection can have) over the
 * first n connections, averaged over enough calls to take about 0.2 s. */
static double poll_cost(SSL **conns, size_t n)
{
    SSL_POLL_ITEM *it = calloc(n ? n : 1, sizeof(*it));
    struct timeval zero = {0, 0};
    size_t i, count, calls = 0;
    double t0, t;

    if (it == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        it[i].desc = SSL_as_poll_descriptor(conns[i]);
        it[i].events = SSL_POLL_EVENT_EC | SSL_POLL_EVENT_ECD | SSL_POLL_EVENT_ISB | SSL_POLL_EVENT_ISU |
                       SSL_POLL_EVENT_R | SSL_POLL_EVENT_W;
    }
    t0 = now_s();
    do {
        if (SSL_poll(it, n, sizeof(*it), &zero, 0, &count) != 1)
            break;
        calls++;
    } while ((t = now_s()) - t0 < 0.2);
    free(it);
    return calls ? (now_s() - t0) * 1e6 / (double)calls : -1;
}

static double due_at(SSL *s)
{
    struct timeval tv;
    int inf = 1;
    if (!SSL_get_event_timeout(s, &tv, &inf) || inf)
        return INFINITY;
    return now_s() + (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int ms_until(double t, double cap)
{
    double d = t - now_s();
    if (d > cap)
        d = cap;
    if (d <= 0)
        return 0;
    return (int)(d * 1000) + 1;
}

static int udp_socket(int rcvbuf, BIO_ADDR **addr, unsigned *port)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || getsockname(fd, (struct sockaddr *)&sin, &sl) != 0) {
        close(fd);
        return -1;
    }
    if (port != NULL)
        *port = ntohs(sin.sin_port);
    if (addr != NULL) {
        *addr = BIO_ADDR_new();
        if (*addr == NULL || !BIO_ADDR_rawmake(*addr, AF_INET, &sin.sin_addr, sizeof(sin.sin_addr), sin.sin_port)) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int read_line(int fd, char *buf, size_t cap, double deadline)
{
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t k;
        if (poll(&p, 1, ms_until(deadline, 1e9)) <= 0)
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

/* ---- the listener (child) */

static int listener(int port_w, int go_r, int res_w, size_t n, double secs)
{
    SSL_CTX *ctx = SSL_CTX_new(OSSL_QUIC_server_method());
    SSL *l, **conns = calloc(n, sizeof(SSL *));
    unsigned port = 0;
    int fd = udp_socket(4 << 20, NULL, &port), measuring = 0;
    size_t accepted = 0;
    double t_end = 0, c0 = 0, hard_end = now_s() + 120;
    uint64_t ticks0 = 0, wakeups = 0;
    char line[256];
    double setup_cpu = 0, heap0, rss0, heap1 = 0, rss1 = 0;

    if (fd < 0 || conns == NULL)
        return fail("listener", "cannot bind a UDP socket on 127.0.0.1");
    if (ctx == NULL || !SSL_CTX_use_certificate_chain_file(ctx, cert("chain.pem")) ||
        !SSL_CTX_use_PrivateKey_file(ctx, cert("key.pem"), SSL_FILETYPE_PEM) ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn)) != 0)
        return fail("listener", "context setup failed");
    l = SSL_new_listener(ctx, SSL_LISTENER_FLAG_NO_VALIDATE);
    if (l == NULL || !SSL_set_blocking_mode(l, 0) || !SSL_set_fd(l, fd) || !SSL_listen(l))
        return fail("listener", "listener setup failed");
    heap0 = heap_bytes();
    rss0 = rss_bytes();
    snprintf(line, sizeof(line), "%u\n", port);
    if (write(port_w, line, strlen(line)) < 0)
        return fail("listener", "cannot report the port");

    for (;;) {
        struct pollfd p[2] = {{fd, POLLIN, 0}, {go_r, POLLIN, 0}};
        double until = measuring ? t_end : hard_end;
        double due = due_at(l);
        SSL *c;

        if (now_s() >= hard_end)
            return fail("listener", "never told to measure");
        if (measuring && now_s() >= t_end)
            break;
        if (due < until)
            until = due;
        if (poll(p, measuring ? 1 : 2, ms_until(until, 1000)) < 0 && errno != EINTR)
            return fail("listener", "poll failed");
        if (measuring)
            wakeups++;
        SSL_handle_events(l);
        while ((c = SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK)) != NULL) {
            if (accepted < n)
                conns[accepted++] = c;
            else
                SSL_free(c);
        }
        ERR_clear_error();
        if (!measuring && (p[1].revents & (POLLIN | POLLHUP))) {
            if (!read_line(go_r, line, sizeof(line), now_s() + 1))
                return fail("listener", "lost the clients");
            measuring = 1;
            heap1 = heap_bytes();
            rss1 = rss_bytes();
            c0 = cpu_s();
            setup_cpu = c0;
            ticks0 = OSSLQUIC_SSL_get_conn_ticks(l);
            t_end = now_s() + secs;
        }
    }
    {
        /* SSL_poll over the idle connections, zero timeout: one item versus all of them. */
        double cpu = cpu_s() - c0, p1, p1000, pall;
        uint64_t t1 = OSSLQUIC_SSL_get_conn_ticks(l);

        p1 = poll_cost(conns, accepted ? 1 : 0);
        p1000 = poll_cost(conns, accepted < 1000 ? accepted : 1000);
        pall = poll_cost(conns, accepted);
        double k = accepted ? 1024.0 * (double)accepted : 1;
        snprintf(line, sizeof(line), "%zu %.4f %" PRIu64 " %" PRIu64 " %.2f %.3f %.3f %.3f %" PRIu64 " %.2f %.2f\n",
                 accepted, cpu, t1 - ticks0, wakeups, setup_cpu, p1, p1000, pall, OSSLQUIC_SSL_get_conn_ticks(l) - t1,
                 (heap1 - heap0) / k, (rss1 - rss0) / k);
    }
    return write(res_w, line, strlen(line)) > 0;
    /* The process exits next: its connections go with it, no need to free them one by one. */
}

/* ---- the clients (parent) */

struct cli {
    SSL *ssl;
    int fd;
    int state; /* 0 not started, 1 connecting, 2 connected, 3 failed */
    double due;
};

static struct cli *cl;
static size_t ncl, started, inflight, connected;
static int ep = -1;
static SSL_CTX *cctx;
static BIO_ADDR *srv;

static void cli_step(struct cli *c)
{
    if (c->state == 1) {
        int r = SSL_connect(c->ssl);
        if (r == 1) {
            c->state = 2;
            inflight--;
            connected++;
        } else if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_WRITE) {
            c->state = 3;
            inflight--;
            ERR_clear_error();
        }
    } else if (c->state == 2) {
        SSL_handle_events(c->ssl);
    }
    c->due = c->state == 1 || c->state == 2 ? due_at(c->ssl) : INFINITY;
}

static int cli_start(size_t i)
{
    struct cli *c = &cl[i];
    struct epoll_event ev;

    c->fd = udp_socket(0, NULL, NULL);
    if (c->fd < 0)
        return fail("clients", "cannot open a UDP socket");
    c->ssl = SSL_new(cctx);
    if (c->ssl == NULL || !SSL_set_blocking_mode(c->ssl, 0) || !SSL_set_fd(c->ssl, c->fd) || !SSL_set1_initial_peer_addr(c->ssl, srv) ||
        SSL_set_alpn_protos(c->ssl, alpn, sizeof(alpn)) != 0 || !SSL_set1_host(c->ssl, "localhost"))
        return fail("clients", "client setup failed");
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        return fail("clients", "epoll_ctl failed");
    c->state = 1;
    inflight++;
    started++;
    cli_step(c);
    return 1;
}

/* One round of the clients' event loop: wait for a socket or the earliest deadline (at most
 * until `until`), then step the ready and the due connections. */
static void cli_round(double until)
{
    struct epoll_event evs[256];
    double first = until, t;
    size_t i;
    int k, j;

    for (i = 0; i < started; i++)
        if (cl[i].due < first)
            first = cl[i].due;
    k = epoll_wait(ep, evs, 256, ms_until(first, 1000));
    for (j = 0; j < k; j++)
        cli_step(&cl[evs[j].data.u64]);
    t = now_s();
    for (i = 0; i < started; i++)
        if (cl[i].due <= t)
            cli_step(&cl[i]);
}

int main(int argc, char **argv)
{
    size_t n = 10000;
    double secs = 10, setup_cap = 15, t0, t_setup, c0, ccpu, lcpu, lsetup = 0, csetup;
    int opt, port_p[2], go_p[2], res_p[2], status, ok = 0;
    struct rlimit rl;
    pid_t pid;
    char line[256];
    size_t i, accepted = 0;
    unsigned long long ticks = 0, wakeups = 0, pollticks = 0;
    double poll1 = 0, poll1000 = 0, pollall = 0, heap0, rss0, cheap, crss, lheap = 0, lrss = 0;

    while ((opt = getopt(argc, argv, "n:s:u:c:")) != -1) {
        switch (opt) {
        case 'n': n = (size_t)strtoul(optarg, NULL, 10); break;
        case 's': secs = atof(optarg); break;
        case 'u': setup_cap = atof(optarg); break;
        case 'c': certdir = optarg; break;
        default:
            fprintf(stderr, "usage: quic_idle [-n CONNS] [-s SECONDS] [-u SETUP_SECONDS] [-c CERTDIR]\n");
            return 2;
        }
    }
    if (n == 0 || secs <= 0 || setup_cap <= 0)
        return 2;
    /* One descriptor per client socket (a non-blocking client domain holds no eventfd), plus
     * a few for stdio, pipes and epoll. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur != RLIM_INFINITY && n + 64 > rl.rlim_cur) {
            fprintf(stderr, "quic_idle: RLIMIT_NOFILE is %llu: %zu connections instead of %zu\n",
                    (unsigned long long)rl.rlim_cur, (size_t)rl.rlim_cur - 64, n);
            n = (size_t)rl.rlim_cur - 64;
        }
    }
    if (pipe(port_p) != 0 || pipe(go_p) != 0 || pipe(res_p) != 0)
        return 1;
    fflush(stdout);
    pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close(port_p[0]);
        close(go_p[1]);
        close(res_p[0]);
        alarm((unsigned)(setup_cap + secs + 60));
        _exit(listener(port_p[1], go_p[0], res_p[1], n, secs) ? 0 : 1);
    }
    close(port_p[1]);
    close(go_p[0]);
    close(res_p[1]);
    alarm((unsigned)(setup_cap + secs + 70));

    if (!read_line(port_p[0], line, sizeof(line), now_s() + 10)) {
        fprintf(stderr, "quic_idle: the listener did not start\n");
        goto out;
    }
    {
        struct in_addr lo;
        lo.s_addr = htonl(INADDR_LOOPBACK);
        srv = BIO_ADDR_new();
        if (srv == NULL || !BIO_ADDR_rawmake(srv, AF_INET, &lo, sizeof(lo), htons((uint16_t)atoi(line))))
            goto out;
    }
    /* The clients skip certificate verification: setup is not what is measured, and the
     * CPU it saves lets more connections fit before the window. */
    cctx = SSL_CTX_new(OSSL_QUIC_client_method());
    if (cctx == NULL) {
        fail("clients", "context setup failed");
        goto out;
    }
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    cl = calloc(n, sizeof(*cl));
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (cl == NULL || ep < 0)
        goto out;
    for (i = 0; i < n; i++) {
        cl[i].fd = -1;
        cl[i].due = INFINITY;
    }
    ncl = n;
    heap0 = heap_bytes();
    rss0 = rss_bytes();

    /* Setup: handshakes, at most INFLIGHT at once, until all are up or the cap. */
    t0 = now_s();
    while (connected < ncl && now_s() < t0 + setup_cap) {
        while (started < ncl && inflight < INFLIGHT)
            if (!cli_start(started))
                goto out;
        if (started == ncl && inflight == 0)
            break;
        cli_round(t0 + setup_cap);
    }
    t_setup = now_s() - t0;
    {
        double settle_end = now_s() + SETTLE;
        while (now_s() < settle_end)
            cli_round(settle_end);
    }
    csetup = cpu_s();
    cheap = (heap_bytes() - heap0) / 1024.0 / (double)(connected ? connected : 1);
    crss = (rss_bytes() - rss0) / 1024.0 / (double)(connected ? connected : 1);
    if (connected < ncl)
        fprintf(stderr, "quic_idle: %zu of %zu connections up within %.0f s; measuring those\n", connected, ncl,
                setup_cap);

    /* Measurement: the listener measures itself; the clients keep their loop running. */
    if (write(go_p[1], "go\n", 3) != 3)
        goto out;
    c0 = cpu_s();
    {
        double end = now_s() + secs;
        while (now_s() < end)
            cli_round(end);
    }
    ccpu = cpu_s() - c0;
    if (!read_line(res_p[0], line, sizeof(line), now_s() + 10) ||
        sscanf(line, "%zu %lf %llu %llu %lf %lf %lf %lf %llu %lf %lf", &accepted, &lcpu, &ticks, &wakeups, &lsetup,
               &poll1, &poll1000, &pollall, &pollticks, &lheap, &lrss) != 11) {
        fprintf(stderr, "quic_idle: no result from the listener\n");
        goto out;
    }
    printf("idle osslquic conns=%zu secs=%.0f listener_cpu=%.4f ticks=%llu wakeups=%llu client_cpu=%.4f "
           "setup=%.1f setup_cpu_listener=%.2f setup_cpu_clients=%.2f poll1_us=%.3f poll1000_us=%.3f "
           "pollall_us=%.3f poll_ticks=%llu server_heap_kb=%.2f server_rss_kb=%.2f client_heap_kb=%.2f "
           "client_rss_kb=%.2f\n",
           accepted < connected ? accepted : connected, secs, lcpu, ticks, wakeups, ccpu, t_setup, lsetup, csetup,
           poll1, poll1000, pollall, pollticks, lheap, lrss, cheap, crss);
    ok = 1;
out:
    /* Bounded reap: the listener exits once it has reported. */
    for (i = 0; i < 50; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
        usleep(100000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return 1;
}
