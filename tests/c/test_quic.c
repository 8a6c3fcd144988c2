/*
 * test_quic: the non-blocking QUIC client/listener API end to end, in one process: contexts
 * and their errors, handshake with verification and ALPN, data both ways with FIN, over UDP
 * loopback (addressed) and over an unaddressed datagram pair, and the idle-cost counter.
 * Certificates come from build/certs (made by `cargo run --example gencert`), or
 * $OSSLQUIC_CERTS.
 */
#include "quicutil.h"

#ifdef TEST_REAL_OPENSSL
int main(void)
{
    return 0; /* needs libssl: not part of the libcrypto comparison run */
}
#else
#include <openssl/ssl.h>

#include <dirent.h>

static char certs[512];
static const unsigned char alpn[] = {13, 'o', 's', 's', 'l', 'q', 'u', 'i', 'c', '-', 't', 'e', 's', 't'};

static const char *cert_path(const char *name)
{
    static char buf[4][600];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 600, "%s/%s", certs, name);
    return b;
}

static SSL_CTX *server_ctx(void)
{
    SSL_CTX *c = SSL_CTX_new(OSSL_QUIC_server_method());
    if (c == NULL || !SSL_CTX_use_certificate_chain_file(c, cert_path("chain.pem")) ||
        !SSL_CTX_use_PrivateKey_file(c, cert_path("key.pem"), SSL_FILETYPE_PEM) ||
        !SSL_CTX_check_private_key(c) || SSL_CTX_set_alpn_protos(c, alpn, sizeof(alpn)) != 0) {
        SSL_CTX_free(c);
        return NULL;
    }
    return c;
}

static SSL_CTX *client_ctx(void)
{
    SSL_CTX *c = SSL_CTX_new(OSSL_QUIC_client_method());
    if (c == NULL || !SSL_CTX_load_verify_locations(c, cert_path("ca.pem"), NULL)) {
        SSL_CTX_free(c);
        return NULL;
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    return c;
}

static int test_context_errors(void)
{
    SSL_CTX *s = SSL_CTX_new(OSSL_QUIC_server_method()), *c = SSL_CTX_new(OSSL_QUIC_client_method());
    char buf[256];

    ASSERT_NOT_NULL(s);
    ASSERT_NOT_NULL(c);
    ERR_clear_error();
    ASSERT_EQ(SSL_CTX_use_certificate_chain_file(s, "/nonexistent/cert.pem"), 0);
    ERR_error_string_n(ERR_peek_error(), buf, sizeof(buf));
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_CTX_use_certificate_chain_file(s, cert_path("chain.pem")), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey_file(s, cert_path("other-key.pem"), SSL_FILETYPE_PEM), 1);
    ASSERT_EQ(SSL_CTX_check_private_key(s), 0); /* key does not match the certificate */
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_CTX_use_PrivateKey_file(s, cert_path("key.pem"), SSL_FILETYPE_PEM), 1);
    ASSERT_EQ(SSL_CTX_check_private_key(s), 1);
    ASSERT_NULL(SSL_new(s)); /* a server context makes listeners, not connections */
    ASSERT_ONE_ERROR();
    ASSERT_NULL(SSL_new_listener(c, 0));
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_CTX_set_alpn_protos(c, (const unsigned char *)"\x05hq", 3), 1); /* malformed */
    ASSERT_ONE_ERROR();
    ASSERT_NULL(SSL_new(NULL));
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_read_ex(NULL, buf, 1, NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_handle_events(NULL), 1);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
    return 1;
}

struct peerset {
    SSL *listener, *client, *server;
};

/* Runs both sides until `done` says so or 10 s pass. */
#define PUMP(ps, cond)                                                                         \
    do {                                                                                       \
        uint64_t deadline_ = tu_now_ms() + 10000;                                              \
        while (!(cond)) {                                                                      \
            ASSERT_TRUE(tu_now_ms() < deadline_);                                              \
            SSL_handle_events((ps)->listener);                                                 \
            SSL_handle_events((ps)->client);                                                   \
            if ((ps)->server == NULL)                                                          \
                (ps)->server = SSL_accept_connection((ps)->listener, SSL_ACCEPT_CONNECTION_NO_BLOCK); \
        }                                                                                      \
    } while (0)

