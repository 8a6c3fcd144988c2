/*
 * test_fork: the fork and prefork process models over QUIC (osslquic extensions
 * OSSLQUIC_fork_connection, OSSLQUIC_prefork, OSSLQUIC_prefork_worker,
 * OSSLQUIC_get_engine_stats; docs/FORK.md).
 *
 * Every test runs three kinds of process: the test process (the server's parent), a client
 * process (threads, one blocking client connection each) and server children. A request is
 * the client's 4-byte index; the answer is the serving process's pid and worker index
 * (4 bytes each) and then RESP_LEN bytes of the index's pattern, all checked. Client 0
 * changes its UDP socket (so its source port: a NAT rebinding) halfway through the answer.
 * Children and workers report one record per connection through a pipe.
 */
#include "quicutil.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define RESP_LEN (256 * 1024)
#define MAX_CLIENTS 16

struct record {
    int32_t pid, worker, index, ok;
    uint64_t foreign, datagrams;
};

struct client_arg {
    const BIO_ADDR *server;
    SSL_CTX *ctx;
    int index, rebind;
    int32_t pid, worker;
    int ok;
};

/* Waits for child `pid` (each child bounds its own run with alarm()); 1 if it exited 0. */
static int exited_ok(pid_t pid)
{
    int st;

    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    return 1;
}

static int read_all(SSL *s, unsigned char *buf, size_t len, size_t rebind_at, int *rebound)
{
    size_t got = 0, n;

    while (got < len) {
        size_t want = len - got;

        if (rebound != NULL && !*rebound && got < rebind_at && want > rebind_at - got)
            want = rebind_at - got;
        if (!SSL_read_ex(s, buf + got, want, &n))
            return 0;
        got += n;
        if (rebound != NULL && !*rebound && got >= rebind_at) {
            /* A new socket, so a new source port: the server sees a NAT rebinding. */
            BIO *b = tu_udp_bio(AF_INET, NULL, NULL);

            if (b == NULL)
                return 0;
            SSL_set_bio(s, b, b);
            *rebound = 1;
            /* Something to send from the new port (the FIN held back until now), as the
             * ACKs of a client behind a NAT would: the server learns the new address. */
            if (!SSL_stream_conclude(s, 0))
                return 0;
        }
    }
    return 1;
}

static void *client_main(void *p)
{
    struct client_arg *a = p;
    int fd = tu_udp_socket(AF_INET, NULL);
    SSL *s = fd < 0 ? NULL : qu_client(a->ctx, fd, a->server, 0);
    unsigned char *buf = malloc(RESP_LEN + 8);
    uint32_t req = (uint32_t)a->index;
    size_t n;
    int rebound = 0;

    a->ok = 0;
    if (s == NULL || buf == NULL || SSL_connect(s) != 1 || !SSL_write_ex(s, &req, 4, &n) ||
        (!a->rebind && !SSL_stream_conclude(s, 0))) {
        fprintf(stderr, "    client %d: connect/request failed\n", a->index);
        tu_dump_errors();
        goto out;
    }
    if (!read_all(s, buf, RESP_LEN + 8, a->rebind ? RESP_LEN / 2 : 0,
                  a->rebind ? &rebound : NULL)) {
        fprintf(stderr, "    client %d: answer incomplete\n", a->index);
        tu_dump_errors();
        goto out;
    }
    memcpy(&a->pid, buf, 4);
    memcpy(&a->worker, buf + 4, 4);
    if (!tu_check_pattern(buf + 8, RESP_LEN, (uint32_t)a->index)) {
        fprintf(stderr, "    client %d: answer differs from the pattern\n", a->index);
        goto out;
    }
    /* Then the FIN. */
    if (SSL_read_ex(s, buf, 1, &n) || SSL_get_error(s, 0) != SSL_ERROR_ZERO_RETURN) {
        fprintf(stderr, "    client %d: no FIN after the answer\n", a->index);
        goto out;
    }
    a->ok = qu_shutdown_blocking(s);
out:
    SSL_free(s);
    free(buf);
    return NULL;
}

