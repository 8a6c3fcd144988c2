/*
 * test_bio_acpt: the accept and connect BIOs (issue 5, deliverable 2) on TCP loopback, with
 * exact values: BIO_new_accept("127.0.0.1:0") binds and listens on the first BIO_do_accept
 * (the port read back with BIO_get_accept_port), BIO_new_connect connects to it, the next
 * BIO_do_accept chains a socket BIO that BIO_pop detaches (bytes both ways, free order,
 * fds closed), non-blocking accept (-1, retry special, BIO_RR_ACCEPT, nothing queued) and
 * non-blocking connect (retry until connected, bounded), bind modes, and clear errors for
 * bad host names, a refused connection and a port in use. Passes against OpenSSL 3.5.5
 * (tests/c/check-openssl.sh).
 */
#include "testutil.h"

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

/* An accept BIO listening on 127.0.0.1 (ephemeral port); its port into *port. */
static BIO *listening(int *port, int nbio)
{
    BIO *a = BIO_new_accept("127.0.0.1:0");
    const char *p;

    if (a == NULL)
        return NULL;
    if (nbio)
        BIO_set_nbio_accept(a, 1);
    if (BIO_do_accept(a) != 1 || (p = BIO_get_accept_port(a)) == NULL) {
        BIO_free(a);
        return NULL;
    }
    *port = atoi(p);
    return a;
}

static BIO *connector(int port)
{
    char hp[64];

    snprintf(hp, sizeof(hp), "127.0.0.1:%d", port);
    return BIO_new_connect(hp);
}

/* Reads exactly n bytes from b (a blocking socket BIO), bounded by the watchdog. */
static int read_n(BIO *b, char *buf, int n)
{
    int got = 0, r;

    while (got < n) {
        r = BIO_read(b, buf + got, n - got);
        if (r <= 0)
            return got;
        got += r;
    }
    return got;
}