static int handshake(struct peerset *ps)
{
    int r = 0;
    ERR_clear_error();
    PUMP(ps, (r = SSL_connect(ps->client)) == 1 || SSL_get_error(ps->client, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    PUMP(ps, ps->server != NULL);
    PUMP(ps, (r = SSL_accept(ps->server)) == 1 || SSL_get_error(ps->server, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    return 1;
}

/* Client sends `len` patterned bytes and FIN; server reads them all, checks, echoes them back
 * with FIN; client checks every byte. */
static int exchange(struct peerset *ps, size_t len)
{
    unsigned char *out = malloc(len), *in = malloc(len), buf[16384];
    size_t sent = 0, got = 0, echoed = 0, back = 0, n, i;
    int r = 0;

    ASSERT_NOT_NULL(out);
    ASSERT_NOT_NULL(in);
    for (i = 0; i < len; i++)
        out[i] = (unsigned char)(i * 7 + (i >> 8));
    {
        uint64_t deadline = tu_now_ms() + 20000;
        int server_fin = 0, client_fin = 0;
        while (!(client_fin && back == len)) {
            ASSERT_TRUE(tu_now_ms() < deadline);
            if (sent < len) {
                r = SSL_write_ex2(ps->client, out + sent, len - sent, SSL_WRITE_FLAG_CONCLUDE, &n);
                if (r == 1)
                    sent += n;
                else
                    ASSERT_EQ(SSL_get_error(ps->client, r), SSL_ERROR_WANT_WRITE);
            }
            SSL_handle_events(ps->listener);
            while (!server_fin && (r = SSL_read_ex(ps->server, in + got, len - got < sizeof(buf) ? len - got + 1 : sizeof(buf), &n)) == 1)
                got += n;
            if (!server_fin && r == 0 && SSL_get_error(ps->server, 0) == SSL_ERROR_ZERO_RETURN)
                server_fin = 1;
            if (server_fin && echoed < len) {
                ASSERT_EQ(got, len);
                ASSERT_MEM_EQ(in, out, len);
                r = SSL_write_ex2(ps->server, in + echoed, len - echoed, SSL_WRITE_FLAG_CONCLUDE, &n);
                if (r == 1)
                    echoed += n;
            }
            SSL_handle_events(ps->client);
            while ((r = SSL_read_ex(ps->client, buf, sizeof(buf), &n)) == 1) {
                ASSERT_LE(back + n, len);
                ASSERT_MEM_EQ(buf, out + back, n);
                back += n;
            }
            if (SSL_get_error(ps->client, r) == SSL_ERROR_ZERO_RETURN)
                client_fin = 1;
            else
                ASSERT_EQ(SSL_get_error(ps->client, r), SSL_ERROR_WANT_READ);
        }
    }
    ASSERT_EQ(back, len);
    free(out);
    free(in);
    ERR_clear_error();
    return 1;
}

/* A non-blocking listener on `sfd` (no address validation) and a non-blocking client on
 * `cfd` aimed at it, both driven by this thread; not yet connected. */
static int peers_setup(struct peerset *ps, SSL_CTX *sctx, SSL_CTX *cctx, int sfd, int cfd, const BIO_ADDR *srv)
{
    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_GE(sfd, 0);
    ASSERT_GE(cfd, 0);
    ps->listener = SSL_new_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE);
    ASSERT_NOT_NULL(ps->listener);
    ASSERT_EQ(SSL_set_blocking_mode(ps->listener, 0), 1);
    ASSERT_EQ(SSL_set_fd(ps->listener, sfd), 1);
    ASSERT_EQ(SSL_listen(ps->listener), 1);
    ps->client = SSL_new(cctx);
    ASSERT_NOT_NULL(ps->client);
    ASSERT_EQ(SSL_set_blocking_mode(ps->client, 0), 1);
    ASSERT_EQ(SSL_set_fd(ps->client, cfd), 1);
    ASSERT_EQ(SSL_set1_initial_peer_addr(ps->client, srv), 1);
    ASSERT_EQ(SSL_set_tlsext_host_name(ps->client, "localhost"), 1);
    ASSERT_EQ(SSL_set_alpn_protos(ps->client, alpn, sizeof(alpn)), 0);
    return 1;
}

/* Frees what a test made (any of it may be NULL or -1). */
static void peers_free(struct peerset *ps, SSL_CTX *sctx, SSL_CTX *cctx, BIO_ADDR *addr, int sfd, int cfd)
{
    SSL_free(ps->server);
    SSL_free(ps->client);
    SSL_free(ps->listener);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    BIO_ADDR_free(addr);
    if (sfd >= 0)
        close(sfd);
    if (cfd >= 0)
        close(cfd);
}

static int shutdown_both(struct peerset *ps)
{
    int rc = 0, rs = 0;
    PUMP(ps, (rc = SSL_shutdown(ps->client)) == 1);
    PUMP(ps, (rs = SSL_shutdown(ps->server)) == 1);
    return rc == 1 && rs == 1;
}

static int test_udp_exchange(void)
{
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    BIO_ADDR *srv_addr = NULL;
    int sfd = tu_udp_socket(AF_INET, &srv_addr), cfd = tu_udp_socket(AF_INET, NULL);
    struct peerset ps = {0};
    const unsigned char *sel;
    unsigned int sel_len;
    BIO_POLL_DESCRIPTOR d;
    struct timeval tv;
    int inf;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_GE(sfd, 0);
    ASSERT_GE(cfd, 0);
    ps.listener = SSL_new_listener(sctx, 0); /* address validation by Retry */
    SSL_set_blocking_mode(ps.listener, 0); /* this thread drives both sides */
    ASSERT_NOT_NULL(ps.listener);
    ASSERT_EQ(SSL_is_listener(ps.listener), 1);
    ASSERT_EQ(SSL_set_fd(ps.listener, sfd), 1);
    ASSERT_EQ(SSL_get_fd(ps.listener), sfd);
    ASSERT_EQ(SSL_listen(ps.listener), 1);
    ps.client = SSL_new(cctx);
    ASSERT_NOT_NULL(ps.client);
    ASSERT_EQ(SSL_set_blocking_mode(ps.client, 0), 1);
    ASSERT_EQ(SSL_set_fd(ps.client, cfd), 1);
    ASSERT_EQ(SSL_set1_initial_peer_addr(ps.client, srv_addr), 1);
    ASSERT_EQ(SSL_set_tlsext_host_name(ps.client, "localhost"), 1);
    ASSERT_EQ(SSL_set_alpn_protos(ps.client, alpn, sizeof(alpn)), 0);
    ASSERT_EQ(SSL_get_rpoll_descriptor(ps.client, &d), 1);
    ASSERT_EQ(d.type, BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD);
    ASSERT_EQ(d.value.fd, cfd);
    ASSERT_EQ(SSL_get_event_timeout(ps.listener, &tv, &inf), 1);
    ASSERT_EQ(inf, 1); /* nothing armed before any connection */
    ASSERT_TRUE(handshake(&ps));
    ASSERT_EQ(SSL_get_verify_result(ps.client), X509_V_OK);
    SSL_get0_alpn_selected(ps.client, &sel, &sel_len);
    ASSERT_EQ(sel_len, alpn[0]);
    ASSERT_MEM_EQ(sel, alpn + 1, sel_len);
    ASSERT_PTR_EQ(SSL_get0_listener(ps.server), ps.listener);
    ASSERT_EQ(SSL_is_connection(ps.server), 1);
    ASSERT_EQ(SSL_get_event_timeout(ps.client, &tv, &inf), 1);
    ASSERT_EQ(inf, 0); /* a live connection has its idle timer at least */
    ASSERT_TRUE(exchange(&ps, 300000));
    ASSERT_TRUE(shutdown_both(&ps));
    peers_free(&ps, sctx, cctx, srv_addr, sfd, cfd);
    return 1;
}

/* Verification against a CA we do not trust: VERIFY_PEER fails the handshake; VERIFY_NONE
 * completes it and reports the failure in SSL_get_verify_result. */
static int test_untrusted_server(void)
{
    int mode;
    for (mode = 0; mode < 2; mode++) {
        SSL_CTX *sctx = server_ctx(), *cctx = SSL_CTX_new(OSSL_QUIC_client_method());
        BIO_ADDR *srv_addr = NULL;
        int sfd = tu_udp_socket(AF_INET, &srv_addr), cfd = tu_udp_socket(AF_INET, NULL), r = 0;
        struct peerset ps = {0};

        ASSERT_NOT_NULL(cctx);
        SSL_CTX_set_verify(cctx, mode ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
        ps.listener = SSL_new_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE);
        SSL_set_blocking_mode(ps.listener, 0); /* this thread drives both sides */
        ASSERT_EQ(SSL_set_fd(ps.listener, sfd), 1);
        ps.client = SSL_new(cctx);
        SSL_set_blocking_mode(ps.client, 0);
        ASSERT_EQ(SSL_set_fd(ps.client, cfd), 1);
        ASSERT_EQ(SSL_set1_initial_peer_addr(ps.client, srv_addr), 1);
        ASSERT_EQ(SSL_set_alpn_protos(ps.client, alpn, sizeof(alpn)), 0);
        PUMP(&ps, (r = SSL_connect(ps.client)) == 1 || SSL_get_error(ps.client, r) != SSL_ERROR_WANT_READ);
        if (mode) {
            ASSERT_NE(r, 1);
            ASSERT_EQ(SSL_get_error(ps.client, r), SSL_ERROR_SSL);
            ASSERT_ERROR_QUEUED();
            ASSERT_TRUE(qu_init_state_is(ps.client, 0, 1, 0)); /* failed: in init again */
        } else {
            ASSERT_EQ(r, 1);
            ASSERT_TRUE(qu_init_state_is(ps.client, 0, 0, 1));
        }
        ASSERT_NE(SSL_get_verify_result(ps.client), X509_V_OK);
        ERR_clear_error();
        SSL_free(ps.server);
        SSL_free(ps.client);
        SSL_free(ps.listener);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
        BIO_ADDR_free(srv_addr);
        close(sfd);
        close(cfd);
    }
    return 1;
}


/* The handshake's progress as OpenSSL reports it: a client before SSL_connect, during, after;
 * the accepted connection; a stream, the listener and a domain have no handshake of their own
 * (all 0); NULL is 0 with an error. */
static int test_init_state(void)
{
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    BIO_ADDR *srv_addr = NULL;
    int sfd = tu_udp_socket(AF_INET, &srv_addr), cfd = tu_udp_socket(AF_INET, NULL), r;
    struct peerset ps = {0};
    SSL *stream, *domain;

    ASSERT_TRUE(sctx != NULL && cctx != NULL && sfd >= 0 && cfd >= 0);
    ps.listener = SSL_new_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE);
    ASSERT_NOT_NULL(ps.listener);
    SSL_set_blocking_mode(ps.listener, 0);
    ASSERT_EQ(SSL_set_fd(ps.listener, sfd), 1);
    ASSERT_EQ(SSL_listen(ps.listener), 1);
    ps.client = SSL_new(cctx);
    ASSERT_NOT_NULL(ps.client);
    SSL_set_blocking_mode(ps.client, 0);
    ASSERT_EQ(SSL_set_fd(ps.client, cfd), 1);
    ASSERT_EQ(SSL_set1_initial_peer_addr(ps.client, srv_addr), 1);
    ASSERT_EQ(SSL_set_tlsext_host_name(ps.client, "localhost"), 1);
    ASSERT_EQ(SSL_set_alpn_protos(ps.client, alpn, sizeof(alpn)), 0);
    ASSERT_TRUE(qu_init_state_is(ps.client, 1, 1, 0));
    ASSERT_TRUE(qu_init_state_is(ps.listener, 0, 0, 0));
    r = SSL_connect(ps.client);
    ASSERT_EQ(r, -1);
    ASSERT_EQ(SSL_get_error(ps.client, r), SSL_ERROR_WANT_READ);
    ASSERT_TRUE(qu_init_state_is(ps.client, 0, 1, 0));
    ASSERT_TRUE(handshake(&ps));
    ASSERT_TRUE(qu_init_state_is(ps.client, 0, 0, 1));
    ASSERT_TRUE(qu_init_state_is(ps.server, 0, 0, 1));
    stream = SSL_new_stream(ps.client, 0);
    ASSERT_NOT_NULL(stream);
    ASSERT_TRUE(qu_init_state_is(stream, 0, 0, 0));
    SSL_free(stream);
    domain = SSL_new_domain(sctx, 0);
    ASSERT_NOT_NULL(domain);
    ASSERT_TRUE(qu_init_state_is(domain, 0, 0, 0));
    SSL_free(domain);
    ERR_clear_error();
    ASSERT_EQ(SSL_in_init(NULL), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_TRUE(shutdown_both(&ps));
    ASSERT_TRUE(qu_init_state_is(ps.client, 0, 0, 1)); /* a closed connection's handshake stays done */
    peers_free(&ps, sctx, cctx, srv_addr, sfd, cfd);
    return 1;
}

/* Streams: 20 client bidi streams with request/response and FIN, a server uni stream, a reset
 * with an application code, peek/pending, stream ids/types/states, close info. */
static int test_streams(void)
{
    enum { NS = 20 };
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    BIO_ADDR *srv_addr = NULL;
    int sfd = tu_udp_socket(AF_INET, &srv_addr), cfd = tu_udp_socket(AF_INET, NULL), i, r;
    struct peerset ps = {0};
    SSL *cs[NS], *ss[NS] = {0}, *uni = NULL, *cuni = NULL, *rst = NULL, *srst = NULL;
    char buf[256], want[64];
    size_t n, got[NS] = {0};
    int nacc = 0, done = 0;
    uint64_t code = 0, deadline;
    SSL_CONN_CLOSE_INFO info;

    ASSERT_TRUE(peers_setup(&ps, sctx, cctx, sfd, cfd, srv_addr));
    ASSERT_EQ(SSL_set_default_stream_mode(ps.client, SSL_DEFAULT_STREAM_MODE_NONE), 1);
    ASSERT_TRUE(handshake(&ps));
    ASSERT_EQ(SSL_set_default_stream_mode(ps.server, SSL_DEFAULT_STREAM_MODE_NONE), 1);
    ASSERT_EQ(SSL_get_stream_type(ps.client), SSL_STREAM_TYPE_NONE);
    ASSERT_U64_EQ(SSL_get_stream_id(ps.client), UINT64_MAX);
    ASSERT_EQ(SSL_write_ex(ps.client, "x", 1, &n), 0); /* no default stream in mode NONE */
    ASSERT_EQ(SSL_get_error(ps.client, 0), SSL_ERROR_SSL);
    ERR_clear_error();
    ASSERT_NULL(SSL_accept_stream(ps.server, SSL_ACCEPT_STREAM_NO_BLOCK)); /* none yet */
    ERR_clear_error();
    for (i = 0; i < NS; i++) {
        cs[i] = SSL_new_stream(ps.client, 0);
        ASSERT_NOT_NULL(cs[i]);
        ASSERT_U64_EQ(SSL_get_stream_id(cs[i]), (uint64_t)i * 4); /* client bidi ids */
        ASSERT_EQ(SSL_get_stream_type(cs[i]), SSL_STREAM_TYPE_BIDI);
        ASSERT_EQ(SSL_is_stream_local(cs[i]), 1);
        ASSERT_PTR_EQ(SSL_get0_connection(cs[i]), ps.client);
        snprintf(want, sizeof(want), "request %d", i);
        ASSERT_EQ(SSL_write_ex2(cs[i], want, strlen(want), SSL_WRITE_FLAG_CONCLUDE, &n), 1);
        ASSERT_EQ(SSL_get_stream_write_state(cs[i]), SSL_STREAM_STATE_FINISHED);
    }
    deadline = tu_now_ms() + 10000;
    while (done < NS) {
        ASSERT_TRUE(tu_now_ms() < deadline);
        SSL_handle_events(ps.client);
        SSL_handle_events(ps.listener);
        while (nacc < NS && (ss[nacc] = SSL_accept_stream(ps.server, SSL_ACCEPT_STREAM_NO_BLOCK)) != NULL) {
            ASSERT_EQ(SSL_is_stream_local(ss[nacc]), 0);
            nacc++;
        }
        ERR_clear_error();
        for (i = 0; i < nacc; i++) {
            int id = (int)(SSL_get_stream_id(ss[i]) / 4);
            if (got[id] == (size_t)-1)
                continue;
            r = SSL_read_ex(ss[i], buf + 0, sizeof(buf), &n);
            if (r == 1) {
                snprintf(want, sizeof(want), "request %d", id);
                ASSERT_EQ(n, strlen(want));
                ASSERT_MEM_EQ(buf, want, n);
                snprintf(want, sizeof(want), "response %d", id);
                ASSERT_EQ(SSL_write_ex2(ss[i], want, strlen(want), SSL_WRITE_FLAG_CONCLUDE, &n), 1);
                got[id] = (size_t)-1;
            }
        }
        for (i = 0; i < NS; i++) {
            if (cs[i] == NULL)
                continue;
            r = SSL_read_ex(cs[i], buf, sizeof(buf), &n);
            if (r == 1) {
                snprintf(want, sizeof(want), "response %d", i);
                ASSERT_EQ(n, strlen(want));
                ASSERT_MEM_EQ(buf, want, n);
            } else if (SSL_get_error(cs[i], r) == SSL_ERROR_ZERO_RETURN) {
                ASSERT_EQ(SSL_get_stream_read_state(cs[i]), SSL_STREAM_STATE_FINISHED);
                SSL_free(cs[i]);
                cs[i] = NULL;
                done++;
            } else {
                ASSERT_EQ(SSL_get_error(cs[i], r), SSL_ERROR_WANT_READ);
            }
        }
        ERR_clear_error();
    }
    ASSERT_EQ(nacc, NS);

    /* A server-initiated uni stream: read-only for the client, with peek and pending. */
    uni = SSL_new_stream(ps.server, SSL_STREAM_FLAG_UNI);
    ASSERT_NOT_NULL(uni);
    ASSERT_EQ(SSL_get_stream_type(uni), SSL_STREAM_TYPE_WRITE);
    ASSERT_EQ(SSL_get_stream_read_state(uni), SSL_STREAM_STATE_WRONG_DIR);
    ASSERT_EQ(SSL_write_ex2(uni, "hello uni", 9, SSL_WRITE_FLAG_CONCLUDE, &n), 1);
    PUMP(&ps, (cuni = SSL_accept_stream(ps.client, 0)) != NULL);
    ERR_clear_error();
    ASSERT_EQ(SSL_get_stream_type(cuni), SSL_STREAM_TYPE_READ);
    ASSERT_EQ(SSL_write_ex(cuni, "x", 1, &n), 0); /* receive-only */
    ERR_clear_error();
    PUMP(&ps, SSL_pending(cuni) == 9);
    ASSERT_EQ(SSL_has_pending(cuni), 1);
    ASSERT_EQ(SSL_peek_ex(cuni, buf, 5, &n), 1);
    ASSERT_EQ(n, 5);
    ASSERT_MEM_EQ(buf, "hello", 5);
    ASSERT_EQ(SSL_read_ex(cuni, buf, sizeof(buf), &n), 1);
    ASSERT_EQ(n, 9);
    ASSERT_MEM_EQ(buf, "hello uni", 9);
    ASSERT_EQ(SSL_read_ex(cuni, buf, sizeof(buf), &n), 0);
    ASSERT_EQ(SSL_get_error(cuni, 0), SSL_ERROR_ZERO_RETURN);
    ERR_clear_error();

    /* A reset with an application error code reaches the peer's reader. */
    rst = SSL_new_stream(ps.client, 0);
    ASSERT_EQ(SSL_write_ex(rst, "partial", 7, &n), 1);
    PUMP(&ps, (srst = SSL_accept_stream(ps.server, 0)) != NULL);
    ERR_clear_error();
    {
        SSL_STREAM_RESET_ARGS a = {42};
        ASSERT_EQ(SSL_stream_reset(rst, &a, sizeof(a)), 1);
    }
    ASSERT_EQ(SSL_get_stream_write_state(rst), SSL_STREAM_STATE_RESET_LOCAL);
    PUMP(&ps, SSL_get_stream_read_state(srst) == SSL_STREAM_STATE_RESET_REMOTE);
    ASSERT_EQ(SSL_get_stream_read_error_code(srst, &code), 1);
    ASSERT_U64_EQ(code, 42);
    ERR_clear_error();

    /* Application close: the peer sees the code and reason. */
    {
        SSL_SHUTDOWN_EX_ARGS a = {7, "bye"};
        ASSERT_EQ(SSL_get_conn_close_info(ps.server, &info, sizeof(info)), 0); /* still open */
        ERR_clear_error();
        PUMP(&ps, SSL_shutdown_ex(ps.client, 0, &a, sizeof(a)) == 1);
        PUMP(&ps, SSL_get_conn_close_info(ps.server, &info, sizeof(info)) == 1);
        ASSERT_U64_EQ(info.error_code, 7);
        ASSERT_EQ(info.reason_len, 3);
        ASSERT_MEM_EQ(info.reason, "bye", 3);
        ASSERT_EQ(info.flags & SSL_CONN_CLOSE_FLAG_LOCAL, 0);
        ASSERT_EQ(info.flags & SSL_CONN_CLOSE_FLAG_TRANSPORT, 0);
        ERR_clear_error();
        /* Still known after the connection has drained (about 3 PTO later). */
        deadline = tu_now_ms() + 1500;
        while (tu_now_ms() < deadline) {
            SSL_handle_events(ps.listener);
            SSL_handle_events(ps.client);
            (void)tu_wait_readable(sfd, 1);
        }
        memset(&info, 0, sizeof(info));
        ASSERT_EQ(SSL_get_conn_close_info(ps.server, &info, sizeof(info)), 1);
        ASSERT_U64_EQ(info.error_code, 7);
        ASSERT_EQ(SSL_read_ex(ps.server, buf, 1, &n), 0); /* a drained connection stays closed */
        ERR_clear_error();
    }
    for (i = 0; i < NS; i++)
        SSL_free(ss[i]);
    SSL_free(uni);
    SSL_free(cuni);
    SSL_free(rst);
    SSL_free(srst);
    SSL_free(ps.client); /* streams first or connection first: both allowed */
    SSL_free(ps.server);
    SSL_free(ps.listener);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    BIO_ADDR_free(srv_addr);
    close(sfd);
    close(cfd);
    return 1;
}


/* The default incoming stream policy (AUTO): while the server connection has no default
 * stream the peer's streams are accepted (its first becomes the default stream on the first
 * SSL_read); once it has one, new peer streams are refused with the policy's code (STOP_SENDING
 * + RESET_STREAM) and never queued; ACCEPT takes them again. */
static int test_incoming_policy_auto(void)
{
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    BIO_ADDR *srv_addr = NULL;
    int sfd = tu_udp_socket(AF_INET, &srv_addr), cfd = tu_udp_socket(AF_INET, NULL);
    struct peerset ps = {0};
    SSL *cs2 = NULL, *cs3 = NULL, *ss3 = NULL;
    char buf[64];
    size_t n = 0, got = 0;
    uint64_t code = 0;

    ASSERT_TRUE(peers_setup(&ps, sctx, cctx, sfd, cfd, srv_addr));
    ASSERT_TRUE(handshake(&ps));
    ASSERT_EQ(SSL_set_incoming_stream_policy(ps.server, SSL_INCOMING_STREAM_POLICY_AUTO, 77), 1);
    ASSERT_EQ(SSL_set_incoming_stream_policy(ps.server, 3, 0), 0); /* no such policy */
    ERR_clear_error();

    /* The client's default stream becomes the server's default stream. */
    ASSERT_EQ(SSL_write_ex(ps.client, "first", 5, &n), 1);
    PUMP(&ps, SSL_read_ex(ps.server, buf, sizeof(buf), &n) == 1);
    ASSERT_EQ(n, 5);
    ASSERT_MEM_EQ(buf, "first", 5);
    ERR_clear_error();

    /* A second client stream (left open for writing) is refused with the policy's code, both
     * directions. */
    cs2 = SSL_new_stream(ps.client, 0);
    ASSERT_NOT_NULL(cs2);
    ASSERT_EQ(SSL_write_ex(cs2, "second", 6, &n), 1);
    PUMP(&ps, SSL_get_stream_read_state(cs2) == SSL_STREAM_STATE_RESET_REMOTE);
    ASSERT_EQ(SSL_get_stream_read_error_code(cs2, &code), 1);
    ASSERT_U64_EQ(code, 77);
    PUMP(&ps, SSL_get_stream_write_state(cs2) == SSL_STREAM_STATE_RESET_REMOTE);
    ASSERT_EQ(SSL_get_accept_stream_queue_len(ps.server), 0);
    ASSERT_NULL(SSL_accept_stream(ps.server, SSL_ACCEPT_STREAM_NO_BLOCK));
    ERR_clear_error();

    /* ACCEPT: the next one is queued and carries its data. */
    ASSERT_EQ(SSL_set_incoming_stream_policy(ps.server, SSL_INCOMING_STREAM_POLICY_ACCEPT, 0), 1);
    cs3 = SSL_new_stream(ps.client, 0);
    ASSERT_NOT_NULL(cs3);
    ASSERT_EQ(SSL_write_ex2(cs3, "third", 5, SSL_WRITE_FLAG_CONCLUDE, &n), 1);
    PUMP(&ps, (ss3 = SSL_accept_stream(ps.server, SSL_ACCEPT_STREAM_NO_BLOCK)) != NULL);
    PUMP(&ps, SSL_read_ex(ss3, buf + got, sizeof(buf) - got, &n) == 1 && (got += n) == 5);
    ASSERT_MEM_EQ(buf, "third", 5);
    ERR_clear_error();

    SSL_free(cs2);
    SSL_free(cs3);
    SSL_free(ss3);
    peers_free(&ps, sctx, cctx, srv_addr, sfd, cfd);
    return 1;
}

static int keylog_client_lines, keylog_server_lines, keylog_bad_lines;
static const SSL *keylog_expected;

static void keylog_cb(const SSL *ssl, const char *line)
{
    /* NSS format: LABEL <64 hex client random> <hex secret> */
    const char *sp = strchr(line, ' ');
    if (sp == NULL || strlen(sp + 1) < 64 + 1 + 32 || sp[65] != ' ')
        keylog_bad_lines++;
    if (ssl == NULL)
        keylog_server_lines++;
    else if (ssl == keylog_expected)
        keylog_client_lines++;
    else
        keylog_bad_lines++;
}

static int test_keylog(void)
{
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    BIO *a = NULL, *b = NULL;
    struct peerset ps = {0};

    SSL_CTX_set_keylog_callback(sctx, keylog_cb);
    SSL_CTX_set_keylog_callback(cctx, keylog_cb);
    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 1 << 20, &b, 1 << 20), 1);
    ps.listener = SSL_new_listener(sctx, 0);
    SSL_set_blocking_mode(ps.listener, 0); /* this thread drives both sides */
    SSL_set_bio(ps.listener, a, a);
    ps.client = SSL_new(cctx);
    SSL_set_blocking_mode(ps.client, 0);
    keylog_expected = ps.client;
    SSL_set_bio(ps.client, b, b);
    ASSERT_EQ(SSL_set_alpn_protos(ps.client, alpn, sizeof(alpn)), 0);
    ASSERT_TRUE(handshake(&ps));
    ASSERT_GE(keylog_client_lines, 4); /* handshake + traffic secrets, both directions */
    /* TLS-only queries fail cleanly on QUIC objects rather than answer "none". */
    ERR_clear_error();
    ASSERT_NULL(SSL_get_current_cipher(ps.client));
    ASSERT_ONE_ERROR();
    ASSERT_NULL(SSL_get_servername(ps.client, TLSEXT_NAMETYPE_host_name));
    ASSERT_ONE_ERROR();
    ASSERT_GE(keylog_server_lines, 4);
    ASSERT_EQ(keylog_bad_lines, 0);
    peers_free(&ps, sctx, cctx, NULL, -1, -1);
    return 1;
}


/* A non-blocking listener and client over a datagram pair with 8 MiB buffers, connected,
 * the client's "GET" read by the server on the default stream. */
static int pair_get(struct peerset *ps, SSL_CTX *sctx, SSL_CTX *cctx)
{
    BIO *a = NULL, *b = NULL;
    unsigned char buf[3];
    size_t n;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 8 << 20, &b, 8 << 20), 1);
    ps->listener = SSL_new_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE);
    SSL_set_blocking_mode(ps->listener, 0); /* this thread drives both sides */
    SSL_set_bio(ps->listener, a, a);
    ps->client = SSL_new(cctx);
    SSL_set_blocking_mode(ps->client, 0);
    SSL_set_bio(ps->client, b, b);
    ASSERT_EQ(SSL_set_alpn_protos(ps->client, alpn, sizeof(alpn)), 0);
    ASSERT_TRUE(handshake(ps));
    ASSERT_EQ(SSL_write_ex(ps->client, "GET", 3, &n), 1); /* opens the default stream */
    PUMP(ps, SSL_read_ex(ps->server, buf, 3, &n) == 1);
    ERR_clear_error();
    return 1;
}

