/*
 * quic_handshakes: `make bench`, QUIC full handshakes per second on one core. One thread runs
 * both ends through our C API: a listener (SSL_LISTENER_FLAG_NO_VALIDATE) and, one after the
 * other, client connections (SSL_new, verifying the server against CERTDIR/ca.pem, ALPN
 * "osslqbench").
 *
 *   quic_handshakes [-m pair|udp] [-s SECONDS] [-c CERTDIR]
 *
 * One handshake = SSL_new + setup of the client, SSL_connect and SSL_accept (on the accepted
 * connection) both returning 1, then SSL_free of the client (which closes the connection),
 * one SSL_handle_events on the listener (the close arrives) and SSL_free of the server's
 * connection, which then drains on the listener's timers in real time. No session is ever
 * resumed (each client SSL is new).
 *   -m pair  (default) the listener and the clients sit on the two ends of one
 *            BIO_new_bio_dgram_pair (unaddressed, in memory): no system calls on the path,
 *            the same work as the reference, quinn-proto with datagrams shuttled in memory.
 *   -m udp   the listener on a UDP socket on 127.0.0.1, every client on one other UDP
 *            socket: adds the kernel's loopback path.
 * One handshake first, untimed by the rounds: its own time is the latency of a program's first
 * connection (FIRST_MS, milliseconds). Then runs handshakes for SECONDS (default 2) and prints
 *   handshakes osslquic-MODE count=N secs=S hps=R first_ms=FIRST_MS
 * Any handshake taking more than 5 s ends the run with an error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const unsigned char alpn[] = {10, 'o', 's', 's', 'l', 'q', 'b', 'e', 'n', 'c', 'h'};
static const char *certdir = "build/certs";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *cert(const char *name)
{
    static char buf[4][600];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 600, "%s/%s", certdir, name);
    return b;
}

static int fail(const char *what)
{
    fprintf(stderr, "quic_handshakes: %s\n", what);
    ERR_print_errors_fp(stderr);
    return 1;
}

/* A non-blocking UDP socket bound to 127.0.0.1:0; its address into `addr` if asked. */
static int udp_socket(BIO_ADDR **addr)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), sz = 1 << 20;

    if (fd < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || getsockname(fd, (struct sockaddr *)&sin, &sl) != 0) {
        close(fd);
        return -1;
    }
    if (addr != NULL) {
        *addr = BIO_ADDR_new();
        if (*addr == NULL || !BIO_ADDR_rawmake(*addr, AF_INET, &sin.sin_addr, sizeof(sin.sin_addr), sin.sin_port)) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* One handshake: a new client SSL (on the pair's other end, or on the client UDP socket `cfd`
 * towards `srv`) until it and the listener's accepted connection are both done; then both are
 * freed. Returns 0, or 1 after printing why. */
static int handshake(SSL_CTX *cctx, SSL *l, BIO *b, int cfd, const BIO_ADDR *srv)
{
    int udp = b == NULL;
    double t = now_s();
    SSL *c = SSL_new(cctx), *s = NULL;
    int cdone = 0, sdone = 0, r;
    double give_up = t + 5;

    if (c == NULL || !SSL_set_blocking_mode(c, 0) || SSL_set_alpn_protos(c, alpn, sizeof(alpn)) != 0 ||
        !SSL_set1_host(c, "localhost"))
        return fail("client setup failed");
    if (udp) {
        if (!SSL_set_fd(c, cfd) || !SSL_set1_initial_peer_addr(c, srv))
            return fail("client setup failed");
    } else {
        BIO_up_ref(b); /* SSL_set_bio takes over one reference; the pair end outlives c */
        SSL_set_bio(c, b, b);
    }
    while (!(cdone && sdone)) {
        if (now_s() > give_up)
            return fail("a handshake did not complete in 5 s");
        if (!cdone) {
            r = SSL_connect(c);
            if (r == 1)
                cdone = 1;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ && SSL_get_error(c, r) != SSL_ERROR_WANT_WRITE)
                return fail("SSL_connect failed");
        }
        SSL_handle_events(l);
        if (s == NULL)
            s = SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK);
        if (s != NULL && !sdone) {
            r = SSL_accept(s);
            if (r == 1)
                sdone = 1;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ && SSL_get_error(s, r) != SSL_ERROR_WANT_WRITE)
                return fail("SSL_accept failed");
        }
    }
    SSL_free(c);
    SSL_handle_events(l);
    SSL_free(s);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = "pair";
    double secs = 2, t0, end, t, first_ms;
    int opt, udp, sfd = -1, cfd = -1;
    SSL_CTX *sctx = NULL, *cctx = NULL;
    SSL *l = NULL;
    BIO *a = NULL, *b = NULL;
    BIO_ADDR *srv = NULL;
    unsigned long count = 0;

    while ((opt = getopt(argc, argv, "m:s:c:")) != -1) {
        switch (opt) {
        case 'm': mode = optarg; break;
        case 's': secs = atof(optarg); break;
        case 'c': certdir = optarg; break;
        default:
            fprintf(stderr, "usage: quic_handshakes [-m pair|udp] [-s SECONDS] [-c CERTDIR]\n");
            return 2;
        }
    }
    udp = strcmp(mode, "udp") == 0;
    if ((!udp && strcmp(mode, "pair") != 0) || secs <= 0)
        return 2;

    sctx = SSL_CTX_new(OSSL_QUIC_server_method());
    cctx = SSL_CTX_new(OSSL_QUIC_client_method());
    if (sctx == NULL || cctx == NULL || !SSL_CTX_use_certificate_chain_file(sctx, cert("chain.pem")) ||
        !SSL_CTX_use_PrivateKey_file(sctx, cert("key.pem"), SSL_FILETYPE_PEM) ||
        SSL_CTX_set_alpn_protos(sctx, alpn, sizeof(alpn)) != 0 || !SSL_CTX_load_verify_locations(cctx, cert("ca.pem"), NULL))
        return fail("context setup failed");
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    l = SSL_new_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE);
    if (l == NULL || !SSL_set_blocking_mode(l, 0))
        return fail("SSL_new_listener failed");
    if (udp) {
        sfd = udp_socket(&srv);
        cfd = udp_socket(NULL);
        if (sfd < 0 || cfd < 0 || !SSL_set_fd(l, sfd))
            return fail("UDP setup failed");
    } else {
        if (!BIO_new_bio_dgram_pair(&a, 1 << 20, &b, 1 << 20))
            return fail("BIO_new_bio_dgram_pair failed");
        SSL_set_bio(l, a, a);
    }
    if (!SSL_listen(l))
        return fail("SSL_listen failed");

    /* One handshake outside the timed rounds: its time is printed (first_ms) as the latency a
     * program's first connection sees; the rounds measure the steady state. */
    t = now_s();
    if (handshake(cctx, l, udp ? NULL : b, cfd, srv) != 0)
        return 1;
    first_ms = (now_s() - t) * 1000;
    t0 = now_s();
    end = t0 + secs;
    while (now_s() < end) {
        if (handshake(cctx, l, udp ? NULL : b, cfd, srv) != 0)
            return 1;
        count++;
    }
    t = now_s() - t0;
    printf("handshakes osslquic-%s count=%lu secs=%.3f hps=%.1f first_ms=%.2f\n", mode, count, t, (double)count / t,
           first_ms);
    SSL_free(l);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    if (!udp)
        BIO_free(b);
    BIO_ADDR_free(srv);
    if (sfd >= 0)
        close(sfd);
    if (cfd >= 0)
        close(cfd);
    return 0;
}
