/*
 * test_addr: BIO_ADDR, BIO_lookup_ex / BIO_ADDRINFO and the plain socket helpers
 * (BIO_sock_init, BIO_socket, BIO_bind, BIO_connect, BIO_listen, BIO_socket_nbio,
 * BIO_closesocket). Loopback only; every port is 0 and read back.
 */
#include "testutil.h"

#include <sys/stat.h>

static int is_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl >= 0 && (fl & O_NONBLOCK) != 0;
}

static int test_new_is_unspec(void)
{
    BIO_ADDR *a = BIO_ADDR_new();

    ASSERT_NOT_NULL(a);
    ASSERT_EQ(BIO_ADDR_family(a), AF_UNSPEC);
    ASSERT_EQ(BIO_ADDR_rawport(a), 0);
    BIO_ADDR_free(a);
    BIO_ADDR_free(NULL); /* a no-op, as free(NULL) */
    return 1;
}

static int test_rawmake_v4(void)
{
    BIO_ADDR *a = BIO_ADDR_new();
    struct in_addr in, out;
    size_t l = 0;
    char *h, *s;

    ASSERT_NOT_NULL(a);
    ASSERT_EQ(inet_pton(AF_INET, "127.0.0.1", &in), 1);
    ASSERT_EQ(BIO_ADDR_rawmake(a, AF_INET, &in, sizeof(in), htons(4433)), 1);
    ASSERT_EQ(BIO_ADDR_family(a), AF_INET);
    ASSERT_EQ(BIO_ADDR_rawport(a), htons(4433));
    /* p = NULL asks for the size only. */
    ASSERT_EQ(BIO_ADDR_rawaddress(a, NULL, &l), 1);
    ASSERT_EQ(l, sizeof(struct in_addr));
    memset(&out, 0, sizeof(out));
    ASSERT_EQ(BIO_ADDR_rawaddress(a, &out, &l), 1);
    ASSERT_EQ(l, 4);
    ASSERT_MEM_EQ(&out, &in, 4);
    /* The length pointer is optional. */
    ASSERT_EQ(BIO_ADDR_rawaddress(a, &out, NULL), 1);

    h = BIO_ADDR_hostname_string(a, 1);
    s = BIO_ADDR_service_string(a, 1);
    ASSERT_STR_EQ(h, "127.0.0.1");
    ASSERT_STR_EQ(s, "4433");
    OPENSSL_free(h);
    OPENSSL_free(s);

    /* Wrong length for the family is refused. */
    ASSERT_EQ(BIO_ADDR_rawmake(a, AF_INET, &in, 3, 0), 0);
    ERR_clear_error();
    BIO_ADDR_free(a);
    return 1;
}

static int test_rawmake_v6(void)
{
    BIO_ADDR *a = BIO_ADDR_new();
    struct in6_addr in6, out;
    size_t l = 0;
    char *h, *s;

    ASSERT_NOT_NULL(a);
    ASSERT_EQ(inet_pton(AF_INET6, "::1", &in6), 1);
    ASSERT_EQ(BIO_ADDR_rawmake(a, AF_INET6, &in6, sizeof(in6), htons(65535)), 1);
    ASSERT_EQ(BIO_ADDR_family(a), AF_INET6);
    ASSERT_EQ(BIO_ADDR_rawport(a), htons(65535));
    ASSERT_EQ(BIO_ADDR_rawaddress(a, NULL, &l), 1);
    ASSERT_EQ(l, 16);
    ASSERT_EQ(BIO_ADDR_rawaddress(a, &out, &l), 1);
    ASSERT_MEM_EQ(&out, &in6, 16);
    h = BIO_ADDR_hostname_string(a, 1);
    s = BIO_ADDR_service_string(a, 1);
    ASSERT_STR_EQ(h, "::1");
    ASSERT_STR_EQ(s, "65535");
    OPENSSL_free(h);
    OPENSSL_free(s);

    ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::17", &in6), 1);
    ASSERT_EQ(BIO_ADDR_rawmake(a, AF_INET6, &in6, sizeof(in6), htons(1)), 1);
    h = BIO_ADDR_hostname_string(a, 1);
    ASSERT_STR_EQ(h, "2001:db8::17");
    OPENSSL_free(h);
    BIO_ADDR_free(a);
    return 1;
}