/* Data received before the peer closed stays readable, then FIN: the client reads nothing
 * until the server's SSL_shutdown has completed. */
static int test_read_after_peer_close(void)
{
    enum { LEN = 2000000 };
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    struct peerset ps = {0};
    unsigned char *data = malloc(LEN), buf[65536];
    size_t sent = 0, got = 0, n, i;
    int r = 0;

    ASSERT_NOT_NULL(data);
    for (i = 0; i < LEN; i++)
        data[i] = (unsigned char)(i % 251);
    ASSERT_TRUE(pair_get(&ps, sctx, cctx));
    PUMP(&ps, (sent += (SSL_write_ex2(ps.server, data + sent, LEN - sent, SSL_WRITE_FLAG_CONCLUDE, &n) == 1 ? n : 0)) == LEN);
    ERR_clear_error();
    PUMP(&ps, (r = SSL_shutdown(ps.server)) == 1);
    for (i = 0; i < 50; i++) /* let the close reach the client */
        SSL_handle_events(ps.client);
    {
        uint64_t deadline = tu_now_ms() + 10000;
        while (got < LEN) {
            ASSERT_TRUE(tu_now_ms() < deadline);
            r = SSL_read_ex(ps.client, buf, sizeof(buf), &n);
            if (r != 1) {
                ASSERT_EQ(SSL_get_error(ps.client, r), SSL_ERROR_WANT_READ);
                SSL_handle_events(ps.client);
                continue;
            }
            ASSERT_MEM_EQ(buf, data + got, n);
            got += n;
        }
    }
    ASSERT_EQ(SSL_read_ex(ps.client, buf, sizeof(buf), &n), 0);
    ASSERT_EQ(SSL_get_error(ps.client, 0), SSL_ERROR_ZERO_RETURN);
    ASSERT_EQ(SSL_read(ps.client, buf, sizeof(buf)), 0); /* FIN: 0, as OpenSSL */
    ASSERT_EQ(SSL_get_error(ps.client, 0), SSL_ERROR_ZERO_RETURN);
    ERR_clear_error();
    free(data);
    peers_free(&ps, sctx, cctx, NULL, -1, -1);
    return 1;
}

