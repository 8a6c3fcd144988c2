/* TLS over TCP bench (issue 5, deliverable 5). Uses only OpenSSL API, so the same source
 * builds against osslquic and against the system OpenSSL (bench/tls.sh builds both).
 *
 *   tls_bench [-c CERTDIR] hs SECONDS [1.2|1.3]
 *       Full handshakes over TCP 127.0.0.1 for SECONDS: a new TCP connection each, no
 *       resumption, the client verifies the server's chain and name. Per connection the
 *       server accepts, writes one byte, SSL_shutdown and closes (the server closes first, so
 *       TIME_WAIT stays on its side and the client's ephemeral ports are not used up); the
 *       client connects, reads the byte (which also takes in any session tickets), reads
 *       the close_notify and closes.
 *   tls_bench [-c CERTDIR] bulk MB
 *       One connection; the server sends MB * 10^6 bytes of a position-dependent pattern in
 *       64 KiB SSL_write_ex calls, then SSL_shutdown; the client reads until close_notify
 *       and checks every byte and the total. MB/s = 10^6 bytes / s from the client's
 *       handshake done to close_notify read.
 *
 * Server: one thread; client: the main thread (one process). Prints one result line of
 * key=value pairs on stdout; exits non-zero on any failure. Every socket wait is bounded
 * (SO_RCVTIMEO/SO_SNDTIMEO, poll timeouts). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define CHUNK 65536
#define PERIOD 251 /* pattern byte at offset o is o % PERIOD */
#define IO_TIMEOUT_S 10

static const char *certdir = "build/certs";
static SSL_CTX *sctx, *cctx;
static int lfd = -1;
static unsigned short port;
static atomic_int stop;
static int server_failed;
static unsigned char pattern[CHUNK + PERIOD];

static void die(const char *what) {
    fprintf(stderr, "tls_bench: %s failed (errno %d: %s)\n", what, errno, strerror(errno));
    ERR_print_errors_fp(stderr);
    exit(1);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static void bound_io(int fd) {
    struct timeval tv = {IO_TIMEOUT_S, 0};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void make_ctxs(int version) {
    char chain[512], key[512], ca[512];
    snprintf(chain, sizeof chain, "%s/chain.pem", certdir);
    snprintf(key, sizeof key, "%s/key.pem", certdir);
    snprintf(ca, sizeof ca, "%s/ca.pem", certdir);
    if ((sctx = SSL_CTX_new(TLS_server_method())) == NULL) die("SSL_CTX_new(server)");
    if (SSL_CTX_use_certificate_chain_file(sctx, chain) != 1) die("SSL_CTX_use_certificate_chain_file");
    if (SSL_CTX_use_PrivateKey_file(sctx, key, SSL_FILETYPE_PEM) != 1) die("SSL_CTX_use_PrivateKey_file");
    if ((cctx = SSL_CTX_new(TLS_client_method())) == NULL) die("SSL_CTX_new(client)");
    if (SSL_CTX_load_verify_locations(cctx, ca, NULL) != 1) die("SSL_CTX_load_verify_locations");
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_min_proto_version(sctx, version) != 1 || SSL_CTX_set_max_proto_version(sctx, version) != 1 ||
        SSL_CTX_set_min_proto_version(cctx, version) != 1 || SSL_CTX_set_max_proto_version(cctx, version) != 1)
        die("SSL_CTX_set_min/max_proto_version");
}

static void listen_loopback(void) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int one = 1;
    if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0) die("socket");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 128) != 0) die("bind/listen");
    if (getsockname(lfd, (struct sockaddr *)&a, &len) != 0) die("getsockname");
    port = ntohs(a.sin_port);
}

/* Next accepted connection, or -1 once `stop` is set (or after IO_TIMEOUT_S without one). */
static int accept_bounded(void) {
    double deadline = now_s() + IO_TIMEOUT_S;
    while (!atomic_load(&stop) && now_s() < deadline) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 50) == 1) {
            int fd = accept(lfd, NULL, NULL);
            if (fd >= 0) {
                bound_io(fd);
                return fd;
            }
        }
    }
    return -1;
}

