/*
 * test_headers: what issue 12 adds for programs written against OpenSSL's headers.
 *
 * (That <openssl/ssl.h> alone brings <stdlib.h>, <string.h>, <time.h>, ... as OpenSSL's does is
 * checked by tests/check-openssl-consts.sh, which compiles a file including nothing else.)
 * The version macros take the 3.5 path; the file BIO (BIO_new_file, BIO_s_file with
 * BIO_read_filename, BIO_gets, BIO_tell/BIO_seek, fread's end-of-file rule); BIO_snprintf's
 * truncation result; OPENSSL_realloc; SSL_CTX_set_ciphersuites' parsing rules and QUIC
 * handshakes under restricted suite lists.
 */
#include <openssl/ssl.h>

#include "tlsutil.h"

#define TMPL "/tmp/osslquic-test-headers-XXXXXX"

static int test_version(void)
{
    int path35 = 0;
#if OPENSSL_VERSION_NUMBER >= 0x30500000L
    path35 = 1;
#endif
    ASSERT_EQ(path35, 1);
    ASSERT_EQ(OPENSSL_VERSION_MAJOR, 3);
    ASSERT_GE(OPENSSL_VERSION_MINOR, 5);
    ASSERT_TRUE(OPENSSL_VERSION_PREREQ(3, 5));
    ASSERT_FALSE(OPENSSL_VERSION_PREREQ(4, 0));
    ASSERT_STR_CONTAINS(OPENSSL_VERSION_TEXT, "OpenSSL 3.5");
#if HAVE_OSSLQUIC
    ASSERT_GE(OSSLQUIC_VERSION_NUMBER, 0x00010000L);
    ASSERT_EQ(OSSLQUIC_HAVE_BIO_NEW_FILE, 1);
#endif
    return 1;
}

static int test_file_bio(void)
{
    char path[] = TMPL, line[64];
    int fd = mkstemp(path);
    BIO *b;

    ASSERT_GE(fd, 0);
    close(fd);
    b = BIO_new_file(path, "w+");
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_write(b, "first line\nsecond\n", 18), 18);
    ASSERT_EQ(BIO_flush(b), 1);
    ASSERT_EQ(BIO_tell(b), 18);
    ASSERT_EQ(BIO_seek(b, 0), 0);
    ASSERT_EQ(BIO_gets(b, line, sizeof(line)), 11);
    ASSERT_STR_EQ(line, "first line\n");
    ASSERT_EQ(BIO_eof(b), 0);
    /* fread's rule: a read that comes up short at the end sets end of file. */
    ASSERT_EQ(BIO_read(b, line, sizeof(line)), 7);
    ASSERT_MEM_EQ(line, "second\n", 7);
    ASSERT_EQ(BIO_eof(b), 1);
    BIO_free(b);

    b = BIO_new(BIO_s_file());
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_read_filename(b, path), 1);
    ASSERT_EQ(BIO_seek(b, 6), 0);
    ASSERT_EQ(BIO_tell(b), 6);
    ASSERT_EQ(BIO_read(b, line, 4), 4);
    ASSERT_MEM_EQ(line, "line", 4);
    BIO_free(b);

    ERR_clear_error();
    unlink(path);
    ASSERT_NULL(BIO_new_file(path, "r"));
    ASSERT_EQ(ERR_GET_LIB(ERR_peek_last_error()), ERR_LIB_BIO);
    ASSERT_EQ(ERR_GET_REASON(ERR_peek_last_error()), BIO_R_NO_SUCH_FILE);
    ERR_clear_error();
    return 1;
}

static int test_snprintf_and_realloc(void)
{
    char buf[8];
    char *p;

    ASSERT_EQ(BIO_snprintf(buf, sizeof(buf), "%d-%s", 42, "ab"), 5);
    ASSERT_STR_EQ(buf, "42-ab");
    ASSERT_EQ(BIO_snprintf(buf, sizeof(buf), "%s", "too long for it"), -1);
    ASSERT_EQ(buf[sizeof(buf) - 1], '\0');
    p = OPENSSL_malloc(4);
    ASSERT_NOT_NULL(p);
    memcpy(p, "abc", 4);
    p = OPENSSL_realloc(p, 4096);
    ASSERT_NOT_NULL(p);
    ASSERT_STR_EQ(p, "abc");
    OPENSSL_free(p);
    return 1;
}

static int test_ciphersuites_parsing(void)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());

    ASSERT_NOT_NULL(c);
    ERR_clear_error();
    ASSERT_EQ(SSL_CTX_set_ciphersuites(c, "TLS_AES_256_GCM_SHA384:NOT_A_SUITE"), 1);
    ASSERT_NO_ERROR();
    ASSERT_EQ(SSL_CTX_set_ciphersuites(c, ""), 1);
    ASSERT_EQ(SSL_CTX_set_ciphersuites(c, "NOT_A_SUITE:ALSO_NOT"), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_NO_CIPHER_MATCH);
    ERR_clear_error();
    SSL_CTX_free(c);
    return 1;
}

