/*
 * async-common.h: the part shared by the two async DDD demos (ddd-async-pollable.c and
 * ddd-async-nonpollable.c, also built as ddd-async-unaddressed). It holds no event loop: each
 * demo keeps its own libuv glue (what it waits on, how bytes reach the library) and calls
 * these. Built once per variant, like common.c (USE_QUIC changes how a request ends).
 *
 * A request (a TLS connection, or a QUIC stream) is one small non-blocking state machine,
 * async_req_step: read "GET /path", write the answer as far as the connection or stream takes
 * it, end it (TLS close_notify, QUIC FIN), wait for the client's end. It says what it waits
 * for as SSL_get_error does (WANT_READ, WANT_WRITE).
 *
 * QUIC: a listener's connections and their request streams (struct qconn, struct qstream)
 * are served in passes (async_quic_pass); the caller's round runs passes while
 * async_quic_ready says something is ready, then re-arms its timer from async_timeout_ms.
 */
#ifndef DDD_ASYNC_COMMON_H
#define DDD_ASYNC_COMMON_H

#include "common.h"

#include <openssl/ssl.h>

#include <stddef.h>
#include <stdint.h>

#define ASYNC_CHUNK 16384
/* Chunks a request may write per step: a client that reads as fast as we write would
 * otherwise keep the socket (or, through the library's implicit event handling, the stream)
 * writable forever and starve the other connections and streams. */
#define ASYNC_WRITE_BUDGET 64
#define ASYNC_LINGER_MS 10000 /* TLS: how long we wait for the client's close after ours */
#define ASYNC_MAX_PASSES 8    /* QUIC: passes of one round before yielding to the loop */

enum async_rstate { R_READ, R_WRITE, R_END, R_DRAIN, R_DONE };

struct async_req {
    SSL *ssl; /* a TLS connection or a QUIC stream */
    enum async_rstate state;
    demo_conn_result *res; /* the connection's tally */
    const char *what;      /* what failed, when async_req_step says so */
    int fin_in;            /* QUIC: the client's FIN was read */
    int bad;               /* not a request: nothing is answered */
    demo_req req;
    demo_resp resp;
    uint8_t buf[ASYNC_CHUNK];
    size_t off, len;
};

/* Marks res failed (the first reason is kept) with what and the library's last error. */
void async_tally_failed(demo_conn_result *res, const char *what);

/*
 * Runs a request as far as it goes. Returns SSL_ERROR_WANT_READ or SSL_ERROR_WANT_WRITE (call
 * again when that is possible; WANT_WRITE also when the write budget is spent), SSL_ERROR_NONE
 * once it is done, or another SSL_ERROR_* when it failed (r->what says where).
 */
int async_req_step(struct async_req *r);

/* demo_log_conn's line, with a peer string of the caller's own. */
void async_log_conn(const char *peer, int port, const demo_conn_result *res);

#ifdef USE_QUIC
struct qstream {
    struct async_req r;
    struct qstream *next;
};

struct qconn {
    SSL *ssl;
    demo_conn_result res;
    struct qstream *streams;
    struct qconn *next;
};

/*
 * One pass over a non-blocking QUIC listener: SSL_handle_events; the connections ready to be
 * accepted join *conns (every request stream accepted and served on its own: no default
 * stream, the ACCEPT policy); every connection's new streams are accepted and every stream
 * stepped. A connection that has terminated gets its log line (async_log_conn with peer, or
 * with demo_ssl_peer's string when peer is NULL; ok when the client closed it with code 0)
 * and is freed. Returns how many connections were accepted.
 */
unsigned long async_quic_pass(SSL *listener, struct qconn **conns, const char *peer, int port);

/* Anything ready that the last pass has not seen? SSL_poll (zero timeout, no event handling:
 * level-triggered, no ticking) over the listener, its connections and every stream, for what
 * each waits for. *items and *nitems: the caller's buffer, grown as needed (the caller frees
 * it). */
int async_quic_ready(SSL *listener, struct qconn *conns, SSL_POLL_ITEM **items, size_t *nitems);

/* Logs every connection as failed ("still open at shutdown"), as async_quic_pass would, and
 * frees it; *conns ends empty. */
void async_quic_close_all(struct qconn **conns, const char *peer, int port);

/* SSL_get_event_timeout of s in milliseconds, rounded up: 1 with *ms set, or 0 when there is
 * no deadline (or the call failed). */
int async_timeout_ms(SSL *s, uint64_t *ms);
#endif

#endif