/* SSL_has_pending as OpenSSL's QUIC answers it: stream bytes, a FIN not yet read, or
 * datagrams that arrived but were not taken in yet (no SSL_handle_events on the server side
 * here: the pair's ring holds them). OpenSSL's guide server (quic-server-non-block) stops
 * reading at the first SSL_read after which SSL_has_pending is 0. */
static int test_has_pending(void)
{
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    struct peerset ps = {0};
    unsigned char buf[16];
    size_t n;

    ASSERT_TRUE(pair_get(&ps, sctx, cctx));
    ASSERT_EQ(SSL_has_pending(ps.server), 0);
    ASSERT_EQ(SSL_write_ex(ps.client, " /x", 3, &n), 1);
    ASSERT_EQ(SSL_handle_events(ps.client), 1);
    ASSERT_EQ(SSL_has_pending(ps.server), 1); /* a datagram waits in the ring */
    ASSERT_EQ(SSL_read_ex(ps.server, buf, sizeof(buf), &n), 1);
    ASSERT_EQ(n, 3);
    ASSERT_MEM_EQ(buf, " /x", 3);
    ASSERT_EQ(SSL_has_pending(ps.server), 0);
    ASSERT_EQ(SSL_stream_conclude(ps.client, 0), 1);
    ASSERT_EQ(SSL_handle_events(ps.client), 1);
    ASSERT_EQ(SSL_has_pending(ps.server), 1); /* the FIN, not yet read */
    ASSERT_EQ(SSL_has_pending(ps.server), 1); /* asking does not consume it */
    ASSERT_EQ(SSL_read_ex(ps.server, buf, sizeof(buf), &n), 0);
    ASSERT_EQ(SSL_get_error(ps.server, 0), SSL_ERROR_ZERO_RETURN);
    ASSERT_EQ(SSL_has_pending(ps.server), 0); /* the FIN was read */
    ERR_clear_error();
    peers_free(&ps, sctx, cctx, NULL, -1, -1);
    return 1;
}