static int test_accept_connect_roundtrip(void)
{
    int port = 0, lfd = -1, cfd = -1, sfd = -1;
    char buf[64], local[16];
    BIO *a, *c, *s;
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    a = BIO_new_accept("127.0.0.1:0");
    ASSERT_NOT_NULL(a);
    ASSERT_EQ(BIO_method_type(a), BIO_TYPE_ACCEPT);
    ASSERT_EQ(BIO_TYPE_ACCEPT, 0x50D);
    ASSERT_EQ(BIO_get_close(a), BIO_CLOSE);
    /* Nothing bound yet: no fd, no cached name. */
    ASSERT_EQ(BIO_get_fd(a, NULL), -1);
    ASSERT_NULL(BIO_get_accept_port(a));
    ASSERT_EQ(BIO_do_accept(a), 1);
    ASSERT_GT(BIO_get_fd(a, &lfd), 0);
    ASSERT_TRUE(fd_open(lfd));
    ASSERT_STR_EQ(BIO_get_accept_name(a), "127.0.0.1");
    port = atoi(BIO_get_accept_port(a));
    ASSERT_GT(port, 0);
    ASSERT_EQ(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    ASSERT_EQ(ntohs(sin.sin_port), port);
    ASSERT_NULL(BIO_next(a));

    c = connector(port);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(BIO_method_type(c), BIO_TYPE_CONNECT);
    ASSERT_STR_EQ(BIO_get_conn_hostname(c), "127.0.0.1");
    ASSERT_EQ(atoi(BIO_get_conn_port(c)), port);
    ASSERT_EQ(BIO_do_connect(c), 1);
    ASSERT_EQ(BIO_do_connect(c), 1); /* already connected */
    ASSERT_GT(BIO_get_fd(c, &cfd), 0);
    ASSERT_NOT_NULL(BIO_get_conn_address(c));
    ASSERT_EQ(BIO_ADDR_rawport(BIO_get_conn_address(c)), htons((unsigned short)port));

    /* The connection waits in the backlog: this BIO_do_accept does not block. */
    ASSERT_EQ(BIO_do_accept(a), 1);
    s = BIO_next(a);
    ASSERT_NOT_NULL(s);
    ASSERT_EQ(BIO_method_type(s), BIO_TYPE_SOCKET);
    /* While it is chained, BIO_do_accept accepts nothing more and says 1. */
    ASSERT_EQ(BIO_do_accept(a), 1);
    ASSERT_PTR_EQ(BIO_next(a), s);
    ASSERT_STR_EQ(BIO_get_peer_name(a), "127.0.0.1");
    len = sizeof(sin);
    ASSERT_EQ(getsockname(cfd, (struct sockaddr *)&sin, &len), 0);
    snprintf(local, sizeof(local), "%d", ntohs(sin.sin_port));
    ASSERT_STR_EQ(BIO_get_peer_port(a), local);

    /* I/O on the accept BIO goes to the chained socket BIO. */
    ASSERT_EQ(BIO_write(c, "ping from client", 16), 16);
    ASSERT_EQ(read_n(a, buf, 16), 16);
    ASSERT_MEM_EQ(buf, "ping from client", 16);

    ASSERT_PTR_EQ(BIO_pop(a), s);
    ASSERT_NULL(BIO_next(a));
    ASSERT_GT(BIO_get_fd(s, &sfd), 0);
    ASSERT_NE(sfd, lfd);
    ASSERT_EQ(BIO_get_close(s), BIO_CLOSE);

    /* Free the acceptor first: the popped socket BIO lives on. */
    BIO_free(a);
    ASSERT_FALSE(fd_open(lfd));
    ASSERT_TRUE(fd_open(sfd));
    ASSERT_EQ(BIO_write(s, "pong from server", 16), 16);
    ASSERT_EQ(read_n(c, buf, 16), 16);
    ASSERT_MEM_EQ(buf, "pong from server", 16);
    ASSERT_EQ(BIO_write(c, "bye", 3), 3);
    ASSERT_EQ(read_n(s, buf, 3), 3);
    ASSERT_MEM_EQ(buf, "bye", 3);

    /* The server closes: the client reads end of stream. */
    BIO_free(s);
    ASSERT_FALSE(fd_open(sfd));
    ASSERT_EQ(BIO_read(c, buf, sizeof(buf)), 0);
    ASSERT_FALSE(BIO_should_retry(c));
    ASSERT_EQ(BIO_eof(c), 1);
    BIO_free(c);
    ASSERT_FALSE(fd_open(cfd));
    ASSERT_NO_ERROR();
    return 1;
}

/* A connection left chained is freed with the acceptor by BIO_free_all. */
static int test_free_all_chained(void)
{
    int port = 0, lfd = -1, sfd = -1;
    BIO *a, *c;

    a = listening(&port, 0);
    ASSERT_NOT_NULL(a);
    c = connector(port);
    ASSERT_EQ(BIO_do_connect(c), 1);
    ASSERT_EQ(BIO_do_accept(a), 1);
    ASSERT_GT(BIO_get_fd(a, &lfd), 0);
    ASSERT_NOT_NULL(BIO_next(a));
    ASSERT_GT(BIO_get_fd(BIO_next(a), &sfd), 0);
    BIO_free_all(a);
    ASSERT_FALSE(fd_open(lfd));
    ASSERT_FALSE(fd_open(sfd));
    BIO_free(c);
    ASSERT_NO_ERROR();
    return 1;
}

static int test_nonblocking(void)
{
    int port = 0, lfd = -1, cfd = -1, sfd = -1, r = 0, i;
    char buf[8];
    BIO *a, *c, *s;

    a = BIO_new_accept("127.0.0.1:0");
    ASSERT_NOT_NULL(a);
    /* BIO_set_bind_mode replaces the options; BIO_set_nbio_accept adds NONBLOCK after it. */
    ASSERT_EQ(BIO_set_bind_mode(a, BIO_BIND_REUSEADDR), 1);
    ASSERT_EQ(BIO_set_nbio_accept(a, 1), 1);
    ASSERT_EQ(BIO_get_bind_mode(a), BIO_SOCK_REUSEADDR | BIO_SOCK_NONBLOCK);
    ASSERT_EQ(BIO_set_nbio(a, 1), 1); /* accepted sockets non-blocking too */
    ASSERT_EQ(BIO_do_accept(a), 1);
    ASSERT_GT(BIO_get_fd(a, &lfd), 0);
    {
        int on = 0;
        socklen_t len = sizeof(on);
        ASSERT_EQ(getsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, &len), 0);
        ASSERT_NE(on, 0);
    }
    ASSERT_NE(fcntl(lfd, F_GETFL) & O_NONBLOCK, 0);
    port = atoi(BIO_get_accept_port(a));

    /* Nothing to accept: -1, a special retry with reason BIO_RR_ACCEPT, nothing queued. */
    ASSERT_EQ(BIO_do_accept(a), -1);
    ASSERT_TRUE(BIO_should_retry(a));
    ASSERT_TRUE(BIO_should_io_special(a));
    ASSERT_FALSE(BIO_should_read(a));
    ASSERT_EQ(BIO_get_retry_reason(a), BIO_RR_ACCEPT);
    ASSERT_NULL(BIO_next(a));
    ASSERT_NO_ERROR();

    /* A non-blocking connect: retries (never a failure) until connected, bounded. */
    c = connector(port);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(BIO_set_nbio(c, 1), 1);
    for (i = 0; i < 100; i++) {
        r = (int)BIO_do_connect(c);
        if (r > 0)
            break;
        ASSERT_LE(r, 0);
        ASSERT_TRUE(BIO_should_retry(c));
        ASSERT_TRUE(BIO_should_io_special(c));
        ASSERT_EQ(BIO_get_retry_reason(c), BIO_RR_CONNECT);
        ASSERT_NO_ERROR();
        ASSERT_GT(BIO_get_fd(c, &cfd), 0);
        ASSERT_TRUE(tu_wait_fd(cfd, POLLOUT, 5000));
    }
    ASSERT_EQ(r, 1);
    ASSERT_GT(BIO_get_fd(c, &cfd), 0);
    ASSERT_NE(fcntl(cfd, F_GETFL) & O_NONBLOCK, 0);

    /* The connection arrives: wait for the listener, then accept. */
    ASSERT_TRUE(tu_wait_readable(lfd, 5000));
    ASSERT_EQ(BIO_do_accept(a), 1);
    s = BIO_pop(a);
    ASSERT_NOT_NULL(s);
    ASSERT_GT(BIO_get_fd(s, &sfd), 0);
    ASSERT_NE(fcntl(sfd, F_GETFL) & O_NONBLOCK, 0);

    /* Both ends non-blocking: reads with nothing there are retries. */
    ASSERT_EQ(BIO_read(s, buf, sizeof(buf)), -1);
    ASSERT_TRUE(BIO_should_retry(s));
    ASSERT_TRUE(BIO_should_read(s));
    ASSERT_EQ(BIO_read(c, buf, sizeof(buf)), -1);
    ASSERT_TRUE(BIO_should_retry(c));
    ASSERT_TRUE(BIO_should_read(c));
    ASSERT_NO_ERROR();
    ASSERT_EQ(BIO_write(c, "nb", 2), 2);
    ASSERT_TRUE(tu_wait_readable(sfd, 5000));
    ASSERT_EQ(BIO_read(s, buf, sizeof(buf)), 2);
    ASSERT_MEM_EQ(buf, "nb", 2);

    /* Again nothing to accept. */
    ASSERT_EQ(BIO_do_accept(a), -1);
    ASSERT_TRUE(BIO_should_retry(a));
    ASSERT_NO_ERROR();

    BIO_free(s);
    BIO_free(c);
    BIO_free(a);
    ASSERT_FALSE(fd_open(lfd));
    ASSERT_FALSE(fd_open(cfd));
    ASSERT_FALSE(fd_open(sfd));
    return 1;
}