static SSL *server_ssl(int fd) {
    SSL *s = SSL_new(sctx);
    if (s == NULL || SSL_set_fd(s, fd) != 1) die("server SSL_new/SSL_set_fd");
    if (SSL_accept(s) != 1) {
        fprintf(stderr, "tls_bench: server SSL_accept failed (SSL_get_error %d)\n", SSL_get_error(s, 0));
        ERR_print_errors_fp(stderr);
        server_failed = 1;
        SSL_free(s);
        close(fd);
        return NULL;
    }
    return s;
}

static void server_close(SSL *s, int fd) {
    SSL_shutdown(s); /* sends close_notify; the client closes after reading it */
    SSL_free(s);
    close(fd);
}

static void *hs_server(void *arg) {
    (void)arg;
    int fd;
    while ((fd = accept_bounded()) >= 0) {
        SSL *s = server_ssl(fd);
        size_t n;
        if (s == NULL) return NULL;
        if (SSL_write_ex(s, "x", 1, &n) != 1) {
            ERR_print_errors_fp(stderr);
            server_failed = 1;
            SSL_free(s);
            close(fd);
            return NULL;
        }
        server_close(s, fd);
    }
    return NULL;
}

static uint64_t bulk_bytes;

static void *bulk_server(void *arg) {
    (void)arg;
    int fd = accept_bounded();
    SSL *s;
    uint64_t off = 0;
    if (fd < 0) {
        fprintf(stderr, "tls_bench: bulk server: no connection\n");
        server_failed = 1;
        return NULL;
    }
    if ((s = server_ssl(fd)) == NULL) return NULL;
    while (off < bulk_bytes) {
        size_t want = bulk_bytes - off < CHUNK ? (size_t)(bulk_bytes - off) : CHUNK, n = 0;
        if (SSL_write_ex(s, pattern + off % PERIOD, want, &n) != 1 || n != want) {
            fprintf(stderr, "tls_bench: server SSL_write_ex failed at %llu (SSL_get_error %d)\n",
                    (unsigned long long)off, SSL_get_error(s, 0));
            ERR_print_errors_fp(stderr);
            server_failed = 1;
            SSL_free(s);
            close(fd);
            return NULL;
        }
        off += n;
    }
    server_close(s, fd);
    return NULL;
}

/* A verifying client connection to the server, handshake done. */
static SSL *client_connect(int *fdp) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    SSL *c;
    if (fd < 0) die("client socket");
    bound_io(fd);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) die("connect");
    if ((c = SSL_new(cctx)) == NULL || SSL_set_fd(c, fd) != 1) die("client SSL_new/SSL_set_fd");
    if (SSL_set1_host(c, "localhost") != 1) die("SSL_set1_host");
    if (SSL_connect(c) != 1) {
        fprintf(stderr, "tls_bench: SSL_connect: SSL_get_error %d\n", SSL_get_error(c, 0));
        die("SSL_connect");
    }
    *fdp = fd;
    return c;
}

/* Reads the close_notify that ends every connection here; 1 if it came cleanly. */
static int client_read_eof(SSL *c) {
    unsigned char b;
    size_t n;
    if (SSL_read_ex(c, &b, 1, &n) == 1) return 0;
    return SSL_get_error(c, 0) == SSL_ERROR_ZERO_RETURN;
}

static void start_server(pthread_t *t, void *(*fn)(void *)) {
    if (pthread_create(t, NULL, fn, NULL) != 0) die("pthread_create");
}