/* SSL_shutdown_ex(RAPID) skips only the closing period: a server that writes LEN bytes with
 * FIN and loops on RAPID until it returns 1 delivers every byte (issue 12: it used to close at
 * once and cut the stream). NO_STREAM_FLUSH alone skips the flush: shutdown is done at the
 * first call and the client sees less than was written. */
static int rapid_shutdown(uint64_t flags)
{
    enum { LEN = 2000000 };
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    struct peerset ps = {0};
    unsigned char *data = malloc(LEN), buf[65536];
    size_t sent = 0, got = 0, n, i;
    int r = 0, flush = (flags & SSL_SHUTDOWN_FLAG_NO_STREAM_FLUSH) == 0;

    ASSERT_NOT_NULL(data);
    for (i = 0; i < LEN; i++)
        data[i] = (unsigned char)(i % 251);
    ASSERT_TRUE(pair_get(&ps, sctx, cctx));
    if (flush) {
        PUMP(&ps, (sent += (SSL_write_ex(ps.server, data + sent, LEN - sent, &n) == 1 ? n : 0)) == LEN);
        ASSERT_EQ(SSL_stream_conclude(ps.server, 0), 1);
        /* The client keeps acknowledging while the server flushes. */
        PUMP(&ps, (r = SSL_shutdown_ex(ps.server, flags, NULL, 0)) != 0);
        ASSERT_EQ(r, 1);
    } else {
        ASSERT_EQ(SSL_write_ex(ps.server, data, LEN, &sent), 1); /* buffered, mostly unsent */
        ASSERT_EQ(SSL_stream_conclude(ps.server, 0), 1);
        ASSERT_EQ(SSL_shutdown_ex(ps.server, flags, NULL, 0), 1); /* nothing to wait for */
    }
    ERR_clear_error();
    {
        uint64_t deadline = tu_now_ms() + 10000;
        for (;;) {
            ASSERT_TRUE(tu_now_ms() < deadline);
            r = SSL_read_ex(ps.client, buf, sizeof(buf), &n);
            if (r == 1) {
                ASSERT_LE(got + n, sent);
                ASSERT_MEM_EQ(buf, data + got, n);
                got += n;
                continue;
            }
            if (SSL_get_error(ps.client, r) != SSL_ERROR_WANT_READ)
                break;
            SSL_handle_events(ps.client);
        }
    }
    if (flush) {
        ASSERT_EQ(got, (size_t)LEN);
        ASSERT_EQ(SSL_get_error(ps.client, 0), SSL_ERROR_ZERO_RETURN);
    } else {
        ASSERT_TRUE(got < sent); /* the close cut the stream, as asked */
        ASSERT_EQ(SSL_get_error(ps.client, 0), SSL_ERROR_SSL);
    }
    ERR_clear_error();
    free(data);
    peers_free(&ps, sctx, cctx, NULL, -1, -1);
    return 1;
}

static int test_shutdown_rapid_flushes(void)
{
    return rapid_shutdown(SSL_SHUTDOWN_FLAG_RAPID);
}

