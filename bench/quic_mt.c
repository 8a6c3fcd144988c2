/*
 * quic_mt: `make bench`, issue 4. Requests per second of a blocking thread-per-connection QUIC
 * server against the same load on a non-blocking single-thread server, over UDP on 127.0.0.1.
 *
 *   quic_mt -m threaded|single [-n CONNS] [-b BYTES] [-s SECONDS] [-u WARMUP] [-w WORKERS]
 *           [-C sockets|one] [-c CERTDIR] [-t LIMIT] [-H]
 *
 * The process forks before touching the library: the child is the server, the parent the
 * load generator. Both speak the same protocol: the client opens a bidi stream, writes
 * "GET /BYTES\r\n" with FIN; the server reads the line to FIN, writes BYTES bytes (byte i is
 * i % 251) with FIN and frees the stream. The connection stays up for the next request.
 *
 * Servers (one listener on a UDP socket, Retry address validation on, the default):
 *   threaded  blocking objects (the default on a socket BIO); domain flags
 *             MULTI_THREAD|BLOCKING. One accept thread blocked in SSL_accept_connection(l, 0)
 *             starts one thread per connection, which loops: SSL_accept_stream(conn, 0) (blocks),
 *             blocking SSL_read_ex to FIN, one blocking SSL_write_ex2(..., CONCLUDE), SSL_free;
 *             until the client closes the connection (SSL_accept_stream returns NULL and
 *             SSL_get_conn_close_info says closed). With -w N (N > 0) the connection threads
 *             only accept streams and hand them to a pool of N threads that serve them.
 *   single    SSL_set_blocking_mode(listener, 0); one thread, one SSL_poll over the listener
 *             (IC), every connection (ISB|EC) and every open stream (R|ER while reading the
 *             request, W|EW while the response does not fit), 1 s timeout per call; streams
 *             are served as far as they go as soon as they are accepted.
 * Both set SSL_INCOMING_STREAM_POLICY_ACCEPT and SSL_DEFAULT_STREAM_MODE_NONE on every
 * accepted connection and expect exactly CONNS connections.
 *
 * Client (the same for both modes): one thread, CONNS (default 64) non-blocking connections
 * (verifying the server against CERTDIR/ca.pem).
 *   -C sockets (default) each connection on its own UDP socket, as 64 separate clients would
 *              be; one poll(2) over the sockets with each connection's SSL_get_event_timeout;
 *              a connection that is readable (or whose timer is due) gets SSL_handle_events
 *              and then its state machine.
 *   -C one     all connections on one UDP socket: SSL_new_from_listener on a client-side
 *              listener (one domain), driven by one SSL_poll over the streams being read
 *              and the connections being set up or closed; cheaper per request (datagrams of
 *              all connections in one recvmmsg/sendmmsg).
 * Each connection issues requests one after the other on new bidi streams
 * (SSL_new_stream(NO_BLOCK) + SSL_write_ex2(CONCLUDE)), reads the response to FIN and checks
 * every byte against the pattern and the length. After all connections are up: WARMUP s
 * (default 1), then the timed window of SECONDS (default 5) in which completed requests are
 * counted, then in-flight requests are drained and every connection is shut down.
 *
 * CPU: the server process's CPU time over the window (all threads, clock_getcpuclockid of
 * the server's pid; /proc/PID/stat as a fallback) and the client's own
 * (CLOCK_PROCESS_CPUTIME_ID). Client and server share the machine's cores; machine_cpu is
 * the busy time of all cores over the window (/proc/stat, 10 ms ticks), so machine_cpu -
 * server_cpu - client_cpu is what everything else on the machine took meanwhile.
 *
 * Prints one line and exits 0, or prints the reason and exits 1 (any request error, any
 * server error or a wait that ran out):
 *   mt osslquic mode=M client=sockets|one conns=N bytes=B workers=W secs=S reqs=R rps=X
 *      server_cpu=C client_cpu=C machine_cpu=C p50_ms=L p99_ms=L errors=E served=N server_threads=T
 *      server_vcsw=V server_ivcsw=V
 * (served: streams the server completed over the whole run; vcsw/ivcsw: the server's
 * voluntary / involuntary context switches over the whole run.)
 * Every wait is bounded: each phase has a deadline, the server waits at most -t (default
 * 60) s for its connection threads, and a watchdog alarm ends either process beyond -t.
 * -L: the server also reports the library's lock figures (a library built with the
 * lock-tracking feature; OSSLQUIC_lock_stats) on a second line, "locks lock=NAME|HOLD_NS|WAIT_NS|COUNT ...",
 * over its whole run, and server_run_cpu is its CPU time over the whole run.
 * -H (for debugging a hang): a server that does not finish is left running for gdb
 * (`gdb -p PID -batch -ex 'thread apply all bt'`) instead of being killed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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
#define MAX_RESP (4 << 20)
#define REQ_MAX 64
#define LAT_BUCKET_US 50 /* latency histogram resolution */
#define LAT_BUCKETS 40000 /* up to 2 s; slower requests land in the last bucket */

static const unsigned char alpn[] = {10, 'o', 's', 's', 'l', 'q', 'b', 'e', 'n', 'c', 'h'};
static unsigned char pattern[MAX_RESP];
static const char *certdir = "build/certs";
static double limit = 60;
static int keep_hung;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double clock_s(clockid_t clk)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0)
        return -1;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
    fprintf(stderr, "quic_mt %s: %s\n", side, what);
    ERR_print_errors_fp(stderr);
    return 0;
}

/* A non-blocking UDP socket on 127.0.0.1 (port 0 = any) with `buf`-byte buffers (best effort). */
static int udp_socket(unsigned *port, int buf)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
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

/* Parses "GET /N\r\n" (the whole request); the response length, or -1. */
static long parse_request(const char *req, size_t len)
{
    char *end;
    unsigned long n;

    if (len < 8 || memcmp(req, "GET /", 5) != 0 || req[len - 2] != '\r' || req[len - 1] != '\n')
        return -1;
    n = strtoul(req + 5, &end, 10);
    if (end != req + len - 2 || n > MAX_RESP)
        return -1;
    return (long)n;
}

/* ---- server, both modes ------------------------------------------------------------ */

