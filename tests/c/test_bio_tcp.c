/*
 * test_bio_tcp: the byte-stream BIOs TLS over TCP needs (issue 5, deliverable 2), with
 * exact values: BIO_s_socket over real TCP loopback connections (round trip, partial reads,
 * EAGAIN -> -1 + retry-read/write, EOF -> 0 + BIO_eof, close flags checked with fcntl, poll
 * descriptors), BIO_s_mem and BIO_new_mem_buf (eof_return, get_mem_data, gets/puts, reset),
 * BIO_s_bio pairs (write guarantee, full-buffer retry, read request, shutdown_wr), and chains
 * (BIO_push/pop/next/find_type/free_all with BIO_f_buffer). Passes against OpenSSL 3.5.5
 * (tests/c/check-openssl.sh).
 */
#include "testutil.h"

#include <netinet/tcp.h>

/* A connected TCP pair on 127.0.0.1: fds[0] the client end, fds[1] the accepted end. */
static int tcp_pair(int fds[2])
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) != 0)
        return 0;
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof(a)) != 0)
        return 0;
    fds[1] = accept(l, NULL, NULL);
    close(l);
    return fds[1] >= 0;
}

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

static int test_socket_roundtrip(void)
{
    int fds[2], fd = -1;
    char buf[64];
    size_t n = 0;
    BIO_POLL_DESCRIPTOR pd;
    BIO *c, *s;

    ASSERT_TRUE(tcp_pair(fds));
    c = BIO_new_socket(fds[0], BIO_NOCLOSE);
    s = BIO_new_socket(fds[1], BIO_CLOSE);
    ASSERT_NOT_NULL(c);
    ASSERT_NOT_NULL(s);
    ASSERT_EQ(BIO_method_type(c), BIO_TYPE_SOCKET);
    ASSERT_EQ(BIO_TYPE_SOCKET, 0x505);
    ASSERT_EQ(BIO_get_fd(c, &fd), fds[0]);
    ASSERT_EQ(fd, fds[0]);
    ASSERT_EQ(BIO_get_fd(s, NULL), fds[1]);
    ASSERT_EQ(BIO_get_close(c), BIO_NOCLOSE);
    ASSERT_EQ(BIO_get_close(s), BIO_CLOSE);

    ASSERT_EQ(BIO_write(c, "hello world", 11), 11);
    ASSERT_TRUE(tu_wait_readable(fds[1], 5000));
    /* Partial reads take what is asked, then the rest. */
    ASSERT_EQ(BIO_read(s, buf, 5), 5);
    ASSERT_MEM_EQ(buf, "hello", 5);
    ASSERT_EQ(BIO_read(s, buf, sizeof(buf)), 6);
    ASSERT_MEM_EQ(buf, " world", 6);
    ASSERT_EQ(BIO_should_retry(s), 0);

    ASSERT_EQ(BIO_write_ex(s, "pong", 4, &n), 1);
    ASSERT_EQ(n, 4);
    ASSERT_TRUE(tu_wait_readable(fds[0], 5000));
    ASSERT_EQ(BIO_read_ex(c, buf, sizeof(buf), &n), 1);
    ASSERT_EQ(n, 4);
    ASSERT_MEM_EQ(buf, "pong", 4);
    ASSERT_EQ(BIO_puts(c, "line\n"), 5);
    ASSERT_TRUE(tu_wait_readable(fds[1], 5000));
    ASSERT_EQ(BIO_read(s, buf, sizeof(buf)), 5);

    /* Both poll descriptors are the fd. */
    memset(&pd, 0xff, sizeof(pd));
    ASSERT_EQ(BIO_get_rpoll_descriptor(c, &pd), 1);
    ASSERT_EQ(pd.type, BIO_POLL_DESCRIPTOR_TYPE_SOCK_FD);
    ASSERT_EQ(pd.value.fd, fds[0]);
    memset(&pd, 0xff, sizeof(pd));
    ASSERT_EQ(BIO_get_wpoll_descriptor(c, &pd), 1);
    ASSERT_EQ(pd.value.fd, fds[0]);

    ASSERT_EQ(BIO_pending(c), 0);
    ASSERT_EQ(BIO_flush(c), 1);
    ASSERT_EQ(BIO_eof(c), 0);

    /* BIO_CLOSE closes the fd on free, BIO_NOCLOSE does not. */
    BIO_free(s);
    ASSERT_FALSE(fd_open(fds[1]));
    BIO_free(c);
    ASSERT_TRUE(fd_open(fds[0]));
    close(fds[0]);
    ASSERT_NO_ERROR();
    return 1;
}