/* BIO_set_accept_port and BIO_set_conn_port/_hostname set the parts separately. */
static int test_set_parts(void)
{
    int port = 0;
    char ps[16];
    BIO *a = BIO_new(BIO_s_accept()), *c = BIO_new(BIO_s_connect());

    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(BIO_set_accept_name(a, "127.0.0.1"), 1); /* a lone part is the port... */
    ASSERT_EQ(BIO_set_accept_name(a, "127.0.0.1:0"), 1);
    ASSERT_EQ(BIO_set_accept_port(a, "0"), 1);
    ASSERT_EQ(BIO_do_accept(a), 1);
    port = atoi(BIO_get_accept_port(a));
    ASSERT_GT(port, 0);
    snprintf(ps, sizeof(ps), "%d", port);
    ASSERT_EQ(BIO_set_conn_hostname(c, "127.0.0.1"), 1); /* ...for a connect BIO the host */
    ASSERT_NULL(BIO_get_conn_port(c));
    ASSERT_EQ(BIO_set_conn_port(c, ps), 1);
    ASSERT_STR_EQ(BIO_get_conn_port(c), ps);
    ASSERT_STR_EQ(BIO_get_conn_hostname(c), "127.0.0.1");
    ASSERT_EQ(BIO_do_connect(c), 1);
    ASSERT_EQ(BIO_write(c, "x", 1), 1);
    ASSERT_EQ(BIO_do_accept(a), 1);
    BIO_free_all(a);
    BIO_free(c);
    ASSERT_NO_ERROR();
    return 1;
}

