/*
 * ddd-async-nonpollable: the DDD server whose network belongs to libuv, not to the library.
 *
 *   ddd-async-nonpollable cert.pem key.pem port      (port 0: the system chooses)
 *
 * One thread, one uv loop. libuv's handles own the sockets; the library sees memory only:
 *   QUIC (-DUSE_QUIC): a uv_udp_t receives datagrams and writes them into our half of a
 *     datagram pair (BIO_new_bio_dgram_pair); a QUIC listener owns the other half. After each
 *     round (SSL_handle_events, accepting connections and streams, progressing every stream)
 *     we drain what the library wrote into the pair and send it with uv_udp_try_send (or
 *     uv_udp_send when the socket is full): one sendmsg(2) per datagram, as libuv 1.44 has no
 *     batched send, where the pollable demo's library sends with sendmmsg and GSO (likely
 *     much of the bulk-throughput gap between the two; not measured apart). Datagrams come in through recvmmsg
 *     (UV_UDP_RECVMMSG), up to 32 a call. The pair has no poll descriptor, so libuv cannot
 *     wait on the library: a uv_timer_t re-armed from SSL_get_event_timeout after every round
 *     is the library's only way to be called back, and a uv_check_t runs one round per loop
 *     iteration for the links that received datagrams in it (a batch, not a round per
 *     datagram).
 *     ADDRESSED=1 (default; "async-nonpollable"): one pair and one listener for every client.
 *     The pair carries addresses: our half declares PROVIDES_SRC_ADDR | HANDLES_DST_ADDR (each
 *     datagram we write says where it came from, we read where the library's go), the
 *     library's half HANDLES_SRC_ADDR | PROVIDES_DST_ADDR, and our half enables local
 *     addresses: BIO_sendmmsg with BIO_MSG.local = the client's address, BIO_recvmmsg with
 *     BIO_MSG.local = the destination the library chose.
 *     ADDRESSED=0 ("async-unaddressed"): the pairs carry no addresses, so the application
 *     must know where each outgoing datagram goes. Mapping: one pair and one listener per
 *     client address (ip, port), made when an address first shows up; whatever that
 *     listener writes goes back to that address. This is exact and needs no parsing of QUIC
 *     packets (mapping by connection ID would need to read the long and short headers and
 *     follow NEW_CONNECTION_ID). The price: a listener (and its Retry/token state) per
 *     client address, and a client that migrates looks like a new client to a listener that
 *     does not know its connection (so migration does not work here). A link is freed when
 *     its last connection has been freed and its listener has no timer left, or after
 *     IDLE_GC_MS without a connection.
 *   TLS: a uv_tcp_t per connection; its bytes go into our half of a BIO pair
 *     (BIO_new_bio_pair), the SSL object owns the other half; after every SSL call we drain
 *     the pair and uv_write what the library produced. WANT_READ means "more bytes from
 *     libuv", WANT_WRITE "drain the pair". Back-pressure both ways: a full pair stops
 *     uv_read until the library has taken the bytes, and a deep uv_write queue stops the
 *     answer until it shrinks. After close_notify and our FIN we wait (bounded) for the
 *     client's end of stream before closing, so no unread byte can turn into a reset.
 *     Plain TLS: uv_listen/uv_accept. -DUSE_LISTENER: the listener API accepts
 *     (SSL_new_listener on the listening socket, a uv_poll_t on it, SSL_accept_connection);
 *     each accepted connection's socket is then handed to a uv_tcp_t (its socket BIO told
 *     BIO_NOCLOSE and replaced by the BIO pair), so libuv still owns every byte.
 *     ADDRESSED changes nothing for TLS: a TCP connection has one peer.
 *
 * Protocol (common.h): "GET /path" per TLS connection or per QUIC bidirectional stream; N
 * pattern bytes for "/N". One log line per connection. SIGINT/SIGTERM: every handle is
 * closed, every object freed, exit 0. The request state machine and the QUIC connections'
 * passes are async-common.c's, shared with ddd-async-pollable; this file is the libuv glue.
 */
#include "async-common.h"
#include "common.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef ADDRESSED
#define ADDRESSED 1
#endif

static uv_loop_t *loop;
static SSL_CTX *ctx;
static int port;
static int stopping;
static uv_signal_t sig_int, sig_term;
static unsigned long nconns;