static int test_socket_retry_and_eof(void)
{
    int fds[2], i, r = 0;
    static char big[65536];
    char buf[16];
    BIO *c, *s;

    ASSERT_TRUE(tcp_pair(fds));
    c = BIO_new_socket(fds[0], BIO_CLOSE);
    s = BIO_new_socket(fds[1], BIO_CLOSE);
    /* OpenSSL's socket BIO has no BIO_C_SET_NBIO: BIO_set_nbio returns 0, changes nothing. */
    ASSERT_EQ(BIO_set_nbio(s, 1), 0);
    ASSERT_EQ(fcntl(fds[1], F_GETFL) & O_NONBLOCK, 0);
    ASSERT_EQ(BIO_socket_nbio(fds[1], 1), 1);
    ASSERT_EQ(BIO_socket_nbio(fds[0], 1), 1);

    /* Nothing to read: -1, retry-read, no error. */
    ASSERT_EQ(BIO_read(s, buf, sizeof(buf)), -1);
    ASSERT_TRUE(BIO_should_retry(s));
    ASSERT_TRUE(BIO_should_read(s));
    ASSERT_FALSE(BIO_should_write(s));
    ASSERT_EQ(BIO_eof(s), 0);
    ASSERT_NO_ERROR();

    /* Fill the connection until the kernel refuses: -1, retry-write. */
    for (i = 0; i < 4096; i++) {
        r = BIO_write(c, big, sizeof(big));
        if (r <= 0)
            break;
    }
    ASSERT_EQ(r, -1);
    ASSERT_TRUE(BIO_should_retry(c));
    ASSERT_TRUE(BIO_should_write(c));
    ASSERT_FALSE(BIO_should_read(c));
    ASSERT_NO_ERROR();
    /* A successful call clears the flags. */
    ASSERT_EQ(BIO_read(s, buf, sizeof(buf)), (int)sizeof(buf));
    ASSERT_EQ(BIO_should_retry(s), 0);

    /* The writer goes away: after the data, read returns 0 and BIO_eof is 1. */
    BIO_free(c);
    ASSERT_FALSE(fd_open(fds[0]));
    for (;;) {
        ASSERT_TRUE(tu_wait_readable(fds[1], 5000));
        r = BIO_read(s, big, sizeof(big));
        if (r <= 0)
            break;
    }
    ASSERT_EQ(r, 0);
    ASSERT_EQ(BIO_should_retry(s), 0);
    ASSERT_EQ(BIO_eof(s), 1);
    BIO_free(s);
    ASSERT_FALSE(fd_open(fds[1]));
    ASSERT_NO_ERROR();
    return 1;
}

static int test_socket_set_fd(void)
{
    int fds[2];
    char buf[4];
    BIO_POLL_DESCRIPTOR pd;
    BIO *b = BIO_new(BIO_s_socket());

    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_get_fd(b, NULL), -1);
    ASSERT_EQ(BIO_get_rpoll_descriptor(b, &pd), 0);
    ERR_clear_error();
    /* Uninitialised: -1 and BIO_R_UNINITIALIZED. */
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), -1);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNINITIALIZED);
    ERR_clear_error();
    ASSERT_TRUE(tcp_pair(fds));
    ASSERT_EQ(BIO_set_fd(b, fds[0], BIO_CLOSE), 1);
    ASSERT_EQ(BIO_get_fd(b, NULL), fds[0]);
    ASSERT_EQ(BIO_set_close(b, BIO_NOCLOSE), 1);
    ASSERT_EQ(BIO_get_close(b), BIO_NOCLOSE);
    /* Re-targeting with the close flag off leaves the old fd open. */
    ASSERT_EQ(BIO_set_fd(b, fds[1], BIO_CLOSE), 1);
    ASSERT_TRUE(fd_open(fds[0]));
    BIO_free(b);
    ASSERT_FALSE(fd_open(fds[1]));
    close(fds[0]);
    return 1;
}