static int test_rawmake_unix(void)
{
    BIO_ADDR *a = BIO_ADDR_new();
    const char *path = "/tmp/osslquic-test.sock";
    char out[128], longpath[300];
    size_t l = 0;
    char *p;

    ASSERT_NOT_NULL(a);
    ASSERT_EQ(BIO_ADDR_rawmake(a, AF_UNIX, path, strlen(path), 0), 1);
    ASSERT_EQ(BIO_ADDR_family(a), AF_UNIX);
    ASSERT_EQ(BIO_ADDR_rawport(a), 0);
    ASSERT_EQ(BIO_ADDR_rawaddress(a, NULL, &l), 1);
    ASSERT_EQ(l, strlen(path));
    memset(out, 0, sizeof(out));
    ASSERT_EQ(BIO_ADDR_rawaddress(a, out, &l), 1);
    ASSERT_MEM_EQ(out, path, strlen(path));
    p = BIO_ADDR_path_string(a);
    ASSERT_STR_EQ(p, path);
    OPENSSL_free(p);

    /* A path longer than sun_path is refused. */
    memset(longpath, 'a', sizeof(longpath));
    ASSERT_EQ(BIO_ADDR_rawmake(a, AF_UNIX, longpath, sizeof(longpath), 0), 0);
    ERR_clear_error();
    BIO_ADDR_free(a);
    return 1;
}

static int test_clear_copy_dup(void)
{
    BIO_ADDR *a = tu_loopback(AF_INET6, 853), *b = BIO_ADDR_new(), *c;

    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_ADDR_copy(b, a), 1);
    ASSERT_ADDR_EQ(b, a);
    c = BIO_ADDR_dup(a);
    ASSERT_NOT_NULL(c);
    ASSERT_TRUE(c != a);
    ASSERT_ADDR_EQ(c, a);
    /* The copies are independent. */
    BIO_ADDR_clear(a);
    ASSERT_EQ(BIO_ADDR_family(a), AF_UNSPEC);
    ASSERT_EQ(BIO_ADDR_family(b), AF_INET6);
    ASSERT_EQ(BIO_ADDR_rawport(c), htons(853));
    /* Copying a cleared address clears. */
    ASSERT_EQ(BIO_ADDR_copy(b, a), 1);
    ASSERT_EQ(BIO_ADDR_family(b), AF_UNSPEC);
    BIO_ADDR_free(a);
    BIO_ADDR_free(b);
    BIO_ADDR_free(c);
    return 1;
}

static int check_lookup(const char *host, int family, int socktype, const char *want_host)
{
    BIO_ADDRINFO *res = NULL;
    const BIO_ADDRINFO *ai;
    int n = 0;

    ASSERT_EQ(BIO_lookup_ex(host, "4433", BIO_LOOKUP_CLIENT, AF_UNSPEC, socktype, 0, &res), 1);
    ASSERT_NOT_NULL(res);
    for (ai = res; ai != NULL; ai = BIO_ADDRINFO_next(ai)) {
        const BIO_ADDR *a = BIO_ADDRINFO_address(ai);
        char *h;

        ASSERT_NOT_NULL(a);
        ASSERT_EQ(BIO_ADDRINFO_family(ai), family);
        ASSERT_EQ(BIO_ADDR_family(a), family);
        ASSERT_EQ(BIO_ADDRINFO_socktype(ai), socktype);
        ASSERT_EQ(BIO_ADDRINFO_protocol(ai), socktype == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP);
        ASSERT_EQ(BIO_ADDR_rawport(a), htons(4433));
        h = BIO_ADDR_hostname_string(a, 1);
        ASSERT_STR_EQ(h, want_host);
        OPENSSL_free(h);
        n++;
    }
    ASSERT_GE(n, 1);
    BIO_ADDRINFO_free(res);
    return 1;
}

