/*
 * test_groups: key-exchange groups (issue 16). Our client and server, TLS over TCP and QUIC,
 * negotiate X25519MLKEM768 by default, as OpenSSL 3.5 does (SSL_get_negotiated_group gives
 * TLSEXT_nid_unknown | 0x11ec, SSL_group_to_name and SSL_get0_group_name its name);
 * SSL_CTX_set1_groups_list, SSL_set1_groups_list and SSL_CTX_set1_groups restrict the offer
 * (a client offering X25519 only gets X25519; a server wanting secp384r1 asks a default
 * client for it with a HelloRetryRequest); lists with no group in common fail the handshake;
 * bad lists fail with an error queued and leave the previous list. Against OpenSSL 3.5 in
 * both directions: tests/openssl/run.sh groups.
 */
#include "tlsutil.h"

#ifdef TEST_REAL_OPENSSL
int main(void)
{
    return 0; /* needs libssl: not part of the libcrypto comparison run */
}
#else
#include <openssl/ssl.h>

#if HAVE_OSSLQUIC

#define MLKEM_NID (TLSEXT_nid_unknown | 0x11ec)

#define PUMP(cond) QU_PUMP(l, c, s, cfd, cond)

/* Both ends of a finished handshake agree on group `nid`, called `name`. */
static int agree(SSL *c, SSL *s, int nid, const char *name)
{
    ASSERT_EQ(SSL_get_negotiated_group(c), nid);
    ASSERT_EQ(SSL_get_negotiated_group(s), nid);
    ASSERT_STR_EQ(SSL_group_to_name(c, nid), name);
    ASSERT_STR_EQ(SSL_get0_group_name(c), name);
    ASSERT_STR_EQ(SSL_get0_group_name(s), name);
    return 1;
}

/*
 * One TLS handshake between a client of cctx and a server of sctx; the client's own list is
 * `cgroups` when not NULL (SSL_set1_groups_list). With nid > 0 it must succeed on group nid
 * (`name`); with nid 0 it must fail.
 */
static int tls_case(SSL_CTX *cctx, SSL_CTX *sctx, const char *cgroups, int nid, const char *name)
{
    struct tl_pair p;
    int rc, rs;

    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    if (cgroups != NULL)
        ASSERT_EQ(SSL_set1_groups_list(p.c, cgroups), 1);
    ASSERT_EQ(SSL_get_negotiated_group(p.c), 0); /* NID_undef before the handshake */
    ASSERT_NULL(SSL_get0_group_name(p.c));
    ASSERT_TRUE(tl_handshake(p.c, p.s, &rc, &rs));
    if (nid == 0) {
        ASSERT_TRUE(rc != 1 || rs != 1);
        ERR_clear_error();
        tl_pair_free(&p);
        return 1;
    }
    ASSERT_EQ(rc, 1);
    if (rs != 1)
        rs = tl_server_finish(p.s);
    ASSERT_EQ(rs, 1);
    ASSERT_TRUE(agree(p.c, p.s, nid, name));
    tl_pair_free(&p);
    return 1;
}

static int test_tls_groups(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_PEER);
    SSL_CTX *s384 = tl_server_ctx(), *cx = tl_client_ctx(SSL_VERIFY_PEER);
    int nids[] = {NID_X9_62_prime256v1};

    ASSERT_TRUE(sctx != NULL && cctx != NULL && s384 != NULL && cx != NULL);
    /* The default, as OpenSSL 3.5's. */
    ASSERT_TRUE(tls_case(cctx, sctx, NULL, MLKEM_NID, "X25519MLKEM768"));
    /* The client's own list, and its context's. */
    ASSERT_TRUE(tls_case(cctx, sctx, "x25519", NID_X25519, "x25519"));
    ASSERT_TRUE(tls_case(cctx, sctx, "P-256:X25519", NID_X9_62_prime256v1, "secp256r1"));
    ASSERT_EQ(SSL_CTX_set1_groups_list(cx, "X25519"), 1);
    ASSERT_TRUE(tls_case(cx, sctx, NULL, NID_X25519, "x25519"));
    /* NIDs. */
    ASSERT_EQ(SSL_CTX_set1_groups(cx, nids, 1), 1);
    ASSERT_TRUE(tls_case(cx, sctx, NULL, NID_X9_62_prime256v1, "secp256r1"));
    /* A server wanting secp384r1 only: the default client's shares are for X25519MLKEM768
     * and X25519, so the server asks for secp384r1 (HelloRetryRequest). */
    ASSERT_EQ(SSL_CTX_set1_groups_list(s384, "secp384r1"), 1);
    ASSERT_TRUE(tls_case(cctx, s384, NULL, NID_secp384r1, "secp384r1"));
    /* Nothing in common: no handshake. */
    ASSERT_TRUE(tls_case(cctx, s384, "X25519MLKEM768:X25519", 0, NULL));
    /* The server's list restricts what a client may negotiate; the hybrid P-256 one. */
    ASSERT_EQ(SSL_CTX_set1_groups_list(s384, "SecP256r1MLKEM768:secp384r1"), 1);
    ASSERT_TRUE(tls_case(cctx, s384, "secp256r1mlkem768", TLSEXT_nid_unknown | 0x11eb,
                         "SecP256r1MLKEM768"));
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    SSL_CTX_free(s384);
    SSL_CTX_free(cx);
    return 1;
}

