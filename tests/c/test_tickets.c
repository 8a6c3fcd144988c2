/*
 * test_tickets: what lets one server of a fleet resume a session another issued, and admit
 * a returning client without a Retry (issue 15), through the exported calls, in one thread:
 *
 *  - SSL_CTX_set_tlsext_ticket_keys / SSL_CTX_get_tlsext_ticket_keys: OpenSSL's form (one
 *    80-byte key; a NULL buffer asks for the size; other lengths refused with
 *    SSL_R_INVALID_TICKET_KEYS_LENGTH), and osslquic's rotation (up to four keys, newest
 *    first). A TLS ticket from one server context resumes at another holding the same key
 *    (both ends say so), not at one holding another key; after a rotation the previous key
 *    still opens tickets, and once dropped it does not.
 *  - SSL_CTX_set_tlsext_ticket_key_evp_cb, written as an OpenSSL server writes it (a key
 *    table, RAND_bytes for the IV, EVP_EncryptInit_ex/EVP_DecryptInit_ex with AES-256-CBC,
 *    EVP_MAC_CTX_set_params with the HMAC key and SHA256): a server whose callback knows a
 *    key by name resumes tickets issued under it, by another callback server or by a server
 *    given the same bytes with SSL_CTX_set_tlsext_ticket_keys; an unknown name, or a
 *    callback answering 0 or failing, means a full handshake; NULL returns to the keys.
 *  - OSSLQUIC_CTX_set_fleet_secret: two QUIC servers given the same secret resume each
 *    other's sessions, and a validating listener admits a client with another server's
 *    NEW_TOKEN token without a Retry (its engine counts none); with different secrets, no
 *    resumption and a Retry. The same for TLS over TCP (the secret derives the ticket key).
 */
#include "tlsutil.h"

#ifdef TEST_REAL_OPENSSL
int main(void)
{
    return 0; /* needs libssl: not part of the libcrypto comparison run */
}
#else
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#if HAVE_OSSLQUIC

static void key_fill(unsigned char *k, unsigned char seed)
{
    for (int i = 0; i < 80; i++)
        k[i] = (unsigned char)(seed * 31 + i);
}

/* ---- TLS over TCP */

/* One TLS connection of cctx to sctx, offered `offer` (may be NULL): handshake, then a byte
 * each way so the client holds the tickets. Its session (a reference) goes to *sess if not
 * NULL; *reused gets what both ends say (-1 if they disagree). */
static int tls_once(SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION *offer, SSL_SESSION **sess,
                    int *reused)
{
    struct tl_pair p;
    int rc, rs;
    size_t n;
    char b;
    uint64_t dl;

    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    if (offer != NULL)
        ASSERT_EQ(SSL_set_session(p.c, offer), 1);
    ASSERT_TRUE(tl_handshake(p.c, p.s, &rc, &rs));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rs, 1);
    ASSERT_EQ(SSL_write_ex(p.s, "s", 1, &n), 1);
    dl = tu_now_ms() + 5000;
    while (SSL_read_ex(p.c, &b, 1, &n) != 1)
        ASSERT_LT(tu_now_ms(), dl);
    ASSERT_EQ(SSL_write_ex(p.c, "c", 1, &n), 1);
    dl = tu_now_ms() + 5000;
    while (SSL_read_ex(p.s, &b, 1, &n) != 1)
        ASSERT_LT(tu_now_ms(), dl);
    *reused = SSL_session_reused(p.c) == SSL_session_reused(p.s) ? SSL_session_reused(p.c) : -1;
    if (sess != NULL) {
        *sess = SSL_get1_session(p.c);
        ASSERT_NOT_NULL(*sess);
    }
    ERR_clear_error();
    tl_pair_free(&p);
    return 1;
}

/* A session from `issuer` offered at `other`: 1 if resumed there, 0 if not, -1 on failure. */
static int tls_cross(SSL_CTX *cctx, SSL_CTX *issuer, SSL_CTX *other)
{
    SSL_SESSION *s = NULL;
    int reused = -1, r;

    if (!tls_once(cctx, issuer, NULL, &s, &reused) || reused != 0) {
        SSL_SESSION_free(s);
        return -1;
    }
    r = tls_once(cctx, other, s, NULL, &reused) ? reused : -1;
    SSL_SESSION_free(s);
    return r;
}

static SSL_CTX *tls_client(void)
{
    SSL_CTX *c = tl_client_ctx(SSL_VERIFY_PEER);

    if (c != NULL)
        SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    return c;
}