/* The client process: n concurrent connections; client 0 rebinds. Exit status: failures. */
/* Clients i < n2 go to server2 (when given), the others to server; none rebinds when
 * server2 is given. */
static int run_clients_to(const BIO_ADDR *server, const BIO_ADDR *server2, int n2, int n,
                          int report_fd)
{
    pthread_t th[MAX_CLIENTS];
    struct client_arg a[MAX_CLIENTS];
    SSL_CTX *ctx = qu_client_ctx();
    int i, bad = 0;

    SSL_CTX_set_domain_flags(ctx, SSL_DOMAIN_FLAG_MULTI_THREAD | SSL_DOMAIN_FLAG_BLOCKING);
    for (i = 0; i < n; i++) {
        a[i] = (struct client_arg){server, ctx, i, i == 0, 0, 0, 0};
        if (server2 != NULL) {
            a[i].rebind = 0;
            if (i < n2)
                a[i].server = server2;
        }
        pthread_create(&th[i], NULL, client_main, &a[i]);
    }
    for (i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        bad += !a[i].ok;
        if (write(report_fd, &a[i].pid, 4) != 4 || write(report_fd, &a[i].worker, 4) != 4)
            bad++;
    }
    SSL_CTX_free(ctx);
    return bad;
}

static int run_clients(const BIO_ADDR *server, int n, int report_fd)
{
    return run_clients_to(server, NULL, 0, n, report_fd);
}

/* Serves one connection's first stream: request, answer, FIN, shutdown. */
static int serve(SSL *conn, int32_t worker, struct record *r)
{
    SSL *st = SSL_accept_stream(conn, 0);
    unsigned char *buf = malloc(RESP_LEN + 8);
    int32_t pid = (int32_t)getpid();
    uint32_t req = 0;
    size_t n, got = 0;
    int ok = 0;

    if (st == NULL || buf == NULL)
        goto out;
    while (got < 4 && SSL_read_ex(st, (unsigned char *)&req + got, 4 - got, &n))
        got += n;
    if (got != 4)
        goto out;
    memcpy(buf, &pid, 4);
    memcpy(buf + 4, &worker, 4);
    tu_fill_pattern(buf + 8, RESP_LEN, req);
    if (!SSL_write_ex(st, buf, RESP_LEN + 8, &n) || n != RESP_LEN + 8 ||
        !SSL_stream_conclude(st, 0))
        goto out;
    /* Then the client's FIN (the rebinding client sends it from its new port). */
    if (SSL_read_ex(st, buf, 1, &n) || SSL_get_error(st, 0) != SSL_ERROR_ZERO_RETURN)
        goto out;
    r->index = (int32_t)req;
    ok = 1;
out:
    if (!ok) {
        fprintf(stderr, "    server %d: serving failed\n", (int)pid);
        tu_dump_errors();
    }
    SSL_free(st);
    free(buf);
    return ok;
}

static void stats_into(SSL *obj, struct record *r)
{
    OSSLQUIC_ENGINE_STATS s;

    if (OSSLQUIC_get_engine_stats(obj, &s) == 1) {
        r->foreign = s.foreign_in;
        r->datagrams = s.datagrams_in;
    }
}

static int udp_server_socket(BIO_ADDR **bound)
{
    return tu_udp_socket(AF_INET, bound);
}

static SSL *listener_on(SSL_CTX *sctx, int fd)
{
    SSL *l = SSL_new_listener(sctx, 0);

    if (l == NULL || SSL_set_fd(l, fd) != 1 || SSL_listen(l) != 1) {
        SSL_free(l);
        return NULL;
    }
    return l;
}

