/*
 * test_transport: choosing the congestion controller (OSSLQUIC_CTX_set_congestion_control),
 * a connection's measurements (OSSLQUIC_get_conn_stats) and qlog traces under QLOGDIR (issue
 * 16), through the exported calls, over UDP loopback, in one thread. How each controller
 * answers a loss is shown by engine_pair's congestion_controllers_answer_a_loss_their_own_way;
 * here: names and errors, a transfer with each controller, figures that match what moved, and
 * one qlog file per connection end, as JSON-SEQ qvis reads, with its packet events. Also a
 * client's active migration (SSL_set_fd to a socket on 127.0.0.2 mid-transfer), and ECN
 * (issue 16): on real sockets both ends mark ECT(0), read each other's marks and validate
 * ECN from the counts in the ACKs; with ECN off on one end (OSSLQUIC_BIO_dgram_set_ecn) the
 * transfer is the same and neither validates it. And RTT: time a server spends handling a
 * client's first flight (here a slow ALPN callback) is not counted as network delay. And a
 * sender whose writes never block still reads its peer's ACKs (its window opens).
 */
#include "quicutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <sys/stat.h>

#if HAVE_OSSLQUIC

#define TOTAL (1 << 20)

#define XFER_MIGRATE 1 /* move the client to 127.0.0.2 halfway */
#define XFER_ECN_OFF 2 /* the client's socket BIO without ECN */

/* One connection of cctx to a listener of sctx: the client sends TOTAL bytes on a stream,
 * the server reads them all (compared). The client's and server's figures go to *cs, *ss,
 * the client's BIO's to *cb (if not NULL). With XFER_MIGRATE, once the server has half,
 * the client moves to a socket on 127.0.0.2 (SSL_set_fd: an active migration) and the
 * server must then see that address. */