static int test_tls_ticket_keys(void)
{
    SSL_CTX *a = tl_server_ctx(), *b = tl_server_ctx(), *cctx = tls_client();
    unsigned char k1[80], k2[80], k3[80], two[160], five[400], got[80];

    ASSERT_TRUE(a != NULL && b != NULL && cctx != NULL);
    key_fill(k1, 1);
    key_fill(k2, 2);
    key_fill(k3, 3);

    /* OpenSSL's form: NULL asks for the size; a context always has a key to report, and
     * keeps reporting the same one. */
    ASSERT_EQ(SSL_CTX_get_tlsext_ticket_keys(a, NULL, 0), 80);
    ASSERT_EQ(SSL_CTX_get_tlsext_ticket_keys(a, got, 80), 1);
    {
        unsigned char again[80];

        ASSERT_EQ(SSL_CTX_get_tlsext_ticket_keys(a, again, 80), 1);
        ASSERT_MEM_EQ(got, again, 80);
    }
    /* Lengths that are not whole keys, or too many keys, are refused. */
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(a, k1, 48), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_INVALID_TICKET_KEYS_LENGTH);
    ASSERT_NO_ERROR();
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(a, k1, 0), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_INVALID_TICKET_KEYS_LENGTH);
    ASSERT_NO_ERROR();
    memset(five, 7, sizeof(five));
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(a, five, 400), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_INVALID_TICKET_KEYS_LENGTH);
    ASSERT_NO_ERROR();
    ASSERT_EQ(SSL_CTX_get_tlsext_ticket_keys(a, got, 160), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_INVALID_TICKET_KEYS_LENGTH);
    ASSERT_NO_ERROR();
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(NULL, k1, 80), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();

    /* Without shared keys, a ticket does not resume at another server. */
    ASSERT_EQ(tls_cross(cctx, a, b), 0);

    /* The same key: a ticket from either resumes at the other; what get reports is it. */
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(a, k1, 80), 1);
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(b, k1, 80), 1);
    ASSERT_EQ(SSL_CTX_get_tlsext_ticket_keys(b, got, 80), 1);
    ASSERT_MEM_EQ(got, k1, 80);
    ASSERT_EQ(tls_cross(cctx, a, b), 1);
    ASSERT_EQ(tls_cross(cctx, b, a), 1);

    /* Another key at b: refused there. */
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(b, k2, 80), 1);
    ASSERT_EQ(tls_cross(cctx, a, b), 0);

    /* Rotation: b seals under k2 and still opens k1's tickets; a, told k2 then k1, opens
     * b's new tickets; dropping k1 ends its tickets. */
    memcpy(two, k2, 80);
    memcpy(two + 80, k1, 80);
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(b, two, 160), 1);
    ASSERT_EQ(SSL_CTX_get_tlsext_ticket_keys(b, got, 80), 1);
    ASSERT_MEM_EQ(got, k2, 80);
    ASSERT_EQ(tls_cross(cctx, a, b), 1);
    ASSERT_EQ(tls_cross(cctx, b, a), 0); /* a holds only k1 */
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(a, two, 160), 1);
    ASSERT_EQ(tls_cross(cctx, b, a), 1);
    memcpy(two, k3, 80);
    memcpy(two + 80, k2, 80);
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(a, k1, 80), 1); /* a issues under k1 again */
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(b, two, 160), 1); /* b dropped k1 */
    ASSERT_EQ(tls_cross(cctx, a, b), 0);

    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(cctx);
    return 1;
}

/* ---- the key callback */

/* A key table as a server keeps one: name, HMAC key, AES key (the 80-byte layout). Each
 * callback context (ex_data-free: a test-wide table per server, by index) knows `nkeys` keys,
 * the first being the one new tickets use. */
struct cb_keys {
    unsigned char keys[3][80];
    int nkeys, calls, found, unknown, answer_zero, fail_init;
};
static struct cb_keys cb_a, cb_b;

static int ticket_cb(struct cb_keys *t, unsigned char *name, unsigned char *iv,
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[3];
    const unsigned char *k = NULL;
    int i;

    t->calls++;
    if (t->answer_zero)
        return 0;
    if (enc) {
        k = t->keys[0];
        memcpy(name, k, 16);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
            return -1;
    } else {
        for (i = 0; i < t->nkeys && k == NULL; i++)
            if (memcmp(name, t->keys[i], 16) == 0)
                k = t->keys[i];
        if (k == NULL) {
            t->unknown++;
            return 0;
        }
        t->found++;
    }
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)(k + 16), 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (t->fail_init)
        return 1; /* claims success without initialising: no key */
    if (EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    if (enc)
        return EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k + 48, iv) == 1 ? 1 : -1;
    return EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k + 48, iv) == 1 ? (k == t->keys[0] ? 1 : 2)
                                                                              : -1;
}

