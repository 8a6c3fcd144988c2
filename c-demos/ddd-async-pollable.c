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
 * Everything is non-blocking and driven by libuv:
 *   TLS (and -DUSE_LISTENER, TLS through SSL_new_listener/SSL_accept_connection): a uv_poll_t
 *     on the listening socket accepts; each connection has a uv_poll_t on its socket, asked
 *     for exactly the direction SSL_get_error named (WANT_READ/WANT_WRITE).
 *   QUIC (-DUSE_QUIC): one listener per worker; a uv_poll_t on the listener's poll
 *     descriptor (readable, plus writable while SSL_net_write_desired) and a uv_timer_t
 *     re-armed from SSL_get_event_timeout after every round. A round: SSL_handle_events,
 *     accept the ready connections and streams, progress every stream as far as it goes.
 *     Every SSL call may take in datagrams on its own (implicit event handling), so work can
 *     wait inside the library while the socket is empty: a round ends with SSL_poll (zero
 *     timeout, no event handling) over every object and runs again while anything is ready.
 *
 * Protocol (common.h): one request "GET /path" per TLS connection or per QUIC bidirectional
 * stream, answered with N pattern bytes for "/N" (or a short text), then TLS close_notify /
 * QUIC FIN. One log line per connection. SIGINT/SIGTERM: every worker closes its handles and
 * frees its objects, the process exits 0.
 */
#include "common.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WORKERS_MAX 64
#define CHUNK 16384
#define MAX_PASSES 8 /* passes of one round before yielding to the loop (timer 0) */
/* Chunks one connection or stream may write per callback or pass: a client that reads as
 * fast as we write would otherwise keep the socket (or, through the library's implicit event
 * handling, the stream) writable forever and starve its worker's other connections. */
#define WRITE_BUDGET 64

struct worker;

#ifdef USE_QUIC
struct qstream {
    SSL *ssl;
    demo_req req;
    demo_resp resp;
    int have_req, fin_in, concluded, bad;
    size_t off, len;
    uint8_t buf[CHUNK];
    struct qstream *next;
};

struct qconn {
    SSL *ssl;
    demo_conn_result res;
    struct qstream *streams;
    struct qconn *next;
};
#else
enum tstate { T_REQ, T_RESP, T_SHUT, T_LINGER };

struct tconn {
    struct worker *w;
    uv_poll_t poll;
    uv_timer_t linger; /* bounds the wait for the client's close after our close_notify */
    int open_handles;
    int fd;
    int polled; /* UV_READABLE / UV_WRITABLE currently asked for */
    SSL *ssl;
    char peer[64]; /* taken at accept: a socket the client has reset has no peer name */
    enum tstate state;
    demo_req req;
    demo_resp resp;
    uint8_t buf[CHUNK];
    size_t off, len;
    demo_conn_result res;
    struct tconn *prev, *next;
};
#define LINGER_MS 10000
#endif

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
 * A socket on 127.0.0.1:port in the SO_REUSEPORT group of that port (port 0: a new port).
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
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
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
/* ---------------------------------------------------------------- QUIC */

static void quic_round(struct worker *w);

static void stream_free(struct qstream *st)
{
    SSL_free(st->ssl);
    free(st);
}

/* Records why a stream (so its connection) failed; the first reason is kept. */
static void stream_failed(struct qconn *c, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char ebuf[120] = "no queued error";
    if (e != 0)
        ERR_error_string_n(e, ebuf, sizeof(ebuf));
    if (!c->res.failed)
        snprintf(c->res.why, sizeof(c->res.why), "%s: %s", what, ebuf);
    c->res.failed = 1;
    ERR_clear_error();
}

/* The request is complete (1) or unusable (-1): choose the answer, or a bare FIN. */
static void stream_request(struct qconn *c, struct qstream *st, int r)
{
    st->have_req = 1;
    if (r > 0) {
        demo_resp_init(&st->resp, &st->req);
        return;
    }
    /* Not a request: answered with a bare FIN, as the other demos do. */
    memset(&st->resp, 0, sizeof(st->resp));
    if (!c->res.failed)
        snprintf(c->res.why, sizeof(c->res.why), "not a request: \"%.40s\"", st->req.buf);
    c->res.failed = 1;
    st->bad = 1;
}