static int test_mem(void)
{
    char buf[64];
    char *p = NULL;
    BIO *b = BIO_new(BIO_s_mem());

    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_method_type(b), BIO_TYPE_MEM);
    ASSERT_EQ(BIO_TYPE_MEM, 0x401);
    ASSERT_EQ(BIO_eof(b), 1);
    /* Empty: -1 with retry-read (eof_return defaults to -1). */
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), -1);
    ASSERT_TRUE(BIO_should_retry(b));
    ASSERT_TRUE(BIO_should_read(b));
    ASSERT_NO_ERROR();

    ASSERT_EQ(BIO_write(b, "abc\ndef", 7), 7);
    ASSERT_EQ(BIO_should_retry(b), 0);
    ASSERT_EQ(BIO_pending(b), 7);
    ASSERT_EQ(BIO_ctrl_pending(b), 7);
    ASSERT_EQ(BIO_wpending(b), 0);
    ASSERT_EQ(BIO_eof(b), 0);
    ASSERT_EQ(BIO_get_mem_data(b, &p), 7);
    ASSERT_MEM_EQ(p, "abc\ndef", 7);
    ASSERT_EQ(BIO_gets(b, buf, sizeof(buf)), 4);
    ASSERT_STR_EQ(buf, "abc\n");
    ASSERT_EQ(BIO_get_mem_data(b, &p), 3);
    ASSERT_MEM_EQ(p, "def", 3);
    ASSERT_EQ(BIO_puts(b, "ghi"), 3);
    ASSERT_EQ(BIO_pending(b), 6);
    /* gets without a newline takes what fits (size - 1). */
    ASSERT_EQ(BIO_gets(b, buf, 3), 2);
    ASSERT_STR_EQ(buf, "de");
    ASSERT_EQ(BIO_read(b, buf, 2), 2);
    ASSERT_MEM_EQ(buf, "fg", 2);
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), 2);
    ASSERT_MEM_EQ(buf, "hi", 2);
    /* gets on empty returns 0, no retry. */
    ASSERT_EQ(BIO_gets(b, buf, sizeof(buf)), 0);
    ASSERT_EQ(buf[0], 0);

    /* eof_return 0: an empty read is end of data. */
    ASSERT_EQ(BIO_set_mem_eof_return(b, 0), 1);
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), 0);
    ASSERT_EQ(BIO_should_retry(b), 0);
    ASSERT_EQ(BIO_set_mem_eof_return(b, -1), 1);
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), -1);
    ASSERT_TRUE(BIO_should_read(b));

    /* BIO_reset on a writable BIO empties it. */
    ASSERT_EQ(BIO_write(b, "xyz", 3), 3);
    ASSERT_EQ(BIO_reset(b), 1);
    ASSERT_EQ(BIO_pending(b), 0);
    ASSERT_EQ(BIO_write(b, "", 0), 0);
    ASSERT_NO_ERROR();
    BIO_free(b);
    return 1;
}

static int test_mem_buf(void)
{
    static const char text[] = "hello";
    char buf[16];
    char *p = NULL;
    BIO *b = BIO_new_mem_buf(text, -1);

    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_pending(b), 5);
    /* Read-only: writes fail with BIO_R_WRITE_TO_READ_ONLY_BIO (126). */
    ASSERT_EQ(BIO_write(b, "x", 1), -1);
    ASSERT_ERROR_IS(ERR_LIB_BIO, 126);
    ASSERT_EQ(BIO_read(b, buf, 3), 3);
    ASSERT_MEM_EQ(buf, "hel", 3);
    ASSERT_EQ(BIO_get_mem_data(b, &p), 2);
    ASSERT_MEM_EQ(p, "lo", 2);
    /* BIO_reset rewinds a read-only BIO. */
    ASSERT_EQ(BIO_reset(b), 1);
    ASSERT_EQ(BIO_pending(b), 5);
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), 5);
    ASSERT_MEM_EQ(buf, "hello", 5);
    /* Drained: 0 (eof_return is 0 for mem_buf), no retry, BIO_eof 1. */
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), 0);
    ASSERT_EQ(BIO_should_retry(b), 0);
    ASSERT_EQ(BIO_eof(b), 1);
    BIO_free(b);

    /* An explicit length keeps embedded NULs. */
    b = BIO_new_mem_buf("a\0b", 3);
    ASSERT_EQ(BIO_pending(b), 3);
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), 3);
    ASSERT_MEM_EQ(buf, "a\0b", 3);
    BIO_free(b);

    ASSERT_NULL(BIO_new_mem_buf(NULL, 3));
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    return 1;
}