/* Waits (bounded) for every pid; returns how many ended other than as `expect` says. */
static int reap(const pid_t *pids, int n, int by_sigterm)
{
    int i, bad = 0;

    for (i = 0; i < n; i++) {
        int st = 0;

        if (waitpid(pids[i], &st, 0) != pids[i])
            bad++;
        else if (by_sigterm ? !(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM)
                            : !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
            bad++;
    }
    return bad;
}

static int test_fork_connection(void)
{
    enum { N = 6 };
    BIO_ADDR *addr = NULL;
    int fd = udp_server_socket(&addr), rep[2], res[2], i, served = 0, bad, st;
    pid_t client, kids[N];
    SSL_CTX *sctx = NULL;
    SSL *l = NULL;
    struct record recs[N];
    int32_t seen[N][2];
    OSSLQUIC_ENGINE_STATS ps;

    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ(pipe(rep), 0);
    ASSERT_EQ(pipe(res), 0);
    client = fork();
    ASSERT_TRUE(client >= 0);
    if (client == 0) {
        alarm(60);
        close(fd);
        _exit(run_clients(addr, N, res[1]));
    }
    close(res[1]);
    sctx = qu_server_ctx(0);
    ASSERT_TRUE(sctx != NULL);
    l = listener_on(sctx, fd);
    ASSERT_TRUE(l != NULL);
    for (i = 0; i < N; i++) {
        SSL *conn = SSL_accept_connection(l, 0);
        pid_t pid;

        ASSERT_TRUE(conn != NULL);
        pid = (pid_t)OSSLQUIC_fork_connection(conn);
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
            struct record r = {(int32_t)getpid(), -1, -1, 0, 0, 0};

            alarm(60);
            r.ok = serve(conn, -1, &r);
            r.ok = r.ok && qu_shutdown_blocking(conn);
            /* The listener stayed with the parent. */
            if (SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK) != NULL)
                r.ok = 0;
            ERR_clear_error();
            stats_into(conn, &r);
            SSL_free(conn);
            if (write(rep[1], &r, sizeof(r)) != sizeof(r))
                _exit(2);
            _exit(r.ok ? 0 : 1);
        }
        kids[i] = pid;
        SSL_free(conn);
    }
    /* Go on serving the listener (forwarding) until the clients are done. */
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int ms = 20;

        if (waitpid(client, &st, WNOHANG) == client)
            break;
        SSL_handle_events(l);
        (void)poll(&p, 1, ms);
    }
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    bad = reap(kids, N, 0);
    ASSERT_EQ(bad, 0);
    for (i = 0; i < N; i++)
        ASSERT_EQ(read(res[0], seen[i], 8), 8);
    for (i = 0; i < N; i++) {
        ASSERT_EQ(read(rep[0], &recs[i], sizeof(recs[i])), (long)sizeof(recs[i]));
        ASSERT_EQ(recs[i].ok, 1);
        ASSERT_U64_EQ(recs[i].foreign, 0);
        ASSERT_GT(recs[i].datagrams, 0);
    }
    /* Every connection was served by its own child, named in the answer. */
    for (i = 0; i < N; i++) {
        int j, hits = 0;

        for (j = 0; j < N; j++)
            hits += seen[i][0] == (int32_t)kids[j];
        ASSERT_EQ(hits, 1);
        for (j = 0; j < i; j++)
            ASSERT_NE(seen[i][0], seen[j][0]);
        served++;
    }
    ASSERT_EQ(served, N);
    /* The rebinding client's datagrams reached the parent's socket and were passed on. */
    ASSERT_EQ(OSSLQUIC_get_engine_stats(l, &ps), 1);
    ASSERT_GT(ps.forwarded, 0);
    ASSERT_EQ(ps.accepted, N);
    SSL_free(l);
    SSL_CTX_free(sctx);
    BIO_ADDR_free(addr);
    close(rep[0]);
    close(rep[1]);
    close(res[0]);
    return 1;
}

/* Prefork over W workers, N clients. With `lb`, the listener issues plaintext QUIC-LB IDs
 * (server ID 0x0a 0x10; worker i's last octet 0x10 + i), which the kernel's steering reads
 * instead of the first octet: every datagram still reaches its worker (no foreign ones,
 * client 0's rebinding included). */