/*
 * Reads the request, writes the answer as far as the stream takes it, FIN after the last
 * byte. 1: finished, 0: more to do later, -1: the stream failed.
 */
static int stream_progress(struct qconn *c, struct qstream *st, int *progress)
{
    uint8_t in[4096];
    size_t n;
    int budget = WRITE_BUDGET;

    while (!st->fin_in) {
        if (SSL_read_ex(st->ssl, in, sizeof(in), &n)) {
            *progress = 1;
            if (!st->have_req) {
                int r = demo_req_feed(&st->req, in, n);
                if (r != 0)
                    stream_request(c, st, r);
            }
            continue;
        }
        if (SSL_get_error(st->ssl, 0) == SSL_ERROR_WANT_READ)
            break;
        if (SSL_get_error(st->ssl, 0) != SSL_ERROR_ZERO_RETURN)
            return -1;
        ERR_clear_error();
        st->fin_in = 1;
        *progress = 1;
        if (!st->have_req)
            stream_request(c, st, demo_req_eof(&st->req)); /* FIN may end the request line */
    }
    while (st->have_req && !st->concluded) {
        size_t w = 0;
        if (st->off == st->len) {
            st->off = 0;
            st->len = demo_resp_fill(&st->resp, st->buf, sizeof(st->buf));
            if (st->len == 0) {
                if (!SSL_stream_conclude(st->ssl, 0))
                    return -1;
                st->concluded = 1;
                if (!st->bad)
                    c->res.requests++;
                *progress = 1;
                break;
            }
        }
        if (budget-- == 0)
            return 0; /* still writable: SSL_poll says so, and the round goes on (or yields) */
        if (!SSL_write_ex(st->ssl, st->buf + st->off, st->len - st->off, &w)) {
            if (SSL_get_error(st->ssl, 0) == SSL_ERROR_WANT_WRITE)
                return 0;
            return -1;
        }
        st->off += w;
        c->res.bytes_out += w;
        *progress = 1;
    }
    return st->concluded && st->fin_in ? 1 : 0;
}

/*
 * If the connection has terminated: its one log line (ok when the client closed it with
 * code 0 after its last answer), and 1 (it can be freed).
 */
static int conn_closed(struct worker *w, struct qconn *c)
{
    SSL_CONN_CLOSE_INFO info;
    if (!SSL_get_conn_close_info(c->ssl, &info, sizeof(info)))
        return 0;
    ERR_clear_error();
    if (((info.flags & SSL_CONN_CLOSE_FLAG_LOCAL) || info.error_code != 0) && !c->res.failed) {
        c->res.failed = 1;
        snprintf(c->res.why, sizeof(c->res.why), "closed by %s with %s code %" PRIu64 " (%.*s)",
                 (info.flags & SSL_CONN_CLOSE_FLAG_LOCAL) ? "us" : "the peer",
                 (info.flags & SSL_CONN_CLOSE_FLAG_TRANSPORT) ? "transport" : "application", info.error_code,
                 info.reason ? (int)info.reason_len : 0, info.reason ? info.reason : "");
    }
    demo_log_conn(c->ssl, w->port, &c->res);
    return 1;
}

static void conn_free(struct qconn *c)
{
    while (c->streams != NULL) {
        struct qstream *st = c->streams;
        c->streams = st->next;
        stream_free(st);
    }
    SSL_free(c->ssl);
    free(c);
}

