/*
 * test_client_cert: servers that ask for client certificates, clients that present one, and
 * the X509 objects a program reads them through. TLS over TCP loopback and QUIC over UDP
 * loopback, both ends driven by this thread.
 *
 *  - SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT on a server (TLS and QUIC): a client
 *    with a certificate from the trusted CA gets through; the server reads it with
 *    SSL_get1_peer_certificate (subject, issuer, serial), SSL_get_peer_cert_chain (what the
 *    client sent after its own certificate) and SSL_get_verify_result (X509_V_OK); the
 *    verify callback is called for each certificate, the last for the client's own.
 *  - No client certificate: the server fails (SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE on
 *    TLS) and the client sees the alert (SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED).
 *  - A certificate from an untrusted CA: the server fails (certificate verify failed, the
 *    result X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, the client sees unknown_ca); a
 *    verify callback returning 1 lets it through and the result keeps the error.
 *  - SSL_VERIFY_PEER alone: no certificate is fine (no peer certificate, X509_V_OK); a bad
 *    one still fails. SSL_VERIFY_NONE: the server does not ask.
 *  - PEM_read_bio_X509 / PEM_write_bio_X509 round trip (bytes equal), X509_NAME_oneline's
 *    buffer rules and X509_NAME_print_ex's forms (OpenSSL 3.5's output), client CA lists,
 *    reference counts, and NULL for every pointer argument (one queued error each).
 *
 * Certificates: build/certs from `cargo run --release --example gencert` (client-*.pem from
 * the test CA, badclient-*.pem from another CA).
 */
#include "tlsutil.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#define CLIENT_SUBJECT "/C=DE/O=osslquic tests/CN=test client"
#define CA_NAME "/CN=osslquic test CA"
#define OTHER_CA_NAME "/CN=osslquic other CA"

/* The verify callback's record of its calls. */
static struct {
    int n, answer, first_ok, first_err, first_depth, last_ok, last_err, last_depth;
    char last_subject[128];
    SSL *last_ssl;
} vc;

static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
    X509 *cur = X509_STORE_CTX_get_current_cert(ctx);

    if (vc.n++ == 0) {
        vc.first_ok = ok;
        vc.first_err = X509_STORE_CTX_get_error(ctx);
        vc.first_depth = X509_STORE_CTX_get_error_depth(ctx);
    }
    vc.last_ok = ok;
    vc.last_err = X509_STORE_CTX_get_error(ctx);
    vc.last_depth = X509_STORE_CTX_get_error_depth(ctx);
    vc.last_ssl = X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    if (cur == NULL || X509_NAME_oneline(X509_get_subject_name(cur), vc.last_subject,
                                         sizeof(vc.last_subject)) == NULL)
        snprintf(vc.last_subject, sizeof(vc.last_subject), "(none)");
    return ok ? 1 : vc.answer;
}

static void vc_reset(int answer)
{
    memset(&vc, 0, sizeof(vc));
    vc.answer = answer;
}

/* A server context of method m asking for client certificates with `mode` (and the
 * callback if `cb`), trusting the test CA. */
static SSL_CTX *server_ctx(const SSL_METHOD *m, int mode, int cb)
{
    SSL_CTX *c = tl_server_ctx_with(m, "chain.pem", "key.pem");

    if (c == NULL || !SSL_CTX_load_verify_locations(c, qu_cert_path("ca.pem"), NULL)) {
        SSL_CTX_free(c);
        return NULL;
    }
    SSL_CTX_set_verify(c, mode, cb ? verify_cb : NULL);
    return c;
}

/* A client context of method m verifying the server, presenting `chain`/`key` (NULL:
 * no certificate). */
static SSL_CTX *client_ctx(const SSL_METHOD *m, const char *chain, const char *key)
{
    SSL_CTX *c = SSL_CTX_new(m);

    if (c == NULL || !SSL_CTX_load_verify_locations(c, qu_cert_path("ca.pem"), NULL))
        goto err;
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    if (chain != NULL && (!SSL_CTX_use_certificate_chain_file(c, qu_cert_path(chain)) ||
                          !SSL_CTX_use_PrivateKey_file(c, qu_cert_path(key), SSL_FILETYPE_PEM)))
        goto err;
    return c;
err:
    SSL_CTX_free(c);
    return NULL;
}

/* The oneline form of a name into a static buffer ("(null)" for NULL). */
static const char *oneline(const X509_NAME *n)
{
    static char buf[256];

    if (n == NULL || X509_NAME_oneline(n, buf, sizeof(buf)) == NULL)
        return "(null)";
    return buf;
}

