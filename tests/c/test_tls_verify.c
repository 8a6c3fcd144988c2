/*
 * test_tls_verify: a TLS client's verify callback, per-connection verification settings and
 * a server switching contexts by name, over TCP loopback (both ends in one thread).
 *
 *  - SSL_CTX_set_verify with a callback: called with preverify_ok and an X509_STORE_CTX whose
 *    error, depth and SSL (X509_STORE_CTX_get_ex_data with
 *    SSL_get_ex_data_X509_STORE_CTX_idx) it reads; on success every call has
 *    preverify_ok 1 and the last is for the peer's certificate (depth 0).
 *  - Returning 1 on a failed verification (a name mismatch) accepts the peer, and
 *    SSL_get_verify_result reports the error; clearing it with X509_STORE_CTX_set_error makes
 *    the result X509_V_OK.
 *  - Returning 0 fails the handshake with "certificate verify failed" (the result is
 *    X509_V_ERR_UNSPECIFIED when the callback left no error), unless the mode is
 *    SSL_VERIFY_NONE, where the handshake goes on.
 *  - SSL_set_verify on one connection overrides its context's mode and callback;
 *    SSL_get_verify_mode / SSL_CTX_get_verify_mode.
 *  - SSL_set_SSL_CTX in the server-name callback: the handshake uses the new context's
 *    certificate (the client verifies the name it asked for) and its ALPN callback;
 *    SSL_get_SSL_CTX follows; without the switch the same client fails verification.
 *
 * The expected values are OpenSSL 3.5's (tests/c/check-openssl.sh runs this file against it).
 */
#include "tlsutil.h"

#define MAX_CALLS 16

static struct {
    int n, ok[MAX_CALLS], err[MAX_CALLS], depth[MAX_CALLS];
    int cert_null[MAX_CALLS];
    SSL *ssl[MAX_CALLS];
    char name[32];   /* SSL_get_servername of the SSL, called inside the callback */
    int answer;      /* what the callback returns */
    int clear_error; /* X509_STORE_CTX_set_error(ctx, X509_V_OK) on failures */
} vc;

static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
    int i = vc.n++;

    if (i < MAX_CALLS) {
        vc.ok[i] = ok;
        vc.err[i] = X509_STORE_CTX_get_error(ctx);
        vc.depth[i] = X509_STORE_CTX_get_error_depth(ctx);
        vc.cert_null[i] = X509_STORE_CTX_get_current_cert(ctx) == NULL;
        vc.ssl[i] = X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
        if (vc.ssl[i] != NULL) {
            const char *n = SSL_get_servername(vc.ssl[i], TLSEXT_NAMETYPE_host_name);

            snprintf(vc.name, sizeof(vc.name), "%s", n != NULL ? n : "(null)");
        }
    }
    if (!ok && vc.clear_error)
        X509_STORE_CTX_set_error(ctx, X509_V_OK);
    return vc.answer;
}

static void vc_reset(int answer, int clear_error)
{
    memset(&vc, 0, sizeof(vc));
    vc.answer = answer;
    vc.clear_error = clear_error;
}

/* One handshake of a fresh pair; the client asks for `host`. */
static int run_pair(SSL_CTX *cctx, SSL_CTX *sctx, const char *host, struct tl_pair *p, int *rc, int *rs)
{
    ASSERT_TRUE(tl_pair_new(p, cctx, sctx, host));
    ASSERT_TRUE(tl_handshake(p->c, p->s, rc, rs));
    return 1;
}