static int prefork_run(int lb)
{
    enum { W = 3, N = 12 };
    static const unsigned char sid[2] = {0x0a, 0x10};
    BIO_ADDR *addr = NULL;
    int fd = udp_server_socket(&addr), rep[2], res[2], i, used[W] = {0};
    pid_t client, workers[W];
    SSL_CTX *sctx = qu_server_ctx(0);
    SSL *l = NULL;
    struct record r;
    int32_t seen[N][2];

    ASSERT_TRUE(fd >= 0 && sctx != NULL);
    l = listener_on(sctx, fd);
    ASSERT_TRUE(l != NULL);
    ASSERT_EQ(pipe(rep), 0);
    ASSERT_EQ(pipe(res), 0);
    if (lb)
        ASSERT_EQ(OSSLQUIC_set_quic_lb(l, 2, sid, sizeof(sid), 6, NULL, 1), 1);
    ASSERT_EQ(OSSLQUIC_prefork(l, W), 1);
    /* Prefork's steering is made for the IDs the listener had. */
    ASSERT_EQ(OSSLQUIC_set_quic_lb(l, 2, sid, sizeof(sid), 6, NULL, 1), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    for (i = 0; i < W; i++) {
        workers[i] = fork();
        ASSERT_TRUE(workers[i] >= 0);
        if (workers[i] == 0) {
            alarm(60);
            if (OSSLQUIC_prefork_worker(l, i) != 1)
                _exit(4);
            for (;;) {
                SSL *conn = SSL_accept_connection(l, 0);
                struct record rr = {(int32_t)getpid(), i, -1, 0, 0, 0};

                if (conn == NULL)
                    _exit(5);
                rr.ok = serve(conn, i, &rr);
                rr.ok = rr.ok && qu_shutdown_blocking(conn);
                stats_into(l, &rr);
                SSL_free(conn);
                if (write(rep[1], &rr, sizeof(rr)) != sizeof(rr))
                    _exit(2);
            }
        }
    }
    client = fork();
    ASSERT_TRUE(client >= 0);
    if (client == 0) {
        alarm(60);
        _exit(run_clients(addr, N, res[1]));
    }
    close(res[1]);
    close(rep[1]);
    ASSERT_TRUE(exited_ok(client));
    for (i = 0; i < N; i++) {
        ASSERT_EQ(read(res[0], seen[i], 8), 8);
        ASSERT_TRUE(seen[i][1] >= 0 && seen[i][1] < W);
        ASSERT_EQ(seen[i][0], (int32_t)workers[seen[i][1]]);
    }
    /* One record per connection, from the worker the client was answered by. */
    for (i = 0; i < N; i++) {
        ASSERT_EQ(read(rep[0], &r, sizeof(r)), (long)sizeof(r));
        ASSERT_EQ(r.ok, 1);
        ASSERT_TRUE(r.index >= 0 && r.index < N);
        ASSERT_EQ(seen[r.index][1], r.worker);
        ASSERT_U64_EQ(r.foreign, 0);
        used[r.worker]++;
    }
    for (i = 0; i < W; i++)
        kill(workers[i], SIGTERM);
    ASSERT_EQ(reap(workers, W, 1), 0);
    /* 12 connections over 3 workers: the kernel spread them (all on one: chance 3^-11). */
    ASSERT_TRUE((used[0] > 0) + (used[1] > 0) + (used[2] > 0) >= 2);
    SSL_free(l);
    SSL_CTX_free(sctx);
    BIO_ADDR_free(addr);
    close(rep[0]);
    close(res[0]);
    return 1;
}

static int test_prefork(void)
{
    return prefork_run(0);
}

static int test_prefork_quic_lb(void)
{
    static const unsigned char key[16] = "sixteen-byte key";
    static const unsigned char sid[2] = {0x0a, 0xfe};
    BIO_ADDR *addr = NULL;
    int fd = udp_server_socket(&addr);
    SSL_CTX *sctx = qu_server_ctx(0);
    SSL *l;

    ASSERT_TRUE(fd >= 0 && sctx != NULL);
    /* Encrypted IDs: the kernel cannot read the server ID, prefork is refused. */
    l = listener_on(sctx, fd);
    ASSERT_NOT_NULL(l);
    ASSERT_EQ(OSSLQUIC_set_quic_lb(l, 2, sid, sizeof(sid), 6, key, 1), 1);
    ASSERT_EQ(OSSLQUIC_prefork(l, 2), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    SSL_free(l);
    /* A last octet (0xfe) leaving room for two workers, not three. */
    l = listener_on(sctx, fd);
    ASSERT_NOT_NULL(l);
    ASSERT_EQ(OSSLQUIC_set_quic_lb(l, 2, sid, sizeof(sid), 6, NULL, 1), 1);
    ASSERT_EQ(OSSLQUIC_prefork(l, 3), 0);
    ASSERT_ERROR_QUEUED();
    ERR_clear_error();
    SSL_free(l);
    SSL_CTX_free(sctx);
    BIO_ADDR_free(addr);
    close(fd);
    return prefork_run(1);
}

static int test_bad_calls(void)
{
    SSL_CTX *sctx = qu_server_ctx(0), *tctx = SSL_CTX_new(TLS_server_method());
    SSL *l = SSL_new_listener(sctx, 0), *t = SSL_new_listener(tctx, 0);
    OSSLQUIC_ENGINE_STATS s;

    ASSERT_TRUE(l != NULL && t != NULL);
    ASSERT_EQ(OSSLQUIC_fork_connection(NULL), -1);
    ASSERT_TRUE(ERR_get_error() != 0);
    ASSERT_EQ(OSSLQUIC_fork_connection(l), -1); /* a listener is not a connection */
    ASSERT_TRUE(ERR_get_error() != 0);
    ASSERT_EQ(OSSLQUIC_prefork(l, 0), 0);
    ASSERT_TRUE(ERR_get_error() != 0);
    ASSERT_EQ(OSSLQUIC_prefork(l, 257), 0);
    ASSERT_TRUE(ERR_get_error() != 0);
    ASSERT_EQ(OSSLQUIC_prefork(l, 2), 0); /* no socket: nothing to put workers beside */
    ASSERT_TRUE(ERR_get_error() != 0);
    ASSERT_EQ(OSSLQUIC_prefork_worker(l, 0), 0); /* not prepared */
    ASSERT_TRUE(ERR_get_error() != 0);
    ASSERT_EQ(OSSLQUIC_prefork(t, 2), 1); /* TLS: nothing to do */
    ASSERT_EQ(OSSLQUIC_get_engine_stats(t, &s), 0);
    ASSERT_TRUE(ERR_get_error() != 0);
    ASSERT_EQ(OSSLQUIC_get_engine_stats(l, NULL), 0);
    ASSERT_TRUE(ERR_get_error() != 0);
    ASSERT_EQ(OSSLQUIC_get_engine_stats(l, &s), 1);
    ASSERT_U64_EQ(s.datagrams_in, 0);
    SSL_free(l);
    SSL_free(t);
    SSL_CTX_free(sctx);
    SSL_CTX_free(tctx);
    return 1;
}

/* One worker: no steering program needed, and the calls still work (in this process). */
static int test_prefork_one_worker(void)
{
    BIO_ADDR *addr = NULL;
    int fd = udp_server_socket(&addr);
    SSL_CTX *sctx = qu_server_ctx(0);
    SSL *l = NULL;

    ASSERT_TRUE(fd >= 0 && sctx != NULL);
    l = listener_on(sctx, fd);
    ASSERT_TRUE(l != NULL);
    ASSERT_EQ(OSSLQUIC_prefork(l, 1), 1);
    ASSERT_EQ(OSSLQUIC_prefork(l, 1), 0); /* already prepared */
    ASSERT_TRUE(ERR_get_error() != 0);
    ASSERT_EQ(OSSLQUIC_prefork_worker(l, 1), 0); /* no worker 1 of 1 */
    ASSERT_TRUE(ERR_get_error() != 0);
    ASSERT_EQ(OSSLQUIC_prefork_worker(l, 0), 1);
    ASSERT_EQ(OSSLQUIC_prefork_worker(l, 0), 0); /* taken */
    ASSERT_TRUE(ERR_get_error() != 0);
    SSL_free(l);
    SSL_CTX_free(sctx);
    BIO_ADDR_free(addr);
    return 1;
}

/*
 * A domain with two listeners A and B: a connection of A goes to a child; the child must
 * leave B alone (no reading its socket, no answers), so B's client is served by the parent.
 * Another domain's connection (L2, accepted before the fork, served after the child is
 * gone) must not be touched by the child either, even when the child frees its copy.
 */
static int test_fork_leaves_the_rest(void)
{
    BIO_ADDR *aa = NULL, *ab = NULL, *a2 = NULL;
    int fa = udp_server_socket(&aa), fb = udp_server_socket(&ab), f2 = udp_server_socket(&a2);
    int res[2];
    pid_t client, kid;
    SSL_CTX *sctx = qu_server_ctx(0);
    SSL *d = NULL, *la = NULL, *lb = NULL, *l2 = NULL, *ca, *cb, *c2;
    struct record r = {0};
    int32_t seen[3][2];

    ASSERT_TRUE(fa >= 0 && fb >= 0 && f2 >= 0 && sctx != NULL);
    ASSERT_EQ(pipe(res), 0);
    /* Clients 0 and 1 to L2 and B... in index order: 0 -> L2 (server2), 1 -> B, 2 -> A. */
    client = fork();
    ASSERT_TRUE(client >= 0);
    if (client == 0) {
        SSL_CTX *ctx = qu_client_ctx();
        pthread_t th[3];
        struct client_arg a[3] = {{a2, ctx, 0, 0, 0, 0, 0}, {ab, ctx, 1, 0, 0, 0, 0},
                                  {aa, ctx, 2, 0, 0, 0, 0}};
        int i, bad = 0;

        alarm(60);
        SSL_CTX_set_domain_flags(ctx, SSL_DOMAIN_FLAG_MULTI_THREAD | SSL_DOMAIN_FLAG_BLOCKING);
        for (i = 0; i < 3; i++)
            pthread_create(&th[i], NULL, client_main, &a[i]);
        for (i = 0; i < 3; i++) {
            pthread_join(th[i], NULL);
            bad += !a[i].ok;
            if (write(res[1], &a[i].pid, 4) != 4 || write(res[1], &a[i].worker, 4) != 4)
                bad++;
        }
        SSL_CTX_free(ctx);
        _exit(bad);
    }
    close(res[1]);
    d = SSL_new_domain(sctx, 0);
    ASSERT_TRUE(d != NULL);
    la = SSL_new_listener_from(d, 0);
    lb = SSL_new_listener_from(d, 0);
    ASSERT_TRUE(la != NULL && lb != NULL);
    ASSERT_EQ(SSL_set_fd(la, fa), 1);
    ASSERT_EQ(SSL_set_fd(lb, fb), 1);
    ASSERT_EQ(SSL_listen(la), 1);
    ASSERT_EQ(SSL_listen(lb), 1);
    l2 = listener_on(sctx, f2);
    ASSERT_TRUE(l2 != NULL);
    c2 = SSL_accept_connection(l2, 0); /* another domain's, live across the fork */
    ASSERT_TRUE(c2 != NULL);
    ca = SSL_accept_connection(la, 0);
    ASSERT_TRUE(ca != NULL);
    kid = (pid_t)OSSLQUIC_fork_connection(ca);
    ASSERT_TRUE(kid >= 0);
    if (kid == 0) {
        OSSLQUIC_ENGINE_STATS s2, sb;
        int ok;
        unsigned long e;

        alarm(60);
        r.pid = (int32_t)getpid();
        ok = serve(ca, -1, &r);
        ok = ok && qu_shutdown_blocking(ca);
        ERR_clear_error(); /* serve() saw the FIN as an error entry */
        /* B stays with the parent: accepting fails, and its engine reads nothing here. */
        ok = ok && SSL_accept_connection(lb, SSL_ACCEPT_CONNECTION_NO_BLOCK) == NULL;
        e = ERR_get_error();
        ok = ok && (ERR_GET_REASON(e) & 0xfff) == 263; /* ERR_R_OPERATION_FAIL */
        ERR_clear_error();
        /* The other domain's connection: freeing the copy must send nothing. */
        SSL_free(c2);
        ok = ok && OSSLQUIC_get_engine_stats(l2, &s2) == 1 && s2.datagrams_in == 0;
        ok = ok && OSSLQUIC_get_engine_stats(lb, &sb) == 1 && sb.datagrams_in == 0;
        SSL_free(ca);
        _exit(ok ? 0 : 1);
    }
    SSL_free(ca);
    /* The parent serves B meanwhile, then (once the child is gone) L2's connection. */
    cb = SSL_accept_connection(lb, 0);
    ASSERT_TRUE(cb != NULL);
    ASSERT_TRUE(serve(cb, -1, &r));
    ASSERT_TRUE(qu_shutdown_blocking(cb));
    SSL_free(cb);
    ASSERT_TRUE(exited_ok(kid));
    ASSERT_TRUE(serve(c2, -1, &r));
    ASSERT_TRUE(qu_shutdown_blocking(c2));
    SSL_free(c2);
    ASSERT_TRUE(exited_ok(client));
    ASSERT_EQ(read(res[0], seen, sizeof(seen)), (long)sizeof(seen));
    ASSERT_EQ(seen[0][0], (int32_t)getpid()); /* L2: the parent */
    ASSERT_EQ(seen[1][0], (int32_t)getpid()); /* B: the parent */
    ASSERT_EQ(seen[2][0], (int32_t)kid);      /* A: the child */
    SSL_free(l2);
    SSL_free(la);
    SSL_free(lb);
    SSL_free(d);
    SSL_CTX_free(sctx);
    BIO_ADDR_free(aa);
    BIO_ADDR_free(ab);
    BIO_ADDR_free(a2);
    close(res[0]);
    return 1;
}

/* Starts a client connection towards `peer` (nobody answers there) and frees it: its first
 * Initial goes out, and with QLOGDIR set its qlog file is named by the ID it drew. 1 if it
 * got that far. */
static int start_client(SSL_CTX *cctx, const BIO_ADDR *peer)
{
    int fd = tu_udp_socket(AF_INET, NULL), r, ok;
    SSL *c = fd >= 0 ? qu_client(cctx, fd, peer, 0) : NULL;

    ok = c != NULL && SSL_set_blocking_mode(c, 0) == 1;
    if (ok) {
        r = SSL_connect(c);
        ok = r == -1 && SSL_get_error(c, r) == SSL_ERROR_WANT_READ;
    }
    SSL_free(c);
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A plain fork(2) (none of our calls): the child and the parent each start a connection
 * after it. Connection IDs come from a per-thread generator that fork copies; each process
 * must still draw its own (the qlog files, named by each connection's first destination ID,
 * must be three, not two). */
static int test_plain_fork_draws_new_ids(void)
{
    char dir[] = "/tmp/osslquic-forkids-XXXXXX", path[512];
    SSL_CTX *cctx = qu_client_ctx();
    BIO_ADDR *sink = NULL;
    int sfd = tu_udp_socket(AF_INET, &sink), files = 0;
    struct dirent *e;
    pid_t kid;
    DIR *d;

    ASSERT_TRUE(cctx != NULL && sfd >= 0);
    ASSERT_NOT_NULL(mkdtemp(dir));
    ASSERT_EQ(setenv("QLOGDIR", dir, 1), 0);
    ASSERT_TRUE(start_client(cctx, sink));
    kid = fork();
    ASSERT_TRUE(kid >= 0);
    if (kid == 0) {
        alarm(20);
        _exit(start_client(cctx, sink) ? 0 : 1);
    }
    ASSERT_TRUE(exited_ok(kid));
    ASSERT_TRUE(start_client(cctx, sink));
    ASSERT_EQ(unsetenv("QLOGDIR"), 0);
    d = opendir(dir);
    ASSERT_NOT_NULL(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        files += strstr(e->d_name, "_client.sqlog") != NULL;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
    ASSERT_EQ(files, 3);
    close(sfd);
    BIO_ADDR_free(sink);
    SSL_CTX_free(cctx);
    return 1;
}

int main(int argc, char **argv)
{
    tu_init(argc, argv);
    qu_init();
    RUN(test_bad_calls);
    RUN(test_fork_connection);
    RUN(test_fork_leaves_the_rest);
    RUN(test_prefork);
    RUN(test_prefork_quic_lb);
    RUN(test_prefork_one_worker);
    RUN(test_plain_fork_draws_new_ids);
    return tu_finish();
}