static int cb_a_fn(SSL *s, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *c,
                   EVP_MAC_CTX *h, int enc)
{
    (void)s;
    return ticket_cb(&cb_a, name, iv, c, h, enc);
}

static int cb_b_fn(SSL *s, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *c,
                   EVP_MAC_CTX *h, int enc)
{
    (void)s;
    return ticket_cb(&cb_b, name, iv, c, h, enc);
}

static int test_tls_key_callback(void)
{
    SSL_CTX *a = tl_server_ctx(), *b = tl_server_ctx(), *keyed = tl_server_ctx();
    SSL_CTX *cctx = tls_client();

    ASSERT_TRUE(a != NULL && b != NULL && keyed != NULL && cctx != NULL);
    memset(&cb_a, 0, sizeof(cb_a));
    memset(&cb_b, 0, sizeof(cb_b));
    key_fill(cb_a.keys[0], 1);
    cb_a.nkeys = 1;
    key_fill(cb_b.keys[0], 2); /* b issues under key 2, and still knows key 1 */
    key_fill(cb_b.keys[1], 1);
    cb_b.nkeys = 2;
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_key_evp_cb(a, cb_a_fn), 1);
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_key_evp_cb(b, cb_b_fn), 1);
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_key_evp_cb(NULL, cb_a_fn), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();

    /* a's ticket (key 1) opens at b, which finds key 1 by name. */
    ASSERT_EQ(tls_cross(cctx, a, b), 1);
    ASSERT_GE(cb_a.calls, 1);
    ASSERT_EQ(cb_b.found, 1);
    /* b's ticket (key 2) is unknown to a: a full handshake, the callback asked. */
    ASSERT_EQ(tls_cross(cctx, b, a), 0);
    ASSERT_EQ(cb_a.unknown, 1);
    /* A server given key 1's bytes with SSL_CTX_set_tlsext_ticket_keys: the same tickets. */
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(keyed, cb_a.keys[0], 80), 1);
    ASSERT_EQ(tls_cross(cctx, a, keyed), 1);
    ASSERT_EQ(tls_cross(cctx, keyed, b), 1);
    /* The callback takes precedence over keys: b, also given key 3, still issues under key
     * 2, which keyed (key 1) does not open. */
    {
        unsigned char k3[80];

        key_fill(k3, 3);
        ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(b, k3, 80), 1);
        ASSERT_EQ(tls_cross(cctx, b, keyed), 0);
        /* Callback cleared: b's keys (key 3) again. */
        ASSERT_EQ(SSL_CTX_set_tlsext_ticket_key_evp_cb(b, NULL), 1);
        ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(keyed, k3, 80), 1);
        ASSERT_EQ(tls_cross(cctx, b, keyed), 1);
    }
    /* A callback answering 0 issues no ticket, nor one claiming success without a key: the
     * client's session cannot resume anywhere (keyed holds key 1's bytes again). */
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(keyed, cb_a.keys[0], 80), 1);
    ASSERT_EQ(tls_cross(cctx, a, keyed), 1);
    cb_a.answer_zero = 1;
    ASSERT_EQ(tls_cross(cctx, a, keyed), 0);
    cb_a.answer_zero = 0;
    cb_a.fail_init = 1;
    ASSERT_EQ(tls_cross(cctx, a, keyed), 0);
    cb_a.fail_init = 0;

    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(keyed);
    SSL_CTX_free(cctx);
    return 1;
}

/* The libcrypto calls outside a sensible use: NULL contexts, no cipher, a digest other than
 * SHA-256, RAND_bytes's bad arguments. */
