/*
 * ddd-mt: one thread per connection, blocking I/O, three listeners (ports p, p+1, p+2).
 *
 *   ddd-mt cert.pem key.pem port        (port 0: the system picks p; p+1 and p+2 follow)
 *
 * One accept thread per listener blocks in accept(2) (TLS), or SSL_accept_connection (the
 * listener API, TLS or QUIC); each accepted connection gets its own thread, which serves it
 * with blocking calls (common.c: demo_serve_conn) and logs one line. Over QUIC the three
 * listeners live in one domain (SSL_new_domain + SSL_new_listener_from), so they share one
 * lock and one network-polling thread at a time, whichever thread happens to block.
 *
 * Why an accept thread per listener rather than one SSL_poll loop: it is the same code for
 * every variant (a blocking accept per listening socket is how the TLS server was written),
 * and over QUIC any number of threads may block on objects of one domain: the library lets
 * one of them poll the network and wakes the others only when their object can progress. An
 * SSL_poll loop would not work for the plain TLS build (raw sockets are not SSL objects).
 */
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NLISTEN 3

struct listener {
    int fd, port;
    SSL *ssl; /* USE_LISTENER / USE_QUIC: the listener object */
};

struct conn_job {
    SSL *ssl;
    int port;
#if !defined(USE_QUIC) && !defined(USE_LISTENER)
    int fd; /* SSL_set_fd does not take ownership of the fd */
#endif
};

static SSL_CTX *ctx;
static struct listener listeners[NLISTEN];
#ifdef USE_QUIC
static SSL *domain;

/* SIGUSR1 and exit: the domain's counters (all three listeners), for the fleet test. */
static void log_stats(void)
{
    demo_log_engine_stats(domain, "engine stats");
}
#endif

static void *conn_thread(void *arg)
{
    struct conn_job *job = arg;
    demo_conn_result res;
    memset(&res, 0, sizeof(res));
    demo_serve_conn(job->ssl, &res);
    demo_log_conn(job->ssl, job->port, &res);
    SSL_free(job->ssl);
#if !defined(USE_QUIC) && !defined(USE_LISTENER)
    close(job->fd);
#endif
    free(job);
    return NULL;
}

/* The next connection of listener L (blocking); NULL on a failure (logged). */
static SSL *accept_one(struct listener *L, struct conn_job *job)
{
#if defined(USE_QUIC) || defined(USE_LISTENER)
    SSL *ssl = SSL_accept_connection(L->ssl, 0);
    (void)job;
    if (ssl == NULL)
        demo_log_errors("SSL_accept_connection failed");
    return ssl;
#else
    SSL *ssl;
    int fd = accept4(L->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        demo_log("accept: %s", strerror(errno));
        return NULL;
    }
    ssl = SSL_new(ctx);
    if (ssl == NULL || !SSL_set_fd(ssl, fd)) {
        demo_log_errors("SSL_new/SSL_set_fd failed");
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    job->fd = fd;
    return ssl;
#endif
}

static void *accept_thread(void *arg)
{
    struct listener *L = arg;
    for (;;) {
        struct conn_job *job = calloc(1, sizeof(*job));
        pthread_t t;
        int e;
        if (job == NULL)
            demo_die("out of memory");
        job->port = L->port;
        job->ssl = accept_one(L, job);
        if (job->ssl == NULL) {
            free(job);
            continue;
        }
        if ((e = pthread_create(&t, NULL, conn_thread, job)) != 0) {
            demo_log("pthread_create: %s: connection dropped", strerror(e));
            SSL_free(job->ssl);
#if !defined(USE_QUIC) && !defined(USE_LISTENER)
            close(job->fd);
#endif
            free(job);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *cert, *key;
    int port, first, fds[NLISTEN], i;

    demo_name = "ddd-mt";
    if (!demo_args(argc, argv, &cert, &key, &port))
        return 2;
    if (!demo_signal_thread(NULL))
        return 1;
    ctx = demo_server_ctx(cert, key);
    if (!demo_listen_consecutive(port, NLISTEN, fds, &first))
        return 1;
#ifdef USE_QUIC
    domain = SSL_new_domain(ctx, 0);
    if (domain == NULL)
        demo_die("SSL_new_domain");
    demo_apply_quic_lb(domain); /* $DEMO_QUIC_LB: before any listener has a connection */
    demo_on_usr1 = log_stats;
#endif
    for (i = 0; i < NLISTEN; i++) {
        struct listener *L = &listeners[i];
        L->fd = fds[i];
        L->port = first + i;
#if defined(USE_QUIC)
        L->ssl = SSL_new_listener_from(domain, 0);
#elif defined(USE_LISTENER)
        L->ssl = SSL_new_listener(ctx, 0);
#endif
#if defined(USE_QUIC) || defined(USE_LISTENER)
        if (L->ssl == NULL || !SSL_set_fd(L->ssl, L->fd) || !SSL_listen(L->ssl))
            demo_die("listener");
#endif
    }
    for (i = 0; i < NLISTEN; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, accept_thread, &listeners[i]) != 0)
            demo_die("pthread_create");
        pthread_detach(t);
    }
    demo_log("listening on %s ports %d, %d, %d", demo_bind_addr(), first, first + 1, first + 2);
    demo_listening(first);
    /* The accept threads run until the signal thread ends the process (SIGTERM/SIGINT). */
    for (;;)
        pause();
}