#if !defined(USE_QUIC) || !ADDRESSED
static void sa_string(const struct sockaddr *sa, char *buf, size_t cap)
{
    char a[INET6_ADDRSTRLEN] = "?";
    unsigned p = 0;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, a, sizeof(a));
        p = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, a, sizeof(a));
        p = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    }
    snprintf(buf, cap, "%s:%u", a, p);
}
#endif

#ifdef USE_QUIC
/* ---------------------------------------------------------------- QUIC */

#define PAIR_BUF (1 << 20) /* per direction: ~700 full-size datagrams between two rounds */
#define BATCH 32
#define IDLE_GC_MS 30000

/* A datagram pair and the listener on its library half. */
struct link {
    BIO *net; /* our half */
    SSL *listener;
    struct qconn *conns;
    uv_timer_t timer;
    int dirty;
    struct link *next_dirty;
    SSL_POLL_ITEM *items;
    size_t nitems;
#if !ADDRESSED
    struct sockaddr_storage peer; /* every datagram of this link comes from and goes to it */
    char peer_str[64];
    int had_conn;
    uint64_t last_rx; /* uv_now */
    struct link *next;
#endif
};

static uv_udp_t udp;
static uv_check_t check;
static struct link *dirty_links;
#if ADDRESSED
static struct link *the_link;
static BIO_ADDR *rx_addr, *tx_addr[BATCH];
#else
static struct link *links;
static unsigned long nlinks, links_freed;
#endif
static unsigned long long rounds, dropped_in, queued_sends;
/* libuv reads up to 32 datagrams per recvmmsg(2) when the buffer holds 32 of its 64 KiB slots. */
static uint8_t rx_buf[32 * 65536];
static uint8_t tx_buf[BATCH][2048];

static int link_round(struct link *l);

/* The peer a connection of l is logged with: its own address from the library (NULL) when
 * the pair carries addresses, else the link's client address. */
static const char *link_peer(const struct link *l)
{
#if ADDRESSED
    (void)l;
    return NULL;
#else
    return l->peer_str;
#endif
}

/* ---- the network side */

#if ADDRESSED
static int sa_to_bio(const struct sockaddr *sa, BIO_ADDR *a)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        return BIO_ADDR_rawmake(a, AF_INET, &s->sin_addr, sizeof(s->sin_addr), s->sin_port);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        return BIO_ADDR_rawmake(a, AF_INET6, &s->sin6_addr, sizeof(s->sin6_addr), s->sin6_port);
    }
    return 0;
}

static int bio_to_sa(const BIO_ADDR *a, struct sockaddr_storage *ss)
{
    size_t len = 0;
    memset(ss, 0, sizeof(*ss));
    if (BIO_ADDR_family(a) == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)ss;
        len = sizeof(s->sin_addr);
        s->sin_family = AF_INET;
        s->sin_port = BIO_ADDR_rawport(a);
        return BIO_ADDR_rawaddress(a, &s->sin_addr, &len);
    }
    if (BIO_ADDR_family(a) == AF_INET6) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
        len = sizeof(s->sin6_addr);
        s->sin6_family = AF_INET6;
        s->sin6_port = BIO_ADDR_rawport(a);
        return BIO_ADDR_rawaddress(a, &s->sin6_addr, &len);
    }
    return 0;
}
#endif

static void on_sent(uv_udp_send_t *req, int status)
{
    if (status < 0 && status != UV_ECANCELED)
        demo_log("uv_udp_send: %s", uv_strerror(status));
    free(req);
}

/* Sends one datagram now if the socket takes it, else queues a copy (order is kept: libuv's
 * try_send fails while its queue is not empty). */
static void udp_out(const uint8_t *data, size_t len, const struct sockaddr *to)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    uv_udp_send_t *req;
    int r = uv_udp_try_send(&udp, &b, 1, to);
    if (r >= 0)
        return;
    if (r != UV_EAGAIN) {
        demo_log("uv_udp_try_send: %s", uv_strerror(r)); /* lost: QUIC retransmits */
        return;
    }
    req = malloc(sizeof(*req) + len);
    if (req == NULL)
        return;
    memcpy(req + 1, data, len);
    b = uv_buf_init((char *)(req + 1), (unsigned)len);
    queued_sends++;
    if (uv_udp_send(req, &udp, &b, 1, to, on_sent) != 0)
        free(req);
}