static int test_evp_bad_args(void)
{
    unsigned char buf[32] = {0}, key[32] = {0};
    OSSL_PARAM md5[2];

    ASSERT_EQ(RAND_bytes(buf, sizeof(buf)), 1);
    ASSERT_EQ(RAND_bytes(buf, 0), 1);
    ASSERT_EQ(RAND_bytes(NULL, 4), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(RAND_bytes(buf, -1), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(RAND_priv_bytes(buf, 16), 1);
    ASSERT_EQ(EVP_EncryptInit_ex(NULL, EVP_aes_256_cbc(), NULL, key, buf), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(EVP_MAC_CTX_set_params(NULL, NULL), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(EVP_CIPHER_CTX_get_iv_length(NULL), -1);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    md5[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "MD5", 0);
    md5[1] = OSSL_PARAM_construct_end();
    ASSERT_EQ(md5[0].data_type, OSSL_PARAM_UTF8_STRING);
    ASSERT_EQ(md5[0].data_size, 3);
    ASSERT_NULL(md5[1].key);
    return 1;
}

/* A fleet secret given to two TLS server contexts: they resume each other's tickets; with
 * different secrets they do not. */
static int test_tls_fleet_secret(void)
{
    static const unsigned char s1[32] = "one fleet's secret, of 32 bytes";
    static const unsigned char s2[32] = "and another fleet's, 32 bytes..";
    SSL_CTX *a = tl_server_ctx(), *b = tl_server_ctx(), *c = tl_server_ctx();
    SSL_CTX *cctx = tls_client();

    ASSERT_TRUE(a != NULL && b != NULL && c != NULL && cctx != NULL);
    ASSERT_EQ(OSSLQUIC_CTX_set_fleet_secret(a, s1, sizeof(s1)), 1);
    ASSERT_EQ(OSSLQUIC_CTX_set_fleet_secret(b, s1, sizeof(s1)), 1);
    ASSERT_EQ(OSSLQUIC_CTX_set_fleet_secret(c, s2, sizeof(s2)), 1);
    ASSERT_EQ(tls_cross(cctx, a, b), 1);
    ASSERT_EQ(tls_cross(cctx, a, c), 0);
    /* A new secret at b: its tickets are sealed under the new key, a's (old secret) still
     * open there. */
    ASSERT_EQ(OSSLQUIC_CTX_set_fleet_secret(b, s2, sizeof(s2)), 1);
    ASSERT_EQ(tls_cross(cctx, a, b), 1);
    ASSERT_EQ(tls_cross(cctx, b, c), 1);
    ASSERT_EQ(tls_cross(cctx, b, a), 0);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(c);
    SSL_CTX_free(cctx);
    return 1;
}

/* ---- QUIC */

struct server {
    SSL_CTX *ctx;
    SSL *listener;
    int fd;
    BIO_ADDR *addr;
};

static int server_start(struct server *s, const unsigned char *secret, uint64_t flags)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->ctx = qu_server_ctx(0);
    ASSERT_NOT_NULL(s->ctx);
    if (secret != NULL)
        ASSERT_EQ(OSSLQUIC_CTX_set_fleet_secret(s->ctx, secret, 32), 1);
    s->listener = qu_listener(s->ctx, flags, &s->fd, &s->addr);
    ASSERT_NOT_NULL(s->listener);
    return 1;
}

static void server_stop(struct server *s)
{
    SSL_free(s->listener);
    SSL_CTX_free(s->ctx);
    BIO_ADDR_free(s->addr);
    if (s->fd >= 0)
        close(s->fd);
}

/* One QUIC connection of cctx to `srv`, from a fresh socket, offered `offer` (may be NULL):
 * handshake, then a byte each way (tickets and NEW_TOKEN tokens arrive before the server's
 * byte). Its session goes to *sess if not NULL; *reused as in tls_once. */
static int quic_once(SSL_CTX *cctx, struct server *srv, SSL_SESSION *offer, SSL_SESSION **sess,
                     int *reused)
{
    uint64_t dl = tu_now_ms() + 10000;
    int cfd = tu_udp_socket(AF_INET, NULL), r = 0;
    SSL *c, *s = NULL;
    size_t n;
    char b = 0;

    ASSERT_GE(cfd, 0);
    c = qu_client(cctx, cfd, srv->addr, 0);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(SSL_set_blocking_mode(c, 0), 1);
    if (offer != NULL)
        ASSERT_EQ(SSL_set_session(c, offer), 1);
#define PUMP(cond)                                                                             \
    while (!(cond)) {                                                                          \
        ASSERT_TRUE(tu_now_ms() < dl);                                                         \
        SSL_handle_events(srv->listener);                                                      \
        SSL_handle_events(c);                                                                  \
        if (s == NULL)                                                                         \
            s = SSL_accept_connection(srv->listener, SSL_ACCEPT_CONNECTION_NO_BLOCK);          \
        (void)tu_wait_readable(cfd, 1);                                                        \
    }
    PUMP((r = SSL_connect(c)) == 1 || SSL_get_error(c, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    PUMP(s != NULL);
    ASSERT_EQ(SSL_write_ex(c, "q", 1, &n), 1);
    PUMP(SSL_read_ex(s, &b, 1, &n) == 1);
    ASSERT_EQ(b, 'q');
    ASSERT_EQ(SSL_write_ex(s, "r", 1, &n), 1);
    PUMP(SSL_read_ex(c, &b, 1, &n) == 1);
    ASSERT_EQ(b, 'r');
#undef PUMP
    *reused = SSL_session_reused(c) == SSL_session_reused(s) ? SSL_session_reused(c) : -1;
    if (sess != NULL) {
        *sess = SSL_get1_session(c);
        ASSERT_NOT_NULL(*sess);
    }
    ERR_clear_error();
    SSL_free(s);
    SSL_free(c);
    close(cfd);
    return 1;
}

static uint64_t retries(struct server *s)
{
    OSSLQUIC_ENGINE_STATS st;

    memset(&st, 0, sizeof(st));
    return OSSLQUIC_get_engine_stats(s->listener, &st) == 1 ? st.retries : UINT64_MAX;
}

/* Server a issues a session and a NEW_TOKEN token to a client context; server b, validating
 * every address, then sees the same client: with the same fleet secret it resumes the
 * session and needs no Retry, with another secret it does neither. */
static int quic_cross(const unsigned char *sa, const unsigned char *sb, int same)
{
    struct server a, b;
    SSL_CTX *cctx = qu_client_ctx();
    SSL_SESSION *sess = NULL;
    int reused = -1;

    ASSERT_NOT_NULL(cctx);
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    ASSERT_TRUE(server_start(&a, sa, 0));
    ASSERT_TRUE(server_start(&b, sb, 0));
    ASSERT_TRUE(quic_once(cctx, &a, NULL, &sess, &reused));
    ASSERT_EQ(reused, 0);
    ASSERT_EQ(retries(&a), 1); /* a first-time client proves its address with a Retry */
    /* Returning to the same server, the client's token spares it the Retry. */
    ASSERT_TRUE(quic_once(cctx, &a, NULL, NULL, &reused));
    ASSERT_EQ(retries(&a), 1);
    ASSERT_TRUE(quic_once(cctx, &b, sess, NULL, &reused));
    ASSERT_EQ(reused, same);
    ASSERT_EQ(retries(&b), same ? 0 : 1);
    SSL_SESSION_free(sess);
    server_stop(&a);
    server_stop(&b);
    SSL_CTX_free(cctx);
    return 1;
}

static int test_quic_fleet_secret(void)
{
    static const unsigned char s1[32] = "one fleet's secret, of 32 bytes";
    static const unsigned char s2[32] = "and another fleet's, 32 bytes..";

    ASSERT_TRUE(quic_cross(s1, s1, 1));
    ASSERT_TRUE(quic_cross(s1, s2, 0));
    return 1;
}

/* Ticket keys set directly on QUIC server contexts work as for TLS. */
static int test_quic_ticket_keys(void)
{
    struct server a, b;
    SSL_CTX *cctx = qu_client_ctx();
    SSL_SESSION *sess = NULL;
    unsigned char k[80];
    int reused = -1;

    ASSERT_NOT_NULL(cctx);
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    key_fill(k, 9);
    ASSERT_TRUE(server_start(&a, NULL, SSL_LISTENER_FLAG_NO_VALIDATE));
    ASSERT_TRUE(server_start(&b, NULL, SSL_LISTENER_FLAG_NO_VALIDATE));
    /* Without keys, a's ticket is for a alone. */
    ASSERT_TRUE(quic_once(cctx, &a, NULL, &sess, &reused));
    ASSERT_TRUE(quic_once(cctx, &b, sess, NULL, &reused));
    ASSERT_EQ(reused, 0);
    SSL_SESSION_free(sess);
    /* Keys set once the listeners run reach them. */
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(a.ctx, k, 80), 1);
    ASSERT_EQ(SSL_CTX_set_tlsext_ticket_keys(b.ctx, k, 80), 1);
    ASSERT_TRUE(quic_once(cctx, &a, NULL, &sess, &reused));
    ASSERT_EQ(reused, 0);
    ASSERT_TRUE(quic_once(cctx, &b, sess, NULL, &reused));
    ASSERT_EQ(reused, 1);
    SSL_SESSION_free(sess);
    server_stop(&a);
    server_stop(&b);
    SSL_CTX_free(cctx);
    return 1;
}

#endif /* HAVE_OSSLQUIC */

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
#if HAVE_OSSLQUIC
    RUN(test_tls_ticket_keys);
    RUN(test_tls_fleet_secret);
    RUN(test_tls_key_callback);
    RUN(test_evp_bad_args);
    RUN(test_quic_fleet_secret);
    RUN(test_quic_ticket_keys);
#endif
    return tu_finish();
}
#endif