/* Accepts new streams and progresses every stream. 0 when the connection is gone. */
static int conn_serve(struct worker *w, struct qconn *c, int *progress)
{
    struct qstream **pp;
    SSL *s;

    while ((s = SSL_accept_stream(c->ssl, SSL_ACCEPT_STREAM_NO_BLOCK)) != NULL) {
        struct qstream *st;
        *progress = 1;
        if (SSL_get_stream_type(s) != SSL_STREAM_TYPE_BIDI) {
            SSL_free(s); /* not a request stream: asks the peer to stop sending */
            continue;
        }
        st = calloc(1, sizeof(*st));
        if (st == NULL) {
            SSL_free(s);
            continue;
        }
        st->ssl = s;
        st->next = c->streams;
        c->streams = st;
    }
    ERR_clear_error(); /* NULL with an error: the connection is ending (seen below) */
    for (pp = &c->streams; *pp != NULL;) {
        struct qstream *st = *pp;
        int r = stream_progress(c, st, progress);
        if (r == 0) {
            pp = &st->next;
            continue;
        }
        if (r < 0) {
            if (conn_closed(w, c))
                return 0;
            stream_failed(c, "stream");
            if (!st->concluded)
                SSL_stream_reset(st->ssl, NULL, 0);
            ERR_clear_error();
        }
        *pp = st->next;
        stream_free(st);
    }
    return !conn_closed(w, c);
}

/* Anything ready that a pass has not seen (level-triggered SSL_poll, no event handling)? */
static int anything_ready(struct worker *w)
{
    struct timeval zero = {0, 0};
    size_t n = 0, need = 1, count = 0;
    struct qconn *c;
    struct qstream *st;

    for (c = w->conns; c != NULL; c = c->next)
        for (need++, st = c->streams; st != NULL; st = st->next)
            need++;
    if (need > w->nitems) {
        SSL_POLL_ITEM *p = realloc(w->items, need * 2 * sizeof(*p));
        if (p == NULL)
            return 1; /* cannot tell: look again */
        w->items = p;
        w->nitems = need * 2;
    }
    w->items[n].desc = SSL_as_poll_descriptor(w->listener);
    w->items[n].events = SSL_POLL_EVENT_IC;
    w->items[n++].revents = 0;
    for (c = w->conns; c != NULL; c = c->next) {
        w->items[n].desc = SSL_as_poll_descriptor(c->ssl);
        w->items[n].events = SSL_POLL_EVENT_ISB | SSL_POLL_EVENT_ISU | SSL_POLL_EVENT_EC;
        w->items[n++].revents = 0;
        for (st = c->streams; st != NULL; st = st->next) {
            w->items[n].desc = SSL_as_poll_descriptor(st->ssl);
            w->items[n].events = (st->fin_in ? 0 : SSL_POLL_EVENT_R) |
                                 (st->have_req && !st->concluded ? SSL_POLL_EVENT_W : 0);
            w->items[n++].revents = 0;
        }
    }
    if (!SSL_poll(w->items, n, sizeof(SSL_POLL_ITEM), &zero, SSL_POLL_FLAG_NO_HANDLE_EVENTS, &count)) {
        ERR_clear_error();
        return count > 0;
    }
    return count > 0;
}

static void on_quic_poll(uv_poll_t *h, int status, int events)
{
    struct worker *w = h->data;
    (void)events;
    if (status < 0)
        demo_log("poll error: %s", uv_strerror(status));
    quic_round(w);
}

static void on_quic_timer(uv_timer_t *t)
{
    quic_round(t->data);
}

