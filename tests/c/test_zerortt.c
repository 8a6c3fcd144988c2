/*
 * test_zerortt: QUIC 0-RTT through OpenSSL's early-data calls (issue 16): a client resuming
 * a session from a server that allows early data (SSL_CTX_set_max_early_data) writes with
 * SSL_write_early_data before the handshake completes; the server reads it on its streams;
 * both ends report SSL_get_early_data_status. Accepted: the client's qlog shows 0-RTT
 * packets. Rejected (the ticket is unknown to the server it reaches): every byte written
 * early, on the default stream and on a second stream, still arrives, in order, followed by
 * what was written after the handshake. Errors: no session, a server, a listener, after the
 * handshake, NULL arguments. Every wait is bounded; bytes are compared end to end.
 */
#include "tlsutil.h"

#ifdef TEST_REAL_OPENSSL
int main(void)
{
    return 0; /* needs libssl: not part of the libcrypto comparison run */
}
#else
#include <dirent.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#if HAVE_OSSLQUIC

struct peers {
    SSL *l, *c, *s;
    int cfd;
};

/* Pumps the listener and both ends until `cond`, 10 s at most; takes the server connection
 * from the listener when it is there. */
#define PUMP(p, cond)                                                                          \
    do {                                                                                       \
        uint64_t dl_ = tu_now_ms() + 10000;                                                    \
        while (!(cond)) {                                                                      \
            ASSERT_TRUE(tu_now_ms() < dl_);                                                    \
            SSL_handle_events((p)->l);                                                         \
            SSL_handle_events((p)->c);                                                         \
            if ((p)->s == NULL)                                                                \
                (p)->s = SSL_accept_connection((p)->l, SSL_ACCEPT_CONNECTION_NO_BLOCK);        \
            else                                                                               \
                SSL_handle_events((p)->s);                                                     \
            (void)tu_wait_readable((p)->cfd, 1);                                               \
        }                                                                                      \
    } while (0)

static SSL_SESSION *kept;
static int new_sessions;

static int keep_session(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    new_sessions++;
    if (SSL_SESSION_get_max_early_data(sess) == 0)
        return 0;
    SSL_SESSION_free(kept);
    kept = sess;
    return 1;
}

/* A server context allowing early data (max > 0) or not, and its non-blocking listener. */
static SSL *listener(SSL_CTX **sctx, uint32_t max, int *sfd, BIO_ADDR **addr)
{
    *sctx = qu_server_ctx(0);
    if (*sctx == NULL || SSL_CTX_set_max_early_data(*sctx, max) != 1)
        return NULL;
    return qu_listener(*sctx, SSL_LISTENER_FLAG_NO_VALIDATE, sfd, addr);
}

/* A client context that keeps only the sessions that allow early data (in `kept`). */
static SSL_CTX *client_ctx(void)
{
    SSL_CTX *c = qu_client_ctx();

    if (c == NULL)
        return NULL;
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, keep_session);
    return c;
}

/* A full handshake with the listener, one byte each way; the session it leaves for early
 * data (if the server allows it) lands in `kept`. */