static int test_bio_pair(void)
{
    static unsigned char data[150], out[256];
    BIO *a = NULL, *b = NULL;
    int i;

    for (i = 0; i < (int)sizeof(data); i++)
        data[i] = (unsigned char)i;
    ASSERT_EQ(BIO_new_bio_pair(&a, 100, &b, 0), 1);
    ASSERT_EQ(BIO_method_type(a), BIO_TYPE_BIO);
    ASSERT_EQ(BIO_TYPE_BIO, 0x413);
    ASSERT_EQ(BIO_get_write_buf_size(a, 0), 100);
    ASSERT_EQ(BIO_get_write_buf_size(b, 0), 17 * 1024);
    ASSERT_EQ(BIO_ctrl_get_write_guarantee(a), 100);
    ASSERT_EQ(BIO_ctrl_get_write_guarantee(b), 17 * 1024);
    /* Pairing again or resizing a paired half: refused. */
    ASSERT_EQ(BIO_set_write_buf_size(a, 10), 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_IN_USE);

    /* Empty: -1, retry-read, and the writer sees the request. */
    ASSERT_EQ(BIO_read(b, out, 40), -1);
    ASSERT_TRUE(BIO_should_retry(b));
    ASSERT_TRUE(BIO_should_read(b));
    ASSERT_EQ(BIO_ctrl_get_read_request(a), 40);
    ASSERT_EQ(BIO_get_read_request(a), 40);
    ASSERT_EQ(BIO_read(b, out, 1000), -1);
    ASSERT_EQ(BIO_ctrl_get_read_request(a), 100); /* capped at the buffer */
    ASSERT_EQ(BIO_eof(b), 0);
    ASSERT_NO_ERROR();

    /* Writes are partial; a full buffer is -1 with retry-write. */
    ASSERT_EQ(BIO_write(a, data, sizeof(data)), 100);
    ASSERT_EQ(BIO_ctrl_get_read_request(a), 0);
    ASSERT_EQ(BIO_ctrl_get_write_guarantee(a), 0);
    ASSERT_EQ(BIO_write(a, data + 100, 50), -1);
    ASSERT_TRUE(BIO_should_retry(a));
    ASSERT_TRUE(BIO_should_write(a));
    ASSERT_NO_ERROR();
    ASSERT_EQ(BIO_pending(b), 100);
    ASSERT_EQ(BIO_ctrl_pending(b), 100);
    ASSERT_EQ(BIO_wpending(a), 100);
    ASSERT_EQ(BIO_pending(a), 0);

    ASSERT_EQ(BIO_read(b, out, 30), 30);
    ASSERT_MEM_EQ(out, data, 30);
    ASSERT_EQ(BIO_ctrl_get_write_guarantee(a), 30);
    ASSERT_EQ(BIO_write(a, data + 100, 50), 30); /* wraps around the ring */
    ASSERT_EQ(BIO_read(b, out + 30, 200), 100);
    ASSERT_MEM_EQ(out, data, 130);
    ASSERT_EQ(BIO_write(a, data + 130, 20), 20);
    ASSERT_EQ(BIO_read(b, out + 130, 200), 20);
    ASSERT_MEM_EQ(out, data, 150);

    /* The other direction is independent. */
    ASSERT_EQ(BIO_write(b, "back", 4), 4);
    ASSERT_EQ(BIO_read(a, out, sizeof(out)), 4);
    ASSERT_MEM_EQ(out, "back", 4);

    /* shutdown_wr: the reader drains, then reads 0 with BIO_eof; writing fails. */
    ASSERT_EQ(BIO_write(a, "tail", 4), 4);
    ASSERT_EQ(BIO_shutdown_wr(a), 1);
    ASSERT_EQ(BIO_ctrl_get_write_guarantee(a), 0);
    ASSERT_EQ(BIO_eof(b), 0);
    ASSERT_EQ(BIO_read(b, out, sizeof(out)), 4);
    ASSERT_EQ(BIO_eof(b), 1);
    ASSERT_EQ(BIO_read(b, out, sizeof(out)), 0);
    ASSERT_EQ(BIO_should_retry(b), 0);
    ASSERT_EQ(BIO_write(a, "x", 1), -1);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_BROKEN_PIPE);
    ASSERT_EQ(BIO_should_retry(a), 0);

    /* destroy_bio_pair unpairs both halves. */
    ASSERT_EQ(BIO_destroy_bio_pair(a), 1);
    ASSERT_EQ(BIO_ctrl_get_write_guarantee(b), 0);
    ASSERT_EQ(BIO_eof(b), 1);
    ASSERT_EQ(BIO_read(b, out, 4), -1);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNINITIALIZED);
    /* ...and they can be paired again. */
    ASSERT_EQ(BIO_make_bio_pair(a, b), 1);
    ASSERT_EQ(BIO_write(b, "re", 2), 2);
    ASSERT_EQ(BIO_read(a, out, 4), 2);
    ASSERT_NO_ERROR();
    BIO_free(a);
    /* Freeing one half unpairs the other. */
    ASSERT_EQ(BIO_ctrl_get_write_guarantee(b), 0);
    BIO_free(b);

    /* Halves made with BIO_new and joined by hand. */
    a = BIO_new(BIO_s_bio());
    b = BIO_new(BIO_s_bio());
    ASSERT_EQ(BIO_set_write_buf_size(a, 0), 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_INVALID_ARGUMENT);
    ASSERT_EQ(BIO_set_write_buf_size(a, 8), 1);
    ASSERT_EQ(BIO_read(a, out, 4), -1);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNINITIALIZED);
    ASSERT_EQ(BIO_make_bio_pair(a, b), 1);
    ASSERT_EQ(BIO_write(a, data, 20), 8);
    ASSERT_EQ(BIO_read(b, out, 20), 8);
    BIO_free(a);
    BIO_free(b);
    ASSERT_NO_ERROR();
    return 1;
}