static int test_lookup_ex(void)
{
    BIO_ADDRINFO *res = NULL;

    ASSERT_TRUE(check_lookup("127.0.0.1", AF_INET, SOCK_DGRAM, "127.0.0.1"));
    ASSERT_TRUE(check_lookup("127.0.0.1", AF_INET, SOCK_STREAM, "127.0.0.1"));
    ASSERT_TRUE(check_lookup("::1", AF_INET6, SOCK_DGRAM, "::1"));
    /* The family filter is honoured: asking for IPv6 of an IPv4 literal finds nothing. */
    ASSERT_EQ(BIO_lookup_ex("127.0.0.1", "4433", BIO_LOOKUP_CLIENT, AF_INET6, SOCK_DGRAM, 0, &res),
              0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    BIO_ADDRINFO_free(NULL);
    return 1;
}

static int test_sock_init(void)
{
    ASSERT_EQ(BIO_sock_init(), 1);
    ASSERT_EQ(BIO_sock_init(), 1);
    return 1;
}

static int test_tcp_listen_connect(void)
{
    BIO_ADDR *any = tu_loopback(AF_INET, 0), *bound;
    int lfd, cfd, afd, on = 0;
    socklen_t ol = sizeof(on);

    ASSERT_NOT_NULL(any);
    lfd = BIO_socket(AF_INET, SOCK_STREAM, IPPROTO_TCP, 0);
    ASSERT_GE(lfd, 0);
    ASSERT_EQ(BIO_listen(lfd, any, BIO_SOCK_REUSEADDR | BIO_SOCK_NONBLOCK), 1);
    ASSERT_EQ(getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol), 0);
    ASSERT_EQ(on, 1);
    ASSERT_TRUE(is_nonblocking(lfd));
    on = 0;
    ol = sizeof(on);
    ASSERT_EQ(getsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, &ol), 0);
    ASSERT_NE(on, 0);
    bound = tu_sockname(lfd);
    ASSERT_NOT_NULL(bound);
    ASSERT_NE(BIO_ADDR_rawport(bound), 0);

    cfd = BIO_socket(AF_INET, SOCK_STREAM, IPPROTO_TCP, 0);
    ASSERT_GE(cfd, 0);
    ASSERT_EQ(BIO_connect(cfd, bound, 0), 1);
    ASSERT_TRUE(tu_wait_readable(lfd, 5000));
    afd = accept(lfd, NULL, NULL);
    ASSERT_GE(afd, 0);
    ASSERT_EQ(write(cfd, "ping", 4), 4);
    ASSERT_TRUE(tu_wait_readable(afd, 5000));
    {
        char buf[8];

        ASSERT_EQ(read(afd, buf, sizeof(buf)), 4);
        ASSERT_MEM_EQ(buf, "ping", 4);
    }
    ASSERT_EQ(BIO_closesocket(afd), 1);
    ASSERT_EQ(BIO_closesocket(cfd), 1);
    ASSERT_EQ(BIO_closesocket(lfd), 1);
    ASSERT_EQ(BIO_closesocket(-1), 0);
    ERR_clear_error();
    BIO_ADDR_free(any);
    BIO_ADDR_free(bound);
    return 1;
}