static int test_shutdown_no_stream_flush(void)
{
    return rapid_shutdown(SSL_SHUTDOWN_FLAG_NO_STREAM_FLUSH | SSL_SHUTDOWN_FLAG_RAPID);
}

/* OpenSSL 4.0's SSL_get_peer_addr and OSSL_QUIC_method, and 3.6's SSL_ACCEPT_STREAM_UNI/_BIDI:
 * contexts of the role-less method make both the listener and the client; each side sees the
 * other's bound address (connection and stream; a listener has none and leaves the output
 * untouched); a server taking only bidirectional streams gets the bidi one first though a uni
 * stream was queued before it, which stays for SSL_ACCEPT_STREAM_UNI. */
static int test_api_4_0(void)
{
    SSL_CTX *sctx = SSL_CTX_new(OSSL_QUIC_method()), *cctx = SSL_CTX_new(OSSL_QUIC_method());
    BIO_ADDR *srv_addr = NULL, *cli_addr = NULL, *got = BIO_ADDR_new();
    int sfd = tu_udp_socket(AF_INET, &srv_addr), cfd = tu_udp_socket(AF_INET, &cli_addr);
    struct peerset ps = {0};
    SSL *uni, *bidi, *s1 = NULL, *s2 = NULL;
    size_t n;
    char buf[16];

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_NOT_NULL(got);
    ASSERT_EQ(SSL_CTX_use_certificate_chain_file(sctx, cert_path("chain.pem")), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey_file(sctx, cert_path("key.pem"), SSL_FILETYPE_PEM), 1);
    ASSERT_EQ(SSL_CTX_set_alpn_protos(sctx, alpn, sizeof(alpn)), 0);
    ASSERT_EQ(SSL_CTX_load_verify_locations(cctx, cert_path("ca.pem"), NULL), 1);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    ASSERT_TRUE(peers_setup(&ps, sctx, cctx, sfd, cfd, srv_addr));
    ASSERT_EQ(SSL_set_default_stream_mode(ps.client, SSL_DEFAULT_STREAM_MODE_NONE), 1);
    ASSERT_TRUE(handshake(&ps));
    ASSERT_EQ(SSL_get_verify_result(ps.client), X509_V_OK);

    ASSERT_EQ(SSL_get_peer_addr(ps.client, got), 1);
    ASSERT_TRUE(tu_addr_eq(got, srv_addr));
    ASSERT_EQ(SSL_get_peer_addr(ps.server, got), 1);
    ASSERT_TRUE(tu_addr_eq(got, cli_addr));
    ASSERT_EQ(SSL_get_peer_addr(ps.listener, got), 0); /* no peer: untouched */
    ASSERT_ONE_ERROR();
    ASSERT_TRUE(tu_addr_eq(got, cli_addr));
    ASSERT_EQ(SSL_get_peer_addr(ps.client, NULL), 0);
    ASSERT_ONE_ERROR();

    uni = SSL_new_stream(ps.client, SSL_STREAM_FLAG_UNI);
    bidi = SSL_new_stream(ps.client, 0);
    ASSERT_NOT_NULL(uni);
    ASSERT_NOT_NULL(bidi);
    ASSERT_EQ(SSL_write_ex(uni, "u", 1, &n), 1);
    ASSERT_EQ(SSL_write_ex(bidi, "b", 1, &n), 1);
    PUMP(&ps, SSL_get_accept_stream_queue_len(ps.server) == 2);
    s1 = SSL_accept_stream(ps.server, SSL_ACCEPT_STREAM_BIDI | SSL_ACCEPT_STREAM_NO_BLOCK);
    ASSERT_NOT_NULL(s1);
    ASSERT_EQ(SSL_get_stream_type(s1), SSL_STREAM_TYPE_BIDI);
    ASSERT_NULL(SSL_accept_stream(ps.server, SSL_ACCEPT_STREAM_BIDI | SSL_ACCEPT_STREAM_NO_BLOCK));
    ERR_clear_error();
    ASSERT_EQ(SSL_get_accept_stream_queue_len(ps.server), 1);
    s2 = SSL_accept_stream(ps.server, SSL_ACCEPT_STREAM_UNI | SSL_ACCEPT_STREAM_NO_BLOCK);
    ASSERT_NOT_NULL(s2);
    ASSERT_EQ(SSL_get_stream_type(s2), SSL_STREAM_TYPE_READ);
    PUMP(&ps, SSL_read_ex(s2, buf, sizeof(buf), &n) == 1);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(buf[0], 'u');
    ERR_clear_error();
    ASSERT_EQ(SSL_get_peer_addr(s1, got), 1); /* a stream: its connection's peer */
    ASSERT_TRUE(tu_addr_eq(got, cli_addr));

    SSL_free(s1);
    SSL_free(s2);
    SSL_free(uni);
    SSL_free(bidi);
    BIO_ADDR_free(got);
    BIO_ADDR_free(cli_addr);
    peers_free(&ps, sctx, cctx, srv_addr, sfd, cfd);
    return 1;
}

/* SSL_listen_ex (OpenSSL 4.0 peel-off, with 4.0.x's fixes): 0 while nothing is queued; then
 * the incoming connection moves into an object from SSL_new, which completes its handshake
 * and carries data, and keeps working after the application frees the listener; the listener
 * refuses SSL_accept_connection from then on, and a used object is refused. Freeing the
 * peeled object closes its connection (the client sees the close). */