static int test_callback_success(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_PEER);
    struct tl_pair p;
    int rc, rs, i;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, verify_cb);
    ASSERT_EQ(SSL_CTX_get_verify_mode(cctx), SSL_VERIFY_PEER);
    vc_reset(1, 0);
    ASSERT_TRUE(run_pair(cctx, sctx, "localhost", &p, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_EQ(SSL_get_verify_result(p.c), X509_V_OK);
    ASSERT_GE(vc.n, 1);
    ASSERT_LE(vc.n, MAX_CALLS);
    for (i = 0; i < vc.n; i++) {
        ASSERT_EQ(vc.ok[i], 1);
        ASSERT_EQ(vc.err[i], X509_V_OK);
        ASSERT_PTR_EQ(vc.ssl[i], p.c);
        ASSERT_EQ(vc.cert_null[i], 0); /* the certificate at that depth */
    }
    ASSERT_EQ(vc.depth[vc.n - 1], 0); /* the peer's own certificate last */
    ASSERT_STR_EQ(vc.name, "localhost");
    ERR_clear_error();
    tl_pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* A name mismatch: the callback sees preverify_ok 0 with X509_V_ERR_HOSTNAME_MISMATCH at
 * depth 0; accepting goes on and the error stays the result, unless the callback clears it. */
static int accept_failure(int clear_error)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_PEER);
    struct tl_pair p;
    int rc, rs, i, saw = 0;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, verify_cb);
    vc_reset(1, clear_error);
    ASSERT_TRUE(run_pair(cctx, sctx, "wrong.example", &p, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    for (i = 0; i < vc.n && i < MAX_CALLS; i++) {
        ASSERT_PTR_EQ(vc.ssl[i], p.c);
        if (!vc.ok[i]) {
            ASSERT_EQ(vc.err[i], X509_V_ERR_HOSTNAME_MISMATCH);
            ASSERT_EQ(vc.depth[i], 0);
            saw = 1;
        }
    }
    ASSERT_TRUE(saw);
    ASSERT_EQ(SSL_get_verify_result(p.c), clear_error ? X509_V_OK : X509_V_ERR_HOSTNAME_MISMATCH);
    ERR_clear_error();
    tl_pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

static int test_callback_accepts_failure(void)
{
    ASSERT_TRUE(accept_failure(0));
    ASSERT_TRUE(accept_failure(1));
    return 1;
}

/* Returning 0 (for a chain that verifies) fails the handshake; with SSL_VERIFY_NONE it only
 * leaves the error in the result. */
static int reject(int mode)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(mode);
    struct tl_pair p;
    int rc, rs;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    SSL_CTX_set_verify(cctx, mode, verify_cb);
    vc_reset(0, 0);
    ASSERT_TRUE(run_pair(cctx, sctx, "localhost", &p, &rc, &rs));
    ASSERT_EQ(vc.n, 1); /* the first refusal ends verification */
    ASSERT_EQ(vc.ok[0], 1);
    ASSERT_EQ(SSL_get_verify_result(p.c), X509_V_ERR_UNSPECIFIED);
    if (mode == SSL_VERIFY_NONE) {
        ASSERT_EQ(rc, 1);
        ASSERT_EQ(rs, 1);
    } else {
        ASSERT_TRUE(rc != 1);
        ASSERT_EQ(tl_cerr_ssl, SSL_ERROR_SSL);
        ASSERT_TRUE(tl_client_failed_with(SSL_R_CERTIFICATE_VERIFY_FAILED));
        ASSERT_TRUE(tl_server_finish(p.s) != 1); /* the server got the client's alert */
    }
    ERR_clear_error();
    tl_pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

static int test_callback_rejects(void)
{
    ASSERT_TRUE(reject(SSL_VERIFY_PEER));
    ASSERT_TRUE(reject(SSL_VERIFY_NONE));
    return 1;
}

/* SSL_set_verify: one connection refuses through its own callback; another of the same
 * context (SSL_VERIFY_NONE, no callback) is unaffected. */
static int test_set_verify(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_NONE);
    struct tl_pair p, q;
    int rc, rs;

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    vc_reset(0, 0);
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    SSL_set_verify(p.c, SSL_VERIFY_PEER, verify_cb);
    ASSERT_EQ(SSL_get_verify_mode(p.c), SSL_VERIFY_PEER);
    ASSERT_EQ(SSL_CTX_get_verify_mode(cctx), SSL_VERIFY_NONE);
    ASSERT_TRUE(tl_handshake(p.c, p.s, &rc, &rs));
    ASSERT_TRUE(rc != 1);
    ASSERT_EQ(vc.n, 1);
    ASSERT_TRUE(tl_client_failed_with(SSL_R_CERTIFICATE_VERIFY_FAILED));

    ASSERT_TRUE(run_pair(cctx, sctx, "wrong.example", &q, &rc, &rs));
    ASSERT_EQ(SSL_get_verify_mode(q.c), SSL_VERIFY_NONE);
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_EQ(vc.n, 1); /* not called for q */
    ASSERT_EQ(SSL_get_verify_result(q.c), X509_V_ERR_HOSTNAME_MISMATCH);
    ERR_clear_error();
    tl_pair_free(&p);
    tl_pair_free(&q);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* ---- SSL_set_SSL_CTX in the server-name callback */

static SSL_CTX *alt_ctx;
static int switch_on, switch_calls, switch_ok;

static int sni_switch(SSL *s, int *al, void *arg)
{
    const char *n = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);

    (void)al;
    (void)arg;
    switch_calls++;
    if (switch_on && n != NULL && strcmp(n, "alt.example") == 0)
        switch_ok = SSL_set_SSL_CTX(s, alt_ctx) == alt_ctx && SSL_get_SSL_CTX(s) == alt_ctx;
    return SSL_TLSEXT_ERR_OK;
}

/* Each context's ALPN callback picks its own protocol from the client's offer. */
static int alpn_pick(SSL *s, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned int inlen, void *arg)
{
    const char *want = arg;
    unsigned int i;

    (void)s;
    for (i = 0; i + 1 < inlen; i += 1u + in[i]) {
        if (in[i] == strlen(want) && memcmp(in + i + 1, want, in[i]) == 0) {
            *out = in + i + 1;
            *outlen = in[i];
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static int switch_case(SSL_CTX *sctx, SSL_CTX *cctx, const char *host, int on, int want_ok,
                       const char *want_alpn)
{
    static const unsigned char offer[] = {3, 'a', 'a', 'a', 3, 'b', 'b', 'b'};
    struct tl_pair p;
    int rc, rs;
    const unsigned char *sel = NULL;
    unsigned int sl = 0;

    switch_on = on;
    switch_calls = switch_ok = 0;
    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, host));
    ASSERT_EQ(SSL_set_alpn_protos(p.c, offer, sizeof(offer)), 0);
    ASSERT_PTR_EQ(SSL_get_SSL_CTX(p.s), sctx);
    ASSERT_TRUE(tl_handshake(p.c, p.s, &rc, &rs));
    ASSERT_EQ(switch_calls, 1);
    if (want_ok) {
        ASSERT_EQ(rc, 1);
        ASSERT_EQ(rs, 1);
        ASSERT_EQ(SSL_get_verify_result(p.c), X509_V_OK);
        SSL_get0_alpn_selected(p.c, &sel, &sl);
        ASSERT_EQ(sl, 3);
        ASSERT_MEM_EQ(sel, want_alpn, 3);
    } else {
        /* The certificate served is not for the name asked. */
        ASSERT_TRUE(rc != 1);
        ASSERT_EQ(SSL_get_verify_result(p.c), X509_V_ERR_HOSTNAME_MISMATCH);
        ASSERT_TRUE(tl_client_failed_with(SSL_R_CERTIFICATE_VERIFY_FAILED));
    }
    ASSERT_PTR_EQ(SSL_get_SSL_CTX(p.s), switch_ok ? alt_ctx : sctx);
    ERR_clear_error();
    tl_pair_free(&p);
    return 1;
}

static int test_switch_ctx(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_PEER);

    alt_ctx = tl_server_ctx_with(TLS_server_method(), "alt-chain.pem", "alt-key.pem");
    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_NOT_NULL(alt_ctx);
    SSL_CTX_set_tlsext_servername_callback(sctx, sni_switch);
    SSL_CTX_set_alpn_select_cb(sctx, alpn_pick, (void *)"aaa");
    SSL_CTX_set_alpn_select_cb(alt_ctx, alpn_pick, (void *)"bbb");

    /* alt.example: switched, alt.example's certificate and the alt context's ALPN. */
    ASSERT_TRUE(switch_case(sctx, cctx, "alt.example", 1, 1, "bbb"));
    ASSERT_EQ(switch_ok, 1);
    /* localhost: no switch, the first context's certificate and ALPN. */
    ASSERT_TRUE(switch_case(sctx, cctx, "localhost", 1, 1, "aaa"));
    ASSERT_EQ(switch_ok, 0);
    /* The control: the callback does not switch, so alt.example gets localhost's. */
    ASSERT_TRUE(switch_case(sctx, cctx, "alt.example", 0, 0, NULL));

    SSL_CTX_free(alt_ctx);
    alt_ctx = NULL;
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
    RUN(test_callback_success);
    RUN(test_callback_accepts_failure);
    RUN(test_callback_rejects);
    RUN(test_set_verify);
    RUN(test_switch_ctx);
    return tu_finish();
}
