/*
 * tlsutil.h: what the TLS-over-TCP test programs (test_tls_bio, test_tls_verify,
 * test_tls_quic_poll) share on top of quicutil.h: contexts with the test certificates, a
 * connected TCP pair on loopback, a listening socket, and a one-connection TLS server thread
 * (blocking, every wait bounded by socket timeouts) that echoes or sends lines.
 *
 * Certificates (build/certs, from `cargo run --release --example gencert`): chain.pem and
 * key.pem are for localhost/127.0.0.1/::1; alt-chain.pem and alt-key.pem for alt.example,
 * signed by the same CA (ca.pem).
 */
#ifndef OSSLQUIC_TLSUTIL_H
#define OSSLQUIC_TLSUTIL_H

#include "quicutil.h"

#include <netinet/tcp.h>

/* A TLS server context (method m) with chain `chain` and key `key` from the certificate
 * directory. */
static inline SSL_CTX *tl_server_ctx_with(const SSL_METHOD *m, const char *chain, const char *key)
{
    SSL_CTX *c = SSL_CTX_new(m);

    if (c == NULL || !SSL_CTX_use_certificate_chain_file(c, qu_cert_path(chain)) ||
        !SSL_CTX_use_PrivateKey_file(c, qu_cert_path(key), SSL_FILETYPE_PEM)) {
        SSL_CTX_free(c);
        return NULL;
    }
    return c;
}

static inline SSL_CTX *tl_server_ctx(void)
{
    return tl_server_ctx_with(TLS_server_method(), "chain.pem", "key.pem");
}

/* A TLS client context trusting the test CA, verifying with `mode`. */
static inline SSL_CTX *tl_client_ctx(int mode)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());

    if (c == NULL || !SSL_CTX_load_verify_locations(c, qu_cert_path("ca.pem"), NULL)) {
        SSL_CTX_free(c);
        return NULL;
    }
    SSL_CTX_set_verify(c, mode, NULL);
    return c;
}

/* A listening TCP socket on 127.0.0.1 (ephemeral port, backlog `backlog`); its port goes
 * to *port. -1 on failure. */
static inline int tl_listen(int backlog, unsigned short *port)
{
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    int l = socket(AF_INET, SOCK_STREAM, 0);

    if (l < 0)
        return -1;
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, backlog) != 0 ||
        getsockname(l, (struct sockaddr *)&sa, &sl) != 0) {
        close(l);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return l;
}

/* A blocking TCP socket connected to 127.0.0.1:port. -1 on failure. */
static inline int tl_connect(unsigned short port)
{
    struct sockaddr_in sa = {0};
    int s = socket(AF_INET, SOCK_STREAM, 0);

    if (s < 0)
        return -1;
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(s);
        return -1;
    }
    return s;
}

