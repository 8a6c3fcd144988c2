/*
 * groups_peer: one TLS or QUIC handshake on 127.0.0.1, reporting the key-exchange group, for
 * tests/openssl/run.sh's "groups" part. Built twice from this file, against osslquic and
 * against OpenSSL 3.5, so each pairing shows what both ends negotiated (issue 16: X25519MLKEM768
 * by default, as OpenSSL 3.5 offers it first).
 *   groups_peer tls-server|quic-server CHAIN KEY [GROUPS]   prints "listening on PORT"
 *   groups_peer tls-client|quic-client PORT CAFILE [GROUPS]
 * Each end prints "group NAME nid 0xNID" after its handshake (SSL_get_negotiated_group,
 * SSL_group_to_name, SSL_get0_group_name must agree), then the client sends "ping", the
 * server answers "pong", and both close. Exits 0 only if all of that happened; a 10 s alarm
 * bounds the run. GROUPS, if given, goes to SSL_CTX_set1_groups_list. With GP_HTTP set, a TLS
 * client asks `openssl s_server -www` for its page instead.
 */
#define _GNU_SOURCE
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const unsigned char alpn[] = {6, 'g', 'r', 'o', 'u', 'p', 's'};

static int die(const char *what)
{
    fprintf(stderr, "groups_peer: %s failed\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static int select_alpn(SSL *s, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)s;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, alpn, sizeof(alpn), in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

/* A socket on 127.0.0.1: bound to an ephemeral port (server, printed) or connected to `port`. */
static int sock(int type, int port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, type, 0), one = 1;

    if (fd < 0)
        die("socket");
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((unsigned short)port);
    if (port == 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            (type == SOCK_STREAM && listen(fd, 1) != 0) ||
            getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
            die("bind");
        printf("listening on %d\n", ntohs(sa.sin_port));
        fflush(stdout);
    } else if (type == SOCK_STREAM && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        die("connect");
    }
    return fd;
}

static void report(SSL *s)
{
    int nid = (int)SSL_get_negotiated_group(s);
    const char *name = SSL_group_to_name(s, nid), *name0 = SSL_get0_group_name(s);

    if (name == NULL || name0 == NULL || strcmp(name, name0) != 0) {
        fprintf(stderr, "groups_peer: group names disagree: %s, %s (nid 0x%x)\n",
                name ? name : "(null)", name0 ? name0 : "(null)", nid);
        exit(1);
    }
    printf("group %s nid 0x%x\n", name, nid);
    fflush(stdout);
}

/* A client of `openssl s_server -www` (GP_HTTP set): a request, then the page until the
 * server closes, which must be its status page. */
static void http(SSL *s)
{
    static char page[65536];
    size_t n, got = 0;
    const char req[] = "GET / HTTP/1.0\r\n\r\n";

    if (SSL_write_ex(s, req, sizeof(req) - 1, &n) != 1)
        die("SSL_write");
    while (got < sizeof(page) - 1 && SSL_read_ex(s, page + got, sizeof(page) - 1 - got, &n) == 1)
        got += n;
    page[got] = 0;
    if (strncmp(page, "HTTP/1.0 200 ok", 15) != 0)
        die("the status page");
    /* The page's line of the groups the client offered, in its order. */
    {
        char *line = strstr(page, "Supported groups: "), *end;

        if (line != NULL && (end = strchr(line, '\n')) != NULL)
            printf("%.*s\n", (int)(end - line), line);
    }
    SSL_shutdown(s);
    printf("done\n");
}

static void io(SSL *s, int server, int quic)
{
    char buf[16];
    size_t n, got = 0;

    if (!server && getenv("GP_HTTP") != NULL) {
        http(s);
        return;
    }
    if (!server && SSL_write_ex(s, "ping", 4, &n) != 1)
        die("SSL_write");
    while (got < 4) {
        if (SSL_read_ex(s, buf + got, 4 - got, &n) != 1)
            die("SSL_read");
        got += n;
    }
    if (memcmp(buf, server ? "ping" : "pong", 4) != 0)
        die("the exchange");
    if (server) {
        if (SSL_write_ex(s, "pong", 4, &n) != 1)
            die("SSL_write");
        if (quic)
            SSL_stream_conclude(s, 0);
    }
    /* Both ends shut down; a QUIC server waits for its data to be acknowledged. */
    while (SSL_shutdown(s) == 0 && quic)
        ;
    printf("done\n");
}

int main(int argc, char **argv)
{
    int quic, server, fd;
    SSL_CTX *ctx;
    SSL *s, *l = NULL;

    if (argc < 4)
        return fprintf(stderr, "usage: groups_peer MODE CHAIN|PORT KEY|CAFILE [GROUPS]\n"), 2;
    alarm(10);
    quic = strncmp(argv[1], "quic", 4) == 0;
    server = strstr(argv[1], "server") != NULL;
    ctx = SSL_CTX_new(quic ? (server ? OSSL_QUIC_server_method() : OSSL_QUIC_client_method())
                           : (server ? TLS_server_method() : TLS_client_method()));
    if (ctx == NULL)
        die("SSL_CTX_new");
    if (argc > 4 && SSL_CTX_set1_groups_list(ctx, argv[4]) != 1)
        die("SSL_CTX_set1_groups_list");
    if (server) {
        if (SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1)
            die("loading the certificate");
        SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
        fd = sock(quic ? SOCK_DGRAM : SOCK_STREAM, 0);
        if (quic) {
            l = SSL_new_listener(ctx, 0);
            if (l == NULL || SSL_set_fd(l, fd) != 1 || SSL_listen(l) != 1)
                die("the listener");
            s = SSL_accept_connection(l, 0);
            if (s == NULL)
                die("SSL_accept_connection");
        } else {
            int c = accept(fd, NULL, NULL);

            if (c < 0)
                die("accept");
            s = SSL_new(ctx);
            if (s == NULL || SSL_set_fd(s, c) != 1)
                die("SSL_new");
        }
        if (SSL_accept(s) != 1)
            die("SSL_accept");
    } else {
        struct sockaddr_in sa;
        BIO_ADDR *peer = BIO_ADDR_new();

        if (SSL_CTX_load_verify_locations(ctx, argv[3], NULL) != 1)
            die("loading the CA");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        fd = sock(quic ? SOCK_DGRAM : SOCK_STREAM, atoi(argv[2]));
        s = SSL_new(ctx);
        if (s == NULL || SSL_set_fd(s, fd) != 1 || SSL_set1_host(s, "localhost") != 1 ||
            SSL_set_tlsext_host_name(s, "localhost") != 1)
            die("SSL_new");
        if (quic) {
            memset(&sa, 0, sizeof(sa));
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (peer == NULL ||
                !BIO_ADDR_rawmake(peer, AF_INET, &sa.sin_addr, sizeof(sa.sin_addr),
                                  htons((unsigned short)atoi(argv[2]))) ||
                SSL_set1_initial_peer_addr(s, peer) != 1 ||
                SSL_set_alpn_protos(s, alpn, sizeof(alpn)) != 0)
                die("the QUIC client's settings");
        }
        BIO_ADDR_free(peer);
        if (SSL_connect(s) != 1)
            die("SSL_connect");
    }
    report(s);
    io(s, server, quic);
    SSL_free(s);
    SSL_free(l);
    SSL_CTX_free(ctx);
    return 0;
}
