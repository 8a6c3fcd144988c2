/*
 * async-common.c: the request state machine and the QUIC connection bookkeeping shared by
 * the async DDD demos (see async-common.h).
 */
#include "async-common.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- one request */

void async_tally_failed(demo_conn_result *res, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char ebuf[120] = "";
    if (e != 0)
        ERR_error_string_n(e, ebuf, sizeof(ebuf));
    if (!res->failed)
        snprintf(res->why, sizeof(res->why), "%s%s%s", what, ebuf[0] ? ": " : "", ebuf);
    res->failed = 1;
    ERR_clear_error();
}

/* A wait passes through; anything else is a failure of `what` (the caller decides). */
static int req_wait(struct async_req *r, int e, const char *what)
{
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        r->what = what;
        if (e == SSL_ERROR_NONE)
            e = SSL_ERROR_SSL;
    }
    return e;
}

int async_req_step(struct async_req *r)
{
    uint8_t in[4096];
    size_t n;
    int k, budget = ASYNC_WRITE_BUDGET;

    for (;;) {
        switch (r->state) {
        case R_READ:
            if (SSL_read_ex(r->ssl, in, sizeof(in), &n)) {
                k = demo_req_feed(&r->req, in, n);
            } else {
                k = SSL_get_error(r->ssl, 0);
                if (k != SSL_ERROR_ZERO_RETURN)
                    return req_wait(r, k, r->req.len ? "reading the request" : "closed before a request");
                ERR_clear_error();
                r->fin_in = 1;
                if (r->req.len == 0)
                    return req_wait(r, k, "closed before a request");
                k = demo_req_eof(&r->req); /* hq-interop: FIN may end the request line */
            }
            if (k == 0)
                break;
            if (k > 0) {
                demo_resp_init(&r->resp, &r->req, r->ssl);
            } else {
                r->bad = 1; /* answered with nothing, then ended */
                memset(&r->resp, 0, sizeof(r->resp));
                if (!r->res->failed)
                    snprintf(r->res->why, sizeof(r->res->why), "not a request: \"%.40s\"", r->req.buf);
                r->res->failed = 1;
            }
            r->state = R_WRITE;
            break;
        case R_WRITE:
            if (r->off == r->len) {
                r->off = 0;
                r->len = demo_resp_fill(&r->resp, r->buf, sizeof(r->buf));
                if (r->len == 0) {
                    r->res->requests += !r->bad;
                    r->state = R_END;
                    break;
                }
            }
            if (budget-- == 0)
                return SSL_ERROR_WANT_WRITE; /* yield: writable, so called again soon */
            /* A retried SSL_write gets the same bytes again, as OpenSSL requires. */
            if (!SSL_write_ex(r->ssl, r->buf + r->off, r->len - r->off, &n))
                return req_wait(r, SSL_get_error(r->ssl, 0), "writing the answer");
            r->off += n;
            r->res->bytes_out += n;
            break;
        case R_END:
#ifdef USE_QUIC
            if (!SSL_stream_conclude(r->ssl, 0)) /* FIN after the answer */
                return req_wait(r, SSL_get_error(r->ssl, 0), "concluding the stream");
#else
            k = SSL_shutdown(r->ssl); /* close_notify */
            if (k < 0)
                return req_wait(r, SSL_get_error(r->ssl, k), "shutdown");
            if (k == 1) {
                r->state = R_DONE; /* the client's close_notify came first */
                break;
            }
#endif
            r->state = R_DRAIN;
            break;
        case R_DRAIN:
#ifdef USE_QUIC
            /* Up to the client's FIN (anything after the request is dropped). */
            while (!r->fin_in && SSL_read_ex(r->ssl, in, sizeof(in), &n))
                ;
            if (!r->fin_in && (k = SSL_get_error(r->ssl, 0)) != SSL_ERROR_ZERO_RETURN)
                return req_wait(r, k, "waiting for the client's FIN");
#else
            /* Up to the client's close_notify, or its end of stream: either ends it. */
            k = SSL_shutdown(r->ssl);
            if (k < 0 && SSL_get_error(r->ssl, k) == SSL_ERROR_WANT_READ)
                return SSL_ERROR_WANT_READ;
#endif
            ERR_clear_error();
            r->state = R_DONE;
            break;
        case R_DONE:
            return SSL_ERROR_NONE;
        }
    }
}

void async_log_conn(const char *peer, int port, const demo_conn_result *res)
{
    demo_log("conn from %s port %d: %llu requests, %llu bytes sent, %s%s", peer, port,
             (unsigned long long)res->requests, (unsigned long long)res->bytes_out, res->failed ? "failed: " : "ok",
             res->failed ? res->why : "");
}

#ifdef USE_QUIC
/* ---------------------------------------------------------------- QUIC: a listener's connections */

static void conn_log(struct qconn *c, const char *peer, int port)
{
    char buf[80];
    if (peer == NULL) {
        demo_ssl_peer(c->ssl, buf, sizeof(buf));
        peer = buf;
    }
    async_log_conn(peer, port, &c->res);
}

/* If the connection has terminated: its log line (ok when the client closed it with code 0),
 * and 1 (free it). */
static int conn_closed(struct qconn *c, const char *peer, int port)
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
    conn_log(c, peer, port);
    return 1;
}

static void conn_free(struct qconn *c)
{
    while (c->streams != NULL) {
        struct qstream *st = c->streams;
        c->streams = st->next;
        SSL_free(st->r.ssl);
        free(st);
    }
    SSL_free(c->ssl);
    free(c);
}