/* BIO_listen on a datagram socket binds but does not call listen(). */
static int test_udp_listen_and_bind(void)
{
    BIO_ADDR *any = tu_loopback(AF_INET, 0), *bound, *bound2;
    int fd, fd2, fd3, on = 1;
    socklen_t ol = sizeof(on);

    ASSERT_NOT_NULL(any);
    fd = BIO_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(BIO_listen(fd, any, 0), 1);
    ASSERT_EQ(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol), 0);
    ASSERT_EQ(on, 0);
    ASSERT_FALSE(is_nonblocking(fd));
    bound = tu_sockname(fd);
    ASSERT_NOT_NULL(bound);
    ASSERT_NE(BIO_ADDR_rawport(bound), 0);

    fd2 = BIO_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, 0);
    ASSERT_GE(fd2, 0);
    ASSERT_EQ(BIO_bind(fd2, any, 0), 1);
    bound2 = tu_sockname(fd2);
    ASSERT_NOT_NULL(bound2);
    ASSERT_NE(BIO_ADDR_rawport(bound2), 0);
    ASSERT_NE(BIO_ADDR_rawport(bound2), BIO_ADDR_rawport(bound));

    /* Binding a port already taken fails and says why. */
    fd3 = BIO_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, 0);
    ASSERT_GE(fd3, 0);
    ASSERT_EQ(BIO_bind(fd3, bound, 0), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();

    /* A UDP BIO_connect sets the default destination. */
    ASSERT_EQ(BIO_connect(fd3, bound, 0), 1);
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);

        ASSERT_EQ(getpeername(fd3, (struct sockaddr *)&ss, &sl), 0);
        ASSERT_EQ(((struct sockaddr_in *)&ss)->sin_port, BIO_ADDR_rawport(bound));
    }
    ASSERT_EQ(send(fd3, "x", 1, 0), 1);
    ASSERT_TRUE(tu_wait_readable(fd, 5000));

    BIO_closesocket(fd);
    BIO_closesocket(fd2);
    BIO_closesocket(fd3);
    BIO_ADDR_free(any);
    BIO_ADDR_free(bound);
    BIO_ADDR_free(bound2);
    return 1;
}

static int test_listen_v6_only(void)
{
    BIO_ADDR *any;
    int fd, v = -1;
    socklen_t vl = sizeof(v);

    if (!tu_have_ipv6()) {
        tu_skip("no IPv6 loopback");
        return 1;
    }
    any = tu_loopback(AF_INET6, 0);
    ASSERT_NOT_NULL(any);
    fd = BIO_socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(BIO_listen(fd, any, BIO_SOCK_V6_ONLY), 1);
    ASSERT_EQ(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl), 0);
    ASSERT_EQ(v, 1);
    /*
     * Without the flag BIO_listen clears IPV6_V6ONLY, but Linux sets it again when a socket is
     * bound to a specific address such as ::1, so only the flagged case is observable here.
     */
    BIO_closesocket(fd);
    BIO_ADDR_free(any);
    return 1;
}

static int test_socket_nbio(void)
{
    int fd = BIO_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, 0);

    ASSERT_GE(fd, 0);
    ASSERT_FALSE(is_nonblocking(fd));
    ASSERT_EQ(BIO_socket_nbio(fd, 1), 1);
    ASSERT_TRUE(is_nonblocking(fd));
    ASSERT_EQ(BIO_socket_nbio(fd, 0), 1);
    ASSERT_FALSE(is_nonblocking(fd));
    BIO_closesocket(fd);
    /* A bad descriptor fails with an error queued. */
    ASSERT_EQ(BIO_socket_nbio(-1, 1), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    return 1;
}

static int test_socket_bad_family(void)
{
    int fd = BIO_socket(12345, SOCK_DGRAM, 0, 0);

    ASSERT_EQ(fd, -1);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    return 1;
}

int main(int argc, char **argv)
{
    tu_init(argc, argv);
    RUN(test_new_is_unspec);
    RUN(test_rawmake_v4);
    RUN(test_rawmake_v6);
    RUN(test_rawmake_unix);
    RUN(test_clear_copy_dup);
    RUN(test_lookup_ex);
    RUN(test_sock_init);
    RUN(test_tcp_listen_connect);
    RUN(test_udp_listen_and_bind);
    RUN(test_listen_v6_only);
    RUN(test_socket_nbio);
    RUN(test_socket_bad_family);
    return tu_finish();
}