static SSL_CTX *server_ctx(int threads)
{
    SSL_CTX *ctx = SSL_CTX_new(OSSL_QUIC_server_method());

    if (ctx == NULL || !SSL_CTX_use_certificate_chain_file(ctx, cert("chain.pem")) ||
        !SSL_CTX_use_PrivateKey_file(ctx, cert("key.pem"), SSL_FILETYPE_PEM) ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn)) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* What OpenSSL needs for several threads blocked on one domain (its server-method
     * default, LEGACY_BLOCKING, is documented as unreliable there). */
    if (threads && !SSL_CTX_set_domain_flags(ctx, SSL_DOMAIN_FLAG_MULTI_THREAD | SSL_DOMAIN_FLAG_BLOCKING)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int setup_conn(SSL *conn)
{
    return SSL_set_incoming_stream_policy(conn, SSL_INCOMING_STREAM_POLICY_ACCEPT, 0) &&
           SSL_set_default_stream_mode(conn, SSL_DEFAULT_STREAM_MODE_NONE);
}

struct result {
    long served, errors, threads;
};

/* With -L: the library's lock figures (OSSLQUIC_lock_stats, a library built with the
 * lock-tracking feature) over the server's whole run, as tokens "lock=NAME|HOLD_NS|WAIT_NS|COUNT"
 * (spaces in NAME become '_'), appended to `line`. */
static void append_lock_figures(char *line, size_t cap)
{
    char text[4096], *l, *save = NULL;
    size_t n = OSSLQUIC_lock_stats(text, sizeof(text));

    if (n == 0) {
        ERR_print_errors_fp(stderr);
        return;
    }
    for (l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        /* NAME HOLD WAIT COUNT: the three numbers are the last three fields. */
        char *f3 = strrchr(l, ' '), *f2, *f1;
        size_t used = strlen(line);
        if (f3 == NULL)
            continue;
        *f3 = '\0';
        if ((f2 = strrchr(l, ' ')) == NULL)
            continue;
        *f2 = '\0';
        if ((f1 = strrchr(l, ' ')) == NULL)
            continue;
        *f1 = '\0';
        for (char *c = l; *c; c++)
            if (*c == ' ')
                *c = '_';
        snprintf(line + used, cap - used, " lock=%s|%s|%s|%s", l, f1 + 1, f2 + 1, f3 + 1);
    }
}

static int lock_figures;

static int report(int fd, const struct result *r)
{
    struct rusage ru;
    char line[8192];

    getrusage(RUSAGE_SELF, &ru);
    snprintf(line, sizeof(line), "served=%ld errors=%ld threads=%ld vcsw=%ld ivcsw=%ld run_cpu=%.3f", r->served,
             r->errors, r->threads, ru.ru_nvcsw, ru.ru_nivcsw,
             ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    if (lock_figures)
        append_lock_figures(line, sizeof(line) - 1);
    strcat(line, "\n");
    return write(fd, line, strlen(line)) == (ssize_t)strlen(line);
}

/* ---- threaded server --------------------------------------------------------------- */

struct tsrv {
    SSL *l;
    int nconns, nworkers;
    pthread_t acceptor, *conn_threads, *workers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int accepted, started, finished, accept_done; /* under mu */
    SSL **queue;                                  /* streams for the pool, under mu */
    size_t qcap, qhead, qlen;
    int stop_workers;
    atomic_long served, errors;
};

/* Waits on srv->cv until `cond` or the absolute monotonic `deadline`; mu held. */
#define TSRV_WAIT(srv, cond, deadline)                                                         \
    do {                                                                                       \
        while (!(cond) && now_s() < (deadline)) {                                              \
            struct timespec ts_;                                                               \
            clock_gettime(CLOCK_REALTIME, &ts_);                                               \
            ts_.tv_nsec += 200 * 1000000L;                                                     \
            if (ts_.tv_nsec >= 1000000000L) {                                                  \
                ts_.tv_sec++;                                                                  \
                ts_.tv_nsec -= 1000000000L;                                                    \
            }                                                                                  \
            pthread_cond_timedwait(&(srv)->cv, &(srv)->mu, &ts_);                              \
        }                                                                                      \
    } while (0)

/* One request on a blocking stream: read to FIN, write the response with FIN. */
static int serve_blocking(SSL *st)
{
    char req[REQ_MAX];
    size_t got = 0, n, w = 0;
    long len;

    for (;;) {
        if (got == sizeof(req))
            return fail("threaded server", "request too long");
        if (SSL_read_ex(st, req + got, sizeof(req) - got, &n)) {
            got += n;
            continue;
        }
        if (SSL_get_error(st, 0) == SSL_ERROR_ZERO_RETURN)
            break;
        return fail("threaded server", "SSL_read_ex on a request stream failed");
    }
    ERR_clear_error();
    if ((len = parse_request(req, got)) < 0)
        return fail("threaded server", "bad request");
    /* Blocking: takes all of it (waiting for flow-control credit if need be), then FIN. */
    if (!SSL_write_ex2(st, pattern, (size_t)len, SSL_WRITE_FLAG_CONCLUDE, &w) || w != (size_t)len)
        return fail("threaded server", "SSL_write_ex2 of a response failed");
    return 1;
}

static void *pool_main(void *arg)
{
    struct tsrv *srv = arg;

    for (;;) {
        SSL *st = NULL;

        pthread_mutex_lock(&srv->mu);
        while (srv->qlen == 0 && !srv->stop_workers)
            TSRV_WAIT(srv, srv->qlen > 0 || srv->stop_workers, now_s() + 1);
        if (srv->qlen > 0) {
            st = srv->queue[srv->qhead];
            srv->qhead = (srv->qhead + 1) % srv->qcap;
            srv->qlen--;
            pthread_cond_broadcast(&srv->cv);
        }
        pthread_mutex_unlock(&srv->mu);
        if (st == NULL)
            return NULL;
        if (serve_blocking(st))
            atomic_fetch_add(&srv->served, 1);
        else
            atomic_fetch_add(&srv->errors, 1);
        SSL_free(st);
    }
}

/* Hands a stream to the pool; 0 if the queue stayed full for 10 s. */
static int enqueue(struct tsrv *srv, SSL *st)
{
    int ok;

    pthread_mutex_lock(&srv->mu);
    TSRV_WAIT(srv, srv->qlen < srv->qcap, now_s() + 10);
    ok = srv->qlen < srv->qcap;
    if (ok) {
        srv->queue[(srv->qhead + srv->qlen) % srv->qcap] = st;
        srv->qlen++;
        pthread_cond_broadcast(&srv->cv);
    }
    pthread_mutex_unlock(&srv->mu);
    return ok;
}

struct conn_arg {
    struct tsrv *srv;
    SSL *conn;
};

static void *conn_main(void *arg)
{
    struct conn_arg *ca = arg;
    struct tsrv *srv = ca->srv;
    SSL *conn = ca->conn;
    SSL_CONN_CLOSE_INFO info;

    free(ca);
    for (;;) {
        SSL *st = SSL_accept_stream(conn, 0); /* blocks until the client opens one */

        if (st == NULL)
            break;
        if (srv->nworkers > 0) {
            if (!enqueue(srv, st)) {
                fail("threaded server", "the pool's queue stayed full for 10 s");
                atomic_fetch_add(&srv->errors, 1);
                SSL_free(st);
            }
            continue;
        }
        if (serve_blocking(st))
            atomic_fetch_add(&srv->served, 1);
        else
            atomic_fetch_add(&srv->errors, 1);
        SSL_free(st);
    }
    /* The expected end: the client closed the connection. */
    if (SSL_get_conn_close_info(conn, &info, sizeof(info)) != 1) {
        fail("threaded server", "SSL_accept_stream(conn, 0) returned NULL on an open connection");
        atomic_fetch_add(&srv->errors, 1);
    }
    ERR_clear_error();
    SSL_free(conn);
    pthread_mutex_lock(&srv->mu);
    srv->finished++;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

static void *acceptor_main(void *arg)
{
    struct tsrv *srv = arg;
    int i;

    for (i = 0; i < srv->nconns; i++) {
        SSL *conn = SSL_accept_connection(srv->l, 0); /* blocks */
        struct conn_arg *ca = malloc(sizeof(*ca));

        if (conn == NULL || ca == NULL || !setup_conn(conn)) {
            fail("threaded server", "SSL_accept_connection(listener, 0) or the connection's setup failed");
            atomic_fetch_add(&srv->errors, 1);
            SSL_free(conn);
            free(ca);
            break;
        }
        ca->srv = srv;
        ca->conn = conn;
        if (pthread_create(&srv->conn_threads[i], NULL, conn_main, ca) != 0) {
            fail("threaded server", "pthread_create failed");
            atomic_fetch_add(&srv->errors, 1);
            SSL_free(conn);
            free(ca);
            break;
        }
        pthread_mutex_lock(&srv->mu);
        srv->started++;
        pthread_mutex_unlock(&srv->mu);
    }
    pthread_mutex_lock(&srv->mu);
    srv->accept_done = 1;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

/* A thread that did not end in time: nothing can be cleaned up. */
static void hung(const char *what)
{
    fprintf(stderr, "quic_mt threaded server: %s (pid %d)\n", what, (int)getpid());
    if (keep_hung) {
        fprintf(stderr, "quic_mt: server left running for gdb -p %d\n", (int)getpid());
        alarm(0);
        sleep(600);
    }
    _exit(1);
}

static int join_by(pthread_t t, double deadline)
{
    struct timespec ts;
    double left = deadline - now_s();

    clock_gettime(CLOCK_REALTIME, &ts);
    if (left < 0)
        left = 0;
    ts.tv_sec += (time_t)left;
    ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_timedjoin_np(t, NULL, &ts) == 0;
}

static int server_threaded(int fd, int nconns, int nworkers, int port_pipe, int result_pipe)
{
    struct tsrv srv;
    struct result res;
    SSL_CTX *ctx = server_ctx(1);
    double deadline = now_s() + limit;
    char line[32];
    unsigned port = 0;
    int i, started, finished;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);

    memset(&srv, 0, sizeof(srv));
    pthread_mutex_init(&srv.mu, NULL);
    pthread_cond_init(&srv.cv, NULL);
    srv.nconns = nconns;
    srv.nworkers = nworkers;
    srv.conn_threads = calloc((size_t)nconns, sizeof(pthread_t));
    srv.workers = calloc((size_t)(nworkers > 0 ? nworkers : 1), sizeof(pthread_t));
    srv.qcap = (size_t)nconns * 2;
    srv.queue = calloc(srv.qcap, sizeof(SSL *));
    if (ctx == NULL || srv.conn_threads == NULL || srv.workers == NULL || srv.queue == NULL)
        return fail("threaded server", "setup failed");
    srv.l = SSL_new_listener(ctx, 0);
    if (srv.l == NULL || !SSL_set_fd(srv.l, fd) || SSL_get_blocking_mode(srv.l) != 1 || !SSL_listen(srv.l))
        return fail("threaded server", "listener setup failed (or it is not blocking on a UDP socket)");
    if (getsockname(fd, (struct sockaddr *)&sin, &sl) == 0)
        port = ntohs(sin.sin_port);
    for (i = 0; i < nworkers; i++)
        if (pthread_create(&srv.workers[i], NULL, pool_main, &srv) != 0)
            return fail("threaded server", "pthread_create failed");
    if (pthread_create(&srv.acceptor, NULL, acceptor_main, &srv) != 0)
        return fail("threaded server", "pthread_create failed");
    snprintf(line, sizeof(line), "%u\n", port);
    if (write(port_pipe, line, strlen(line)) < 0)
        return fail("threaded server", "cannot report the port");
    close(port_pipe);

    /* Until every connection has come and gone (the client closes them all at the end). */
    pthread_mutex_lock(&srv.mu);
    TSRV_WAIT(&srv, srv.accept_done && srv.finished == srv.started, deadline);
    started = srv.started;
    finished = srv.finished;
    pthread_mutex_unlock(&srv.mu);
    if (!join_by(srv.acceptor, deadline))
        hung("the accept thread is still blocked in SSL_accept_connection");
    if (finished != started) {
        snprintf(line, sizeof(line), "%d of %d", started - finished, started);
        fprintf(stderr, "quic_mt threaded server: %s connection threads still running at the deadline\n", line);
        hung("connection threads did not finish");
    }
    for (i = 0; i < started; i++)
        if (!join_by(srv.conn_threads[i], deadline + 5))
            hung("a connection thread did not end");
    pthread_mutex_lock(&srv.mu);
    srv.stop_workers = 1;
    pthread_cond_broadcast(&srv.cv);
    pthread_mutex_unlock(&srv.mu);
    for (i = 0; i < nworkers; i++)
        if (!join_by(srv.workers[i], deadline + 5))
            hung("a pool thread did not end");
    if (started != nconns)
        atomic_fetch_add(&srv.errors, 1);
    res.served = atomic_load(&srv.served);
    res.errors = atomic_load(&srv.errors);
    res.threads = 1 + started + nworkers + 1; /* main, connections, pool, acceptor */
    SSL_free(srv.l);
    SSL_CTX_free(ctx);
    free(srv.conn_threads);
    free(srv.workers);
    free(srv.queue);
    pthread_cond_destroy(&srv.cv);
    pthread_mutex_destroy(&srv.mu);
    return report(result_pipe, &res) && res.errors == 0;
}

/* ---- single-thread server ---------------------------------------------------------- */

struct sstream {
    SSL *st;
    int conn;          /* index in conns */
    int writing;       /* the request is complete; the response goes out */
    size_t got, off, len;
    char req[REQ_MAX];
};

struct single {
    SSL *l;
    SSL **conns; /* NULL once closed and freed */
    int nconns, accepted, open;
    struct sstream *streams; /* st NULL = free slot */
    size_t nstreams, cap;
    long served, errors;
};

/* Serves a non-blocking stream as far as it goes now; 1 when it is finished (freed). */
static int stream_step(struct single *s, struct sstream *x)
{
    size_t n, w;

    while (!x->writing) {
        long len;

        if (x->got == sizeof(x->req)) {
            fail("single server", "request too long");
            goto bad;
        }
        if (SSL_read_ex(x->st, x->req + x->got, sizeof(x->req) - x->got, &n)) {
            x->got += n;
            continue;
        }
        switch (SSL_get_error(x->st, 0)) {
        case SSL_ERROR_WANT_READ:
            return 0;
        case SSL_ERROR_ZERO_RETURN:
            ERR_clear_error();
            if ((len = parse_request(x->req, x->got)) < 0) {
                fail("single server", "bad request");
                goto bad;
            }
            x->len = (size_t)len;
            x->writing = 1;
            break;
        default:
            fail("single server", "SSL_read_ex on a request stream failed");
            goto bad;
        }
    }
    while (x->off < x->len) {
        if (SSL_write_ex2(x->st, pattern + x->off, x->len - x->off, SSL_WRITE_FLAG_CONCLUDE, &w)) {
            x->off += w;
            continue;
        }
        if (SSL_get_error(x->st, 0) == SSL_ERROR_WANT_WRITE)
            return 0;
        fail("single server", "SSL_write_ex2 of a response failed");
        goto bad;
    }
    s->served++;
    SSL_free(x->st);
    x->st = NULL;
    return 1;
bad:
    s->errors++;
    SSL_free(x->st);
    x->st = NULL;
    return 1;
}

static struct sstream *stream_slot(struct single *s)
{
    size_t i;

    for (i = 0; i < s->nstreams; i++)
        if (s->streams[i].st == NULL)
            return &s->streams[i];
    if (s->nstreams == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 128;
        struct sstream *p = realloc(s->streams, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        s->streams = p;
        s->cap = cap;
    }
    return &s->streams[s->nstreams++];
}

/* Accepts every waiting stream of connection k and serves each as far as it goes. */
static int accept_streams(struct single *s, int k)
{
    SSL *st;

    while ((st = SSL_accept_stream(s->conns[k], SSL_ACCEPT_STREAM_NO_BLOCK)) != NULL) {
        struct sstream *x = stream_slot(s);

        if (x == NULL) {
            SSL_free(st);
            return fail("single server", "out of memory");
        }
        memset(x, 0, offsetof(struct sstream, req));
        x->st = st;
        x->conn = k;
        stream_step(s, x);
    }
    ERR_clear_error();
    return 1;
}

static void close_conn(struct single *s, int k)
{
    size_t i;

    for (i = 0; i < s->nstreams; i++)
        if (s->streams[i].st != NULL && s->streams[i].conn == k) {
            fail("single server", "the connection closed with a request unanswered");
            s->errors++;
            SSL_free(s->streams[i].st);
            s->streams[i].st = NULL;
        }
    SSL_free(s->conns[k]);
    s->conns[k] = NULL;
    s->open--;
}

enum { TAG_LISTENER, TAG_CONN, TAG_STREAM };

static int server_single(int fd, int nconns, int port_pipe, int result_pipe)
{
    struct single s;
    struct result res;
    SSL_CTX *ctx = server_ctx(0);
    SSL_POLL_ITEM *items = NULL;
    int *tags = NULL, *idx = NULL;
    size_t cap = 0;
    double deadline = now_s() + limit;
    char line[32];
    unsigned port = 0;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int ok = 0;

    memset(&s, 0, sizeof(s));
    s.nconns = nconns;
    s.conns = calloc((size_t)nconns, sizeof(SSL *));
    if (ctx == NULL || s.conns == NULL)
        return fail("single server", "setup failed");
    s.l = SSL_new_listener(ctx, 0);
    if (s.l == NULL || !SSL_set_fd(s.l, fd) || !SSL_set_blocking_mode(s.l, 0) || !SSL_listen(s.l))
        return fail("single server", "listener setup failed");
    if (getsockname(fd, (struct sockaddr *)&sin, &sl) == 0)
        port = ntohs(sin.sin_port);
    snprintf(line, sizeof(line), "%u\n", port);
    if (write(port_pipe, line, strlen(line)) < 0)
        return fail("single server", "cannot report the port");
    close(port_pipe);

    while (s.accepted < nconns || s.open > 0) {
        struct timeval tmo = {1, 0};
        size_t n = 0, i, count = 0, need = 1 + (size_t)nconns + s.nstreams;

        if (now_s() > deadline) {
            fprintf(stderr, "quic_mt single server: %d of %d connections accepted, %d open at the deadline\n",
                    s.accepted, nconns, s.open);
            goto out;
        }
        if (need > cap) {
            cap = need * 2;
            items = realloc(items, cap * sizeof(*items));
            tags = realloc(tags, cap * sizeof(*tags));
            idx = realloc(idx, cap * sizeof(*idx));
            if (items == NULL || tags == NULL || idx == NULL) {
                fail("single server", "out of memory");
                goto out;
            }
        }
        /* Streams first: a connection's close below frees its streams. */
        for (i = 0; i < s.nstreams; i++) {
            struct sstream *x = &s.streams[i];
            if (x->st == NULL)
                continue;
            items[n].desc = SSL_as_poll_descriptor(x->st);
            items[n].events = x->writing ? SSL_POLL_EVENT_W | SSL_POLL_EVENT_EW : SSL_POLL_EVENT_R | SSL_POLL_EVENT_ER;
            tags[n] = TAG_STREAM;
            idx[n++] = (int)i;
        }
        for (i = 0; i < (size_t)s.accepted; i++) {
            if (s.conns[i] == NULL)
                continue;
            items[n].desc = SSL_as_poll_descriptor(s.conns[i]);
            items[n].events = SSL_POLL_EVENT_ISB | SSL_POLL_EVENT_EC;
            tags[n] = TAG_CONN;
            idx[n++] = (int)i;
        }
        if (s.accepted < nconns) {
            items[n].desc = SSL_as_poll_descriptor(s.l);
            items[n].events = SSL_POLL_EVENT_IC;
            tags[n] = TAG_LISTENER;
            idx[n++] = 0;
        }
        for (i = 0; i < n; i++)
            items[i].revents = 0;
        if (!SSL_poll(items, n, sizeof(SSL_POLL_ITEM), &tmo, 0, &count)) {
            fail("single server", "SSL_poll failed");
            goto out;
        }
        for (i = 0; i < n && count > 0; i++) {
            uint64_t ev = items[i].revents;

            if (ev == 0)
                continue;
            count--;
            switch (tags[i]) {
            case TAG_STREAM: {
                struct sstream *x = &s.streams[idx[i]];
                if (x->st == NULL)
                    break;
                if (ev & (SSL_POLL_EVENT_ER | SSL_POLL_EVENT_EW)) {
                    fail("single server", "the client reset a stream or stopped sending");
                    s.errors++;
                    SSL_free(x->st);
                    x->st = NULL;
                    break;
                }
                stream_step(&s, x);
                break;
            }
            case TAG_CONN:
                if (s.conns[idx[i]] == NULL)
                    break;
                if (ev & SSL_POLL_EVENT_ISB && !accept_streams(&s, idx[i]))
                    goto out;
                if (ev & SSL_POLL_EVENT_EC)
                    close_conn(&s, idx[i]);
                break;
            case TAG_LISTENER: {
                SSL *conn;
                while (s.accepted < nconns &&
                       (conn = SSL_accept_connection(s.l, SSL_ACCEPT_CONNECTION_NO_BLOCK)) != NULL) {
                    if (!setup_conn(conn)) {
                        SSL_free(conn);
                        fail("single server", "connection setup failed");
                        goto out;
                    }
                    s.conns[s.accepted++] = conn;
                    s.open++;
                }
                ERR_clear_error();
                break;
            }
            }
        }
        /* Trim free slots at the end so the item list stays short. */
        while (s.nstreams > 0 && s.streams[s.nstreams - 1].st == NULL)
            s.nstreams--;
    }
    ok = 1;
out:
    res.served = s.served;
    res.errors = s.errors + !ok;
    res.threads = 1;
    for (int k = 0; k < s.accepted; k++)
        if (s.conns[k] != NULL)
            close_conn(&s, k);
    free(items);
    free(tags);
    free(idx);
    free(s.streams);
    free(s.conns);
    SSL_free(s.l);
    SSL_CTX_free(ctx);
    return report(result_pipe, &res) && res.errors == 0 && ok;
}

/* ---- client (load generator) ------------------------------------------------------- */

enum { C_CONNECTING, C_IDLE, C_READING, C_CLOSING, C_CLOSED };
enum { P_CONNECT, P_RUN, P_DRAIN, P_CLOSE };

struct cconn {
    SSL *c, *st;
    int fd, state, want_write;
    size_t got;
    double t0, next; /* request start; when the connection's timer is due (INFINITY: none) */
};

struct client {
    struct cconn *cc;
    int one; /* all connections on one client listener's socket (SSL_new_from_listener) */
    SSL *lst;
    SSL_POLL_ITEM *items;
    int *which;
    int n, phase, counting, connected, reading, closed;
    size_t bytes;
    char req[REQ_MAX];
    size_t reqlen;
    long reqs, win_reqs, errors, limited;
    uint32_t *lat; /* window latencies, LAT_BUCKET_US buckets */
    unsigned char buf[65536];
};

static void cerror(struct client *cl, const char *what)
{
    if (cl->errors++ < 5)
        fail("client", what);
    ERR_clear_error();
}

static void drop_stream(struct client *cl, struct cconn *x)
{
    SSL_free(x->st);
    x->st = NULL;
    x->state = C_IDLE;
    cl->reading--;
}

/* Moves one connection's state machine as far as it goes now. */
static void step(struct client *cl, struct cconn *x)
{
    size_t n, w;
    int r;

    for (;;) {
        switch (x->state) {
        case C_CONNECTING:
            /* SSL_do_handshake, not SSL_connect: connections made with SSL_new_from_listener
             * have the listener's server-method context, where OpenSSL 3.5 leaves
             * SSL_connect undefined. */
            r = SSL_do_handshake(x->c);
            if (r == 1) {
                x->state = C_IDLE;
                cl->connected++;
                continue;
            }
            r = SSL_get_error(x->c, r);
            if (r != SSL_ERROR_WANT_READ && r != SSL_ERROR_WANT_WRITE) {
                cerror(cl, "handshake failed");
                x->state = C_CLOSED;
                cl->closed++;
            }
            return;
        case C_IDLE:
            if (cl->phase != P_RUN)
                return;
            x->st = SSL_new_stream(x->c, SSL_STREAM_FLAG_NO_BLOCK);
            if (x->st == NULL) {
                /* No stream credit yet (STREAM_COUNT_LIMITED): the server's MAX_STREAMS comes. */
                cl->limited++;
                ERR_clear_error();
                return;
            }
            if (!SSL_write_ex2(x->st, cl->req, cl->reqlen, SSL_WRITE_FLAG_CONCLUDE, &w) || w != cl->reqlen) {
                cerror(cl, "SSL_write_ex2 of a request failed");
                SSL_free(x->st);
                x->st = NULL;
                return;
            }
            x->state = C_READING;
            x->got = 0;
            x->t0 = now_s();
            cl->reading++;
            continue;
        case C_READING:
            if (SSL_read_ex(x->st, cl->buf, sizeof(cl->buf), &n)) {
                if (x->got + n > cl->bytes || memcmp(cl->buf, pattern + x->got, n) != 0) {
                    cerror(cl, "response bytes do not match the pattern (or too many)");
                    drop_stream(cl, x);
                    return;
                }
                x->got += n;
                continue;
            }
            r = SSL_get_error(x->st, 0);
            if (r == SSL_ERROR_WANT_READ)
                return;
            if (r != SSL_ERROR_ZERO_RETURN || x->got != cl->bytes) {
                cerror(cl, r == SSL_ERROR_ZERO_RETURN ? "short response" : "SSL_read_ex of a response failed");
                drop_stream(cl, x);
                return;
            }
            ERR_clear_error();
            cl->reqs++;
            if (cl->counting) {
                double us = (now_s() - x->t0) * 1e6;
                size_t b = (size_t)(us / LAT_BUCKET_US);
                cl->lat[b < LAT_BUCKETS ? b : LAT_BUCKETS - 1]++;
                cl->win_reqs++;
            }
            drop_stream(cl, x);
            continue;
        case C_CLOSING:
            r = SSL_shutdown(x->c);
            if (r == 1 || r < 0) {
                if (r < 0)
                    cerror(cl, "SSL_shutdown failed");
                x->state = C_CLOSED;
                cl->closed++;
            }
            return;
        default:
            return;
        }
    }
}

/* After touching a connection: when its timer is due, and whether it wants POLLOUT. */
static void refresh(struct client *cl, struct cconn *x, double now)
{
    struct timeval tv;
    int inf = 1;

    if (cl->one)
        return;
    x->next = INFINITY;
    if (x->state != C_CLOSED && SSL_get_event_timeout(x->c, &tv, &inf) && !inf)
        x->next = now + (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
    x->want_write = x->state != C_CLOSED && SSL_net_write_desired(x->c);
}

/*
 * The one-socket client: one SSL_poll over what each connection waits for (its stream's R
 * while reading a response, the connection's OSB while connecting or waiting for stream
 * credit, ECD while closing), which handles the one domain's events and sleeps in it.
 */
static int drive_one(struct client *cl, double until, int (*done)(struct client *))
{
    while (!done(cl)) {
        double now = now_s(), left = until - now;
        struct timeval tmo;
        size_t k = 0, count = 0, i;
        int j;

        if (left <= 0)
            return 0;
        if (left > 1)
            left = 1;
        tmo.tv_sec = (time_t)left;
        tmo.tv_usec = (suseconds_t)((left - (double)tmo.tv_sec) * 1e6);
        for (j = 0; j < cl->n; j++) {
            struct cconn *x = &cl->cc[j];
            uint64_t ev = 0;
            SSL *o = x->c;

            switch (x->state) {
            case C_CONNECTING: ev = SSL_POLL_EVENT_OSB | SSL_POLL_EVENT_EC; break;
            case C_IDLE: ev = cl->phase == P_RUN ? SSL_POLL_EVENT_OSB | SSL_POLL_EVENT_EC : 0; break;
            case C_READING: ev = SSL_POLL_EVENT_R | SSL_POLL_EVENT_ER; o = x->st; break;
            case C_CLOSING: ev = SSL_POLL_EVENT_ECD; break;
            default: break;
            }
            if (ev == 0)
                continue;
            cl->items[k].desc = SSL_as_poll_descriptor(o);
            cl->items[k].events = ev;
            cl->items[k].revents = 0;
            cl->which[k++] = j;
        }
        if (!SSL_poll(cl->items, k, sizeof(SSL_POLL_ITEM), &tmo, 0, &count)) {
            fail("client", "SSL_poll failed");
            return 0;
        }
        if (count == 0) {
            /* Nothing within a second (or the phase ends): give everyone a step. */
            for (j = 0; j < cl->n; j++)
                step(cl, &cl->cc[j]);
            continue;
        }
        for (i = 0; i < k; i++)
            if (cl->items[i].revents != 0)
                step(cl, &cl->cc[cl->which[i]]);
    }
    return 1;
}

/* Drives every connection until `done(cl)` or `until`; 1 if done. */
static int drive(struct client *cl, struct pollfd *pfd, double until, int (*done)(struct client *))
{
    int i;

    if (cl->one)
        return drive_one(cl, until, done);
    while (!done(cl)) {
        double now = now_s(), wake = until;
        int ms;

        if (now >= until)
            return 0;
        for (i = 0; i < cl->n; i++) {
            struct cconn *x = &cl->cc[i];
            pfd[i].fd = x->state == C_CLOSED ? -1 : x->fd;
            pfd[i].events = (short)(POLLIN | (x->want_write ? POLLOUT : 0));
            pfd[i].revents = 0;
            if (x->next < wake)
                wake = x->next;
        }
        ms = wake <= now ? 0 : (int)ceil((wake - now) * 1000);
        if (poll(pfd, (nfds_t)cl->n, ms) < 0 && errno != EINTR)
            return 0;
        now = now_s();
        for (i = 0; i < cl->n; i++) {
            struct cconn *x = &cl->cc[i];
            if (x->state == C_CLOSED || (pfd[i].revents == 0 && x->next > now))
                continue;
            SSL_handle_events(x->c);
            step(cl, x);
            refresh(cl, x, now);
        }
    }
    return 1;
}

static int all_connected(struct client *cl) { return cl->connected + cl->closed == cl->n; }
static int never(struct client *cl) { (void)cl; return 0; }
static int none_reading(struct client *cl) { return cl->reading == 0; }
static int all_closed(struct client *cl) { return cl->closed == cl->n; }

/* The phase changed: give every connection a step (new requests, or the shutdown). */
static void step_all(struct client *cl)
{
    double now = now_s();
    for (int i = 0; i < cl->n; i++) {
        step(cl, &cl->cc[i]);
        refresh(cl, &cl->cc[i], now);
    }
}

/* CPU seconds of process `pid` (all its threads). */
static double proc_cpu(pid_t pid)
{
    clockid_t clk;
    char path[64], buf[1024], *p;
    unsigned long ut, st;
    FILE *f;
    size_t n;

    if (clock_getcpuclockid(pid, &clk) == 0) {
        double v = clock_s(clk);
        if (v >= 0)
            return v;
    }
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime stime. */
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds the whole machine spent busy (not idle or iowait), from /proc/stat. */
static double machine_busy(void)
{
    unsigned long long v[10] = {0}, busy = 0;
    FILE *f = fopen("/proc/stat", "r");
    int n, i;

    if (f == NULL)
        return -1;
    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 8)
        return -1;
    /* user nice system idle iowait irq softirq steal (guest time is inside user). */
    for (i = 0; i < 8; i++)
        if (i != 3 && i != 4)
            busy += v[i];
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

static double percentile(const uint32_t *lat, long total, double q)
{
    long want = (long)ceil(q * (double)total), acc = 0;
    for (int b = 0; b < LAT_BUCKETS; b++) {
        acc += lat[b];
        if (acc >= want && want > 0)
            return (b + 1) * LAT_BUCKET_US / 1000.0;
    }
    return 0;
}

struct client_out {
    long win_reqs, errors;
    double secs, server_cpu, client_cpu, machine_cpu, p50, p99;
};

static int client(unsigned port, pid_t server, int nconns, size_t bytes, double secs, double warmup, int one,
                  struct client_out *out)
{
    /* The one-socket client's connections come from a listener, which needs a server-method
     * context (with a certificate); it verifies the server all the same. */
    SSL_CTX *ctx = one ? server_ctx(0) : SSL_CTX_new(OSSL_QUIC_client_method());
    BIO_ADDR *peer = BIO_ADDR_new();
    struct client *cl = calloc(1, sizeof(*cl));
    struct pollfd *pfd = calloc((size_t)nconns, sizeof(*pfd));
    struct in_addr lo;
    double t, s0, s1, c0, c1, m0, m1, w0, w1;
    int i, ok = 0, lfd = -1;

    lo.s_addr = htonl(INADDR_LOOPBACK);
    if (ctx == NULL || peer == NULL || cl == NULL || pfd == NULL ||
        !BIO_ADDR_rawmake(peer, AF_INET, &lo, sizeof(lo), htons(port)) ||
        !SSL_CTX_load_verify_locations(ctx, cert("ca.pem"), NULL))
        return fail("client", "setup failed");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    cl->n = nconns;
    cl->one = one;
    cl->bytes = bytes;
    cl->cc = calloc((size_t)nconns, sizeof(*cl->cc));
    cl->lat = calloc(LAT_BUCKETS, sizeof(uint32_t));
    cl->items = calloc((size_t)nconns, sizeof(SSL_POLL_ITEM));
    cl->which = calloc((size_t)nconns, sizeof(int));
    if (cl->cc == NULL || cl->lat == NULL || cl->items == NULL || cl->which == NULL)
        return fail("client", "out of memory");
    cl->reqlen = (size_t)snprintf(cl->req, sizeof(cl->req), "GET /%zu\r\n", bytes);
    if (one) {
        unsigned myport;

        lfd = udp_socket(&myport, 4 << 20);
        cl->lst = SSL_new_listener(ctx, 0);
        if (lfd < 0 || cl->lst == NULL || !SSL_set_fd(cl->lst, lfd) || !SSL_set_blocking_mode(cl->lst, 0) ||
            !SSL_listen(cl->lst))
            return fail("client", "client listener setup failed");
    }
    for (i = 0; i < nconns; i++) {
        struct cconn *x = &cl->cc[i];
        unsigned myport;

        x->fd = one ? -1 : udp_socket(&myport, 1 << 20);
        x->c = one ? SSL_new_from_listener(cl->lst, 0) : SSL_new(ctx);
        x->next = INFINITY;
        if ((!one && x->fd < 0) || x->c == NULL || !SSL_set_blocking_mode(x->c, 0) ||
            (!one && !SSL_set_fd(x->c, x->fd)) ||
            !SSL_set1_initial_peer_addr(x->c, peer) || SSL_set_alpn_protos(x->c, alpn, sizeof(alpn)) != 0 ||
            !SSL_set1_host(x->c, "localhost") || !SSL_set_default_stream_mode(x->c, SSL_DEFAULT_STREAM_MODE_NONE))
            return fail("client", "connection setup failed");
        x->state = C_CONNECTING;
    }

    cl->phase = P_CONNECT;
    step_all(cl);
    if (!drive(cl, pfd, now_s() + 15, all_connected) || cl->connected != nconns) {
        fprintf(stderr, "quic_mt client: %d of %d connections up after 15 s\n", cl->connected, nconns);
        goto out;
    }
    cl->phase = P_RUN;
    step_all(cl);
    t = now_s();
    drive(cl, pfd, t + warmup, never);
    /* The timed window. */
    cl->counting = 1;
    w0 = now_s();
    s0 = proc_cpu(server);
    c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    m0 = machine_busy();
    drive(cl, pfd, w0 + secs, never);
    w1 = now_s();
    s1 = proc_cpu(server);
    c1 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    m1 = machine_busy();
    cl->counting = 0;
    out->win_reqs = cl->win_reqs;
    out->secs = w1 - w0;
    out->server_cpu = s0 >= 0 && s1 >= 0 ? s1 - s0 : -1;
    out->client_cpu = c1 - c0;
    out->machine_cpu = m0 >= 0 && m1 >= 0 ? m1 - m0 : -1;
    out->p50 = percentile(cl->lat, cl->win_reqs, 0.50);
    out->p99 = percentile(cl->lat, cl->win_reqs, 0.99);
    /* Let the requests in flight finish, then close every connection. */
    cl->phase = P_DRAIN;
    if (!drive(cl, pfd, now_s() + 10, none_reading)) {
        fprintf(stderr, "quic_mt client: %d requests still unanswered 10 s after the window\n", cl->reading);
        cl->errors++;
    }
    cl->phase = P_CLOSE;
    for (i = 0; i < nconns; i++) {
        struct cconn *x = &cl->cc[i];
        if (x->st != NULL) {
            SSL_free(x->st);
            x->st = NULL;
        }
        if (x->state != C_CLOSED)
            x->state = C_CLOSING;
    }
    step_all(cl);
    if (!drive(cl, pfd, now_s() + 10, all_closed)) {
        fprintf(stderr, "quic_mt client: %d of %d connections not shut down after 10 s\n", nconns - cl->closed,
                nconns);
        cl->errors++;
    }
    ok = 1;
out:
    out->errors = cl->errors;
    for (i = 0; i < nconns; i++) {
        SSL_free(cl->cc[i].st);
        SSL_free(cl->cc[i].c);
        if (cl->cc[i].fd >= 0)
            close(cl->cc[i].fd);
    }
    if (cl->limited > 0)
        fprintf(stderr, "quic_mt client: %ld times no stream credit at hand (waited for MAX_STREAMS)\n",
                cl->limited);
    SSL_free(cl->lst);
    if (lfd >= 0)
        close(lfd);
    free(cl->cc);
    free(cl->lat);
    free(cl->items);
    free(cl->which);
    free(cl);
    free(pfd);
    BIO_ADDR_free(peer);
    SSL_CTX_free(ctx);
    return ok;
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

static long kv(const char *line, const char *key)
{
    const char *p = strstr(line, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

int main(int argc, char **argv)
{
    const char *mode = NULL;
    int nconns = 64, nworkers = 0, one = 0, opt, port_p[2], res_p[2], ok = 0, status, fd, threaded;
    size_t bytes = 10240, i;
    double secs = 5, warmup = 1;
    unsigned port = 0;
    pid_t pid;
    char line[8192];
    struct client_out out;

    while ((opt = getopt(argc, argv, "m:n:b:s:u:w:C:c:t:HL")) != -1) {
        switch (opt) {
        case 'm': mode = optarg; break;
        case 'n': nconns = atoi(optarg); break;
        case 'b': bytes = strtoul(optarg, NULL, 10); break;
        case 's': secs = atof(optarg); break;
        case 'u': warmup = atof(optarg); break;
        case 'w': nworkers = atoi(optarg); break;
        case 'C':
            if (strcmp(optarg, "one") == 0)
                one = 1;
            else if (strcmp(optarg, "sockets") == 0)
                one = 0;
            else
                goto usage;
            break;
        case 'c': certdir = optarg; break;
        case 't': limit = atof(optarg); break;
        case 'H': keep_hung = 1; break;
        case 'L': lock_figures = 1; break;
        default: mode = NULL; goto usage;
        }
    }
    if (mode == NULL || (strcmp(mode, "threaded") != 0 && strcmp(mode, "single") != 0) || nconns <= 0 ||
        nworkers < 0 || bytes == 0 || bytes > MAX_RESP || secs <= 0 || warmup < 0 || limit < secs + warmup + 20) {
    usage:
        fprintf(stderr, "usage: quic_mt -m threaded|single [-n CONNS] [-b BYTES] [-s SECONDS] [-u WARMUP]\n"
                        "               [-w WORKERS] [-C sockets|one] [-c CERTDIR]\n"
                        "               [-t LIMIT >= SECONDS+WARMUP+20] [-H] [-L]\n");
        return 2;
    }
    threaded = strcmp(mode, "threaded") == 0;
    memset(&out, 0, sizeof(out));
    for (i = 0; i < sizeof(pattern); i++)
        pattern[i] = (unsigned char)(i % PERIOD);
    /* The server's socket is made before the fork, so its port is known to both. */
    if ((fd = udp_socket(&port, 4 << 20)) < 0 || pipe(port_p) != 0 || pipe(res_p) != 0)
        return 1;
    fflush(stdout);
    pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        int r;
        close(port_p[0]);
        close(res_p[0]);
        alarm((unsigned)limit + (keep_hung ? 600 : 5));
        r = threaded ? server_threaded(fd, nconns, nworkers, port_p[1], res_p[1])
                     : server_single(fd, nconns, port_p[1], res_p[1]);
        close(fd);
        _exit(r ? 0 : 1);
    }
    close(fd);
    close(port_p[1]);
    close(res_p[1]);
    alarm((unsigned)limit + 10);
    if (!read_line(port_p[0], line, sizeof(line), 10000)) {
        fprintf(stderr, "quic_mt: the server did not start\n");
        goto out;
    }
    if (!client((unsigned)atoi(line), pid, nconns, bytes, secs, warmup, one, &out))
        goto out;
    /* The server ends once the client's connections are closed and reports. */
    if (!read_line(res_p[0], line, sizeof(line), 15000)) {
        fprintf(stderr, "quic_mt: the server did not finish within 15 s of the client closing\n");
        if (keep_hung) {
            fprintf(stderr, "quic_mt: server pid %d left running (-H)\n", (int)pid);
            return 1;
        }
        goto out;
    }
    printf("mt osslquic mode=%s client=%s conns=%d bytes=%zu workers=%d secs=%.3f reqs=%ld rps=%.1f server_cpu=%.3f "
           "client_cpu=%.3f machine_cpu=%.2f p50_ms=%.2f p99_ms=%.2f errors=%ld served=%ld server_threads=%ld server_vcsw=%ld "
           "server_ivcsw=%ld",
           mode, one ? "one" : "sockets", nconns, bytes, threaded ? nworkers : 0, out.secs, out.win_reqs,
           (double)out.win_reqs / out.secs,
           out.server_cpu, out.client_cpu, out.machine_cpu, out.p50, out.p99, out.errors + kv(line, "errors="), kv(line, "served="),
           kv(line, "threads="), kv(line, "vcsw="), kv(line, "ivcsw="));
    {
        /* The server's own figures over its whole run: CPU, and with -L its lock figures. */
        const char *rc = strstr(line, "run_cpu="), *lk = strstr(line, " lock=");
        printf(" server_run_cpu=%s%s\n", rc ? strtok((char *)rc + 8, " ") : "0", "");
        if (lk)
            printf("locks %s\n", lk + 1);
    }
    ok = out.errors == 0 && kv(line, "errors=") == 0;
out:
    /* Bounded reap: the server exits on its own once its result is sent. */
    for (i = 0; i < 50; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
        usleep(100000);
    }
    if (keep_hung) {
        fprintf(stderr, "quic_mt: server pid %d left running (-H)\n", (int)pid);
        return 1;
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return 1;
}