/* Sends everything the library has written into the pair. */
static void link_drain(struct link *l)
{
    for (;;) {
        size_t n = 0;
#if ADDRESSED
        size_t i;
        BIO_MSG m[BATCH];
        memset(m, 0, sizeof(m));
        for (i = 0; i < BATCH; i++) {
            m[i].data = tx_buf[i];
            m[i].data_len = sizeof(tx_buf[i]);
            m[i].local = tx_addr[i]; /* the destination the library chose */
        }
        if (!BIO_recvmmsg(l->net, m, sizeof(BIO_MSG), BATCH, 0, &n)) {
            if (!BIO_err_is_non_fatal(ERR_peek_last_error()))
                demo_log_errors("BIO_recvmmsg");
            ERR_clear_error();
            return;
        }
        for (i = 0; i < n; i++) {
            struct sockaddr_storage to;
            if (bio_to_sa(tx_addr[i], &to))
                udp_out(tx_buf[i], m[i].data_len, (struct sockaddr *)&to);
        }
#else
        for (n = 0; n < BATCH; n++) {
            int k = BIO_read(l->net, tx_buf[0], sizeof(tx_buf[0]));
            if (k <= 0)
                break;
            udp_out(tx_buf[0], (size_t)k, (struct sockaddr *)&l->peer);
        }
        ERR_clear_error();
#endif
        if (n < BATCH)
            return;
    }
}

static void on_link_timer(uv_timer_t *t)
{
    (void)link_round(t->data);
}

static void link_mark(struct link *l)
{
    if (!l->dirty) {
        l->dirty = 1;
        l->next_dirty = dirty_links;
        dirty_links = l;
    }
}

static struct link *link_new(void)
{
    struct link *l = calloc(1, sizeof(*l));
    BIO *lib = NULL;
    if (l == NULL)
        return NULL;
    if (!BIO_new_bio_dgram_pair(&lib, PAIR_BUF, &l->net, PAIR_BUF))
        goto fail;
#if ADDRESSED
    /* Our half: each datagram we write carries its source (the client), and we read the
     * destination of each datagram the library writes. The library's half: it reads those
     * sources and writes destinations. Local addresses on our half carry both. */
    if (!BIO_dgram_set_caps(l->net, BIO_DGRAM_CAP_PROVIDES_SRC_ADDR | BIO_DGRAM_CAP_HANDLES_DST_ADDR) ||
        !BIO_dgram_set_caps(lib, BIO_DGRAM_CAP_HANDLES_SRC_ADDR | BIO_DGRAM_CAP_PROVIDES_DST_ADDR) ||
        !BIO_dgram_set_local_addr_enable(l->net, 1))
        goto fail;
#endif
    l->listener = SSL_new_listener(ctx, 0);
    if (l->listener == NULL)
        goto fail;
    SSL_set_bio(l->listener, lib, lib); /* the listener owns the library's half */
    lib = NULL;
    /* A pair has no poll descriptor: non-blocking is the only mode, said explicitly. */
    if (!SSL_set_blocking_mode(l->listener, 0) || !SSL_listen(l->listener))
        goto fail;
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    return l;
fail:
    demo_log_errors("new datagram pair and listener");
    SSL_free(l->listener);
    BIO_free(lib);
    BIO_free(l->net);
    free(l);
    return NULL;
}

static void on_link_closed(uv_handle_t *h)
{
    struct link *l = h->data;
    SSL_free(l->listener);
    BIO_free(l->net);
    free(l->items);
    free(l);
}

/* Frees every connection (logged as failed when still open) and, after its timer handle
 * has closed, the link. */
static void link_close(struct link *l)
{
    async_quic_close_all(&l->conns, link_peer(l), port);
    uv_close((uv_handle_t *)&l->timer, on_link_closed);
}