static int test_chain(void)
{
    char buf[16];
    BIO *f = BIO_new(BIO_f_buffer());
    BIO *f2 = BIO_new(BIO_f_buffer());
    BIO *m = BIO_new(BIO_s_mem());

    ASSERT_NOT_NULL(f);
    ASSERT_EQ(BIO_method_type(f), BIO_TYPE_BUFFER);
    ASSERT_NULL(BIO_next(f));
    ASSERT_PTR_EQ(BIO_push(f, m), f);
    ASSERT_PTR_EQ(BIO_next(f), m);
    ASSERT_PTR_EQ(BIO_push(NULL, m), m);
    ASSERT_EQ(BIO_write(f, "data", 4), 4);
    ASSERT_EQ(BIO_flush(f), 1);
    ASSERT_EQ(BIO_pending(m), 4);
    ASSERT_EQ(BIO_read(f, buf, sizeof(buf)), 4);
    ASSERT_MEM_EQ(buf, "data", 4);
    /* The source's retry state shows on the filter. */
    ASSERT_EQ(BIO_read(f, buf, sizeof(buf)), -1);
    ASSERT_TRUE(BIO_should_retry(f));
    ASSERT_TRUE(BIO_should_read(f));
    ASSERT_PTR_EQ(BIO_find_type(f, BIO_TYPE_MEM), m);
    ASSERT_PTR_EQ(BIO_find_type(f, BIO_TYPE_BUFFER), f);
    ASSERT_NULL(BIO_find_type(f, BIO_TYPE_SOCKET));

    /* f -> f2 -> m; popping the middle joins its neighbours. */
    ASSERT_PTR_EQ(BIO_pop(f), m);
    ASSERT_NULL(BIO_next(f));
    ASSERT_PTR_EQ(BIO_push(f, f2), f);
    ASSERT_PTR_EQ(BIO_push(f, m), f);
    ASSERT_PTR_EQ(BIO_next(f2), m);
    ASSERT_PTR_EQ(BIO_pop(f2), m);
    ASSERT_PTR_EQ(BIO_next(f), m);
    ASSERT_NULL(BIO_next(f2));
    BIO_free(f2);

    /* BIO_free_all stops after a BIO that had other references. */
    ASSERT_EQ(BIO_up_ref(m), 1);
    BIO_free_all(f);
    ASSERT_EQ(BIO_write(m, "ok", 2), 2);
    ASSERT_EQ(BIO_pending(m), 2);
    BIO_free(m);
    ASSERT_NO_ERROR();
    return 1;
}

static int test_chain_socket(void)
{
    int fds[2], fd = -1;
    char buf[16];
    BIO *f = BIO_new(BIO_f_buffer());
    BIO *s;

    ASSERT_TRUE(tcp_pair(fds));
    s = BIO_new_socket(fds[0], BIO_CLOSE);
    BIO_push(f, s);
    /* ctrls pass through the filter. */
    ASSERT_EQ(BIO_get_fd(f, &fd), fds[0]);
    ASSERT_EQ(fd, fds[0]);
    ASSERT_EQ(BIO_write(f, "abc", 3), 3);
    ASSERT_EQ(BIO_flush(f), 1);
    ASSERT_TRUE(tu_wait_readable(fds[1], 5000));
    ASSERT_EQ(read(fds[1], buf, sizeof(buf)), 3);
    ASSERT_MEM_EQ(buf, "abc", 3);
    /* BIO_free_all frees the socket BIO too, which closes its fd. */
    BIO_free_all(f);
    ASSERT_FALSE(fd_open(fds[0]));
    close(fds[1]);
    ASSERT_NO_ERROR();
    return 1;
}

int main(int argc, char **argv)
{
    tu_init(argc, argv);
    RUN(test_socket_roundtrip);
    RUN(test_socket_retry_and_eof);
    RUN(test_socket_set_fd);
    RUN(test_mem);
    RUN(test_mem_buf);
    RUN(test_bio_pair);
    RUN(test_chain);
    RUN(test_chain_socket);
    return tu_finish();
}