/* Bad lists and NIDs fail with an error queued, and the previous list stays. */
static int test_bad_lists(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_PEER);
    SSL *c;
    int dup[] = {NID_X25519, NID_X25519}, x448[] = {NID_X448}, bogus[] = {12345};
    const char *bad[] = {"bogus", "X25519:bogus", "X25519::P-256", "**X25519", "?DEFAULT", "*",
                         "x448" /* OpenSSL's default provider has it, aws-lc-rs does not */};
    size_t i;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_EQ(SSL_CTX_set1_groups_list(cctx, "X25519"), 1);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ASSERT_EQ(SSL_CTX_set1_groups_list(cctx, bad[i]), 0);
        ASSERT_ONE_ERROR();
    }
    ASSERT_EQ(SSL_CTX_set1_groups(cctx, dup, 2), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_CTX_set1_groups(cctx, x448, 1), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_CTX_set1_groups(cctx, bogus, 1), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(SSL_CTX_set1_groups(cctx, bogus, 0), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
    /* Unknown names marked '?' are skipped, as OpenSSL's. */
    ASSERT_EQ(SSL_CTX_set1_curves_list(sctx, "?bogus:?x448:X25519:P-256"), 1);
    ASSERT_NO_ERROR();
    /* The client context still offers X25519 only. */
    ASSERT_TRUE(tls_case(cctx, sctx, NULL, NID_X25519, "x25519"));
    c = SSL_new(cctx);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(SSL_set1_groups_list(c, "nope"), 0);
    ASSERT_ONE_ERROR();
    ASSERT_NULL(SSL_group_to_name(c, 12345));
    ASSERT_STR_EQ(SSL_group_to_name(c, NID_X9_62_prime256v1), "secp256r1");
    ASSERT_STR_EQ(SSL_group_to_name(c, MLKEM_NID), "X25519MLKEM768");
    SSL_free(c);
    ASSERT_EQ(SSL_CTX_set1_groups_list(NULL, "X25519"), 0);
    ASSERT_ONE_ERROR();
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* One QUIC handshake between a client of cctx (its own list `cgroups` when not NULL) and a
 * listener of sctx: on group nid (`name`), or failing when nid is 0. */
static int quic_case(SSL_CTX *cctx, SSL_CTX *sctx, const char *cgroups, int nid, const char *name)
{
    BIO_ADDR *addr = NULL;
    int lfd = -1, cfd = tu_udp_socket(AF_INET, NULL), r = 0;
    SSL *l, *c, *s = NULL;

    ASSERT_TRUE(cfd >= 0);
    l = qu_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE, &lfd, &addr);
    ASSERT_NOT_NULL(l);
    c = qu_client(cctx, cfd, addr, 0);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(SSL_set_blocking_mode(c, 0), 1);
    if (cgroups != NULL)
        ASSERT_EQ(SSL_set1_groups_list(c, cgroups), 1);
    ASSERT_EQ(SSL_get_negotiated_group(c), 0);
    PUMP((r = SSL_connect(c)) == 1 || SSL_get_error(c, r) != SSL_ERROR_WANT_READ);
    if (nid == 0) {
        ASSERT_TRUE(r != 1);
        ERR_clear_error();
    } else {
        ASSERT_EQ(r, 1);
        PUMP((s = SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK)) != NULL);
        PUMP((r = SSL_do_handshake(s)) == 1 || SSL_get_error(s, r) != SSL_ERROR_WANT_READ);
        ASSERT_EQ(r, 1);
        ASSERT_TRUE(agree(c, s, nid, name));
    }
    SSL_free(s);
    SSL_free(c);
    SSL_free(l);
    BIO_ADDR_free(addr);
    close(cfd);
    close(lfd);
    return 1;
}

static int test_quic_groups(void)
{
    SSL_CTX *sctx = qu_server_ctx(0), *cctx = qu_client_ctx();
    SSL_CTX *s384 = qu_server_ctx(0), *cx = qu_client_ctx();

    ASSERT_TRUE(sctx != NULL && cctx != NULL && s384 != NULL && cx != NULL);
    ASSERT_TRUE(quic_case(cctx, sctx, NULL, MLKEM_NID, "X25519MLKEM768"));
    ASSERT_TRUE(quic_case(cctx, sctx, "X25519", NID_X25519, "x25519"));
    ASSERT_EQ(SSL_CTX_set1_groups_list(cx, "prime256v1"), 1);
    ASSERT_TRUE(quic_case(cx, sctx, NULL, NID_X9_62_prime256v1, "secp256r1"));
    /* A listener wanting secp384r1: HelloRetryRequest, over QUIC too. */
    ASSERT_EQ(SSL_CTX_set1_groups_list(s384, "secp384r1"), 1);
    ASSERT_TRUE(quic_case(cctx, s384, NULL, NID_secp384r1, "secp384r1"));
    ASSERT_TRUE(quic_case(cctx, s384, "X25519", 0, NULL));
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    SSL_CTX_free(s384);
    SSL_CTX_free(cx);
    return 1;
}

#endif /* HAVE_OSSLQUIC */

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
#if HAVE_OSSLQUIC
    RUN(test_tls_groups);
    RUN(test_bad_lists);
    RUN(test_quic_groups);
#endif
    return tu_finish();
}
#endif