/* Checks what the server end reads of a good client certificate from client-chain.pem. */
static int check_good_peer(SSL *s)
{
    X509 *peer = SSL_get1_peer_certificate(s);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(s);

    ASSERT_NOT_NULL(peer);
    ASSERT_STR_EQ(oneline(X509_get_subject_name(peer)), CLIENT_SUBJECT);
    ASSERT_STR_EQ(oneline(X509_get_issuer_name(peer)), CA_NAME);
    ASSERT_EQ(ASN1_INTEGER_get(X509_get_serialNumber(peer)), 0x1234);
    ASSERT_EQ(SSL_get_verify_result(s), X509_V_OK);
    /* On a server the chain holds what came after the client's own certificate: the CA. */
    ASSERT_NOT_NULL(chain);
    ASSERT_EQ(sk_X509_num(chain), 1);
    ASSERT_STR_EQ(oneline(X509_get_subject_name(sk_X509_value(chain, 0))), CA_NAME);
    /* The alias macro, as OpenSSL defines it, also takes a reference. */
    {
        X509 *again = SSL_get_peer_certificate(s);

        ASSERT_PTR_EQ(again, peer);
        X509_free(again);
    }
    X509_free(peer);
    return 1;
}

/* Sends one message each way over a finished pair. */
static int tls_talk(struct tl_pair *p)
{
    char buf[16];
    size_t n = 0;
    uint64_t dl = tu_now_ms() + 5000;

    ASSERT_EQ(SSL_write_ex(p->c, "hello", 5, &n), 1);
    while (SSL_read_ex(p->s, buf, sizeof(buf), &n) != 1)
        ASSERT_LT(tu_now_ms(), dl);
    ASSERT_EQ(n, 5);
    ASSERT_MEM_EQ(buf, "hello", 5);
    ERR_clear_error();
    return 1;
}

/* The client's next read fails with an alert from the server (reason `reason`). */
static int client_sees_alert(SSL *c, int reason)
{
    char buf[16];
    size_t n;
    int r;
    uint64_t dl = tu_now_ms() + 5000;

    ERR_clear_error();
    while ((r = SSL_read_ex(c, buf, sizeof(buf), &n)) != 1 &&
           SSL_get_error(c, r) == SSL_ERROR_WANT_READ)
        ASSERT_LT(tu_now_ms(), dl);
    ASSERT_EQ(r, 0);
    ASSERT_EQ(SSL_get_error(c, r), SSL_ERROR_SSL);
    ASSERT_ERROR_IS(ERR_LIB_SSL, reason);
    ERR_clear_error();
    return 1;
}

/* The handshake of a fresh TLS pair; *rc and *rs get the two ends' results. */
static int tls_run(struct tl_pair *p, SSL_CTX *cctx, SSL_CTX *sctx, int *rc, int *rs)
{
    ASSERT_TRUE(tl_pair_new(p, cctx, sctx, "localhost"));
    ASSERT_TRUE(tl_handshake(p->c, p->s, rc, rs));
    return 1;
}