/* Accepts new streams and steps every stream. 0 when the connection is gone (logged). */
static int conn_serve(struct qconn *c, const char *peer, int port)
{
    struct qstream **pp;
    SSL *s;

    while ((s = SSL_accept_stream(c->ssl, SSL_ACCEPT_STREAM_NO_BLOCK)) != NULL) {
        struct qstream *st = NULL;
        if (SSL_get_stream_type(s) != SSL_STREAM_TYPE_BIDI || (st = calloc(1, sizeof(*st))) == NULL) {
            SSL_free(s); /* not a request stream: the peer is asked to stop sending */
            continue;
        }
        st->r.ssl = s;
        st->r.res = &c->res;
        st->next = c->streams;
        c->streams = st;
    }
    ERR_clear_error(); /* NULL with an error: the connection is ending (seen below) */
    for (pp = &c->streams; *pp != NULL;) {
        struct qstream *st = *pp;
        int e = async_req_step(&st->r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            pp = &st->next;
            continue;
        }
        if (e != SSL_ERROR_NONE) {
            if (conn_closed(c, peer, port))
                return 0; /* the connection's end, not the stream's fault */
            async_tally_failed(&c->res, st->r.what);
            if (st->r.state < R_DRAIN)
                SSL_stream_reset(st->r.ssl, NULL, 0);
            ERR_clear_error();
        }
        *pp = st->next;
        SSL_free(st->r.ssl);
        free(st);
    }
    return !conn_closed(c, peer, port);
}

unsigned long async_quic_pass(SSL *listener, struct qconn **conns, const char *peer, int port)
{
    unsigned long accepted = 0;
    struct qconn **pp;
    SSL *cs;

    SSL_handle_events(listener);
    while ((cs = SSL_accept_connection(listener, SSL_ACCEPT_CONNECTION_NO_BLOCK)) != NULL) {
        struct qconn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            SSL_free(cs);
            continue;
        }
        c->ssl = cs;
        accepted++;
        /* Every request stream is accepted and served on its own: no default stream. */
        if (!SSL_set_default_stream_mode(cs, SSL_DEFAULT_STREAM_MODE_NONE) ||
            !SSL_set_incoming_stream_policy(cs, SSL_INCOMING_STREAM_POLICY_ACCEPT, 0))
            async_tally_failed(&c->res, "stream policy");
        c->next = *conns;
        *conns = c;
    }
    ERR_clear_error();
    for (pp = conns; *pp != NULL;) {
        struct qconn *c = *pp;
        if (conn_serve(c, peer, port)) {
            pp = &c->next;
        } else {
            *pp = c->next;
            conn_free(c);
        }
    }
    return accepted;
}

int async_quic_ready(SSL *listener, struct qconn *conns, SSL_POLL_ITEM **items, size_t *nitems)
{
    struct timeval zero = {0, 0};
    size_t n = 0, need = 1, count = 0;
    struct qconn *c;
    struct qstream *st;
    SSL_POLL_ITEM *it;

    for (c = conns; c != NULL; c = c->next)
        for (need++, st = c->streams; st != NULL; st = st->next)
            need++;
    if (need > *nitems) {
        SSL_POLL_ITEM *p = realloc(*items, need * 2 * sizeof(*p));
        if (p == NULL)
            return 1; /* cannot tell: look again */
        *items = p;
        *nitems = need * 2;
    }
    it = *items;
    it[n].desc = SSL_as_poll_descriptor(listener);
    it[n].events = SSL_POLL_EVENT_IC;
    it[n++].revents = 0;
    for (c = conns; c != NULL; c = c->next) {
        it[n].desc = SSL_as_poll_descriptor(c->ssl);
        it[n].events = SSL_POLL_EVENT_ISB | SSL_POLL_EVENT_ISU | SSL_POLL_EVENT_EC;
        it[n++].revents = 0;
        for (st = c->streams; st != NULL; st = st->next) {
            enum async_rstate s = st->r.state;
            it[n].desc = SSL_as_poll_descriptor(st->r.ssl);
            it[n].events = (s == R_READ || (s == R_DRAIN && !st->r.fin_in) ? SSL_POLL_EVENT_R : 0) |
                           (s == R_WRITE || s == R_END ? SSL_POLL_EVENT_W : 0);
            it[n++].revents = 0;
        }
    }
    if (!SSL_poll(it, n, sizeof(SSL_POLL_ITEM), &zero, SSL_POLL_FLAG_NO_HANDLE_EVENTS, &count))
        ERR_clear_error();
    return count > 0;
}

void async_quic_close_all(struct qconn **conns, const char *peer, int port)
{
    while (*conns != NULL) {
        struct qconn *c = *conns;
        *conns = c->next;
        if (!c->res.failed)
            snprintf(c->res.why, sizeof(c->res.why), "still open at shutdown");
        c->res.failed = 1;
        conn_log(c, peer, port);
        conn_free(c);
    }
}

int async_timeout_ms(SSL *s, uint64_t *ms)
{
    struct timeval tv;
    int inf = 1;
    if (!SSL_get_event_timeout(s, &tv, &inf) || inf)
        return 0;
    *ms = (uint64_t)tv.tv_sec * 1000 + ((uint64_t)tv.tv_usec + 999) / 1000;
    return 1;
}
#endif
