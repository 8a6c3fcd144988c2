/*
 * ddd-async-pollable: the DDD "MT isolated async" server on libuv.
 *
 *   ddd-async-pollable cert.pem key.pem port      (port 0: the system chooses)
 *
 * W worker threads ($DEMO_THREADS, default 2) each run their own uv_loop_t over their own
 * listening socket; nothing is shared between workers but the SSL_CTX. Every worker's socket
 * is bound to the same port with SO_REUSEPORT, and the kernel spreads the clients over them:
 * new TCP connections (TLS), or UDP datagrams by a hash of their 4-tuple (QUIC). The QUIC
 * case relies on that hash being stable: a connection's datagrams keep reaching the worker
 * that holds it as long as the client keeps its address and port and the group of sockets
 * does not change (all are bound before "listening on PORT" is printed and none closes
 * before shutdown). A client that migrates, or a NAT that rebinds it, would land on another
 * worker, which does not know the connection; steering by connection ID would need an eBPF
 * SO_REUSEPORT program or forwarding between workers (see the prefork demo).
 *
 * Everything is non-blocking and driven by libuv. A request (a TLS connection, or a QUIC
 * stream) is one small state machine, async_req_step (async-common.c, shared with
 * ddd-async-nonpollable): read "GET /path", write the answer as far as the connection or
 * stream takes it, end it (TLS close_notify, QUIC FIN), wait for the client's end. It says
 * what it waits for as SSL_get_error does (WANT_READ, WANT_WRITE).
 *   TLS (and -DUSE_LISTENER, TLS through SSL_new_listener/SSL_accept_connection): a uv_poll_t
 *     on the listening socket accepts; each connection has a uv_poll_t on its socket, asked
 *     for exactly the direction the request waits for.
 *   QUIC (-DUSE_QUIC): one listener per worker; a uv_poll_t on the listener's poll
 *     descriptor (readable, plus writable while SSL_net_write_desired) and a uv_timer_t
 *     re-armed from SSL_get_event_timeout after every round. A round: passes of
 *     async_quic_pass (SSL_handle_events, accept the ready connections and streams, step
 *     every stream). Every SSL call may take in datagrams on its own (implicit event
 *     handling), so work can wait inside the library while the socket is empty: each pass
 *     ends with SSL_poll (async_quic_ready: zero timeout, no event handling) over every
 *     object, and the round runs another pass while anything is ready.
 *
 * Protocol (common.h): one request "GET /path" per TLS connection or per QUIC bidirectional
 * stream, answered with N pattern bytes for "/N" (or a short text). One log line per
 * connection. SIGINT/SIGTERM: every worker closes its handles and frees its objects, the
 * process exits 0.
 */
#include "async-common.h"
#include "common.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WORKERS_MAX 64

/* ---------------------------------------------------------------- workers */

struct worker {
    int idx;
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t stop;
    uv_poll_t lpoll; /* the listening socket / the QUIC listener's poll descriptor */
    int lfd;
    int port;
    int lpolled;
    int stopping;
    SSL_CTX *ctx;
#if defined(USE_QUIC) || defined(USE_LISTENER)
    SSL *listener;
#endif
#ifdef USE_QUIC
    uv_timer_t timer;
    struct qconn *conns;
    size_t nitems;
    SSL_POLL_ITEM *items;
    unsigned long long rounds, passes;
#else
    struct tconn *conns;
#endif
    unsigned long nconns;
};

static struct worker workers[WORKERS_MAX];
static int nworkers = 2;

/*
 * A socket on demo_bind_addr():port (127.0.0.1 unless $DEMO_ADDR) in the SO_REUSEPORT group of that port (port 0: a new port).
 * SO_REUSEPORT must be set on every member before bind.
 */
static int reuseport_socket(int type, int port, int *bound)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int one = 1, bufsize = 4 << 20;
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    if (type == SOCK_DGRAM) {
        /* Best effort: a larger receive buffer absorbs a burst of client datagrams. */
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, demo_bind_addr(), &sin.sin_addr) != 1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) != 0)
        goto fail;
    if (type == SOCK_STREAM && listen(fd, 128) != 0)
        goto fail;
    *bound = ntohs(sin.sin_port);
    return fd;
fail:
    close(fd);
    return -1;
}

static void set_lpoll(struct worker *w, int events, uv_poll_cb cb)
{
    if (events != w->lpolled) {
        uv_poll_start(&w->lpoll, events, cb);
        w->lpolled = events;
    }
}

#ifdef USE_QUIC
/* ---------------------------------------------------------------- QUIC: rounds over a listener */

static void quic_round(struct worker *w);

static void on_quic_poll(uv_poll_t *h, int status, int events)
{
    (void)events;
    if (status < 0)
        demo_log("poll error: %s", uv_strerror(status));
    quic_round(h->data);
}

static void on_quic_timer(uv_timer_t *t)
{
    quic_round(t->data);
}