#if !ADDRESSED
static int same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family != b->sa_family)
        return 0;
    if (b->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (b->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}

/* The link of a client address, made on its first datagram. */
static struct link *link_for(const struct sockaddr *from)
{
    struct link *l;
    for (l = links; l != NULL; l = l->next)
        if (same_addr(&l->peer, from))
            return l;
    l = link_new();
    if (l == NULL)
        return NULL;
    memcpy(&l->peer, from, from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    sa_string(from, l->peer_str, sizeof(l->peer_str));
    l->next = links;
    links = l;
    nlinks++;
    return l;
}

static void link_unlink(struct link *l)
{
    struct link **pp;
    for (pp = &links; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    if (l->dirty) {
        for (pp = &dirty_links; *pp != NULL; pp = &(*pp)->next_dirty) {
            if (*pp == l) {
                *pp = l->next_dirty;
                break;
            }
        }
    }
}
#endif

/* One round for one link: events, connections, streams, then the pair drained. 0 when the
 * link was freed (ADDRESSED=0: its client is gone). */
static int link_round(struct link *l)
{
    uint64_t ms = 0;
    int inf, pass, more = 0;

    if (stopping)
        return 1;
    rounds++;
    for (pass = 0; pass < ASYNC_MAX_PASSES; pass++) {
        unsigned long accepted = async_quic_pass(l->listener, &l->conns, link_peer(l), port);
        nconns += accepted;
#if !ADDRESSED
        if (accepted > 0)
            l->had_conn = 1;
#endif
        link_drain(l);
        more = async_quic_ready(l->listener, l->conns, &l->items, &l->nitems);
        if (!more)
            break;
    }
    /* The library could not write everything into a full pair: now it has room again. */
    if (SSL_net_write_desired(l->listener))
        more = 1;
    if (more) {
        uv_timer_start(&l->timer, on_link_timer, 0, 0);
        return 1;
    }
    inf = !async_timeout_ms(l->listener, &ms);
#if !ADDRESSED
    if (l->conns == NULL && inf) {
        uint64_t idle = uv_now(loop) - l->last_rx;
        if (l->had_conn || idle >= IDLE_GC_MS) {
            link_unlink(l);
            links_freed++;
            demo_log("client %s: done, its datagram pair and listener freed%s", l->peer_str,
                     l->had_conn ? "" : " (idle, no connection)");
            link_close(l);
            return 0;
        }
        uv_timer_start(&l->timer, on_link_timer, IDLE_GC_MS - idle, 0);
        return 1;
    }
#endif
    if (inf)
        uv_timer_stop(&l->timer);
    else
        uv_timer_start(&l->timer, on_link_timer, ms, 0);
    return 1;
}

/* Runs once per loop iteration, after libuv's I/O callbacks: one round per link that
 * received datagrams in this iteration. */
static void on_check(uv_check_t *h)
{
    (void)h;
    while (dirty_links != NULL) {
        struct link *l = dirty_links;
        dirty_links = l->next_dirty;
        l->dirty = 0;
        (void)link_round(l);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init((char *)rx_buf, sizeof(rx_buf));
}

/* Writes one received datagram into the link's pair. 1 when it went in. */
static int link_inject(struct link *l, const uint8_t *data, size_t len, const struct sockaddr *from)
{
#if ADDRESSED
    BIO_MSG m;
    size_t done = 0;
    if (!sa_to_bio(from, rx_addr))
        return 0;
    memset(&m, 0, sizeof(m));
    m.data = (void *)data;
    m.data_len = len;
    m.local = rx_addr; /* becomes the datagram's source (BIO_MSG.peer) on the library's side */
    if (BIO_sendmmsg(l->net, &m, sizeof(m), 1, 0, &done) && done == 1)
        return 1;
    ERR_clear_error();
    return 0;
#else
    (void)from;
    if (BIO_write(l->net, data, (int)len) == (int)len)
        return 1;
    ERR_clear_error();
    return 0;
#endif
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from, unsigned flags)
{
    struct link *l;
    (void)h;
    (void)flags;
    if (nread < 0) {
        demo_log("uv_udp recv: %s", uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || from == NULL || stopping)
        return; /* nothing more to read now (or an empty datagram) */
#if ADDRESSED
    l = the_link;
#else
    l = link_for(from);
    if (l == NULL)
        return;
    l->last_rx = uv_now(loop);
#endif
    if (!link_inject(l, (const uint8_t *)buf->base, (size_t)nread, from)) {
        /* The pair is full: let the library take what is there, then try once more;
         * otherwise the datagram is dropped, as a full socket buffer would (QUIC recovers). */
        if (!link_round(l) || !link_inject(l, (const uint8_t *)buf->base, (size_t)nread, from)) {
            dropped_in++;
            return;
        }
    }
    link_mark(l);
}

static int net_start(void)
{
    int bound, fd = demo_udp_bind(port, &bound), bufsize = 4 << 20;
    if (fd < 0)
        return 0;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    port = bound;
#if ADDRESSED
    {
        int i;
        rx_addr = BIO_ADDR_new();
        for (i = 0; i < BATCH; i++)
            if ((tx_addr[i] = BIO_ADDR_new()) == NULL)
                return 0;
        if (rx_addr == NULL || (the_link = link_new()) == NULL)
            return 0;
    }
#endif
    if (uv_udp_init_ex(loop, &udp, AF_UNSPEC | UV_UDP_RECVMMSG) != 0 || uv_udp_open(&udp, fd) != 0 ||
        uv_udp_recv_start(&udp, on_alloc, on_udp_recv) != 0 || uv_check_init(loop, &check) != 0 ||
        uv_check_start(&check, on_check) != 0)
        return 0;
    return 1;
}

static void net_stop(void)
{
    uv_udp_recv_stop(&udp);
    uv_close((uv_handle_t *)&udp, NULL); /* queued sends are cancelled (on_sent frees them) */
    uv_close((uv_handle_t *)&check, NULL);
    dirty_links = NULL;
#if ADDRESSED
    link_close(the_link);
    the_link = NULL;
#else
    while (links != NULL) {
        struct link *l = links;
        links = l->next;
        link_close(l);
    }
    demo_log("%lu client addresses seen, %lu links freed before shutdown", nlinks, links_freed);
#endif
    demo_log("%lu connections, %llu rounds, %llu datagrams dropped (pair full), %llu sends queued", nconns, rounds,
             dropped_in, queued_sends);
}

static void net_free(void)
{
#if ADDRESSED
    int i;
    BIO_ADDR_free(rx_addr);
    for (i = 0; i < BATCH; i++)
        BIO_ADDR_free(tx_addr[i]);
#endif
}

#else
/* ---------------------------------------------------------------- TLS over TCP */

#define PAIR_BUF (64 << 10)
#define WRITE_HIGH (256 << 10) /* bytes queued in uv_write before the answer pauses */

struct tconn {
    uv_tcp_t tcp;
    uv_timer_t linger; /* bounds the wait for the client's close after ours */
    uv_shutdown_t shut;
    int open_handles;
    int closed;
    BIO *net; /* our half of the BIO pair; the SSL object owns the other */
    char peer[64];
    uint8_t rx[65536];     /* libuv reads here */
    size_t rx_off, rx_len; /* bytes of rx the pair has not taken yet */
    int reading, eof_in, eof_passed, fin_sent;
    size_t queued; /* bytes handed to uv_write, not yet written */
    demo_conn_result res;
    struct async_req r;
    struct tconn *prev, *next;
};

struct wreq {
    uv_write_t req;
    struct tconn *c;
    size_t len;
    uint8_t data[];
};

static int lfd = -1;
#ifdef USE_LISTENER
static SSL *listener;
static uv_poll_t lpoll;
#else
static uv_tcp_t server;
#endif
static struct tconn *conns;

static void drive(struct tconn *c);

static void on_tconn_closed(uv_handle_t *h)
{
    struct tconn *c = h->data;
    if (--c->open_handles > 0)
        return;
    SSL_free(c->r.ssl); /* and the library's half of the pair */
    BIO_free(c->net);
    free(c);
}

/* The one log line, then the handles close (pending writes are cancelled) and c is freed. */
static void tconn_close(struct tconn *c, const char *what)
{
    if (c->closed)
        return;
    c->closed = 1;
    if (what != NULL)
        async_tally_failed(&c->res, what);
    ERR_clear_error();
    async_log_conn(c->peer, port, &c->res);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->tcp, on_tconn_closed);
    uv_close((uv_handle_t *)&c->linger, on_tconn_closed);
}

static void on_linger(uv_timer_t *t)
{
    tconn_close(t->data, NULL); /* answered; the client just did not close in time */
}

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct tconn *c = w->c;
    c->queued -= w->len;
    free(w);
    if (c->closed)
        return;
    if (status < 0) {
        char why[80];
        snprintf(why, sizeof(why), "writing to the client: %s", uv_strerror(status));
        tconn_close(c, why);
        return;
    }
    if (c->queued < WRITE_HIGH / 2)
        drive(c);
}

/* Moves what the library wrote into the pair to libuv. 1 if anything moved. */
static int flush_out(struct tconn *c)
{
    int moved = 0;
    for (;;) {
        size_t pending = BIO_ctrl_pending(c->net);
        struct wreq *w;
        uv_buf_t b;
        int n;
        if (pending == 0)
            return moved;
        if (pending > 65536)
            pending = 65536;
        w = malloc(sizeof(*w) + pending);
        if (w == NULL)
            return moved;
        n = BIO_read(c->net, w->data, (int)pending);
        if (n <= 0) {
            free(w);
            ERR_clear_error();
            return moved;
        }
        w->c = c;
        w->len = (size_t)n;
        b = uv_buf_init((char *)w->data, (unsigned)n);
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
            free(w);
            tconn_close(c, "uv_write");
            return moved;
        }
        c->queued += (size_t)n;
        moved = 1;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct tconn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)c->rx, sizeof(c->rx));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Moves bytes libuv read into the pair; reading pauses while some are left over. */
static int pump_in(struct tconn *c)
{
    int moved = 0;
    while (c->rx_off < c->rx_len) {
        int n = BIO_write(c->net, c->rx + c->rx_off, (int)(c->rx_len - c->rx_off));
        if (n <= 0) {
            ERR_clear_error();
            break;
        }
        c->rx_off += (size_t)n;
        moved = 1;
    }
    if (c->rx_off < c->rx_len) {
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = 0;
        }
        return moved;
    }
    c->rx_off = c->rx_len = 0;
    if (c->eof_in && !c->eof_passed) {
        (void)BIO_shutdown_wr(c->net); /* the library reads the end of stream after the bytes */
        c->eof_passed = 1;
        moved = 1;
    } else if (!c->eof_in && !c->reading) {
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        c->reading = 1;
    }
    return moved;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status; /* cancelled when the connection closed first; else nothing to do */
}

/*
 * Steps the request and moves bytes both ways until nothing moves. WANT_READ is "more bytes
 * from libuv" (on_read drives again), WANT_WRITE "room in the pair", made by draining it
 * here; a deep uv_write queue pauses the request until on_written drives again.
 */
static void drive(struct tconn *c)
{
    int e = SSL_ERROR_WANT_READ, moved;
    do {
        moved = pump_in(c);
        if (c->queued < WRITE_HIGH) {
            e = async_req_step(&c->r);
            if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                tconn_close(c, c->r.what);
                return;
            }
        }
        moved |= flush_out(c);
        if (c->closed)
            return;
    } while (moved && e != SSL_ERROR_NONE && c->queued < WRITE_HIGH);
    if (c->queued > 0 || BIO_ctrl_pending(c->net) > 0)
        return; /* on_written drives again */
    if (e == SSL_ERROR_NONE) {
        tconn_close(c, NULL);
    } else if (c->r.state == R_DRAIN && !c->fin_sent) {
        /* close_notify is out: our FIN too, then wait (bounded) for the client's end of
         * stream, so closing cannot reset data it has not read yet. */
        uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown);
        uv_timer_start(&c->linger, on_linger, ASYNC_LINGER_MS, 0);
        c->fin_sent = 1;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct tconn *c = s->data;
    (void)buf;
    if (c->closed)
        return;
    if (nread == UV_EOF) {
        c->eof_in = 1;
        uv_read_stop(s);
        c->reading = 0;
    } else if (nread < 0) {
        char why[80];
        snprintf(why, sizeof(why), "reading from the client: %s", uv_strerror((int)nread));
        tconn_close(c, c->r.state == R_DRAIN ? NULL : why);
        return;
    } else if (nread > 0) {
        c->rx_off = 0;
        c->rx_len = (size_t)nread;
    }
    drive(c);
}