static int test_tls_good_cert(void)
{
    SSL_CTX *sctx = server_ctx(TLS_server_method(),
                               SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT |
                                   SSL_VERIFY_CLIENT_ONCE,
                               1);
    SSL_CTX *cctx = client_ctx(TLS_client_method(), "client-chain.pem", "client-key.pem");
    STACK_OF(X509) *chain;
    struct tl_pair p;
    int rc, rs;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    vc_reset(0);
    ASSERT_TRUE(tls_run(&p, cctx, sctx, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_TRUE(check_good_peer(p.s));
    /* The callback saw the CA (depth 1) then the client (depth 0), both fine. */
    ASSERT_EQ(vc.n, 2);
    ASSERT_EQ(vc.last_ok, 1);
    ASSERT_EQ(vc.last_depth, 0);
    ASSERT_STR_EQ(vc.last_subject, CLIENT_SUBJECT);
    ASSERT_PTR_EQ(vc.last_ssl, p.s);
    /* On a client the chain starts with the server's own certificate. */
    chain = SSL_get_peer_cert_chain(p.c);
    ASSERT_NOT_NULL(chain);
    ASSERT_EQ(sk_X509_num(chain), 2);
    ASSERT_STR_EQ(oneline(X509_get_subject_name(sk_X509_value(chain, 0))),
                  "/CN=rcgen self signed cert");
    ASSERT_STR_EQ(oneline(X509_get_subject_name(sk_X509_value(chain, 1))), CA_NAME);
    ERR_clear_error();
    ASSERT_NULL(sk_X509_value(chain, 2));
    ASSERT_NULL(sk_X509_value(chain, -1));
    if (HAVE_OSSLQUIC) /* osslquic queues an error for an index out of range, OpenSSL none */
        ASSERT_EQ(ERR_GET_REASON(ERR_get_error()), ERR_R_PASSED_INVALID_ARGUMENT);
    ERR_clear_error();
    ASSERT_TRUE(tls_talk(&p));
    tl_pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

static int test_tls_no_cert(void)
{
    SSL_CTX *sctx = server_ctx(TLS_server_method(),
                               SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, 0);
    SSL_CTX *cctx = client_ctx(TLS_client_method(), NULL, NULL);
    struct tl_pair p;
    int rc, rs;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_TRUE(tls_run(&p, cctx, sctx, &rc, &rs));
    /* TLS 1.3: the client is done before the server has read its (empty) Certificate. */
    ASSERT_EQ(rc, 1);
    ASSERT_NE(rs, 1);
    ASSERT_EQ(SSL_get_error(p.s, rs), SSL_ERROR_SSL);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE);
    ERR_clear_error();
    ASSERT_NULL(SSL_get1_peer_certificate(p.s));
    ASSERT_TRUE(client_sees_alert(p.c, SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED));
    tl_pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* A certificate from another CA: refused, unless the callback accepts it. */
static int test_tls_untrusted_cert(void)
{
    int accept;

    for (accept = 0; accept < 2; accept++) {
        SSL_CTX *sctx = server_ctx(TLS_server_method(),
                                   SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, 1);
        SSL_CTX *cctx = client_ctx(TLS_client_method(), "badclient-cert.pem", "badclient-key.pem");
        struct tl_pair p;
        int rc, rs;

        ASSERT_NOT_NULL(sctx);
        ASSERT_NOT_NULL(cctx);
        vc_reset(accept);
        ASSERT_TRUE(tls_run(&p, cctx, sctx, &rc, &rs));
        ASSERT_EQ(rc, 1);
        ASSERT_EQ(vc.first_ok, 0);
        ASSERT_EQ(vc.first_err, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
        ASSERT_EQ(vc.first_depth, 0);
        ASSERT_STR_EQ(vc.last_subject, CLIENT_SUBJECT);
        if (accept) {
            X509 *peer;

            /* Accepted, verification goes on as OpenSSL's: the lone certificate's signature
             * cannot be checked either (ok 0, error 21), then it is reported as verified
             * (ok 1), carrying that error, which is the result. */
            ASSERT_EQ(vc.n, 3);
            ASSERT_EQ(vc.last_ok, 1);
            ASSERT_EQ(vc.last_err, X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE);
            ASSERT_EQ(SSL_get_verify_result(p.s), X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE);
            ASSERT_EQ(rs, 1);
            peer = SSL_get1_peer_certificate(p.s);
            ASSERT_NOT_NULL(peer);
            ASSERT_STR_EQ(oneline(X509_get_issuer_name(peer)), OTHER_CA_NAME);
            X509_free(peer);
            /* Only the client's own certificate was sent: the server's chain is empty. */
            ASSERT_EQ(sk_X509_num(SSL_get_peer_cert_chain(p.s)), 0);
            ASSERT_TRUE(tls_talk(&p));
        } else {
            ASSERT_EQ(vc.n, 1);
            ASSERT_EQ(SSL_get_verify_result(p.s), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
            ASSERT_NE(rs, 1);
            ASSERT_EQ(SSL_get_error(p.s, rs), SSL_ERROR_SSL);
            ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED);
            ERR_clear_error();
            ASSERT_TRUE(client_sees_alert(p.c, SSL_R_TLSV1_ALERT_UNKNOWN_CA));
        }
        tl_pair_free(&p);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
    return 1;
}

/* SSL_VERIFY_PEER alone: asking is not requiring. SSL_VERIFY_NONE: not asking. */
static int test_tls_peer_optional(void)
{
    SSL_CTX *sctx = server_ctx(TLS_server_method(), SSL_VERIFY_PEER, 0);
    SSL_CTX *none = server_ctx(TLS_server_method(), SSL_VERIFY_NONE, 0);
    SSL_CTX *plain = client_ctx(TLS_client_method(), NULL, NULL);
    SSL_CTX *bad = client_ctx(TLS_client_method(), "badclient-cert.pem", "badclient-key.pem");
    SSL_CTX *good = client_ctx(TLS_client_method(), "client-chain.pem", "client-key.pem");
    struct tl_pair p;
    int rc, rs;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(none);
    ASSERT_NOT_NULL(plain);
    ASSERT_NOT_NULL(bad);
    ASSERT_NOT_NULL(good);
    ASSERT_TRUE(tls_run(&p, plain, sctx, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ERR_clear_error();
    ASSERT_NULL(SSL_get1_peer_certificate(p.s));
    /* asked and got none: an empty chain */
    ASSERT_NOT_NULL(SSL_get_peer_cert_chain(p.s));
    ASSERT_EQ(sk_X509_num(SSL_get_peer_cert_chain(p.s)), 0);
    ASSERT_NO_ERROR(); /* no certificate is an answer, not an error */
    ASSERT_EQ(SSL_get_verify_result(p.s), X509_V_OK);
    ASSERT_TRUE(tls_talk(&p));
    tl_pair_free(&p);

    ASSERT_TRUE(tls_run(&p, bad, sctx, &rc, &rs));
    ASSERT_NE(rs, 1);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED);
    ERR_clear_error();
    tl_pair_free(&p);

    /* VERIFY_NONE: a client with a certificate is not asked for it. */
    ASSERT_TRUE(tls_run(&p, good, none, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_NULL(SSL_get1_peer_certificate(p.s));
    ASSERT_NULL(SSL_get_peer_cert_chain(p.s)); /* not asked: no chain */
    /* and the client still reads the server's */
    {
        X509 *srv = SSL_get1_peer_certificate(p.c);

        ASSERT_NOT_NULL(srv);
        ASSERT_STR_EQ(oneline(X509_get_issuer_name(srv)), CA_NAME);
        X509_free(srv);
    }
    ERR_clear_error();
    tl_pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(none);
    SSL_CTX_free(plain);
    SSL_CTX_free(bad);
    SSL_CTX_free(good);
    return 1;
}

/* ---- QUIC */

struct qpeers {
    SSL *listener, *client, *server;
    int sfd, cfd;
    BIO_ADDR *addr;
};

/* Steps both sides until `cond` or 10 s. */
#define PUMP(q, cond)                                                                          \
    do {                                                                                       \
        uint64_t deadline_ = tu_now_ms() + 10000;                                              \
        while (!(cond)) {                                                                      \
            ASSERT_TRUE(tu_now_ms() < deadline_);                                              \
            SSL_handle_events((q)->listener);                                                  \
            SSL_handle_events((q)->client);                                                    \
            if ((q)->server == NULL)                                                           \
                (q)->server =                                                                  \
                    SSL_accept_connection((q)->listener, SSL_ACCEPT_CONNECTION_NO_BLOCK);      \
        }                                                                                      \
    } while (0)

static int quic_setup(struct qpeers *q, SSL_CTX *sctx, SSL_CTX *cctx)
{
    memset(q, 0, sizeof(*q));
    q->sfd = tu_udp_socket(AF_INET, &q->addr);
    q->cfd = tu_udp_socket(AF_INET, NULL);
    ASSERT_GE(q->sfd, 0);
    ASSERT_GE(q->cfd, 0);
    q->listener = SSL_new_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE);
    ASSERT_NOT_NULL(q->listener);
    ASSERT_EQ(SSL_set_blocking_mode(q->listener, 0), 1);
    ASSERT_EQ(SSL_set_fd(q->listener, q->sfd), 1);
    ASSERT_EQ(SSL_listen(q->listener), 1);
    q->client = qu_client(cctx, q->cfd, q->addr, 0);
    ASSERT_NOT_NULL(q->client);
    ASSERT_EQ(SSL_set_blocking_mode(q->client, 0), 1);
    return 1;
}

static void quic_free(struct qpeers *q)
{
    SSL_free(q->server);
    SSL_free(q->client);
    SSL_free(q->listener);
    BIO_ADDR_free(q->addr);
    if (q->sfd >= 0)
        close(q->sfd);
    if (q->cfd >= 0)
        close(q->cfd);
}

/* Runs the handshake to its end on both sides; *rc, *rs: their results. */
static int quic_handshake(struct qpeers *q, int *rc, int *rs)
{
    int r = 0;

    PUMP(q, (r = SSL_connect(q->client)) == 1 || SSL_get_error(q->client, r) != SSL_ERROR_WANT_READ);
    *rc = r;
    ERR_clear_error();
    PUMP(q, q->server != NULL);
    PUMP(q, (r = SSL_accept(q->server)) == 1 || SSL_get_error(q->server, r) != SSL_ERROR_WANT_READ);
    *rs = r;
    return 1;
}

static SSL_CTX *quic_server_ctx(int mode, int cb)
{
    SSL_CTX *c = qu_server_ctx(0);

    if (c == NULL || !SSL_CTX_load_verify_locations(c, qu_cert_path("ca.pem"), NULL)) {
        SSL_CTX_free(c);
        return NULL;
    }
    SSL_CTX_set_verify(c, mode, cb ? verify_cb : NULL);
    return c;
}

static int test_quic_good_cert(void)
{
    SSL_CTX *sctx = quic_server_ctx(SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, 1);
    SSL_CTX *cctx = client_ctx(OSSL_QUIC_client_method(), "client-chain.pem", "client-key.pem");
    struct qpeers q;
    int rc, rs;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    vc_reset(0);
    ASSERT_TRUE(quic_setup(&q, sctx, cctx));
    ASSERT_TRUE(quic_handshake(&q, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_TRUE(check_good_peer(q.server));
    ASSERT_EQ(vc.n, 2);
    ASSERT_STR_EQ(vc.last_subject, CLIENT_SUBJECT);
    /* osslquic: the connection's SSL did not exist yet when the callback ran, so it names
     * the listener (OpenSSL makes the connection's SSL first). */
    ASSERT_PTR_EQ(vc.last_ssl, HAVE_OSSLQUIC ? q.listener : q.server);
    {
        X509 *srv = SSL_get1_peer_certificate(q.client);

        ASSERT_NOT_NULL(srv);
        ASSERT_STR_EQ(oneline(X509_get_subject_name(srv)), "/CN=rcgen self signed cert");
        X509_free(srv);
        ASSERT_EQ(sk_X509_num(SSL_get_peer_cert_chain(q.client)), 2);
    }
    ERR_clear_error();
    quic_free(&q);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* No certificate and an untrusted one fail on both ends; a callback accepting the
 * untrusted one lets it through with the error as the result. */
static int test_quic_refused(void)
{
    int k;

    for (k = 0; k < 3; k++) {
        SSL_CTX *sctx = quic_server_ctx(SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, 1);
        SSL_CTX *cctx = k == 0 ? client_ctx(OSSL_QUIC_client_method(), NULL, NULL)
                               : client_ctx(OSSL_QUIC_client_method(), "badclient-cert.pem",
                                            "badclient-key.pem");
        struct qpeers q;
        int rc, rs, r = 0;
        char buf[8];
        size_t n;

        ASSERT_NOT_NULL(sctx);
        ASSERT_NOT_NULL(cctx);
        vc_reset(k == 2);
        ASSERT_TRUE(quic_setup(&q, sctx, cctx));
        ASSERT_TRUE(quic_handshake(&q, &rc, &rs));
        if (k == 2) {
            X509 *peer;

            ASSERT_EQ(rs, 1);
            ASSERT_EQ(vc.n, 3);
            ASSERT_EQ(SSL_get_verify_result(q.server), X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE);
            peer = SSL_get1_peer_certificate(q.server);
            ASSERT_NOT_NULL(peer);
            ASSERT_STR_EQ(oneline(X509_get_issuer_name(peer)), OTHER_CA_NAME);
            X509_free(peer);
        } else {
            ASSERT_NE(rs, 1);
            ASSERT_EQ(SSL_get_error(q.server, rs), SSL_ERROR_SSL);
            ASSERT_ERROR_QUEUED();
            ERR_clear_error();
            ASSERT_NULL(SSL_get1_peer_certificate(q.server));
            if (k == 1)
                ASSERT_EQ(SSL_get_verify_result(q.server),
                          X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
            /* The client learns it from the server's close, at the latest on a read. */
            PUMP(&q, (r = SSL_read_ex(q.client, buf, sizeof(buf), &n)) == 0 &&
                         SSL_get_error(q.client, r) != SSL_ERROR_WANT_READ);
            ASSERT_EQ(SSL_get_error(q.client, r), SSL_ERROR_SSL);
            ASSERT_ERROR_QUEUED();
            ERR_clear_error();
        }
        quic_free(&q);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
    return 1;
}

/* ---- X509 objects */

static char *read_file(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (*len = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = malloc((size_t)*len + 1)) != NULL) {
        if (fread(b, 1, (size_t)*len, f) != (size_t)*len) {
            free(b);
            b = NULL;
        } else {
            b[*len] = 0;
        }
    }
    fclose(f);
    return b;
}

#if HAVE_OSSLQUIC
/* What a QUIC client's verify callback saw when it called back into its own connection. */
static struct {
    int n;
    uint64_t stream_id;
    unsigned long id_err, read_err, events_err;
    int read_ret, events_ret;
} rc_seen;

static int reentry_cb(int ok, X509_STORE_CTX *ctx)
{
    SSL *s = X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    unsigned char b;
    size_t n = 0;

    if (rc_seen.n++ == 0 && s != NULL) {
        ERR_clear_error();
        rc_seen.stream_id = SSL_get_stream_id(s);
        rc_seen.id_err = ERR_peek_last_error();
        ERR_clear_error();
        rc_seen.read_ret = SSL_read_ex(s, &b, 1, &n);
        rc_seen.read_err = ERR_peek_last_error();
        ERR_clear_error();
        /* Needs the connection's domain, which comes before the connection in the lock
         * order: before, this waited for ever for the domain its own thread held. */
        rc_seen.events_ret = SSL_handle_events(s);
        rc_seen.events_err = ERR_peek_last_error();
        ERR_clear_error();
    }
    return ok;
}

/* osslquic runs a connection's certificate verification under that connection's lock: a
 * verify callback that calls back into the same connection, or into its domain
 * (SSL_handle_events), gets an error saying so (before, the call waited for its own thread
 * for ever), and the handshake goes on. */
static int test_quic_callback_reentry(void)
{
    SSL_CTX *sctx = quic_server_ctx(SSL_VERIFY_NONE, 0);
    SSL_CTX *cctx = client_ctx(OSSL_QUIC_client_method(), NULL, NULL);
    struct qpeers q;
    int rc, rs;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, reentry_cb);
    memset(&rc_seen, 0, sizeof(rc_seen));
    ASSERT_TRUE(quic_setup(&q, sctx, cctx));
    ASSERT_TRUE(quic_handshake(&q, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_GE(rc_seen.n, 1);
    ASSERT_U64_EQ(rc_seen.stream_id, UINT64_MAX);
    ASSERT_EQ(ERR_GET_LIB(rc_seen.id_err), ERR_LIB_BIO);
    ASSERT_EQ(ERR_GET_REASON(rc_seen.id_err), BIO_R_UNSUPPORTED_METHOD);
    ASSERT_EQ(rc_seen.read_ret, 0);
    ASSERT_EQ(ERR_GET_REASON(rc_seen.read_err), BIO_R_UNSUPPORTED_METHOD);
    ASSERT_EQ(rc_seen.events_ret, 0);
    ASSERT_EQ(ERR_GET_REASON(rc_seen.events_err), BIO_R_UNSUPPORTED_METHOD);
    /* After the callback, the same calls work. */
    ASSERT_U64_EQ(SSL_get_stream_id(q.client), UINT64_MAX);
    ASSERT_EQ(ERR_peek_error(), 0);
    ERR_clear_error();
    quic_free(&q);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}
#endif

static int test_pem_round_trip(void)
{
    long len = 0, clen = 0;
    char *chain = read_file(qu_cert_path("client-chain.pem"), &len);
    char *leaf = read_file(qu_cert_path("client-cert.pem"), &clen);
    BIO *in, *out;
    X509 *x = NULL, *ca, *r;
    char *data;
    long n;

    ASSERT_NOT_NULL(chain);
    ASSERT_NOT_NULL(leaf);
    in = BIO_new_mem_buf(chain, (int)len);
    ASSERT_NOT_NULL(in);
    r = PEM_read_bio_X509(in, &x, NULL, NULL);
    ASSERT_NOT_NULL(r);
    ASSERT_PTR_EQ(r, x);
    ASSERT_STR_EQ(oneline(X509_get_subject_name(x)), CLIENT_SUBJECT);
    ca = PEM_read_bio_X509(in, NULL, NULL, NULL); /* the next block: the CA */
    ASSERT_NOT_NULL(ca);
    ASSERT_STR_EQ(oneline(X509_get_subject_name(ca)), CA_NAME);
    ERR_clear_error();
    ASSERT_NULL(PEM_read_bio_X509(in, NULL, NULL, NULL)); /* nothing left */
    ASSERT_ERROR_IS(ERR_LIB_PEM, PEM_R_NO_START_LINE); /* takes it off the queue */
    ASSERT_NO_ERROR();

    out = BIO_new(BIO_s_mem());
    ASSERT_NOT_NULL(out);
    ASSERT_EQ(PEM_write_bio_X509(out, x), 1);
    n = BIO_get_mem_data(out, &data);
    ASSERT_EQ(n, clen);
    ASSERT_MEM_EQ(data, leaf, (size_t)clen);

    /* Reading into a slot that holds a certificate replaces it. */
    BIO_free(in);
    in = BIO_new_mem_buf(chain, (int)len);
    ASSERT_NOT_NULL(PEM_read_bio_X509(in, &ca, NULL, NULL));
    ASSERT_STR_EQ(oneline(X509_get_subject_name(ca)), CLIENT_SUBJECT);

    /* Reference counts: two more references, three frees (ASan/valgrind count the rest). */
    ASSERT_EQ(X509_up_ref(x), 1);
    ASSERT_EQ(X509_up_ref(x), 1);
    X509_free(x);
    X509_free(x);
    X509_free(x);
    X509_free(ca);
    BIO_free(in);
    BIO_free(out);
    free(chain);
    free(leaf);
    return 1;
}

/* Expected values: OpenSSL 3.5's output for the same certificate. */
static int test_name_text(void)
{
    long len = 0;
    char *pem = read_file(qu_cert_path("client-cert.pem"), &len);
    BIO *in, *out;
    X509 *x;
    X509_NAME *nm;
    char buf[64], *s, *data;
    long n;
    static const struct {
        int size;
        const char *want;
    } sizes[] = {{1, ""}, {5, ""}, {6, "/C=DE"}, {21, "/C=DE"}, {27, "/C=DE/O=osslquic tests"},
                 {37, "/C=DE/O=osslquic tests"}, {38, CLIENT_SUBJECT}, {64, CLIENT_SUBJECT}};
    static const struct {
        unsigned long flags;
        int indent, ret;
        const char *want;
    } forms[] = {
        {0, 2, 1, "C=DE, O=osslquic tests, CN=test client"},
        {XN_FLAG_ONELINE, 0, 44, "C = DE, O = osslquic tests, CN = test client"},
        {XN_FLAG_ONELINE, 2, 46, "  C = DE, O = osslquic tests, CN = test client"},
        {XN_FLAG_RFC2253, 0, 36, "CN=test client,O=osslquic tests,C=DE"},
        {XN_FLAG_MULTILINE, 2, 119,
         "  countryName               = DE\n"
         "  organizationName          = osslquic tests\n"
         "  commonName                = test client"},
    };
    size_t i;

    ASSERT_NOT_NULL(pem);
    in = BIO_new_mem_buf(pem, (int)len);
    x = PEM_read_bio_X509(in, NULL, NULL, NULL);
    ASSERT_NOT_NULL(x);
    nm = X509_get_subject_name(x);
    s = X509_NAME_oneline(nm, NULL, 0); /* allocated; size ignored */
    ASSERT_NOT_NULL(s);
    ASSERT_STR_EQ(s, CLIENT_SUBJECT);
    OPENSSL_free(s);
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        memset(buf, 'Z', sizeof(buf));
        ASSERT_PTR_EQ(X509_NAME_oneline(nm, buf, sizes[i].size), buf);
        ASSERT_STR_EQ(buf, sizes[i].want);
        ASSERT_EQ(buf[sizes[i].size < 64 ? sizes[i].size : 63] == 'Z' || sizes[i].size == 64, 1);
    }
    ASSERT_NULL(X509_NAME_oneline(nm, buf, 0));
    if (HAVE_OSSLQUIC)
        ASSERT_ONE_ERROR(); /* OpenSSL queues nothing */
    ERR_clear_error();
    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        out = BIO_new(BIO_s_mem());
        ASSERT_EQ(X509_NAME_print_ex(out, nm, forms[i].indent, forms[i].flags), forms[i].ret);
        n = BIO_get_mem_data(out, &data);
        ASSERT_EQ(n, (long)strlen(forms[i].want));
        ASSERT_MEM_EQ(data, forms[i].want, (size_t)n);
        BIO_free(out);
    }
    ASSERT_EQ(ASN1_INTEGER_get(X509_get0_serialNumber(x)), 4660);
    X509_free(x);
    BIO_free(in);
    free(pem);
    return 1;
}

/* SSL_load_client_CA_file, SSL_CTX_set_client_CA_list and SSL_CTX_add_client_CA: the names
 * a server sends; a handshake with them still works. */
static int test_client_ca_list(void)
{
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(qu_cert_path("chain.pem"));
    SSL_CTX *sctx = server_ctx(TLS_server_method(),
                               SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, 0);
    SSL_CTX *cctx = client_ctx(TLS_client_method(), "client-chain.pem", "client-key.pem");
    long len = 0;
    char *pem = read_file(qu_cert_path("other-ca.pem"), &len);
    BIO *in = pem != NULL ? BIO_new_mem_buf(pem, (int)len) : NULL;
    X509 *other;
    struct tl_pair p;
    int rc, rs;

    ASSERT_NOT_NULL(names);
    ASSERT_EQ(sk_X509_NAME_num(names), 2); /* the server's certificate and the CA */
    ASSERT_STR_EQ(oneline(sk_X509_NAME_value(names, 0)), "/CN=rcgen self signed cert");
    ASSERT_STR_EQ(oneline(sk_X509_NAME_value(names, 1)), CA_NAME);
    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    SSL_CTX_set_client_CA_list(sctx, names); /* the context takes the list */
    ASSERT_NOT_NULL(in);
    other = PEM_read_bio_X509(in, NULL, NULL, NULL);
    ASSERT_NOT_NULL(other);
    ASSERT_EQ(SSL_CTX_add_client_CA(sctx, other), 1);
    X509_free(other);
    BIO_free(in);
    free(pem);
    ASSERT_TRUE(tls_run(&p, cctx, sctx, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_TRUE(check_good_peer(p.s));
    tl_pair_free(&p);
    ERR_clear_error();
    ASSERT_NULL(SSL_load_client_CA_file(qu_cert_path("key.pem"))); /* no certificate in it */
    if (HAVE_OSSLQUIC)
        ASSERT_ONE_ERROR();
    ERR_clear_error();
    names = SSL_load_client_CA_file(qu_cert_path("ca.pem"));
    ASSERT_NOT_NULL(names);
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* NULL for each pointer argument: the failure value and exactly one queued error. */
static int test_null_args(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    BIO *b = BIO_new(BIO_s_mem());
    char buf[16];

    ASSERT_NOT_NULL(ctx);
    ASSERT_NOT_NULL(b);
    if (!HAVE_OSSLQUIC) { /* the NULL contract is osslquic's */
        BIO_free(b);
        SSL_CTX_free(ctx);
        tu_skip("osslquic's NULL-argument contract");
        return 1;
    }
    ERR_clear_error();
    ASSERT_NULL(X509_get_subject_name(NULL));
    ASSERT_ONE_ERROR();
    ASSERT_NULL(X509_get_issuer_name(NULL));
    ASSERT_ONE_ERROR();
    ASSERT_NULL(X509_get_serialNumber(NULL));
    ASSERT_ONE_ERROR();
    ASSERT_NULL(X509_get0_serialNumber(NULL));
    ASSERT_ONE_ERROR();
    ASSERT_EQ(ASN1_INTEGER_get(NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(X509_up_ref(NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_NULL(X509_NAME_oneline(NULL, NULL, 0));
    ASSERT_ONE_ERROR();
    ASSERT_NULL(X509_NAME_oneline(NULL, buf, sizeof(buf)));
    ASSERT_ONE_ERROR();
    ASSERT_EQ(X509_NAME_print_ex(b, NULL, 0, XN_FLAG_ONELINE), -1);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(X509_NAME_print_ex(b, NULL, 0, 0), 0);
    ASSERT_ONE_ERROR();
    ASSERT_NULL(PEM_read_bio_X509(NULL, NULL, NULL, NULL));
    ASSERT_ONE_ERROR();
    ASSERT_EQ(PEM_write_bio_X509(b, NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(PEM_write_bio_X509(NULL, NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_NULL(SSL_get1_peer_certificate(NULL));
    ASSERT_ONE_ERROR();
    ASSERT_NULL(SSL_get_peer_cert_chain(NULL));
    ASSERT_ONE_ERROR();
    ASSERT_EQ(OPENSSL_sk_num(NULL), -1);
    ASSERT_ONE_ERROR();
    ASSERT_NULL(OPENSSL_sk_value(NULL, 0));
    ASSERT_ONE_ERROR();
    ASSERT_NULL(SSL_load_client_CA_file(NULL));
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_CTX_add_client_CA(ctx, NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_CTX_add_client_CA(NULL, NULL), 0);
    ASSERT_ONE_ERROR();
    SSL_CTX_set_client_CA_list(NULL, NULL);
    ASSERT_ONE_ERROR();
    SSL_CTX_set_client_CA_list(ctx, NULL); /* clears the list */
    ASSERT_NO_ERROR();
    X509_free(NULL);
    X509_NAME_free(NULL);
    OPENSSL_sk_free(NULL);
    ASSERT_NO_ERROR();
    /* Before any handshake: no peer certificate, no error. */
    {
        SSL *s = SSL_new(ctx);

        ASSERT_NOT_NULL(s);
        ASSERT_NULL(SSL_get1_peer_certificate(s));
        ASSERT_NULL(SSL_get_peer_cert_chain(s));
        ASSERT_NO_ERROR();
        SSL_free(s);
    }
    BIO_free(b);
    SSL_CTX_free(ctx);
    return 1;
}

int main(int argc, char **argv)
{
    tu_init(argc, argv);
    qu_init();
    RUN(test_tls_good_cert);
    RUN(test_tls_no_cert);
    RUN(test_tls_untrusted_cert);
    RUN(test_tls_peer_optional);
    RUN(test_quic_good_cert);
    RUN(test_quic_refused);
#if HAVE_OSSLQUIC
    RUN(test_quic_callback_reentry);
#endif
    RUN(test_pem_round_trip);
    RUN(test_name_text);
    RUN(test_client_ca_list);
    RUN(test_null_args);
    return tu_finish();
}