/* One round: network events, new connections and streams, every stream's progress. */
static void quic_round(struct worker *w)
{
    uint64_t ms;
    int pass, more = 0;

    if (w->stopping)
        return;
    w->rounds++;
    for (pass = 0; pass < ASYNC_MAX_PASSES; pass++) {
        w->passes++;
        w->nconns += async_quic_pass(w->listener, &w->conns, NULL, w->port);
        more = async_quic_ready(w->listener, w->conns, &w->items, &w->nitems);
        if (!more)
            break;
    }
    set_lpoll(w, UV_READABLE | (SSL_net_write_desired(w->listener) ? UV_WRITABLE : 0), on_quic_poll);
    if (more)
        uv_timer_start(&w->timer, on_quic_timer, 0, 0); /* after the loop's other handles */
    else if (async_timeout_ms(w->listener, &ms))
        uv_timer_start(&w->timer, on_quic_timer, ms, 0);
    else
        uv_timer_stop(&w->timer);
}

static int worker_start(struct worker *w)
{
    BIO_POLL_DESCRIPTOR d;
    w->listener = SSL_new_listener(w->ctx, 0);
    if (w->listener == NULL || !SSL_set_blocking_mode(w->listener, 0) || !SSL_set_fd(w->listener, w->lfd) ||
        !SSL_listen(w->listener) || !SSL_get_rpoll_descriptor(w->listener, &d) ||
        d.type != BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD)
        return 0;
    uv_timer_init(&w->loop, &w->timer);
    w->timer.data = w;
    uv_poll_init_socket(&w->loop, &w->lpoll, d.value.fd);
    w->lpoll.data = w;
    set_lpoll(w, UV_READABLE, on_quic_poll);
    return 1;
}

static void worker_stop(struct worker *w)
{
    async_quic_close_all(&w->conns, NULL, w->port);
    uv_close((uv_handle_t *)&w->timer, NULL);
    uv_close((uv_handle_t *)&w->lpoll, NULL);
}

static void worker_free(struct worker *w)
{
    SSL_free(w->listener);
    free(w->items);
    demo_log("worker %d: %lu connections, %llu rounds, %llu passes", w->idx, w->nconns, w->rounds, w->passes);
}

#else
/* ---------------------------------------------------------------- TLS: a uv_poll per connection */

struct tconn {
    struct worker *w;
    uv_poll_t poll;
    uv_timer_t linger; /* bounds the wait for the client's close after our close_notify */
    int open_handles;
    int fd;
    int polled; /* UV_READABLE / UV_WRITABLE currently asked for */
    int draining;
    char peer[64]; /* noted at accept: a socket the client has reset has no peer name */
    demo_conn_result res;
    struct async_req r;
    struct tconn *prev, *next;
};

static void on_tconn_closed(uv_handle_t *h)
{
    struct tconn *c = h->data;
    if (--c->open_handles > 0)
        return;
    SSL_free(c->r.ssl); /* USE_LISTENER: its socket BIO closes the fd */
#ifndef USE_LISTENER
    close(c->fd);
#endif
    free(c);
}

/* The connection's one log line, then its handles close (and it is freed). what: NULL if
 * all went well, else what failed. */
static void tconn_close(struct tconn *c, const char *what)
{
    struct worker *w = c->w;
    if (what != NULL)
        async_tally_failed(&c->res, what);
    ERR_clear_error();
    async_log_conn(c->peer, w->port, &c->res);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->poll, on_tconn_closed);
    uv_close((uv_handle_t *)&c->linger, on_tconn_closed);
}

static void on_linger(uv_timer_t *t)
{
    tconn_close(t->data, NULL); /* answered; the client just did not close in time */
}

static void tconn_run(struct tconn *c);

static void on_tconn_poll(uv_poll_t *h, int status, int events)
{
    struct tconn *c = h->data;
    (void)events;
    if (status < 0)
        tconn_close(c, "socket error");
    else
        tconn_run(c);
}

/* Steps the request, then polls the socket for what it waits for. */
static void tconn_run(struct tconn *c)
{
    int e = async_req_step(&c->r), events = UV_READABLE;
    if (e == SSL_ERROR_NONE) {
        tconn_close(c, NULL);
        return;
    }
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        tconn_close(c, c->r.what);
        return;
    }
    if (c->r.state == R_DRAIN && !c->draining) {
        /* close_notify is out: say so to TCP too, then wait (bounded) for the client to
         * close, so closing our socket cannot reset data it has not read yet. */
        shutdown(c->fd, SHUT_WR);
        uv_timer_start(&c->linger, on_linger, ASYNC_LINGER_MS, 0);
        c->draining = 1;
    }
    if (e == SSL_ERROR_WANT_WRITE)
        events = UV_WRITABLE;
    if (events != c->polled) {
        uv_poll_start(&c->poll, events, on_tconn_poll);
        c->polled = events;
    }
}

