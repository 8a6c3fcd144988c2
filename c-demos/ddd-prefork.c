/*
 * ddd-prefork: N worker processes created up front, each accepting on the same three
 * listeners (ports p, p+1, p+2) and serving connections one after another.
 *
 *   DEMO_WORKERS=N ddd-prefork cert.pem key.pem port     (N default 4; port 0: system picks)
 *
 * The parent creates the listeners, forks the workers and waits; SIGTERM or SIGINT to the
 * parent stops every worker, then the parent. A worker waits for a connection on any of the
 * three listeners (poll(2) over the sockets for plain TLS, SSL_poll over the listener objects
 * otherwise), accepts it without blocking (another worker may have taken it: then it waits
 * again), serves it with blocking I/O (common.c: demo_serve_conn) and logs one line.
 *
 * QUIC: the three listeners live in one domain. Before forking, the parent calls
 * OSSLQUIC_prefork(domain, N); each worker calls OSSLQUIC_prefork_worker(domain, index)
 * right after fork, which gives it its own sockets and random state, so that a connection's
 * datagrams reach the worker that accepted it (and no two workers issue the same connection
 * ID or token). Each worker logs its engine's statistics as it exits.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NLISTEN 3
#define PREFORK_MAX_WORKERS 64

static SSL_CTX *ctx;
static int fds[NLISTEN], first_port, nworkers = 4;
static pid_t workers[PREFORK_MAX_WORKERS];
#if defined(USE_QUIC) || defined(USE_LISTENER)
static SSL *listeners[NLISTEN];
#endif
#ifdef USE_QUIC
static SSL *domain;
#endif

static void parent_stop(int sig)
{
    (void)sig;
    demo_stop_children(workers, nworkers, SIGTERM, 10);
}

static void worker_exited(pid_t pid, int status)
{
    int i;
    for (i = 0; i < nworkers; i++) {
        if (workers[i] == pid) {
            workers[i] = 0;
            demo_log("worker %d (pid %d) ended with status %d", i, (int)pid, status);
        }
    }
}

static void worker_stop(int sig)
{
    (void)sig;
#ifdef USE_QUIC
    demo_log_engine_stats(domain, "stats");
#endif
}

/* Waits for a connection on any listener and accepts it; NULL if another worker was faster
 * (or on a failure, logged). *port: the listener's port; *fd: the accepted socket (plain TLS,
 * which SSL_set_fd does not own), else -1. */
static SSL *accept_any(int *port, int *fd)
{
    int i;
    *fd = -1;
#if defined(USE_QUIC) || defined(USE_LISTENER)
    SSL_POLL_ITEM items[NLISTEN];
    size_t n = 0;
    for (i = 0; i < NLISTEN; i++) {
        items[i].desc = SSL_as_poll_descriptor(listeners[i]);
        items[i].events = SSL_POLL_EVENT_IC;
        items[i].revents = 0;
    }
    if (!SSL_poll(items, NLISTEN, sizeof(items[0]), NULL, 0, &n)) { /* NULL: no time limit */
        demo_log_errors("SSL_poll failed");
        return NULL;
    }
    for (i = 0; i < NLISTEN; i++) {
        if (items[i].revents & SSL_POLL_EVENT_IC) {
            SSL *conn = SSL_accept_connection(listeners[i], SSL_ACCEPT_CONNECTION_NO_BLOCK);
            if (conn != NULL) {
                *port = first_port + i;
                return conn;
            }
        }
    }
    ERR_clear_error();
    return NULL;
#else
    struct pollfd p[NLISTEN];
    for (i = 0; i < NLISTEN; i++) {
        p[i].fd = fds[i];
        p[i].events = POLLIN;
        p[i].revents = 0;
    }
    if (poll(p, NLISTEN, -1) < 0) {
        demo_log("poll: %s", strerror(errno));
        return NULL;
    }
    for (i = 0; i < NLISTEN; i++) {
        SSL *ssl;
        if (!(p[i].revents & POLLIN))
            continue;
        /* The listening sockets are non-blocking: EAGAIN when another worker took it. */
        *fd = accept4(fds[i], NULL, NULL, SOCK_CLOEXEC);
        if (*fd < 0)
            continue;
        ssl = SSL_new(ctx);
        if (ssl == NULL || !SSL_set_fd(ssl, *fd)) {
            demo_log_errors("SSL_new/SSL_set_fd failed");
            SSL_free(ssl);
            close(*fd);
            *fd = -1;
            return NULL;
        }
        *port = first_port + i;
        return ssl;
    }
    return NULL;
#endif
}

static void worker(int index)
{
    demo_child_signals();
#ifdef USE_QUIC
    if (!OSSLQUIC_prefork_worker(domain, index))
        demo_die("OSSLQUIC_prefork_worker");
#endif
    if (!demo_signal_thread(worker_stop))
        _exit(1);
    demo_log("worker %d ready", index);
    for (;;) {
        demo_conn_result res;
        int port, fd;
        SSL *conn = accept_any(&port, &fd);
        if (conn == NULL)
            continue;
        memset(&res, 0, sizeof(res));
        demo_serve_conn(conn, &res);
        demo_log_conn(conn, port, &res);
        SSL_free(conn);
        if (fd >= 0)
            close(fd);
    }
}

int main(int argc, char **argv)
{
    const char *cert, *key, *w = getenv("DEMO_WORKERS");
    int port, i;

    demo_name = "ddd-prefork";
    if (!demo_args(argc, argv, &cert, &key, &port))
        return 2;
    if (w != NULL && *w != '\0') {
        char *end;
        long v = strtol(w, &end, 10);
        if (*end != '\0' || v < 1 || v > PREFORK_MAX_WORKERS) {
            fprintf(stderr, "ddd-prefork: DEMO_WORKERS must be 1..%d\n", PREFORK_MAX_WORKERS);
            return 2;
        }
        nworkers = (int)v;
    }
    demo_on_child_exit = worker_exited;
    if (!demo_signal_thread(parent_stop))
        return 1;
    ctx = demo_server_ctx(cert, key);
    if (!demo_listen_consecutive(port, NLISTEN, fds, &first_port))
        return 1;
#ifndef USE_QUIC
    /* Every worker polls the same sockets; the losers of an accept race must not block. */
    for (i = 0; i < NLISTEN; i++)
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
#endif
#ifdef USE_QUIC
    domain = SSL_new_domain(ctx, 0);
    if (domain == NULL)
        demo_die("SSL_new_domain");
#endif
#if defined(USE_QUIC) || defined(USE_LISTENER)
    for (i = 0; i < NLISTEN; i++) {
#ifdef USE_QUIC
        listeners[i] = SSL_new_listener_from(domain, 0);
#else
        listeners[i] = SSL_new_listener(ctx, 0);
#endif
        if (listeners[i] == NULL || !SSL_set_fd(listeners[i], fds[i]) || !SSL_listen(listeners[i]))
            demo_die("listener");
    }
#endif
#ifdef USE_QUIC
    if (!OSSLQUIC_prefork(domain, nworkers))
        demo_die("OSSLQUIC_prefork");
#endif
    for (i = 0; i < nworkers; i++) {
        pid_t pid = fork();
        if (pid < 0)
            demo_die("fork");
        if (pid == 0)
            worker(i); /* does not return */
        workers[i] = pid;
    }
    demo_log("%d workers on %s ports %d, %d, %d", nworkers, demo_bind_addr(), first_port, first_port + 1, first_port + 2);
    demo_listening(first_port);
    /* The signal thread reaps workers that die and stops them all on SIGTERM/SIGINT. */
    for (;;)
        pause();
}