/* A connection whose TCP side is c->tcp (connected) and whose SSL is ssl. */
static void tconn_start(struct tconn *c, SSL *ssl)
{
    BIO *lib = NULL;
    struct sockaddr_storage ss;
    int sl = sizeof(ss);

    c->r.ssl = ssl;
    c->r.res = &c->res;
    c->tcp.data = c->linger.data = c;
    c->open_handles = 2;
    uv_timer_init(loop, &c->linger);
    c->next = conns;
    if (conns != NULL)
        conns->prev = c;
    conns = c;
    nconns++;
    uv_tcp_nodelay(&c->tcp, 1); /* the answer's tail and close_notify are small writes */
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0)
        sa_string((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
    else
        snprintf(c->peer, sizeof(c->peer), "?");
    if (!BIO_new_bio_pair(&lib, PAIR_BUF, &c->net, PAIR_BUF)) {
        tconn_close(c, "BIO_new_bio_pair");
        return;
    }
    SSL_set_bio(ssl, lib, lib); /* the SSL object owns its half */
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    c->reading = 1;
    drive(c);
}

/* A connection that never started: only its TCP handle to close. */
static void tconn_abort(struct tconn *c, SSL *ssl)
{
    c->closed = 1;
    c->tcp.data = c;
    c->r.ssl = ssl;
    c->open_handles = 1;
    uv_close((uv_handle_t *)&c->tcp, on_tconn_closed);
}

#ifdef USE_LISTENER
/* The listener API accepts; libuv then owns the accepted socket. */
static void on_accept_ready(uv_poll_t *h, int status, int events)
{
    SSL *ssl;
    (void)h;
    (void)events;
    if (status < 0) {
        demo_log("listening socket: %s", uv_strerror(status));
        return;
    }
    while ((ssl = SSL_accept_connection(listener, SSL_ACCEPT_CONNECTION_NO_BLOCK)) != NULL) {
        struct tconn *c = calloc(1, sizeof(*c));
        int fd = SSL_get_fd(ssl);
        /* The accepted connection came with a socket BIO that would close the fd when it is
         * replaced; libuv owns the fd from now on. */
        if (c == NULL || fd < 0 || BIO_set_close(SSL_get_rbio(ssl), BIO_NOCLOSE) != 1 ||
            uv_tcp_init(loop, &c->tcp) != 0) {
            demo_log_errors("accepted connection");
            SSL_free(ssl);
            free(c);
            continue;
        }
        if (uv_tcp_open(&c->tcp, fd) != 0) {
            close(fd);
            tconn_abort(c, ssl);
            continue;
        }
        tconn_start(c, ssl);
    }
    ERR_clear_error();
}
#else
static void on_connection(uv_stream_t *s, int status)
{
    struct tconn *c;
    SSL *ssl;
    if (status < 0) {
        demo_log("listen: %s", uv_strerror(status));
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    uv_tcp_init(loop, &c->tcp);
    ssl = SSL_new(ctx);
    if (uv_accept(s, (uv_stream_t *)&c->tcp) != 0 || ssl == NULL) {
        demo_log_errors("accepting");
        tconn_abort(c, ssl);
        return;
    }
    SSL_set_accept_state(ssl);
    tconn_start(c, ssl);
}
#endif

static int net_start(void)
{
    int bound;
    lfd = demo_tcp_listen(port, &bound);
    if (lfd < 0)
        return 0;
    port = bound;
#ifdef USE_LISTENER
    listener = SSL_new_listener(ctx, 0);
    if (listener == NULL || !SSL_set_blocking_mode(listener, 0) || !SSL_set_fd(listener, lfd) ||
        !SSL_listen(listener))
        return 0;
    if (uv_poll_init_socket(loop, &lpoll, lfd) != 0 || uv_poll_start(&lpoll, UV_READABLE, on_accept_ready) != 0)
        return 0;
#else
    if (uv_tcp_init(loop, &server) != 0 || uv_tcp_open(&server, lfd) != 0 ||
        uv_listen((uv_stream_t *)&server, 128, on_connection) != 0)
        return 0;
#endif
    return 1;
}

static void net_stop(void)
{
#ifdef USE_LISTENER
    uv_close((uv_handle_t *)&lpoll, NULL);
#else
    uv_close((uv_handle_t *)&server, NULL); /* closes lfd */
#endif
    while (conns != NULL)
        tconn_close(conns, "still open at shutdown");
    demo_log("%lu connections", nconns);
}

static void net_free(void)
{
#ifdef USE_LISTENER
    SSL_free(listener);
    close(lfd);
#endif
}
#endif

/* ---------------------------------------------------------------- main */

static void on_signal(uv_signal_t *h, int sig)
{
    (void)h;
    if (stopping)
        return;
    stopping = 1;
    demo_log("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    net_stop();
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
}

int main(int argc, char **argv)
{
    const char *cert, *key;

#if ADDRESSED
    demo_name = "async-nonpollable";
#else
    demo_name = "async-unaddressed";
#endif
    if (!demo_args(argc, argv, &cert, &key, &port))
        return 2;
    signal(SIGPIPE, SIG_IGN);
    ctx = demo_server_ctx(cert, key);
    loop = uv_default_loop();
    if (!net_start())
        demo_die("listening");
    uv_signal_init(loop, &sig_int);
    uv_signal_init(loop, &sig_term);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    demo_listening(port);
    uv_run(loop, UV_RUN_DEFAULT);
    net_free();
    uv_loop_close(loop);
    SSL_CTX_free(ctx);
    return 0;
}
