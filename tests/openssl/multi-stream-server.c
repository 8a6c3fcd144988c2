/*
 * A QUIC server for OpenSSL's demos/guide/quic-multi-stream client, which none of OpenSSL's
 * demo servers fits: the client opens a bidirectional stream and a unidirectional one, sends
 * an HTTP/1.0-style request on each without ending either, reads the answer on the first,
 * then accepts a stream the server opens and reads the answer to the second request there.
 *
 * Per connection: accept two streams, read each request up to its blank line, answer a
 * bidirectional stream on itself and a unidirectional one on a new unidirectional stream of
 * the server's, end each answer, then shut the connection down. The answer is
 * "multi-stream-server: you asked for PATH\n". Blocking calls only; one connection at a time.
 *
 * Built by tests/openssl/run.sh against osslquic and against OpenSSL 3.5 alike.
 *   multi-stream-server PORT CERT KEY      serves until killed
 */
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/quic.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '0'};
    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, ours, sizeof(ours), in, inlen) ==
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_OK;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Reads one request (up to "\r\n\r\n") from stream s; writes its path into path. */
static int read_request(SSL *s, char *path, size_t cap)
{
    char req[2048];
    size_t have = 0, n;
    char *sp, *end;

    req[0] = '\0';
    while (strstr(req, "\r\n\r\n") == NULL) {
        if (have + 1 >= sizeof(req))
            return 0;
        if (!SSL_read_ex(s, req + have, sizeof(req) - 1 - have, &n))
            return 0;
        have += n;
        req[have] = '\0';
    }
    if (strncmp(req, "GET ", 4) != 0)
        return 0;
    sp = req + 4;
    end = strchr(sp, ' ');
    if (end == NULL || (size_t)(end - sp) >= cap)
        return 0;
    memcpy(path, sp, (size_t)(end - sp));
    path[end - sp] = '\0';
    return 1;
}

static int answer(SSL *out, const char *path)
{
    char body[512];
    size_t written;
    int n = snprintf(body, sizeof(body), "multi-stream-server: you asked for %s\n", path);

    if (n < 0 || (size_t)n >= sizeof(body))
        return 0;
    return SSL_write_ex(out, body, (size_t)n, &written) && written == (size_t)n && SSL_stream_conclude(out, 0);
}

static int serve(SSL *conn)
{
    SSL *in[2] = {NULL, NULL}, *reply = NULL;
    char path[256];
    int i, ok = 0;

    for (i = 0; i < 2; i++) {
        if ((in[i] = SSL_accept_stream(conn, 0)) == NULL) {
            fprintf(stderr, "multi-stream-server: no stream %d from the client\n", i + 1);
            goto done;
        }
        if (!read_request(in[i], path, sizeof(path))) {
            fprintf(stderr, "multi-stream-server: bad request on stream %d\n", i + 1);
            goto done;
        }
        if (SSL_get_stream_type(in[i]) == SSL_STREAM_TYPE_BIDI) {
            if (!answer(in[i], path))
                goto done;
        } else {
            if ((reply = SSL_new_stream(conn, SSL_STREAM_FLAG_UNI)) == NULL || !answer(reply, path))
                goto done;
            SSL_free(reply);
            reply = NULL;
        }
    }
    ok = 1;
done:
    SSL_free(reply);
    SSL_free(in[0]);
    SSL_free(in[1]);
    return ok;
}

int main(int argc, char **argv)
{
    SSL_CTX *ctx;
    SSL *listener, *conn;
    struct sockaddr_in sa;
    int fd;
    long port;

    if (argc != 4 || (port = strtol(argv[1], NULL, 10)) <= 0 || port > 65535) {
        fprintf(stderr, "usage: %s PORT CERT KEY\n", argv[0]);
        return EXIT_FAILURE;
    }
    ctx = SSL_CTX_new(OSSL_QUIC_server_method());
    if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, argv[2]) <= 0 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) <= 0) {
        ERR_print_errors_fp(stderr);
        return EXIT_FAILURE;
    }
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("multi-stream-server: socket");
        return EXIT_FAILURE;
    }
    if ((listener = SSL_new_listener(ctx, 0)) == NULL || !SSL_set_fd(listener, fd) || !SSL_listen(listener)) {
        ERR_print_errors_fp(stderr);
        return EXIT_FAILURE;
    }
    for (;;) {
        ERR_clear_error();
        if ((conn = SSL_accept_connection(listener, 0)) == NULL) {
            ERR_print_errors_fp(stderr);
            break;
        }
        /* No default stream; accept every stream the client opens (OpenSSL's automatic
         * policy refuses further streams once one was accepted on a server connection). */
        if (!SSL_set_default_stream_mode(conn, SSL_DEFAULT_STREAM_MODE_NONE) ||
            !SSL_set_incoming_stream_policy(conn, SSL_INCOMING_STREAM_POLICY_ACCEPT, 0) || !serve(conn))
            ERR_print_errors_fp(stderr);
        while (SSL_shutdown(conn) == 0)
            continue;
        SSL_free(conn);
        fprintf(stderr, "multi-stream-server: connection done\n");
    }
    SSL_free(listener);
    SSL_CTX_free(ctx);
    close(fd);
    return EXIT_FAILURE;
}