static int run_hs(double secs, int version) {
    pthread_t t;
    long n = 0;
    char ver[32] = "", cipher[64] = "";
    double t0, t1, c0, c1;
    make_ctxs(version);
    listen_loopback();
    start_server(&t, hs_server);
    c0 = cpu_s();
    t0 = now_s();
    do {
        int fd;
        SSL *c = client_connect(&fd);
        unsigned char b;
        size_t got;
        if (SSL_read_ex(c, &b, 1, &got) != 1 || got != 1 || b != 'x') die("client SSL_read_ex");
        if (!client_read_eof(c)) die("client read of close_notify");
        if (n == 0) {
            snprintf(ver, sizeof ver, "%s", SSL_get_version(c));
            snprintf(cipher, sizeof cipher, "%s", SSL_CIPHER_get_name(SSL_get_current_cipher(c)));
        }
        SSL_free(c);
        close(fd);
        n++;
        t1 = now_s();
    } while (t1 - t0 < secs && !server_failed);
    c1 = cpu_s();
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    if (server_failed) return 1;
    printf("mode=hs version=%s cipher=%s handshakes=%ld secs=%.3f hps=%.1f cpu=%.3f\n", ver, cipher, n, t1 - t0,
           n / (t1 - t0), c1 - c0);
    return 0;
}

static int run_bulk(double mb) {
    pthread_t t;
    static unsigned char buf[CHUNK];
    uint64_t total = 0;
    double t0, t1, c0, c1;
    int fd;
    SSL *c;
    char cipher[64];
    bulk_bytes = (uint64_t)(mb * 1e6);
    make_ctxs(TLS1_3_VERSION);
    listen_loopback();
    start_server(&t, bulk_server);
    c = client_connect(&fd);
    c0 = cpu_s();
    t0 = now_s();
    for (;;) {
        size_t n = 0;
        if (SSL_read_ex(c, buf, sizeof buf, &n) != 1) {
            if (SSL_get_error(c, 0) == SSL_ERROR_ZERO_RETURN) break;
            fprintf(stderr, "tls_bench: client SSL_read_ex failed after %llu bytes (SSL_get_error %d)\n",
                    (unsigned long long)total, SSL_get_error(c, 0));
            die("client SSL_read_ex");
        }
        if (total + n > bulk_bytes || memcmp(buf, pattern + total % PERIOD, n) != 0) {
            fprintf(stderr, "tls_bench: wrong data at offset %llu\n", (unsigned long long)total);
            return 1;
        }
        total += n;
    }
    t1 = now_s();
    c1 = cpu_s();
    snprintf(cipher, sizeof cipher, "%s", SSL_CIPHER_get_name(SSL_get_current_cipher(c)));
    SSL_free(c);
    close(fd);
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    if (server_failed) return 1;
    if (total != bulk_bytes) {
        fprintf(stderr, "tls_bench: got %llu bytes, expected %llu\n", (unsigned long long)total,
                (unsigned long long)bulk_bytes);
        return 1;
    }
    printf("mode=bulk version=TLSv1.3 cipher=%s bytes=%llu secs=%.3f mbps=%.1f cpu=%.3f\n", cipher,
           (unsigned long long)total, t1 - t0, total / 1e6 / (t1 - t0), c1 - c0);
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: tls_bench [-c CERTDIR] hs SECONDS [1.2|1.3] | bulk MB\n");
    exit(2);
}

int main(int argc, char **argv) {
    int i = 1;
    signal(SIGPIPE, SIG_IGN);
    for (size_t k = 0; k < sizeof pattern; k++) pattern[k] = (unsigned char)(k % PERIOD);
    if (argc > 2 && strcmp(argv[1], "-c") == 0) {
        certdir = argv[2];
        i = 3;
    }
    if (argc < i + 2) usage();
    if (strcmp(argv[i], "hs") == 0) {
        int version = TLS1_3_VERSION;
        if (argc > i + 2) {
            if (strcmp(argv[i + 2], "1.2") == 0)
                version = TLS1_2_VERSION;
            else if (strcmp(argv[i + 2], "1.3") != 0)
                usage();
        }
        return run_hs(atof(argv[i + 1]), version);
    }
    if (strcmp(argv[i], "bulk") == 0) return run_bulk(atof(argv[i + 1]));
    usage();
    return 2;
}
