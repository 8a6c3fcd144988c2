/*
 * dgram-echo: a UDP echo server and client over osslquic's datagram BIOs.
 *
 *   dgram-echo server [port]          zero-copy server: BIO_read_dequeue -> BIO_write_queue
 *                                     -> BIO_flush; prints "listening on PORT"
 *   dgram-echo client port [count]    BIO_sendmmsg batches out, BIO_recvmmsg batches back,
 *                                     every byte checked; prints a summary line
 *
 * Loopback only (127.0.0.1). Every wait is bounded; exits non-zero on any failure.
 */
#include <openssl/bio.h>
#include <openssl/err.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DGRAM_LEN 1200
#define BATCH 32
#define POOL 256

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
    fprintf(stderr, "dgram-echo: %s\n", what);
    ERR_print_errors_fp(stderr);
    return 1;
}

static BIO_ADDR *loopback(unsigned short port)
{
    BIO_ADDR *a = BIO_ADDR_new();
    unsigned char ip[4] = {127, 0, 0, 1};
    if (a == NULL || !BIO_ADDR_rawmake(a, AF_INET, ip, sizeof(ip), htons(port))) {
        BIO_ADDR_free(a);
        return NULL;
    }
    return a;
}

/* A UDP socket BIO bound to 127.0.0.1:port (0 = any), non-blocking. */
static BIO *udp_bio(unsigned short port, unsigned short *bound)
{
    BIO_ADDR *a = loopback(port), *self = BIO_ADDR_new();
    BIO *b = NULL;
    int fd = BIO_socket(AF_INET, SOCK_DGRAM, 0, 0);
    if (a == NULL || self == NULL || fd < 0 || !BIO_listen(fd, a, BIO_SOCK_NONBLOCK))
        goto out;
    b = BIO_new_dgram(fd, BIO_CLOSE);
    if (b != NULL) {
        union BIO_sock_info_u info;
        info.addr = self;
        if (BIO_sock_info(fd, BIO_SOCK_INFO_ADDRESS, &info))
            *bound = ntohs(BIO_ADDR_rawport(self));
        fd = -1;
    }
out:
    if (fd >= 0)
        BIO_closesocket(fd);
    BIO_ADDR_free(a);
    BIO_ADDR_free(self);
    return b;
}

static int wait_readable(BIO *b, int ms)
{
    BIO_POLL_DESCRIPTOR d;
    struct pollfd p;
    if (!BIO_get_rpoll_descriptor(b, &d))
        return -1;
    p.fd = d.value.fd;
    p.events = POLLIN;
    return poll(&p, 1, ms);
}

/* Server: buffers come from a pool, are filled in place by recvmmsg, echoed from the same
 * memory and returned to the BIO once sent. No copies in this program or the library. */
static unsigned char pool[POOL][DGRAM_LEN + 100];

static void *alloc_cb(size_t len, void *arg)
{
    int *next = arg;
    (void)len;
    return *next < POOL ? pool[(*next)++] : NULL;
}

static void done_cb(const void *buf, size_t len, int status, void *arg)
{
    BIO *b = arg;
    (void)len;
    (void)status;
    BIO_dgram_push_read_buffer(b, (void *)buf, DGRAM_LEN + 100);
}

static int server(unsigned short port)
{
    unsigned short bound = 0;
    int next = 0;
    unsigned long echoed = 0;
    BIO *b = udp_bio(port, &bound);
    BIO_ADDR *from = BIO_ADDR_new();
    if (b == NULL || from == NULL)
        return fail("cannot open the server socket");
    BIO_dgram_set_read_callback(b, alloc_cb, &next);
    BIO_dgram_set_write_done_callback(b, done_cb, b);
    printf("listening on %u\n", bound);
    fflush(stdout);
    for (;;) {
        void *buf;
        size_t len;
        if (wait_readable(b, 30000) <= 0)
            break; /* idle for 30 s: stop */
        while (BIO_read_dequeue(b, &buf, &len) == 1) {
            BIO_get_incoming_dgram_origin(b, from);
            BIO_set_outgoing_dgram_dest(b, from);
            BIO_write_queue(b, buf, len);
            echoed++;
        }
        ERR_clear_error();
        (void)BIO_flush(b);
    }
    fprintf(stderr, "server: echoed %lu datagrams\n", echoed);
    BIO_ADDR_free(from);
    BIO_free(b);
    return 0;
}

static int client(unsigned short port, unsigned long count)
{
    unsigned short bound = 0;
    BIO *b = udp_bio(0, &bound);
    BIO_ADDR *srv = loopback(port);
    static unsigned char out[BATCH][DGRAM_LEN], in[BATCH][DGRAM_LEN + 100];
    BIO_MSG msg[BATCH];
    unsigned long sent = 0, got = 0;
    double t0 = now_s();
    OSSLQUIC_BIO_STATS st;

    if (b == NULL || srv == NULL)
        return fail("cannot open the client socket");
    while (got < count) {
        size_t i, n = count - sent < BATCH ? count - sent : BATCH, done = 0;
        /* One window of up to BATCH datagrams in flight, stamped with its sequence number. */
        for (i = 0; i < n; i++) {
            unsigned long seq = sent + i;
            memset(out[i], (int)(seq & 0xff), DGRAM_LEN);
            memcpy(out[i], &seq, sizeof(seq));
            msg[i] = (BIO_MSG){out[i], DGRAM_LEN, srv, NULL, 0};
        }
        if (n > 0 && !BIO_sendmmsg(b, msg, sizeof(BIO_MSG), n, 0, &done))
            return fail("BIO_sendmmsg failed");
        sent += done;
        while (got < sent) {
            size_t k, rn = 0;
            if (wait_readable(b, 2000) <= 0)
                return fail("timed out waiting for echoes (2 s)");
            for (k = 0; k < BATCH; k++)
                msg[k] = (BIO_MSG){in[k], sizeof(in[k]), NULL, NULL, 0};
            if (!BIO_recvmmsg(b, msg, sizeof(BIO_MSG), BATCH, 0, &rn)) {
                if (BIO_err_is_non_fatal(ERR_get_error()))
                    continue;
                return fail("BIO_recvmmsg failed");
            }
            for (k = 0; k < rn; k++, got++) {
                unsigned long seq;
                memcpy(&seq, in[k], sizeof(seq));
                if (msg[k].data_len != DGRAM_LEN || seq != got || in[k][DGRAM_LEN - 1] != (unsigned char)(seq & 0xff))
                    return fail("echo mismatch");
            }
        }
    }
    OSSLQUIC_BIO_get_stats(b, &st);
    printf("client: %lu datagrams of %d bytes echoed and verified in %.3f s; "
           "%.1f datagrams per send syscall, %.1f per receive syscall\n",
           got, DGRAM_LEN, now_s() - t0, (double)st.sent_dgrams / (st.send_calls ? st.send_calls : 1),
           (double)st.recv_dgrams / (st.recv_calls ? st.recv_calls : 1));
    BIO_ADDR_free(srv);
    BIO_free(b);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "server") == 0)
        return server(argc > 2 ? (unsigned short)atoi(argv[2]) : 0);
    if (argc >= 3 && strcmp(argv[1], "client") == 0)
        return client((unsigned short)atoi(argv[2]), argc > 3 ? strtoul(argv[3], NULL, 10) : 10000);
    fprintf(stderr, "usage: %s server [port] | client port [count]\n", argv[0]);
    return 2;
}