static int test_listen_ex(void)
{
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx(), *any = SSL_CTX_new(OSSL_QUIC_method());
    BIO_ADDR *srv_addr = NULL;
    int sfd = tu_udp_socket(AF_INET, &srv_addr), cfd = tu_udp_socket(AF_INET, NULL), r = 0;
    struct peerset ps = {0};
    SSL *peeled, *other;
    char buf[16];
    size_t n;

    ASSERT_NOT_NULL(any);
    ASSERT_TRUE(peers_setup(&ps, sctx, cctx, sfd, cfd, srv_addr));
    peeled = SSL_new(any);
    other = SSL_new(any);
    ASSERT_NOT_NULL(peeled);
    ASSERT_NOT_NULL(other);
    ASSERT_EQ(SSL_set_blocking_mode(peeled, 0), 1);
    ASSERT_EQ(SSL_listen_ex(ps.listener, peeled), 0); /* nothing queued yet */
    ASSERT_NO_ERROR();
    ASSERT_EQ(SSL_listen_ex(ps.listener, NULL), -1);
    ASSERT_ONE_ERROR();
    {
        uint64_t deadline = tu_now_ms() + 10000;
        while ((r = SSL_listen_ex(ps.listener, peeled)) == 0) {
            ASSERT_TRUE(tu_now_ms() < deadline);
            (void)SSL_connect(ps.client);
            SSL_handle_events(ps.client);
        }
        ERR_clear_error();
    }
    ASSERT_EQ(r, 1);
    ASSERT_PTR_EQ(SSL_get0_listener(peeled), ps.listener);
    ASSERT_EQ(SSL_is_server(peeled), 1);
    ASSERT_EQ(SSL_listen_ex(ps.listener, peeled), -1); /* already in use */
    ASSERT_ONE_ERROR();
    ASSERT_NULL(SSL_accept_connection(ps.listener, SSL_ACCEPT_CONNECTION_NO_BLOCK));
    ASSERT_ONE_ERROR();
    ps.server = peeled;
    PUMP(&ps, (r = SSL_connect(ps.client)) == 1 || SSL_get_error(ps.client, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    PUMP(&ps, (r = SSL_do_handshake(peeled)) == 1 || SSL_get_error(peeled, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    /* The peeled connection keeps its listener alive: the application's reference goes. */
    SSL_free(ps.listener);
    ps.listener = SSL_get0_listener(peeled);
    ASSERT_EQ(SSL_write_ex(ps.client, "ping", 4, &n), 1);
    PUMP(&ps, SSL_read_ex(peeled, buf, sizeof(buf), &n) == 1);
    ASSERT_EQ(n, 4);
    ASSERT_MEM_EQ(buf, "ping", 4);
    ASSERT_EQ(SSL_write_ex2(peeled, "pong", 4, SSL_WRITE_FLAG_CONCLUDE, &n), 1);
    PUMP(&ps, SSL_read_ex(ps.client, buf, sizeof(buf), &n) == 1);
    ASSERT_EQ(n, 4);
    ASSERT_MEM_EQ(buf, "pong", 4);
    ERR_clear_error();
    /* Freeing the peeled connection closes it in the listener's domain: the client is told. */
    ASSERT_EQ(SSL_up_ref(ps.listener), 1); /* ours again, past the connection */
    SSL_free(peeled);
    ps.server = NULL;
    {
        SSL_CONN_CLOSE_INFO info;
        PUMP(&ps, SSL_get_conn_close_info(ps.client, &info, sizeof(info)) == 1);
        ASSERT_EQ(info.flags & SSL_CONN_CLOSE_FLAG_LOCAL, 0);
    }
    ERR_clear_error();
    SSL_free(other);
    SSL_CTX_free(any);
    peers_free(&ps, sctx, cctx, srv_addr, sfd, cfd);
    return 1;
}

static int test_pair_unaddressed(void)
{
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    BIO *a = NULL, *b = NULL;
    struct peerset ps = {0};

    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 1 << 20, &b, 1 << 20), 1);
    ps.listener = SSL_new_listener(sctx, 0);
    SSL_set_blocking_mode(ps.listener, 0); /* this thread drives both sides */
    ASSERT_NOT_NULL(ps.listener);
    SSL_set_bio(ps.listener, a, a);
    ps.client = SSL_new(cctx);
    SSL_set_blocking_mode(ps.client, 0);
    SSL_set_bio(ps.client, b, b);
    ASSERT_EQ(SSL_set_alpn_protos(ps.client, alpn, sizeof(alpn)), 0);
    ASSERT_TRUE(handshake(&ps));
    ASSERT_TRUE(exchange(&ps, 100000));
    ASSERT_TRUE(shutdown_both(&ps));
    peers_free(&ps, sctx, cctx, NULL, -1, -1);
    return 1;
}

/* The network refusing output: over a datagram pair of 8 KiB per direction the server's first
 * flight and any burst overflow it. Output the pair refuses is kept, in order, and sent once
 * there is room; meanwhile SSL_net_write_desired says so. Every byte arrives. */
static int test_pair_backpressure(void)
{
    enum { LEN = 200000 };
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    BIO *a = NULL, *b = NULL;
    struct peerset ps = {0};
    unsigned char *out = malloc(LEN), *in = malloc(LEN);
    size_t sent = 0, got = 0, n, i;
    int saw_desired = 0, fin = 0, concluded = 0, r;
    uint64_t deadline;

    ASSERT_NOT_NULL(out);
    ASSERT_NOT_NULL(in);
    for (i = 0; i < LEN; i++)
        out[i] = (unsigned char)(i % 251);
    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 8192, &b, 8192), 1);
    ps.listener = SSL_new_listener(sctx, 0);
    ASSERT_NOT_NULL(ps.listener);
    ASSERT_EQ(SSL_set_blocking_mode(ps.listener, 0), 1);
    SSL_set_bio(ps.listener, a, a);
    ps.client = SSL_new(cctx);
    ASSERT_NOT_NULL(ps.client);
    ASSERT_EQ(SSL_set_blocking_mode(ps.client, 0), 1);
    SSL_set_bio(ps.client, b, b);
    ASSERT_EQ(SSL_set_alpn_protos(ps.client, alpn, sizeof(alpn)), 0);
    ASSERT_TRUE(handshake(&ps));

    /* A burst the server does not take in: the pair fills and the client's output waits. */
    deadline = tu_now_ms() + 10000;
    while (!saw_desired) {
        ASSERT_TRUE(tu_now_ms() < deadline);
        r = SSL_write_ex(ps.client, out + sent, LEN - sent, &n);
        if (r == 1)
            sent += n;
        SSL_handle_events(ps.client);
        saw_desired = SSL_net_write_desired(ps.client);
        ASSERT_TRUE(saw_desired || sent < LEN); /* 200 KB cannot fit in 8 KiB */
    }
    /* Both sides run: the kept output goes first, then the rest, every byte in order. */
    deadline = tu_now_ms() + 20000;
    while (!fin) {
        ASSERT_TRUE(tu_now_ms() < deadline);
        if (sent < LEN) {
            r = SSL_write_ex2(ps.client, out + sent, LEN - sent, SSL_WRITE_FLAG_CONCLUDE, &n);
            if (r == 1)
                sent += n;
            concluded = r == 1 && sent == LEN;
        }
        if (sent == LEN && !concluded)
            concluded = SSL_stream_conclude(ps.client, 0);
        SSL_handle_events(ps.client);
        SSL_handle_events(ps.listener);
        while ((r = SSL_read_ex(ps.server, in + got, LEN - got + 1, &n)) == 1) {
            ASSERT_LE(got + n, LEN);
            got += n;
        }
        if (SSL_get_error(ps.server, r) == SSL_ERROR_ZERO_RETURN)
            fin = 1;
    }
    ASSERT_EQ(got, LEN);
    ASSERT_MEM_EQ(in, out, LEN);
    ERR_clear_error();
    PUMP(&ps, SSL_net_write_desired(ps.client) == 0);
    ASSERT_TRUE(shutdown_both(&ps));
    free(out);
    free(in);
    peers_free(&ps, sctx, cctx, NULL, -1, -1);
    return 1;
}

/* Open descriptors of this process (the entries of /proc/self/fd, less the one reading it). */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

/* Many established, idle connections: SSL_handle_events with nothing due does no
 * per-connection work. */
static int test_idle_connections_cost_nothing(void)
{
    enum { N = 100 };
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    BIO_ADDR *srv_addr = NULL;
    int sfd = tu_udp_socket(AF_INET, &srv_addr), cfd[N], i, r;
    SSL *cli[N], *srv[N];
    struct peerset ps = {0};
    uint64_t before, deadline;
    struct timeval tv;
    int inf, fds0 = count_fds() - 1; /* sfd is open already */

    ASSERT_GE(fds0, 0);
    ps.listener = SSL_new_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE);

    SSL_set_blocking_mode(ps.listener, 0); /* this thread drives both sides */
    ASSERT_EQ(SSL_set_fd(ps.listener, sfd), 1);
    for (i = 0; i < N; i++) {
        cfd[i] = tu_udp_socket(AF_INET, NULL);
        cli[i] = SSL_new(cctx);
        SSL_set_blocking_mode(cli[i], 0);
        srv[i] = NULL;
        ASSERT_EQ(SSL_set_fd(cli[i], cfd[i]), 1);
        ASSERT_EQ(SSL_set1_initial_peer_addr(cli[i], srv_addr), 1);
        ASSERT_EQ(SSL_set_alpn_protos(cli[i], alpn, sizeof(alpn)), 0);
    }
    deadline = tu_now_ms() + 30000;
    for (;;) {
        int done = 0, accepted = 0;
        ASSERT_TRUE(tu_now_ms() < deadline);
        for (i = 0; i < N; i++) {
            r = SSL_connect(cli[i]);
            done += r == 1;
        }
        SSL_handle_events(ps.listener);
        for (i = 0; i < N; i++) {
            if (srv[i] == NULL)
                srv[i] = SSL_accept_connection(ps.listener, SSL_ACCEPT_CONNECTION_NO_BLOCK);
            accepted += srv[i] != NULL && SSL_accept(srv[i]) == 1;
        }
        if (done == N && accepted == N)
            break;
    }
    ERR_clear_error();
    /* Non-blocking objects hold no descriptor of their own: only the N + 1 sockets are open
     * (an eventfd is made for a domain only when a thread first waits on its network). */
    ASSERT_EQ(count_fds() - fds0, N + 1);
    /* Let handshake leftovers (acks, retransmit timers) settle, bounded. */
    deadline = tu_now_ms() + 5000;
    do {
        for (i = 0; i < N; i++)
            SSL_handle_events(cli[i]);
        SSL_handle_events(ps.listener);
        ASSERT_EQ(SSL_get_event_timeout(ps.listener, &tv, &inf), 1);
    } while (!inf && tv.tv_sec == 0 && tv.tv_usec < 500000 && tu_now_ms() < deadline);
    ASSERT_TRUE(inf || tv.tv_sec > 0 || tv.tv_usec >= 500000);
    before = OSSLQUIC_SSL_get_conn_ticks(ps.listener);
    for (i = 0; i < 1000; i++)
        ASSERT_EQ(SSL_handle_events(ps.listener), 1);
    ASSERT_U64_EQ(OSSLQUIC_SSL_get_conn_ticks(ps.listener), before);
    for (i = 0; i < N; i++) {
        SSL_free(cli[i]);
        SSL_free(srv[i]);
        close(cfd[i]);
    }
    SSL_free(ps.listener);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    BIO_ADDR_free(srv_addr);
    close(sfd);
    return 1;
}