/* One round: network events, new connections and streams, every stream's progress. */
static void quic_round(struct worker *w)
{
    struct timeval tv;
    int inf = 1, pass, more = 0;
    SSL *cs;

    if (w->stopping)
        return;
    w->rounds++;
    for (pass = 0; pass < MAX_PASSES; pass++) {
        struct qconn **pp;
        int progress = 0;
        w->passes++;
        SSL_handle_events(w->listener);
        while ((cs = SSL_accept_connection(w->listener, SSL_ACCEPT_CONNECTION_NO_BLOCK)) != NULL) {
            struct qconn *c = calloc(1, sizeof(*c));
            if (c == NULL) {
                SSL_free(cs);
                continue;
            }
            c->ssl = cs;
            w->nconns++;
            /* Every request stream is accepted and served on its own: no default stream. */
            if (!SSL_set_default_stream_mode(cs, SSL_DEFAULT_STREAM_MODE_NONE) ||
                !SSL_set_incoming_stream_policy(cs, SSL_INCOMING_STREAM_POLICY_ACCEPT, 0))
                stream_failed(c, "stream policy");
            c->next = w->conns;
            w->conns = c;
        }
        ERR_clear_error();
        for (pp = &w->conns; *pp != NULL;) {
            struct qconn *c = *pp;
            if (conn_serve(w, c, &progress)) {
                pp = &c->next;
            } else {
                *pp = c->next;
                conn_free(c);
            }
        }
        more = anything_ready(w);
        if (!more)
            break;
    }
    set_lpoll(w, UV_READABLE | (SSL_net_write_desired(w->listener) ? UV_WRITABLE : 0), on_quic_poll);
    if (more) {
        uv_timer_start(&w->timer, on_quic_timer, 0, 0); /* after the loop's other handles */
    } else if (SSL_get_event_timeout(w->listener, &tv, &inf) && !inf) {
        uint64_t ms = (uint64_t)tv.tv_sec * 1000 + ((uint64_t)tv.tv_usec + 999) / 1000;
        uv_timer_start(&w->timer, on_quic_timer, ms, 0);
    } else {
        uv_timer_stop(&w->timer);
    }
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
    while (w->conns != NULL) {
        struct qconn *c = w->conns;
        w->conns = c->next;
        if (!c->res.failed)
            snprintf(c->res.why, sizeof(c->res.why), "still open at shutdown");
        c->res.failed = 1;
        demo_log_conn(c->ssl, w->port, &c->res);
        conn_free(c);
    }
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
/* ---------------------------------------------------------------- TLS over TCP */

static void tconn_step(struct tconn *c);

static void on_tconn_closed(uv_handle_t *h)
{
    struct tconn *c = h->data;
    if (--c->open_handles > 0)
        return;
    SSL_free(c->ssl); /* USE_LISTENER: its socket BIO closes the fd */
#ifndef USE_LISTENER
    close(c->fd);
#endif
    free(c);
}

/* The connection's one log line, then its handles close (and it is freed). why: NULL if
 * all went well, else what failed (with the library's error, if it queued one). */
static void tconn_close(struct tconn *c, const char *why)
{
    struct worker *w = c->w;
    if (why != NULL && !c->res.failed) {
        unsigned long e = ERR_peek_last_error();
        char ebuf[120] = "";
        if (e != 0)
            ERR_error_string_n(e, ebuf, sizeof(ebuf));
        c->res.failed = 1;
        snprintf(c->res.why, sizeof(c->res.why), "%s%s%s", why, ebuf[0] ? ": " : "", ebuf);
    }
    ERR_clear_error();
    /* demo_log_conn's format, with the peer noted at accept */
    demo_log("conn from %s port %d: %llu requests, %llu bytes sent, %s%s", c->peer, w->port,
             (unsigned long long)c->res.requests, (unsigned long long)c->res.bytes_out,
             c->res.failed ? "failed: " : "ok", c->res.failed ? c->res.why : "");
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->poll, on_tconn_closed);
    uv_close((uv_handle_t *)&c->linger, on_tconn_closed);
}

static void on_tconn_poll(uv_poll_t *h, int status, int events)
{
    struct tconn *c = h->data;
    (void)events;
    if (status < 0) {
        tconn_close(c, "socket error");
        return;
    }
    tconn_step(c);
}

static void on_linger(uv_timer_t *t)
{
    tconn_close(t->data, NULL); /* answered; the client just did not close in time */
}

/* Waits for the direction the library asked for; anything else closes the connection
 * (what: why, or NULL when that is a normal end). */