/* Bounds every blocking read and write on fd to `sec` seconds. */
static inline void tl_timeouts(int fd, int sec)
{
    struct timeval tv = {sec, 0};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A connected TCP pair on 127.0.0.1, both ends non-blocking, Nagle off. */
static inline int tl_tcp_pair(int *a, int *b)
{
    unsigned short port = 0;
    int l = tl_listen(4, &port), one = 1;

    *a = *b = -1;
    if (l < 0)
        return 0;
    *b = tl_connect(port);
    *a = *b >= 0 ? accept(l, NULL, NULL) : -1;
    close(l);
    if (*a < 0 || *b < 0)
        return 0;
    setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fcntl(*a, F_SETFL, O_NONBLOCK) == 0 && fcntl(*b, F_SETFL, O_NONBLOCK) == 0;
}

/* The errors queued when the client's handshake failed in tl_handshake (taken off the
 * queue there: OpenSSL's server clears the thread's queue when its handshake step starts). */
static unsigned long tl_cerr[8] TU_UNUSED;
static int tl_ncerr TU_UNUSED;
/* SSL_get_error of the client's failed step (asked before its errors were taken). */
static int tl_cerr_ssl TU_UNUSED;

/* Whether tl_cerr holds (ERR_LIB_SSL, reason). */
static inline int tl_client_failed_with(int reason)
{
    int i;

    for (i = 0; i < tl_ncerr; i++)
        if (ERR_GET_LIB(tl_cerr[i]) == ERR_LIB_SSL && ERR_GET_REASON(tl_cerr[i]) == reason)
            return 1;
    return 0;
}

/* Runs a client and a server handshake (non-blocking, one thread) until both are done or
 * one has failed; their last results go to *rc and *rs. When the client fails, its errors go
 * to tl_cerr and the server is not stepped again. 0 if 10 s pass. */
static inline int tl_handshake(SSL *c, SSL *s, int *rc, int *rs)
{
    uint64_t dl = tu_now_ms() + 10000;
    int dc = 0, ds = 0;
    unsigned long e;

    *rc = *rs = 0;
    tl_ncerr = 0;
    while (!(dc && ds)) {
        if (tu_now_ms() >= dl)
            return 0;
        if (!dc) {
            *rc = SSL_connect(c);
            dc = *rc == 1 || (SSL_get_error(c, *rc) != SSL_ERROR_WANT_READ &&
                              SSL_get_error(c, *rc) != SSL_ERROR_WANT_WRITE);
            if (dc && *rc != 1) {
                tl_cerr_ssl = SSL_get_error(c, *rc);
                while ((e = ERR_get_error()) != 0)
                    if (tl_ncerr < 8)
                        tl_cerr[tl_ncerr++] = e;
                return 1;
            }
        }
        if (!ds) {
            *rs = SSL_accept(s);
            ds = *rs == 1 || (SSL_get_error(s, *rs) != SSL_ERROR_WANT_READ &&
                              SSL_get_error(s, *rs) != SSL_ERROR_WANT_WRITE);
        }
        if (ds && *rs != 1)
            return 1; /* the server failed: the client may wait forever */
    }
    return 1;
}

/* Steps the server's handshake until it is done or fails (after the client's ended). */
static inline int tl_server_finish(SSL *s)
{
    uint64_t dl = tu_now_ms() + 10000;
    int r;

    while ((r = SSL_accept(s)) != 1 && SSL_get_error(s, r) == SSL_ERROR_WANT_READ &&
           tu_now_ms() < dl)
        ;
    return r;
}

/* A client and a server SSL of cctx and sctx over a new TCP pair (non-blocking); the
 * client names `host` (SNI and verification). */
struct tl_pair {
    SSL *c, *s;
    int cfd, sfd;
};

static inline int tl_pair_new(struct tl_pair *p, SSL_CTX *cctx, SSL_CTX *sctx, const char *host)
{
    memset(p, 0, sizeof(*p));
    p->cfd = p->sfd = -1;
    if (!tl_tcp_pair(&p->sfd, &p->cfd))
        return 0;
    p->c = SSL_new(cctx);
    p->s = SSL_new(sctx);
    return p->c != NULL && p->s != NULL && SSL_set_fd(p->c, p->cfd) == 1 &&
           SSL_set_fd(p->s, p->sfd) == 1 && SSL_set1_host(p->c, host) == 1 &&
           SSL_set_tlsext_host_name(p->c, host) == 1;
}

static inline void tl_pair_free(struct tl_pair *p)
{
    SSL_free(p->c);
    SSL_free(p->s);
    if (p->cfd >= 0)
        close(p->cfd);
    if (p->sfd >= 0)
        close(p->sfd);
}

/* The byte at offset i of the test pattern with seed s. */
static inline unsigned char tl_pat(size_t i, unsigned s)
{
    return (unsigned char)((i * 131u + s * 7u + (i >> 8)) & 0xff);
}

/*
 * A one-connection TLS server in a thread: accepts on lfd (waiting at most 10 s), runs
 * SSL_accept on the connection (blocking, 10 s socket timeouts), then:
 *   TL_ECHO   echoes every byte until the client's close_notify, answers it (SSL_shutdown
 *             returns 1) and counts the bytes in `echoed`;
 *   TL_LINES  writes `lines`, sends close_notify, then reads until the client goes away.
 * `ok` is 1 if every step went as described; `why` says which step failed.
 */
enum { TL_ECHO, TL_LINES };

struct tl_server {
    SSL_CTX *ctx;
    int lfd, mode;
    unsigned short port;
    const char *lines;
    size_t echoed;
    int ok;
    char why[160];
    pthread_t th;
};

static inline void *tl_server_main(void *arg)
{
    struct tl_server *sv = arg;
    SSL *s = NULL;
    int fd = -1, r;
    char buf[16384];
    size_t n, w;

    snprintf(sv->why, sizeof(sv->why), "no connection within 10 s");
    if (!tu_wait_readable(sv->lfd, 10000) || (fd = accept(sv->lfd, NULL, NULL)) < 0)
        goto done;
    tl_timeouts(fd, 10);
    s = SSL_new(sv->ctx);
    snprintf(sv->why, sizeof(sv->why), "SSL_accept failed");
    if (s == NULL || SSL_set_fd(s, fd) != 1 || (r = SSL_accept(s)) != 1)
        goto done;
    if (sv->mode == TL_ECHO) {
        for (;;) {
            r = SSL_read_ex(s, buf, sizeof(buf), &n);
            if (r != 1) {
                snprintf(sv->why, sizeof(sv->why), "read ended with SSL_get_error %d after %zu bytes",
                         SSL_get_error(s, r), sv->echoed);
                if (SSL_get_error(s, r) != SSL_ERROR_ZERO_RETURN)
                    goto done;
                break;
            }
            if (SSL_write_ex(s, buf, n, &w) != 1 || w != n) {
                snprintf(sv->why, sizeof(sv->why), "echo write failed");
                goto done;
            }
            sv->echoed += n;
        }
        snprintf(sv->why, sizeof(sv->why), "SSL_shutdown after the client's did not return 1");
        if (SSL_shutdown(s) != 1)
            goto done;
    } else {
        snprintf(sv->why, sizeof(sv->why), "writing the lines failed");
        if (SSL_write_ex(s, sv->lines, strlen(sv->lines), &w) != 1 || w != strlen(sv->lines))
            goto done;
        snprintf(sv->why, sizeof(sv->why), "SSL_shutdown did not return 0");
        if (SSL_shutdown(s) != 0)
            goto done;
        while (SSL_read_ex(s, buf, sizeof(buf), &n) == 1)
            ;
    }
    sv->ok = 1;
    sv->why[0] = 0;
done:
    ERR_clear_error();
    SSL_free(s);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static inline int tl_server_start(struct tl_server *sv, SSL_CTX *ctx, int mode, const char *lines)
{
    memset(sv, 0, sizeof(*sv));
    sv->ctx = ctx;
    sv->mode = mode;
    sv->lines = lines;
    sv->lfd = tl_listen(4, &sv->port);
    if (sv->lfd < 0)
        return 0;
    if (pthread_create(&sv->th, NULL, tl_server_main, sv) != 0) {
        close(sv->lfd);
        return 0;
    }
    return 1;
}

/* Waits for the server thread (it ends within its own bounds) and closes its socket. */
static inline int tl_server_join(struct tl_server *sv)
{
    pthread_join(sv->th, NULL);
    close(sv->lfd);
    if (!sv->ok)
        fprintf(stderr, "    server thread: %s\n", sv->why);
    return sv->ok;
}

#endif /* OSSLQUIC_TLSUTIL_H */