/* One QUIC handshake between a listener of sctx and a client of cctx: 1 if it completes. */
static int quic_handshake_completes(SSL_CTX *sctx, SSL_CTX *cctx)
{
    BIO_ADDR *srv = NULL;
    int sfd = tu_udp_socket(AF_INET, &srv), cfd = tu_udp_socket(AF_INET, NULL);
    SSL *listener = SSL_new_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE), *client, *server = NULL;
    uint64_t deadline = tu_now_ms() + 5000;
    int rc = 0, done = 0;

    ASSERT_GE(sfd, 0);
    ASSERT_NOT_NULL(listener);
    ASSERT_EQ(SSL_set_blocking_mode(listener, 0), 1);
    ASSERT_EQ(SSL_set_fd(listener, sfd), 1);
    ASSERT_EQ(SSL_listen(listener), 1);
    client = qu_client(cctx, cfd, srv, 0);
    ASSERT_NOT_NULL(client);
    ASSERT_EQ(SSL_set_blocking_mode(client, 0), 1);
    /* Until the client connects or fails; a server connection must then be there too. */
    while (tu_now_ms() < deadline) {
        rc = SSL_connect(client);
        if (rc == 1 || SSL_get_error(client, rc) != SSL_ERROR_WANT_READ)
            break;
        SSL_handle_events(listener);
        if (server == NULL)
            server = SSL_accept_connection(listener, SSL_ACCEPT_CONNECTION_NO_BLOCK);
        (void)tu_wait_readable(cfd, 2);
    }
    done = rc == 1;
    SSL_free(server);
    SSL_free(client);
    SSL_free(listener);
    BIO_ADDR_free(srv);
    close(sfd);
    close(cfd);
    ERR_clear_error();
    return done;
}

/* A ChaCha20-only client (its Initial packets still use AES-128-GCM) completes a handshake
 * with a default server and fails against an AES-256-only one: the lists are applied on
 * both sides. */
static int test_quic_restricted_suites(void)
{
    SSL_CTX *sctx = qu_server_ctx(0), *cctx = qu_client_ctx();

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_EQ(SSL_CTX_set_ciphersuites(cctx, "TLS_CHACHA20_POLY1305_SHA256"), 1);
    ASSERT_EQ(quic_handshake_completes(sctx, cctx), 1);
    ASSERT_EQ(SSL_CTX_set_ciphersuites(sctx, "TLS_AES_256_GCM_SHA384"), 1);
    ASSERT_EQ(quic_handshake_completes(sctx, cctx), 0);
    ASSERT_EQ(SSL_CTX_set_ciphersuites(cctx, "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"), 1);
    ASSERT_EQ(quic_handshake_completes(sctx, cctx), 1);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* One TLS handshake over TCP between contexts cctx and sctx; the negotiated version and
 * suite names are copied out. 1 if it completed. */
static int tls_names(SSL_CTX *cctx, SSL_CTX *sctx, char *ver, char *suite)
{
    struct tl_pair p;
    int rc, rs, ok;

    ASSERT_TRUE(tl_pair_new(&p, cctx, sctx, "localhost"));
    ASSERT_TRUE(tl_handshake(p.c, p.s, &rc, &rs));
    ok = rc == 1 && rs == 1;
    if (ok) {
        snprintf(ver, 32, "%s", SSL_get_version(p.c));
        snprintf(suite, 64, "%s", SSL_CIPHER_get_name(SSL_get_current_cipher(p.c)));
    }
    tl_pair_free(&p);
    ERR_clear_error();
    return ok;
}

/* Options that change behaviour: SSL_OP_NO_TLSv1_3 and SSL_OP_CIPHER_SERVER_PREFERENCE; and
 * SSL_CTX_set_ciphersuites over TLS (the client's order wins unless the server prefers). */
static int test_tls_options_and_suites(void)
{
    SSL_CTX *sctx = tl_server_ctx(), *cctx = tl_client_ctx(SSL_VERIFY_PEER);
    char ver[32], suite[64];

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_EQ(SSL_CTX_set_ciphersuites(cctx, "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"), 1);
    ASSERT_EQ(SSL_CTX_set_ciphersuites(sctx, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"), 1);
    ASSERT_TRUE(tls_names(cctx, sctx, ver, suite));
    ASSERT_STR_EQ(ver, "TLSv1.3");
    ASSERT_STR_EQ(suite, "TLS_CHACHA20_POLY1305_SHA256");
    SSL_CTX_set_options(sctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    ASSERT_TRUE(tls_names(cctx, sctx, ver, suite));
    ASSERT_STR_EQ(suite, "TLS_AES_256_GCM_SHA384");
    SSL_CTX_set_options(cctx, SSL_OP_NO_TLSv1_3);
    ASSERT_TRUE(tls_names(cctx, sctx, ver, suite));
    ASSERT_STR_EQ(ver, "TLSv1.2");
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

int main(int argc, char **argv)
{
    tu_init(argc, argv);
    qu_init();
    RUN(test_version);
    RUN(test_file_bio);
    RUN(test_snprintf_and_realloc);
    RUN(test_ciphersuites_parsing);
    RUN(test_quic_restricted_suites);
    RUN(test_tls_options_and_suites);
    return tu_finish();
}
