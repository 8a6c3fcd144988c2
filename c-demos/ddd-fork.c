/*
 * ddd-fork: one listener; each accepted connection is served by a child process of its own.
 *
 *   ddd-fork cert.pem key.pem port        (port 0: the system chooses)
 *
 * The parent accepts a connection and forks; the child serves it with blocking I/O
 * (common.c: demo_serve_conn), logs one line and exits; the parent frees its copy and goes
 * back to accepting. Exited children are reaped by the signal thread (common.c). SIGTERM or
 * SIGINT to the parent stops it and its children.
 *
 * QUIC: the library owns the UDP socket and every connection's state, so a plain fork(2)
 * would leave parent and child both receiving for the same connection. The parent calls
 * OSSLQUIC_fork_connection(conn) instead of fork(): in the child, conn has moved to a UDP
 * socket of its own and the listener is detached (the child must not accept); in the parent,
 * conn is forgotten without being closed (the parent just frees it) and any datagram for it
 * that still reaches the listener's socket is forwarded to the child. Each child logs its
 * engine's statistics as it exits.
 */
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CHILDREN 4096

static SSL_CTX *ctx;
static int listen_fd, listen_port;
#if defined(USE_QUIC) || defined(USE_LISTENER)
static SSL *listener;
#endif

/* Live children, so that a stop can end them too (the signal thread reaps them). */
static pthread_mutex_t kids_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t kids[MAX_CHILDREN];

static void child_exited(pid_t pid, int status)
{
    int i;
    (void)status;
    pthread_mutex_lock(&kids_lock);
    for (i = 0; i < MAX_CHILDREN; i++) {
        if (kids[i] == pid) {
            kids[i] = 0;
            break;
        }
    }
    pthread_mutex_unlock(&kids_lock);
}

/* Called with kids_lock held since before the fork, so the signal thread cannot reap the
 * child before it is recorded (a stale entry could later name a recycled pid). */
static void add_child(pid_t pid)
{
    int i;
    for (i = 0; i < MAX_CHILDREN && kids[i] != 0; i++)
        ;
    if (i < MAX_CHILDREN)
        kids[i] = pid;
}

static void on_stop(int sig)
{
    static pid_t copy[MAX_CHILDREN];
    (void)sig;
    pthread_mutex_lock(&kids_lock);
    memcpy(copy, kids, sizeof(copy));
    pthread_mutex_unlock(&kids_lock);
    demo_stop_children(copy, MAX_CHILDREN, SIGTERM, 10);
#ifdef USE_QUIC
    demo_log_engine_stats(listener, "parent stats");
#endif
}

/* The next connection (blocking); NULL on a failure (logged). *fd: the accepted socket,
 * which SSL_set_fd does not own (plain TLS only). */
static SSL *accept_one(int *fd)
{
#if defined(USE_QUIC) || defined(USE_LISTENER)
    SSL *ssl = SSL_accept_connection(listener, 0);
    *fd = -1;
    if (ssl == NULL)
        demo_log_errors("SSL_accept_connection failed");
    return ssl;
#else
    SSL *ssl;
    *fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (*fd < 0) {
        demo_log("accept: %s", strerror(errno));
        return NULL;
    }
    ssl = SSL_new(ctx);
    if (ssl == NULL || !SSL_set_fd(ssl, *fd)) {
        demo_log_errors("SSL_new/SSL_set_fd failed");
        SSL_free(ssl);
        close(*fd);
        return NULL;
    }
    return ssl;
#endif
}

/* In the child: serve, log, exit. */
static void child(SSL *conn, int fd)
{
    demo_conn_result res;
    demo_child_signals();
#ifndef USE_QUIC
    close(listen_fd); /* the child never accepts (QUIC: the library detached the listener) */
#endif
    memset(&res, 0, sizeof(res));
    demo_serve_conn(conn, &res);
    demo_log_conn(conn, listen_port, &res);
#ifdef USE_QUIC
    demo_log_engine_stats(conn, "stats");
#endif
    SSL_free(conn);
    if (fd >= 0)
        close(fd);
    _exit(res.failed ? 1 : 0);
}

int main(int argc, char **argv)
{
    const char *cert, *key;
    int port;

    demo_name = "ddd-fork";
    if (!demo_args(argc, argv, &cert, &key, &port))
        return 2;
    demo_on_child_exit = child_exited;
    if (!demo_signal_thread(on_stop))
        return 1;
    ctx = demo_server_ctx(cert, key);
#ifdef USE_QUIC
    listen_fd = demo_udp_bind(port, &listen_port);
#else
    listen_fd = demo_tcp_listen(port, &listen_port);
#endif
    if (listen_fd < 0)
        return 1;
#if defined(USE_QUIC) || defined(USE_LISTENER)
    listener = SSL_new_listener(ctx, 0);
    if (listener == NULL || !SSL_set_fd(listener, listen_fd) || !SSL_listen(listener))
        demo_die("listener");
#endif
    demo_log("listening on %s port %d", demo_bind_addr(), listen_port);
    demo_listening(listen_port);

    for (;;) {
        int fd;
        pid_t pid;
        SSL *conn = accept_one(&fd);
        if (conn == NULL)
            continue;
        pthread_mutex_lock(&kids_lock);
#ifdef USE_QUIC
        pid = OSSLQUIC_fork_connection(conn);
#else
        pid = fork();
#endif
        if (pid == 0)
            child(conn, fd); /* does not return */
        if (pid > 0)
            add_child(pid);
        pthread_mutex_unlock(&kids_lock);
        if (pid < 0)
            demo_log_errors("fork failed: connection dropped");
        /* The parent's copy: freed (QUIC: the library already forgot the connection, so
         * this sends nothing to the peer). */
        SSL_free(conn);
        if (fd >= 0)
            close(fd);
    }
}