/* ALPN chosen by the server's callback; SSL_select_next_proto's rules. */
static int alpn_calls;
static SSL *alpn_expected_ssl;
static int alpn_answer;
static unsigned char alpn_seen[64];
static unsigned int alpn_seen_len;

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char prefs[] = {2, 'h', '3', 10, 'h', 'q', '-', 'i', 'n', 't', 'e', 'r', 'o', 'p'};
    unsigned char *sel = NULL;
    alpn_calls++;
    if (ssl != alpn_expected_ssl || arg != (void *)&alpn_calls || inlen > sizeof(alpn_seen))
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    memcpy(alpn_seen, in, inlen);
    alpn_seen_len = inlen;
    if (alpn_answer != SSL_TLSEXT_ERR_OK)
        return alpn_answer;
    if (SSL_select_next_proto(&sel, outlen, prefs, sizeof(prefs), in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int test_select_next_proto(void)
{
    static const unsigned char server[] = {2, 'h', '3', 3, 'f', 'o', 'o'};
    static const unsigned char client[] = {3, 'b', 'a', 'r', 3, 'f', 'o', 'o', 2, 'h', '3'};
    static const unsigned char other[] = {3, 'b', 'a', 'z'};
    static const unsigned char bad[] = {9, 'x'};
    unsigned char *out = (unsigned char *)1, outlen = 9;

    ASSERT_EQ(SSL_select_next_proto(&out, &outlen, server, sizeof(server), client, sizeof(client)),
              OPENSSL_NPN_NEGOTIATED);
    ASSERT_TRUE(out == server + 1 && outlen == 2); /* server's order wins */
    ASSERT_EQ(SSL_select_next_proto(&out, &outlen, server, sizeof(server), other, sizeof(other)),
              OPENSSL_NPN_NO_OVERLAP);
    ASSERT_TRUE(out == other + 1 && outlen == 3); /* the client's first */
    ASSERT_EQ(SSL_select_next_proto(&out, &outlen, server, sizeof(server), bad, sizeof(bad)),
              OPENSSL_NPN_NO_OVERLAP);
    ASSERT_TRUE(out == NULL && outlen == 0);
    ASSERT_EQ(SSL_select_next_proto(&out, &outlen, server, sizeof(server), NULL, 0), OPENSSL_NPN_NO_OVERLAP);
    ASSERT_TRUE(out == NULL && outlen == 0);
    ERR_clear_error();
    ASSERT_EQ(SSL_select_next_proto(NULL, &outlen, server, sizeof(server), client, sizeof(client)), 0);
    ASSERT_ONE_ERROR();
    return 1;
}

static int alpn_run(int answer, int *connected, const unsigned char **sel, unsigned int *sel_len,
                    uint64_t *close_code)
{
    static const unsigned char offer[] = {5, 'h', 'q', '-', '2', '9', 10, 'h', 'q', '-', 'i', 'n', 't',
                                          'e', 'r', 'o', 'p', 13, 'o', 's', 's', 'l', 'q', 'u', 'i', 'c',
                                          '-', 't', 'e', 's', 't'};
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    BIO *a = NULL, *b = NULL;
    struct peerset ps = {0};
    SSL_CONN_CLOSE_INFO info;
    int r = 0;

    ASSERT_NOT_NULL(sctx);
    SSL_CTX_set_alpn_select_cb(sctx, alpn_select, &alpn_calls);
    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 1 << 20, &b, 1 << 20), 1);
    ps.listener = SSL_new_listener(sctx, 0);
    SSL_set_blocking_mode(ps.listener, 0); /* this thread drives both sides */
    SSL_set_bio(ps.listener, a, a);
    ps.client = SSL_new(cctx);
    SSL_set_blocking_mode(ps.client, 0);
    SSL_set_bio(ps.client, b, b);
    ASSERT_EQ(SSL_set_alpn_protos(ps.client, offer, sizeof(offer)), 0);
    alpn_expected_ssl = ps.listener;
    alpn_answer = answer;
    alpn_calls = 0;
    ERR_clear_error();
    PUMP(&ps, (r = SSL_connect(ps.client)) == 1 || SSL_get_error(ps.client, r) != SSL_ERROR_WANT_READ);
    *connected = r == 1;
    ASSERT_EQ(alpn_calls, 1);
    ASSERT_EQ(alpn_seen_len, sizeof(offer));
    ASSERT_EQ(memcmp(alpn_seen, offer, sizeof(offer)), 0);
    if (r == 1) {
        SSL_get0_alpn_selected(ps.client, sel, sel_len);
        *sel = *sel_len == 10 && memcmp(*sel, "hq-interop", 10) == 0 ? (const unsigned char *)"ok" : NULL;
        PUMP(&ps, ps.server != NULL);
        SSL_get0_alpn_selected(ps.server, sel, sel_len);
        if (*sel_len != 10 || memcmp(*sel, "hq-interop", 10) != 0)
            *sel = NULL;
    } else {
        ASSERT_EQ(SSL_get_conn_close_info(ps.client, &info, sizeof(info)), 1);
        *close_code = info.error_code;
        ASSERT_TRUE(info.flags & SSL_CONN_CLOSE_FLAG_TRANSPORT);
        ASSERT_EQ(SSL_get_accept_connection_queue_len(ps.listener), 0);
    }
    ERR_clear_error();
    peers_free(&ps, sctx, cctx, NULL, -1, -1);
    return 1;
}

static int test_alpn_select_cb(void)
{
    const unsigned char *sel = NULL;
    unsigned int sel_len = 0;
    uint64_t code = 0;
    int connected = 0;

    /* The listener context lists osslquic-test, which the client offers too, but the callback
     * decides: it prefers h3 (not offered), then hq-interop. */
    ASSERT_TRUE(alpn_run(SSL_TLSEXT_ERR_OK, &connected, &sel, &sel_len, &code));
    ASSERT_TRUE(connected);
    ASSERT_NOT_NULL(sel);
    /* A refusal ends the handshake with TLS alert no_application_protocol (0x100 + 120). */
    ASSERT_TRUE(alpn_run(SSL_TLSEXT_ERR_ALERT_FATAL, &connected, &sel, &sel_len, &code));
    ASSERT_TRUE(!connected);
    ASSERT_EQ(code, 0x178);
    ASSERT_TRUE(alpn_run(SSL_TLSEXT_ERR_NOACK, &connected, &sel, &sel_len, &code));
    ASSERT_TRUE(!connected);
    ASSERT_EQ(code, 0x178);
    return 1;
}

int main(int argc, char **argv)
{
    const char *d = getenv("OSSLQUIC_CERTS");
    snprintf(certs, sizeof(certs), "%s", d != NULL ? d : "build/certs");
    tu_init(argc, argv);
    RUN(test_context_errors);
    RUN(test_udp_exchange);
    RUN(test_untrusted_server);
    RUN(test_init_state);
    RUN(test_streams);
    RUN(test_incoming_policy_auto);
    RUN(test_pair_unaddressed);
    RUN(test_pair_backpressure);
    RUN(test_keylog);
    RUN(test_select_next_proto);
    RUN(test_alpn_select_cb);
    RUN(test_api_4_0);
    RUN(test_listen_ex);
    RUN(test_read_after_peer_close);
    RUN(test_has_pending);
    RUN(test_shutdown_rapid_flushes);
    RUN(test_shutdown_no_stream_flush);
    RUN(test_idle_connections_cost_nothing);
    return tu_finish();
}
#endif