static int test_errors(void)
{
    int port = 0, fd;
    unsigned long e;
    char ps[64];
    BIO *a, *b, *c;
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    /* Strings BIO_parse_hostserv refuses. */
    ASSERT_NULL(BIO_new_accept("a:b:c"));
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_AMBIGUOUS_HOST_OR_SERVICE);
    ASSERT_NO_ERROR();
    c = BIO_new(BIO_s_connect());
    ASSERT_EQ(BIO_set_conn_hostname(c, "[::1"), 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_MALFORMED_HOST_OR_SERVICE);
    BIO_free(c);

    /* Nothing to connect to or listen on: -1 and a named reason. */
    c = BIO_new(BIO_s_connect());
    ASSERT_EQ(BIO_do_connect(c), -1);
    e = ERR_peek_last_error();
    ASSERT_EQ(ERR_GET_LIB(e), ERR_LIB_BIO);
    ASSERT_EQ(ERR_GET_REASON(e), BIO_R_NO_HOSTNAME_OR_SERVICE_SPECIFIED);
    ERR_clear_error();
    ASSERT_EQ(BIO_get_fd(c, NULL), -1);
    BIO_free(c);
    a = BIO_new(BIO_s_accept());
    ASSERT_EQ(BIO_do_accept(a), -1);
    e = ERR_peek_last_error();
    ASSERT_EQ(ERR_GET_LIB(e), ERR_LIB_BIO);
    ASSERT_EQ(ERR_GET_REASON(e), BIO_R_NO_ACCEPT_ADDR_OR_SERVICE_SPECIFIED);
    ERR_clear_error();
    BIO_free(a);

    /* Names getaddrinfo cannot resolve: -1, a BIO error, no socket. */
    c = BIO_new_connect("127.0.0.1:no-such-service-osslquic");
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(BIO_do_connect(c), -1);
    ASSERT_FALSE(BIO_should_retry(c));
    e = ERR_peek_last_error();
    ASSERT_EQ(ERR_GET_LIB(e), ERR_LIB_BIO);
    ERR_clear_error();
    ASSERT_EQ(BIO_get_fd(c, NULL), -1);
    ASSERT_EQ(BIO_write(c, "x", 1), -1);
    ERR_clear_error();
    BIO_free(c);
    c = BIO_new_connect("no-such-host.invalid:443");
    ASSERT_EQ(BIO_do_connect(c), -1);
    ASSERT_EQ(ERR_GET_LIB(ERR_peek_last_error()), ERR_LIB_BIO);
    ERR_clear_error();
    BIO_free(c);
    a = BIO_new_accept("no-such-host.invalid:0");
    ASSERT_EQ(BIO_do_accept(a), -1);
    ASSERT_EQ(ERR_GET_LIB(ERR_peek_last_error()), ERR_LIB_BIO);
    ERR_clear_error();
    BIO_free(a);

    /* A port that is bound but not listening refuses: 0, BIO_R_CONNECT_ERROR. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    c = connector(ntohs(sin.sin_port));
    ASSERT_EQ(BIO_do_connect(c), 0);
    ASSERT_FALSE(BIO_should_retry(c));
    e = ERR_peek_last_error();
    ASSERT_EQ(ERR_GET_LIB(e), ERR_LIB_BIO);
    ASSERT_EQ(ERR_GET_REASON(e), BIO_R_CONNECT_ERROR);
    ERR_clear_error();
    BIO_free(c);
    close(fd);

    /* A port already listened on: the second acceptor cannot bind. */
    a = listening(&port, 0);
    ASSERT_NOT_NULL(a);
    snprintf(ps, sizeof(ps), "127.0.0.1:%d", port);
    b = BIO_new_accept(ps);
    ASSERT_EQ(BIO_do_accept(b), -1);
    e = ERR_peek_last_error();
    ASSERT_EQ(ERR_GET_LIB(e), ERR_LIB_BIO);
    ASSERT_EQ(ERR_GET_REASON(e), BIO_R_UNABLE_TO_BIND_SOCKET);
    ERR_clear_error();
    ASSERT_EQ(BIO_get_fd(b, NULL), -1);
    BIO_free(b);
    BIO_free(a);
    ASSERT_NO_ERROR();
    return 1;
}

int main(int argc, char **argv)
{
    tu_init(argc, argv);
    RUN(test_accept_connect_roundtrip);
    RUN(test_free_all_chained);
    RUN(test_nonblocking);
    RUN(test_set_parts);
    RUN(test_errors);
    return tu_finish();
}