static void tconn_wait(struct tconn *c, int ret, const char *what)
{
    int events;
    switch (SSL_get_error(c->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        events = UV_READABLE;
        break;
    case SSL_ERROR_WANT_WRITE:
        events = UV_WRITABLE;
        break;
    default:
        tconn_close(c, what);
        return;
    }
    if (events != c->polled) {
        uv_poll_start(&c->poll, events, on_tconn_poll);
        c->polled = events;
    }
}

static void tconn_step(struct tconn *c)
{
    uint8_t in[4096];
    size_t n;
    int r, budget = WRITE_BUDGET;

    for (;;) {
        switch (c->state) {
        case T_REQ:
            if (!SSL_read_ex(c->ssl, in, sizeof(in), &n)) {
                r = SSL_get_error(c->ssl, 0);
                if (r == SSL_ERROR_ZERO_RETURN && demo_req_eof(&c->req) > 0) {
                    ERR_clear_error();
                    demo_resp_init(&c->resp, &c->req); /* close_notify ended the request */
                    c->state = T_RESP;
                    break;
                }
                tconn_wait(c, 0, c->req.len ? "reading the request" : "closed before a request");
                return;
            }
            r = demo_req_feed(&c->req, in, n);
            if (r < 0) {
                tconn_close(c, "not a request");
                return;
            }
            if (r == 1) {
                demo_resp_init(&c->resp, &c->req);
                c->state = T_RESP;
            }
            break;
        case T_RESP:
            if (c->off == c->len) {
                c->off = 0;
                c->len = demo_resp_fill(&c->resp, c->buf, sizeof(c->buf));
                if (c->len == 0) {
                    c->res.requests++;
                    c->state = T_SHUT;
                    break;
                }
            }
            if (budget-- == 0) {
                /* Yield to the worker's other connections; the socket is writable, so the
                 * loop calls back at its next iteration. */
                if (c->polled != UV_WRITABLE) {
                    uv_poll_start(&c->poll, UV_WRITABLE, on_tconn_poll);
                    c->polled = UV_WRITABLE;
                }
                return;
            }
            /* A retried SSL_write gets the same bytes again, as OpenSSL requires. */
            if (!SSL_write_ex(c->ssl, c->buf + c->off, c->len - c->off, &n)) {
                tconn_wait(c, 0, "writing the answer");
                return;
            }
            c->off += n;
            c->res.bytes_out += n;
            break;
        case T_SHUT:
            r = SSL_shutdown(c->ssl);
            if (r == 1) {
                tconn_close(c, NULL);
                return;
            }
            if (r < 0) {
                tconn_wait(c, r, "shutdown");
                return;
            }
            /* close_notify is out: say so to TCP too, then wait (bounded) for the client to
             * close, so closing our socket cannot reset data it has not read yet. */
            shutdown(c->fd, SHUT_WR);
            c->state = T_LINGER;
            uv_timer_start(&c->linger, on_linger, LINGER_MS, 0);
            break;
        case T_LINGER:
            r = SSL_shutdown(c->ssl);
            if (r < 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ) {
                tconn_wait(c, r, NULL);
                return;
            }
            tconn_close(c, NULL); /* the client's close_notify, or its end of stream */
            return;
        }
    }
}

static void tconn_new(struct worker *w, int fd, SSL *ssl)
{
    struct tconn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        SSL_free(ssl);
        close(fd);
        return;
    }
    c->w = w;
    c->fd = fd;
    c->ssl = ssl;
    demo_fd_peer(fd, c->peer, sizeof(c->peer));
    w->nconns++;
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    uv_poll_init_socket(&w->loop, &c->poll, fd);
    uv_timer_init(&w->loop, &c->linger);
    c->poll.data = c->linger.data = c;
    c->open_handles = 2;
    tconn_step(c);
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
            demo_log("cannot create a connection object");
            ERR_print_errors_fp(stderr);
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

/* ---------------------------------------------------------------- workers and main */

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
    demo_log("%d workers, each with its own loop and its own %s socket on port %d", nworkers,
#ifdef USE_QUIC
             "UDP",
#else
             "TCP",
#endif
             bound);
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