static int first_connection(struct peers *p, SSL_CTX *cctx, const BIO_ADDR *srv, int want)
{
    size_t n;
    char b = 0;
    int r;

    p->s = NULL;
    p->cfd = tu_udp_socket(AF_INET, NULL);
    ASSERT_GE(p->cfd, 0);
    p->c = qu_client(cctx, p->cfd, srv, 0);
    ASSERT_NOT_NULL(p->c);
    ASSERT_EQ(SSL_set_blocking_mode(p->c, 0), 1);
    PUMP(p, (r = SSL_connect(p->c)) == 1 || SSL_get_error(p->c, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    ASSERT_EQ(SSL_get_early_data_status(p->c), SSL_EARLY_DATA_NOT_SENT);
    ASSERT_EQ(SSL_write_ex(p->c, "q", 1, &n), 1);
    PUMP(p, p->s != NULL && SSL_read_ex(p->s, &b, 1, &n) == 1);
    ASSERT_EQ(b, 'q');
    ASSERT_EQ(SSL_get_early_data_status(p->s), SSL_EARLY_DATA_NOT_SENT);
    ASSERT_EQ(SSL_write_ex(p->s, "r", 1, &n), 1);
    PUMP(p, SSL_read_ex(p->c, &b, 1, &n) == 1);
    ASSERT_EQ(b, 'r');
    if (want)
        PUMP(p, kept != NULL);
    ERR_clear_error();
    return 1;
}

static void close_peers(struct peers *p)
{
    SSL_free(p->c);
    SSL_free(p->s);
    if (p->cfd >= 0)
        close(p->cfd);
    p->c = p->s = NULL;
    p->cfd = -1;
}

/* Whether a qlog file in `dir` whose name ends with `role` ("client.sqlog") records a packet
 * of type 0-RTT. */
static int qlog_has_0rtt(const char *dir, const char *role)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;

    if (d == NULL)
        return 0;
    while (!found && (e = readdir(d)) != NULL) {
        char path[1024], line[8192];
        size_t nl = strlen(e->d_name), rl = strlen(role);
        FILE *f;

        if (nl < rl || strcmp(e->d_name + nl - rl, role) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        while (!found && fgets(line, sizeof(line), f) != NULL)
            found = strstr(line, "\"0RTT\"") != NULL && strstr(line, "packet_sent") != NULL;
        fclose(f);
    }
    closedir(d);
    return found;
}

/* Reads on `r` until `want` bytes or FIN, comparing them with `expect`. */
static int read_all(struct peers *p, SSL *r, const unsigned char *expect, size_t want, int fin)
{
    static unsigned char in[1 << 17];
    size_t got = 0, n;
    uint64_t dl = tu_now_ms() + 10000;

    ASSERT_LE(want, sizeof(in));
    for (;;) {
        int rc;

        ASSERT_LT(tu_now_ms(), dl);
        rc = SSL_read_ex(r, in + got, sizeof(in) - got, &n);
        if (rc == 1) {
            got += n;
            ASSERT_LE(got, want);
            if (got == want && !fin)
                break;
            continue;
        }
        if (SSL_get_error(r, 0) == SSL_ERROR_ZERO_RETURN) {
            ASSERT_TRUE(fin);
            break;
        }
        ERR_clear_error();
        SSL_handle_events(p->l);
        SSL_handle_events(p->c);
        SSL_handle_events(p->s);
        (void)tu_wait_readable(p->cfd, 1);
    }
    ASSERT_EQ(got, want);
    ASSERT_EQ(memcmp(in, expect, want), 0);
    return 1;
}

/* Accepted: the request goes in 0-RTT, the server reads it, the answer comes back. */
static int test_zerortt_accepted(void)
{
    SSL_CTX *sctx = NULL, *cctx = client_ctx();
    BIO_ADDR *srv = NULL;
    struct peers p = {.cfd = -1};
    int sfd = -1, r;
    size_t n;
    char qdir[] = "/tmp/osslquic-0rtt-XXXXXX";
    static unsigned char req[3000], resp[64];

    ASSERT_NOT_NULL(cctx);
    p.l = listener(&sctx, 0xffffffff, &sfd, &srv);
    ASSERT_NOT_NULL(p.l);
    ASSERT_EQ(SSL_CTX_get_max_early_data(sctx), 0xffffffffu);
    ASSERT_TRUE(first_connection(&p, cctx, srv, 1));
    ASSERT_EQ(SSL_SESSION_get_max_early_data(kept), 0xffffffffu);
    close_peers(&p);

    ASSERT_NOT_NULL(mkdtemp(qdir));
    ASSERT_EQ(setenv("QLOGDIR", qdir, 1), 0);
    p.cfd = tu_udp_socket(AF_INET, NULL);
    ASSERT_GE(p.cfd, 0);
    p.c = qu_client(cctx, p.cfd, srv, 0);
    ASSERT_NOT_NULL(p.c);
    ASSERT_EQ(SSL_set_blocking_mode(p.c, 0), 1);
    ASSERT_EQ(SSL_set_session(p.c, kept), 1);
    tu_fill_pattern(req, sizeof(req), 7);
    ASSERT_EQ(SSL_write_early_data(p.c, req, sizeof(req), &n), 1);
    ASSERT_EQ(n, sizeof(req));
    ASSERT_NO_ERROR();
    /* As OpenSSL: "rejected" until the server says otherwise. */
    ASSERT_EQ(SSL_get_early_data_status(p.c), SSL_EARLY_DATA_REJECTED);
    PUMP(&p, (r = SSL_connect(p.c)) == 1 || SSL_get_error(p.c, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    ASSERT_EQ(SSL_get_early_data_status(p.c), SSL_EARLY_DATA_ACCEPTED);
    ASSERT_EQ(SSL_session_reused(p.c), 1);
    PUMP(&p, p.s != NULL);
    ASSERT_EQ(SSL_get_early_data_status(p.s), SSL_EARLY_DATA_ACCEPTED);
    /* A QUIC server's early data is on its streams: SSL_read_early_data has none. */
    ASSERT_EQ(SSL_read_early_data(p.s, resp, sizeof(resp), &n), SSL_READ_EARLY_DATA_FINISH);
    ASSERT_EQ(n, 0u);
    ASSERT_EQ(SSL_stream_conclude(p.c, 0), 1);
    ASSERT_TRUE(read_all(&p, p.s, req, sizeof(req), 1));
    tu_fill_pattern(resp, sizeof(resp), 8);
    ASSERT_EQ(SSL_write_ex(p.s, resp, sizeof(resp), &n), 1);
    ASSERT_TRUE(read_all(&p, p.c, resp, sizeof(resp), 0));
    close_peers(&p);
    unsetenv("QLOGDIR");
    ASSERT_TRUE(qlog_has_0rtt(qdir, "client.sqlog"));
    {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf %s", qdir);
        ASSERT_EQ(system(cmd), 0);
    }

    SSL_SESSION_free(kept);
    kept = NULL;
    SSL_free(p.l);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    BIO_ADDR_free(srv);
    close(sfd);
    return 1;
}

/* Rejected: the session comes from server A, the connection reaches server B (which allows
 * early data but has never seen the ticket). Early bytes on the default stream and on a
 * second stream are written again after the handshake; nothing is lost or reordered. */
static int test_zerortt_rejected(void)
{
    SSL_CTX *sa = NULL, *sb = NULL, *cctx = client_ctx();
    BIO_ADDR *addr_a = NULL, *addr_b = NULL;
    struct peers p = {.cfd = -1};
    int fa = -1, fb = -1, r;
    size_t n, half;
    SSL *st = NULL, *sst = NULL;
    static unsigned char a[40000], b[20000], b2[5000], all_b[25000];

    ASSERT_NOT_NULL(cctx);
    p.l = listener(&sa, 16384, &fa, &addr_a);
    ASSERT_NOT_NULL(p.l);
    ASSERT_TRUE(first_connection(&p, cctx, addr_a, 1));
    close_peers(&p);
    SSL_free(p.l);

    p.l = listener(&sb, 16384, &fb, &addr_b);
    ASSERT_NOT_NULL(p.l);
    p.cfd = tu_udp_socket(AF_INET, NULL);
    ASSERT_GE(p.cfd, 0);
    p.c = qu_client(cctx, p.cfd, addr_b, 0);
    ASSERT_NOT_NULL(p.c);
    ASSERT_EQ(SSL_set_blocking_mode(p.c, 0), 1);
    ASSERT_EQ(SSL_set_session(p.c, kept), 1);
    tu_fill_pattern(a, sizeof(a), 21);
    tu_fill_pattern(b, sizeof(b), 22);
    tu_fill_pattern(b2, sizeof(b2), 23);
    half = sizeof(a) / 2;
    ASSERT_EQ(SSL_write_early_data(p.c, a, half, &n), 1);
    ASSERT_EQ(n, half);
    /* A second stream, opened and written before the handshake. */
    st = SSL_new_stream(p.c, SSL_STREAM_FLAG_NO_BLOCK);
    ASSERT_NOT_NULL(st);
    ASSERT_EQ(SSL_write_early_data(st, b, sizeof(b), &n), 1);
    ASSERT_EQ(n, sizeof(b));
    ASSERT_EQ(SSL_write_early_data(p.c, a + half, sizeof(a) - half, &n), 1);
    ASSERT_EQ(n, sizeof(a) - half);
    /* An ordinary write waits for the handshake. */
    ASSERT_EQ(SSL_write_ex(st, b2, sizeof(b2), &n), 0);
    r = SSL_get_error(st, 0);
    ASSERT_TRUE(r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE);
    ERR_clear_error();

    PUMP(&p, (r = SSL_connect(p.c)) == 1 || SSL_get_error(p.c, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    ASSERT_EQ(SSL_session_reused(p.c), 0);
    ASSERT_EQ(SSL_get_early_data_status(p.c), SSL_EARLY_DATA_REJECTED);
    /* Data written after the handshake follows what is written again. */
    {
        size_t done = 0;
        uint64_t dl = tu_now_ms() + 10000;

        while (done < sizeof(b2)) {
            ASSERT_LT(tu_now_ms(), dl);
            if (SSL_write_ex(st, b2 + done, sizeof(b2) - done, &n) == 1) {
                done += n;
                continue;
            }
            ASSERT_EQ(SSL_get_error(st, 0), SSL_ERROR_WANT_WRITE);
            ERR_clear_error();
            PUMP(&p, p.s != NULL);
        }
    }
    ASSERT_EQ(SSL_stream_conclude(st, 0), 1);
    PUMP(&p, p.s != NULL);
    ASSERT_EQ(SSL_get_early_data_status(p.s), SSL_EARLY_DATA_NOT_SENT);
    ASSERT_TRUE(read_all(&p, p.s, a, sizeof(a), 0));
    PUMP(&p, (sst = SSL_accept_stream(p.s, SSL_ACCEPT_STREAM_NO_BLOCK)) != NULL);
    ASSERT_EQ(SSL_get_stream_id(sst), SSL_get_stream_id(st));
    memcpy(all_b, b, sizeof(b));
    memcpy(all_b + sizeof(b), b2, sizeof(b2));
    ASSERT_TRUE(read_all(&p, sst, all_b, sizeof(all_b), 1));

    SSL_free(sst);
    SSL_free(st);
    close_peers(&p);
    SSL_SESSION_free(kept);
    kept = NULL;
    SSL_free(p.l);
    SSL_CTX_free(sa);
    SSL_CTX_free(sb);
    SSL_CTX_free(cctx);
    BIO_ADDR_free(addr_a);
    BIO_ADDR_free(addr_b);
    close(fa);
    close(fb);
    return 1;
}

/* Misuse fails as OpenSSL's TLS does, and a failed early write leaves an ordinary
 * handshake working. */
static int test_zerortt_errors(void)
{
    SSL_CTX *sctx = NULL, *cctx = client_ctx();
    BIO_ADDR *srv = NULL;
    struct peers p = {.cfd = -1};
    int sfd = -1, r;
    size_t n = 99;
    char b;

    ASSERT_NOT_NULL(cctx);
    /* A server that does not allow early data: its tickets do not either. */
    p.l = listener(&sctx, 0, &sfd, &srv);
    ASSERT_NOT_NULL(p.l);
    ASSERT_EQ(SSL_CTX_get_max_early_data(sctx), 0u);

    ASSERT_EQ(SSL_write_early_data(NULL, "x", 1, &n), 0);
    ASSERT_EQ(n, 0u);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_write_early_data(p.l, "x", 1, &n), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_CONN_USE_ONLY);
    ASSERT_EQ(SSL_get_early_data_status(NULL), 0);
    ERR_clear_error();

    /* No session: should not have been called; the handshake still completes. */
    p.cfd = tu_udp_socket(AF_INET, NULL);
    ASSERT_GE(p.cfd, 0);
    p.c = qu_client(cctx, p.cfd, srv, 0);
    ASSERT_NOT_NULL(p.c);
    ASSERT_EQ(SSL_set_blocking_mode(p.c, 0), 1);
    ASSERT_EQ(SSL_write_early_data(p.c, "x", 1, &n), 0);
    ASSERT_EQ(SSL_get_error(p.c, 0), SSL_ERROR_SSL);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);
    PUMP(&p, (r = SSL_connect(p.c)) == 1 || SSL_get_error(p.c, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    /* After the handshake. */
    ASSERT_EQ(SSL_write_early_data(p.c, "x", 1, &n), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);
    ASSERT_EQ(SSL_write_ex(p.c, "q", 1, &n), 1);
    PUMP(&p, p.s != NULL && SSL_read_ex(p.s, &b, 1, &n) == 1);
    ASSERT_EQ(b, 'q');
    /* A server connection does not write early data; a client does not read it. */
    ASSERT_EQ(SSL_write_early_data(p.s, "x", 1, &n), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);
    ASSERT_EQ(SSL_read_early_data(p.c, &b, 1, &n), SSL_READ_EARLY_DATA_ERROR);
    ASSERT_ERROR_IS(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);
    ERR_clear_error();
    /* The server allowed no early data: its tickets say so. */
    PUMP(&p, new_sessions >= 1);
    ASSERT_NULL(kept);
    close_peers(&p);

    SSL_free(p.l);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    BIO_ADDR_free(srv);
    close(sfd);
    return 1;
}

#endif /* HAVE_OSSLQUIC */

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
#if HAVE_OSSLQUIC
    RUN(test_zerortt_accepted);
    RUN(test_zerortt_rejected);
    RUN(test_zerortt_errors);
#endif
    return tu_finish();
}
#endif