static void tconn_new(struct worker *w, int fd, SSL *ssl)
{
    int one = 1;
    struct tconn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        SSL_free(ssl);
        close(fd);
        return;
    }
    c->w = w;
    c->fd = fd;
    c->r.ssl = ssl;
    c->r.res = &c->res;
    demo_fd_peer(fd, c->peer, sizeof(c->peer));
    /* The answer's tail and close_notify are small writes: Nagle would hold them back until
     * the client's delayed ACK. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    w->nconns++;
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    uv_poll_init_socket(&w->loop, &c->poll, fd);
    uv_timer_init(&w->loop, &c->linger);
    c->poll.data = c->linger.data = c;
    c->open_handles = 2;
    tconn_run(c);
}

static void on_accept(uv_poll_t *h, int status, int events)
{
    struct worker *w = h->data;
    (void)events;
    if (status < 0) {
        demo_log("listening socket: %s", uv_strerror(status));
        return;
    }
    for (;;) {
        SSL *ssl;
        int fd;
#ifdef USE_LISTENER
        ssl = SSL_accept_connection(w->listener, SSL_ACCEPT_CONNECTION_NO_BLOCK);
        if (ssl == NULL) {
            ERR_clear_error();
            return;
        }
        fd = SSL_get_fd(ssl);
#else
        BIO *bio;
        fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                demo_log("accept: %s", strerror(errno));
            return;
        }
        ssl = SSL_new(w->ctx);
        bio = BIO_new_socket(fd, BIO_NOCLOSE);
        if (ssl == NULL || bio == NULL) {
            demo_log_errors("new connection");
            SSL_free(ssl);
            BIO_free(bio);
            close(fd);
            continue;
        }
        SSL_set_accept_state(ssl);
        SSL_set_bio(ssl, bio, bio);
#endif
        tconn_new(w, fd, ssl);
    }
}

static int worker_start(struct worker *w)
{
#ifdef USE_LISTENER
    /* The listener API over a listening TCP socket; non-blocking, and so are the
     * connections it accepts. */
    w->listener = SSL_new_listener(w->ctx, 0);
    if (w->listener == NULL || !SSL_set_blocking_mode(w->listener, 0) || !SSL_set_fd(w->listener, w->lfd) ||
        !SSL_listen(w->listener))
        return 0;
#endif
    uv_poll_init_socket(&w->loop, &w->lpoll, w->lfd);
    w->lpoll.data = w;
    set_lpoll(w, UV_READABLE, on_accept);
    return 1;
}

static void worker_stop(struct worker *w)
{
    while (w->conns != NULL)
        tconn_close(w->conns, "still open at shutdown");
    uv_close((uv_handle_t *)&w->lpoll, NULL);
}

static void worker_free(struct worker *w)
{
#ifdef USE_LISTENER
    SSL_free(w->listener);
#endif
    demo_log("worker %d: %lu connections", w->idx, w->nconns);
}
#endif

/* ---------------------------------------------------------------- main */

static void on_stop(uv_async_t *a)
{
    struct worker *w = a->data;
    w->stopping = 1;
    worker_stop(w);
    uv_close((uv_handle_t *)&w->stop, NULL);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    worker_free(w);
    uv_loop_close(&w->loop);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *cert, *key, *env = getenv("DEMO_THREADS");
    int port, bound = 0, i, sig;
    sigset_t sigs;
    SSL_CTX *ctx;

    demo_name = "async-pollable";
    if (!demo_args(argc, argv, &cert, &key, &port))
        return 2;
    if (env != NULL && *env != '\0') {
        nworkers = atoi(env);
        if (nworkers < 1 || nworkers > WORKERS_MAX) {
            fprintf(stderr, "%s: DEMO_THREADS must be 1..%d\n", demo_name, WORKERS_MAX);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    ctx = demo_server_ctx(cert, key);

    /* Every socket of the group exists before any worker runs, so the kernel's spreading
     * (and the QUIC 4-tuple hash) never changes while clients are served. */
    for (i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
#ifdef USE_QUIC
        w->lfd = reuseport_socket(SOCK_DGRAM, i == 0 ? port : bound, &bound);
#else
        w->lfd = reuseport_socket(SOCK_STREAM, i == 0 ? port : bound, &bound);
#endif
        if (w->lfd < 0) {
            demo_log("socket on port %d: %s", i == 0 ? port : bound, strerror(errno));
            return 1;
        }
        w->idx = i;
        w->port = bound;
        w->ctx = ctx;
        if (uv_loop_init(&w->loop) != 0 || uv_async_init(&w->loop, &w->stop, on_stop) != 0)
            demo_die("uv_loop_init");
        w->stop.data = w;
        if (!worker_start(w))
            demo_die("listener");
    }

    /* Only this thread takes SIGINT/SIGTERM (the workers inherit the blocked mask). */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    for (i = 0; i < nworkers; i++)
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
            demo_die("pthread_create");
    demo_log("%d workers, each with its own loop and its own socket on port %d", nworkers, bound);
    demo_listening(bound);

    while (sigwait(&sigs, &sig) != 0)
        ;
    demo_log("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    for (i = 0; i < nworkers; i++)
        uv_async_send(&workers[i].stop);
    for (i = 0; i < nworkers; i++) {
        pthread_join(workers[i].thread, NULL);
        close(workers[i].lfd);
    }
    SSL_CTX_free(ctx);
    return 0;
}