static int transfer_ex(SSL_CTX *sctx, SSL_CTX *cctx, OSSLQUIC_CONN_STATS *cst,
                       OSSLQUIC_CONN_STATS *sst, int flags, OSSLQUIC_BIO_STATS *cb)
{
    int migrate = (flags & XFER_MIGRATE) != 0;
    static unsigned char out[TOTAL], in[TOTAL];
    BIO_ADDR *addr = NULL;
    int lfd = -1, cfd = tu_udp_socket(AF_INET, NULL), r = 0;
    SSL *l = qu_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE, &lfd, &addr), *c, *s = NULL;
    size_t sent = 0, got = 0, n;
    uint64_t dl = tu_now_ms() + 20000;
    int migrate_seen = migrate;

    ASSERT_TRUE(l != NULL && cfd >= 0);
    c = qu_client(cctx, cfd, addr, 0);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(SSL_set_blocking_mode(c, 0), 1);
    /* The port turned ECN on for the client's socket (both directions). */
    ASSERT_EQ(OSSLQUIC_BIO_dgram_get_ecn(SSL_get_rbio(c)), 3);
    if (flags & XFER_ECN_OFF) {
        ASSERT_EQ(OSSLQUIC_BIO_dgram_set_ecn(SSL_get_rbio(c), 0), 0);
        ASSERT_EQ(OSSLQUIC_BIO_dgram_set_ecn(SSL_get_wbio(c), 0), 0);
        ASSERT_EQ(OSSLQUIC_BIO_dgram_get_ecn(SSL_get_rbio(c)), 0);
    }
    /* Not started: no figures yet. */
    ASSERT_EQ(OSSLQUIC_get_conn_stats(c, cst), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    tu_fill_pattern(out, TOTAL, 16);
    while (s == NULL || got < TOTAL) {
        ASSERT_LT(tu_now_ms(), dl);
        if (r != 1 && (r = SSL_connect(c)) != 1)
            ASSERT_EQ(SSL_get_error(c, r), SSL_ERROR_WANT_READ);
        if (r == 1 && sent < TOTAL && SSL_write_ex(c, out + sent, TOTAL - sent, &n) == 1)
            sent += n;
        if (s == NULL)
            s = SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK);
        else if (SSL_read_ex(s, in + got, TOTAL - got, &n) == 1)
            got += n;
        if (migrate && got >= TOTAL / 2) {
            int nfd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
            struct sockaddr_in sin;

            memset(&sin, 0, sizeof(sin));
            sin.sin_family = AF_INET;
            sin.sin_addr.s_addr = htonl(0x7f000002); /* 127.0.0.2 */
            ASSERT_GE(nfd, 0);
            ASSERT_EQ(bind(nfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
            ASSERT_EQ(SSL_set_fd(c, nfd), 1);
            close(cfd);
            cfd = nfd;
            migrate = 0;
        }
        SSL_handle_events(l);
        SSL_handle_events(c);
        (void)tu_wait_readable(cfd, 1);
    }
    ERR_clear_error();
    ASSERT_MEM_EQ(in, out, TOTAL);
    {
        /* Where the server last heard from the client. */
        BIO_ADDR *peer = BIO_ADDR_new();
        struct in_addr ip;
        size_t iplen = sizeof(ip);

        ASSERT_EQ(SSL_get_peer_addr(s, peer), 1);
        ASSERT_EQ(BIO_ADDR_rawaddress(peer, &ip, &iplen), 1);
        ASSERT_EQ(ntohl(ip.s_addr), migrate_seen ? 0x7f000002u : 0x7f000001u);
        BIO_ADDR_free(peer);
    }
    ASSERT_EQ(OSSLQUIC_get_conn_stats(c, cst), 1);
    ASSERT_EQ(OSSLQUIC_get_conn_stats(s, sst), 1);
    if (cb != NULL)
        ASSERT_EQ(OSSLQUIC_BIO_get_stats(SSL_get_rbio(c), cb), 1);
    ASSERT_EQ(OSSLQUIC_get_conn_stats(l, sst), 0); /* a listener has no figures */
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_get_conn_stats(c, NULL), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    SSL_free(s);
    SSL_free(c);
    SSL_free(l);
    BIO_ADDR_free(addr);
    close(cfd);
    close(lfd);
    return 1;
}

static int transfer(SSL_CTX *sctx, SSL_CTX *cctx, OSSLQUIC_CONN_STATS *cst, OSSLQUIC_CONN_STATS *sst)
{
    return transfer_ex(sctx, cctx, cst, sst, 0, NULL);
}

/* A client moving to a socket on another address mid-transfer keeps its stream: every byte
 * arrives, and the server follows it to the new address (path validated by quinn). */
static int test_migration(void)
{
    SSL_CTX *sctx = qu_server_ctx(0), *cctx = qu_client_ctx();
    OSSLQUIC_CONN_STATS cs, ss;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_TRUE(transfer_ex(sctx, cctx, &cs, &ss, XFER_MIGRATE, NULL));
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

static int test_congestion_control(void)
{
    static const char *names[] = {"cubic", "newreno", "bbr"};
    SSL_CTX *sctx = qu_server_ctx(0), *cctx = qu_client_ctx();
    OSSLQUIC_CONN_STATS cs, ss;
    int i;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_STR_EQ(OSSLQUIC_CTX_get_congestion_control(cctx), "cubic");
    ASSERT_EQ(OSSLQUIC_CTX_set_congestion_control(cctx, "vegas"), 0);
    ASSERT_ERROR_IS(ERR_LIB_SSL, SSL_R_BAD_VALUE);
    ASSERT_EQ(OSSLQUIC_CTX_set_congestion_control(cctx, NULL), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_EQ(OSSLQUIC_CTX_set_congestion_control(NULL, "bbr"), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    ASSERT_NULL(OSSLQUIC_CTX_get_congestion_control(NULL));
    ERR_clear_error();
    ASSERT_STR_EQ(OSSLQUIC_CTX_get_congestion_control(cctx), "cubic");
    ASSERT_EQ(OSSLQUIC_CTX_set_congestion_control(cctx, "BBR"), 1);
    ASSERT_STR_EQ(OSSLQUIC_CTX_get_congestion_control(cctx), "bbr");

    for (i = 0; i < 3; i++) {
        ASSERT_EQ(OSSLQUIC_CTX_set_congestion_control(cctx, names[i]), 1);
        ASSERT_EQ(OSSLQUIC_CTX_set_congestion_control(sctx, names[(i + 1) % 3]), 1);
        ASSERT_TRUE(transfer(sctx, cctx, &cs, &ss));
        /* What moved: the client sent at least the data, the server received it. */
        ASSERT_GE(cs.bytes_out, (uint64_t)TOTAL);
        ASSERT_GE(ss.bytes_in, (uint64_t)TOTAL);
        ASSERT_GE(cs.datagrams_out, (uint64_t)TOTAL / 1500);
        ASSERT_GE(cs.sent_packets, cs.datagrams_out / 2);
        ASSERT_TRUE(cs.cwnd > 0 && ss.cwnd > 0);
        ASSERT_TRUE(cs.rtt_us > 0 && cs.min_rtt_us <= cs.rtt_us);
        ASSERT_GE(cs.current_mtu, 1200);
        ASSERT_GE(cs.datagrams_in, 1);
    }
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* With QLOGDIR set, each connection end writes QLOGDIR/<odcid>_<role>.sqlog: a JSON-SEQ
 * header naming the qlog version, then events, packet_sent and packet_received among them. */
static int test_qlog(void)
{
    char dir[] = "/tmp/osslquic-qlog-XXXXXX", path[512], buf[4096];
    SSL_CTX *sctx = qu_server_ctx(0), *cctx = qu_client_ctx();
    OSSLQUIC_CONN_STATS cs, ss;
    int clients = 0, servers = 0;
    struct dirent *e;
    DIR *d;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_NOT_NULL(mkdtemp(dir));
    ASSERT_EQ(setenv("QLOGDIR", dir, 1), 0);
    ASSERT_TRUE(transfer(sctx, cctx, &cs, &ss));
    ASSERT_EQ(unsetenv("QLOGDIR"), 0);
    d = opendir(dir);
    ASSERT_NOT_NULL(d);
    while ((e = readdir(d)) != NULL) {
        FILE *f;
        size_t n;

        if (e->d_name[0] == '.')
            continue;
        clients += strstr(e->d_name, "_client.sqlog") != NULL;
        servers += strstr(e->d_name, "_server.sqlog") != NULL;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        f = fopen(path, "r");
        ASSERT_NOT_NULL(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        ASSERT_EQ(buf[0], 0x1e); /* JSON-SEQ record separator */
        ASSERT_NOT_NULL(strstr(buf, "\"qlog_version\""));
        ASSERT_NOT_NULL(strstr(buf, "packet_sent"));
        ASSERT_NOT_NULL(strstr(buf, "packet_received"));
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
    ASSERT_EQ(clients, 1);
    ASSERT_EQ(servers, 1);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* ECN on UDP loopback: each end marks ECT(0) (IP_TOS), reads the other's marks
 * (IP_RECVTOS) and reports them in its ACK frames; quinn keeps marking after the peer's
 * ACKs only if they carry ECN counts that account for its marks. Then the client's socket
 * without ECN: nothing read or marked on the wire by the client, so neither end sees its
 * marks counted back; quinn stops marking, and the transfer is the same. */
static int test_ecn(void)
{
    SSL_CTX *sctx = qu_server_ctx(0), *cctx = qu_client_ctx();
    OSSLQUIC_CONN_STATS cs, ss;
    OSSLQUIC_BIO_STATS cb;

    ASSERT_TRUE(sctx != NULL && cctx != NULL);
    ASSERT_TRUE(transfer_ex(sctx, cctx, &cs, &ss, 0, &cb));
    /* 1 MiB from the client: nearly every datagram marked, and read by the server. */
    ASSERT_GE(cs.ecn_ect0_sent, cs.datagrams_out / 2);
    ASSERT_GE(ss.ecn_ect0_received, (uint64_t)TOTAL / 1500 / 2);
    ASSERT_GE(ss.ecn_ect0_sent, 1);
    ASSERT_GE(cs.ecn_ect0_received, 1);
    ASSERT_EQ(cs.ecn_ce_received + ss.ecn_ce_received, 0);
    ASSERT_EQ(cs.ecn_ect1_received + ss.ecn_ect1_received, 0);
    ASSERT_EQ(cs.ecn_validated, 1);
    ASSERT_EQ(ss.ecn_validated, 1);
    /* The client's socket BIO put the marks on the wire and read the server's. */
    ASSERT_GE(cb.ecn_sent, cs.ecn_ect0_sent / 2);
    ASSERT_GE(cb.ecn_ect0_recv, cs.ecn_ect0_received);
    printf("  ecn on: client marked %llu, server read %llu ECT(0); server marked %llu, client read "
           "%llu; validated %llu/%llu\n",
           (unsigned long long)cs.ecn_ect0_sent, (unsigned long long)ss.ecn_ect0_received,
           (unsigned long long)ss.ecn_ect0_sent, (unsigned long long)cs.ecn_ect0_received,
           (unsigned long long)cs.ecn_validated, (unsigned long long)ss.ecn_validated);

    ASSERT_TRUE(transfer_ex(sctx, cctx, &cs, &ss, XFER_ECN_OFF, &cb));
    ASSERT_EQ(cs.ecn_ect0_received, 0);
    ASSERT_EQ(ss.ecn_ect0_received, 0);
    ASSERT_EQ(cs.ecn_validated, 0);
    ASSERT_EQ(ss.ecn_validated, 0);
    ASSERT_EQ(cb.ecn_sent, 0);
    ASSERT_EQ(cb.ecn_ect0_recv, 0);
    /* quinn marked only until the peer's first ACKs showed no ECN counts. */
    ASSERT_LT(cs.ecn_ect0_sent, 20);
    ASSERT_GE(cs.bytes_out, (uint64_t)TOTAL);
    printf("  ecn off on the client: client marked %llu, server marked %llu, none read; "
           "validated 0/0\n",
           (unsigned long long)cs.ecn_ect0_sent, (unsigned long long)ss.ecn_ect0_sent);

    /* Not a datagram socket BIO: -1 and an error. */
    {
        BIO *m = BIO_new(BIO_s_mem());
        ASSERT_EQ(OSSLQUIC_BIO_dgram_set_ecn(m, 1), -1);
        ASSERT_ERROR_QUEUED();
        ERR_clear_error();
        ASSERT_EQ(OSSLQUIC_BIO_dgram_get_ecn(NULL), -1);
        ASSERT_ERROR_QUEUED();
        ERR_clear_error();
        BIO_free(m);
    }
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

#endif /* HAVE_OSSLQUIC */

/* A listener of sctx on UDP loopback, a non-blocking client of cctx, and the server's end,
 * both through the handshake (pumped in this thread). */
typedef struct {
    SSL *l, *c, *s;
    int lfd, cfd;
    BIO_ADDR *addr;
} PAIR;

static int pair_connect(SSL_CTX *sctx, SSL_CTX *cctx, PAIR *p)
{
    int r = 0;

    memset(p, 0, sizeof(*p));
    p->lfd = -1;
    p->cfd = tu_udp_socket(AF_INET, NULL);
    ASSERT_TRUE(sctx != NULL && cctx != NULL && p->cfd >= 0);
    p->l = qu_listener(sctx, SSL_LISTENER_FLAG_NO_VALIDATE, &p->lfd, &p->addr);
    ASSERT_NOT_NULL(p->l);
    p->c = qu_client(cctx, p->cfd, p->addr, 0);
    ASSERT_NOT_NULL(p->c);
    ASSERT_EQ(SSL_set_blocking_mode(p->c, 0), 1);
    QU_PUMP(p->l, p->c, p->s, p->cfd,
            (r == 1 || (r = SSL_connect(p->c)) == 1 || SSL_get_error(p->c, r) == SSL_ERROR_WANT_READ) &&
                (p->s != NULL || (p->s = SSL_accept_connection(p->l, SSL_ACCEPT_CONNECTION_NO_BLOCK)) != NULL) &&
                SSL_do_handshake(p->s) == 1 && r == 1);
    return 1;
}

/* Frees the pair's objects (the connections first) and closes its sockets. */
static void pair_free(PAIR *p)
{
    SSL_free(p->s);
    SSL_free(p->c);
    SSL_free(p->l);
    BIO_ADDR_free(p->addr);
    if (p->cfd >= 0)
        close(p->cfd);
    if (p->lfd >= 0)
        close(p->lfd);
}

/* How long the server's ALPN callback takes (a lookup a real server might make). */
#define SLOW_CB_US 1500000

static int slow_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                            const unsigned char *in, unsigned int inlen, void *arg)
{
    struct timespec ts = {SLOW_CB_US / 1000000, (SLOW_CB_US % 1000000) * 1000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return qu_alpn_select(ssl, out, outlen, in, inlen, arg);
}

/* The largest "latest_rtt" in the qlog files of `dir` whose names contain `role` (each RTT
 * sample quinn took, and its initial estimate of 333 ms before any; in seconds, as
 * quinn-proto 0.11 writes its recovery metrics); removes every file and the directory. -1
 * if none. */
static double qlog_max_latest_rtt(const char *dir, const char *role)
{
    static char buf[1 << 20];
    char path[512];
    double most = -1;
    struct dirent *e;
    DIR *d = opendir(dir);

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        const char *at = buf;
        FILE *f;
        size_t n;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (strstr(e->d_name, role) != NULL && (f = fopen(path, "r")) != NULL) {
            n = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
            buf[n] = 0;
            while ((at = strstr(at, "\"latest_rtt\":")) != NULL) {
                double v;

                at += strlen("\"latest_rtt\":");
                v = strtod(at, NULL);
                if (v > most)
                    most = v;
            }
        }
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
    return most;
}

/* The server's RTT samples are the client's ACKs of what the server sent. Its first flight
 * leaves after it has handled the ClientHello, which took SLOW_CB_US (the ALPN callback);
 * stamped with the time the ClientHello was received instead, the first samples would count
 * the callback as network delay, and slow start would then be paced by an RTT of a second
 * and more. On loopback every sample is the client's own handling of a flight: far less.
 * The samples are quinn's, read from the server's qlog. */
static int test_rtt_excludes_server_handling(void)
{
    char dir[] = "/tmp/osslquic-rtt-XXXXXX";
    SSL_CTX *sctx = qu_server_ctx(0), *cctx = qu_client_ctx();
    OSSLQUIC_CONN_STATS ss;
    PAIR p;
    double most;

    ASSERT_TRUE(sctx != NULL);
    ASSERT_NOT_NULL(mkdtemp(dir));
    ASSERT_EQ(setenv("QLOGDIR", dir, 1), 0);
    SSL_CTX_set_alpn_select_cb(sctx, slow_alpn_select, NULL);
    ASSERT_TRUE(pair_connect(sctx, cctx, &p));
    ASSERT_EQ(unsetenv("QLOGDIR"), 0);
    ASSERT_EQ(OSSLQUIC_get_conn_stats(p.s, &ss), 1);
    pair_free(&p); /* the qlog files are complete once the connections are gone */
    most = qlog_max_latest_rtt(dir, "_server.sqlog");
    printf("  server: largest RTT sample %.3f s, smoothed %llu us (its callback took %.3f s)\n", most,
           (unsigned long long)ss.rtt_us, SLOW_CB_US / 1e6);
    ASSERT_TRUE(most > 0);
    ASSERT_LT(most * 1e6, SLOW_CB_US);
    ASSERT_LT(ss.rtt_us, SLOW_CB_US);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

/* A client that only writes (non-blocking, every write taken: far below the windows) and
 * never calls SSL_handle_events: its writes handle network events now and then, as
 * OpenSSL's do, so the ACKs the server sends are read and slow start opens the congestion
 * window. Between writes the test waits (bounded) until an ACK is in the client's socket.
 * Without that, the window stays at its initial size and the data waits in the buffer. */
static int test_writer_reads_acks(void)
{
    static unsigned char chunk[16384];
    SSL_CTX *sctx = qu_server_ctx(0), *cctx = qu_client_ctx();
    OSSLQUIC_CONN_STATS st;
    uint64_t cwnd0;
    size_t n;
    PAIR p;
    int i;

    ASSERT_TRUE(pair_connect(sctx, cctx, &p));
    ASSERT_EQ(OSSLQUIC_get_conn_stats(p.c, &st), 1);
    cwnd0 = st.cwnd;
    tu_fill_pattern(chunk, sizeof(chunk), 3);
    /* 128 writes of 16 KiB: 2 MiB, a quarter of the stream window. */
    for (i = 0; i < 128; i++) {
        ASSERT_EQ(SSL_write_ex(p.c, chunk, sizeof(chunk), &n), 1);
        ASSERT_EQ(n, sizeof(chunk));
        ASSERT_EQ(OSSLQUIC_get_conn_stats(p.c, &st), 1);
        if (st.cwnd > cwnd0)
            break;
        /* The server takes in what arrived and acknowledges it; then the ACK is waited
         * for in the client's socket (not read: only the client's writes may read it). */
        SSL_handle_events(p.l);
        SSL_handle_events(p.s);
        (void)tu_wait_readable(p.cfd, 1000);
    }
    printf("  cwnd %llu after %d writes of %zu bytes (initial %llu)\n", (unsigned long long)st.cwnd,
           i + 1, sizeof(chunk), (unsigned long long)cwnd0);
    ASSERT_GT(st.cwnd, cwnd0);
    pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 1;
}

int main(int argc, char **argv)
{
    qu_init();
    tu_init(argc, argv);
#if HAVE_OSSLQUIC
    RUN(test_congestion_control);
    RUN(test_qlog);
    RUN(test_migration);
    RUN(test_ecn);
    RUN(test_rtt_excludes_server_handling);
    RUN(test_writer_reads_acks);
#endif
    return tu_finish();
}
