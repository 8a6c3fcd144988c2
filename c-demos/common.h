/*
 * common.h: the part shared by the DDD server demos (c-demos/ddd-*.c) and their client.
 *
 * Every demo builds three ways:
 *   (neither)        TLS over TCP: accept(2), SSL_new + SSL_set_fd on the accepted socket
 *   -DUSE_LISTENER   TLS through the listener API: SSL_new_listener on a TLS context with the
 *                    listening TCP socket, SSL_accept_connection
 *   -DUSE_QUIC       QUIC: SSL_new_listener on a QUIC context over a UDP socket
 *
 * The tiny protocol: the client sends one request line, "GET /path\r\n" (hq-interop) or
 * "GET /path HTTP/1.0\r\n" followed by headers up to a blank line. The answer to "/N" (N
 * decimal) is N bytes, byte i being i % 251; any other path gets a short text line. With
 * HTTP/1.0 a status line and a Content-Length header come first. QUIC: one request per
 * client bidirectional stream, answered then FIN. TLS: one request per connection, answered
 * then close_notify.
 */
#ifndef DDD_COMMON_H
#define DDD_COMMON_H

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DEMO_PERIOD 251                     /* byte i of a "/N" answer is i % DEMO_PERIOD */
#define DEMO_MAX_N ((uint64_t)1 << 40)      /* largest N answered with the pattern */
#define DEMO_DEFAULT_ALPN "hq-interop,http/1.0"

extern const char *demo_name; /* set by each demo's main; prefixes every log line */

/* "[name pid N tid N] msg\n" to stderr with one write(2), so lines of several processes and
 * threads never interleave. */
void demo_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs "what", prints the error queue (ERR_print_errors_fp(stderr)) and exits with 1. */
void demo_die(const char *what) __attribute__((noreturn));
/* Logs "what" and the error queue's entries (one line each, then the queue is empty). */
void demo_log_errors(const char *what);

/* Usage "prog cert.pem key.pem port" (port 0: the system chooses; the chosen port is what
 * demo_listening reports). Returns 1, or prints the usage and returns 0. */
int demo_args(int argc, char **argv, const char **cert, const char **key, int *port);

/* TLS_server_method, or OSSL_QUIC_server_method under USE_QUIC; loads the certificate chain
 * and key (a clear message and exit on failure) and sets an ALPN select callback choosing
 * from $DEMO_ALPN (comma-separated, server preference; default DEMO_DEFAULT_ALPN). QUIC needs
 * a protocol, so no overlap fails the handshake; TLS goes on without ALPN (NOACK).
 * A fleet member (osslquic only, where the library has the call): $DEMO_FLEET_SECRET (hex,
 * at least 16 bytes) -> OSSLQUIC_CTX_set_fleet_secret; $DEMO_PROXY=1 (TLS) ->
 * OSSLQUIC_CTX_set_proxy_protocol: every connection starts with a PROXY v1/v2 header. A
 * variable the library cannot honour exits with a message. */
SSL_CTX *demo_server_ctx(const char *cert, const char *key);

#ifdef USE_QUIC
/* $DEMO_QUIC_LB ("cid=C,sid=HEX,nonce=N[,key=HEX32][,len=1]") -> OSSLQUIC_set_quic_lb on a
 * listener or domain, before it has connections: its connection IDs carry the server ID
 * for a QUIC-LB balancer. Nothing without the variable; exits with a message if it is
 * malformed or the library refuses it (or lacks the call). */
void demo_apply_quic_lb(SSL *listener_or_domain);
#endif

/* The IPv4 address the listening sockets bind: $DEMO_ADDR, default 127.0.0.1 (a fleet's
 * server in a network namespace binds its host's address, or 0.0.0.0). */
const char *demo_bind_addr(void);
/* A listening TCP socket on demo_bind_addr():port (SO_REUSEADDR, backlog 128); -1 (logged)
 * on failure. *bound_port gets the port (useful with port 0). */
int demo_tcp_listen(int port, int *bound_port);
/* A UDP socket bound to demo_bind_addr():port; -1 (logged) on failure. */
int demo_udp_bind(int port, int *bound_port);
/* "listening on PORT\n" on stdout, flushed: the sign tests wait for. */
void demo_listening(int port);

/* Opens `count` listening sockets on consecutive ports base, base+1, ... (TCP, or UDP under
 * USE_QUIC). With base 0 the system picks the first port and the others follow it (retried a
 * few times if one is taken). fds[i] and *first get the result; 1 on success, 0 (logged) on
 * failure. */
int demo_listen_consecutive(int base, int count, int *fds, int *first);

/* ---- the tiny protocol */
typedef struct {
    char path[1024]; /* "/..." once complete */
    int http10;      /* the request line ended with " HTTP/1.0" (or 1.1): headers follow */
    int done;        /* complete: demo_req_feed returned 1 */
    size_t len;      /* bytes held in buf */
    char buf[4096];
} demo_req;
/* Adds request bytes: 1 = complete (r->path set), 0 = more needed, -1 = not a request this
 * server understands (not "GET /...", or longer than the buffer). Bytes after a complete
 * request are ignored. */
int demo_req_feed(demo_req *r, const void *data, size_t n);
/* The peer finished sending (FIN / EOF): an hq-interop request line may end without "\n".
 * 1 = complete, -1 = no usable request. */
int demo_req_eof(demo_req *r);

typedef struct {
    uint64_t total, sent; /* body bytes: to send, sent so far */
    size_t hdr_len, hdr_sent;
    char hdr[256];
    const char *text;      /* the body when it is a text line, else NULL (the pattern) */
    char textbuf[1200];
} demo_resp;
/* "/N" -> N bytes, byte i = i % 251; another path -> a short text line; with HTTP/1.0 a
 * status line and Content-Length header come first. With $DEMO_SERVER_NAME set and `ssl`
 * (the TLS connection or QUIC stream the request came on; may be NULL) given, the text line
 * is followed by "server NAME sees PEER\n" (demo_ssl_peer), so that a client behind a
 * balancer can tell which server answered and what address it saw. */
void demo_resp_init(demo_resp *s, const demo_req *r, SSL *ssl);
/* Copies the next bytes of the answer into buf (at most cap); 0 when everything was given. */
size_t demo_resp_fill(demo_resp *s, uint8_t *buf, size_t cap);
/* Bytes of the whole answer (headers and body) still to be given. */
uint64_t demo_resp_left(const demo_resp *s);

/* ---- processes and signals */
/* Blocks SIGINT, SIGTERM and SIGCHLD in the calling thread (so in every thread it creates
 * afterwards) and starts a thread that waits for them: SIGCHLD reaps every exited child
 * (logging "child PID exited with status S" unless quiet), SIGINT/SIGTERM runs on_stop (may be
 * NULL) and then exits the process with status 0. Call early in main, before other threads.
 * Returns 1, or 0 (logged). */
int demo_signal_thread(void (*on_stop)(int sig));
/* In a child after fork(): SIGINT/SIGTERM/SIGCHLD back to their default actions, unblocked. */
void demo_child_signals(void);
/* Sends sig to every pid in pids[0..n-1] that is > 0, then waits up to `secs` seconds for them
 * to exit (SIGKILL after that); entries are set to 0 as they are reaped. Used by on_stop
 * handlers; safe to call from the signal thread (SIGCHLD is blocked there). */
void demo_stop_children(pid_t *pids, int n, int sig, int secs);
/* Children reaped by the signal thread so far (pid, status) are reported through this hook
 * when set (called on the signal thread). */
extern void (*demo_on_child_exit)(pid_t pid, int status);
/* Called on the signal thread when the process gets SIGUSR1 (which the signal thread waits
 * for too), and before on_stop at SIGINT/SIGTERM: the QUIC demos log their engine's counters
 * here, so a test can read them while the server runs. */
extern void (*demo_on_usr1)(void);

/* ---- peers */
/* "127.0.0.1:PORT" of a connected TCP socket, or "?" */
void demo_fd_peer(int fd, char *buf, size_t cap);
/* The peer address of a connection or QUIC stream, as "ADDR:PORT": the library's
 * SSL_get_peer_addr when it has one (HAVE_SSL_GET_PEER_ADDR; over TLS it reports a PROXY
 * header's client address), else getpeername on the TLS socket; "?" if neither works. */
void demo_ssl_peer(SSL *ssl, char *buf, size_t cap);

/* ---- serving with blocking I/O (the mt, fork and prefork demos) */
typedef struct {
    uint64_t requests;  /* requests answered in full */
    uint64_t bytes_out; /* answer bytes written (headers included) */
    int failed;         /* something went wrong: why says what */
    char why[160];
} demo_conn_result;
/* Reads one request from s (a TLS connection or a QUIC stream), writes the whole answer and,
 * on a QUIC stream, concludes it (FIN). 1 on success; 0 with res->failed/why set. */
int demo_serve_request(SSL *s, demo_conn_result *res);
/* Serves a whole connection, blocking: TLS: the handshake, one request, close_notify.
 * QUIC: every bidirectional stream the client opens, one request each, until the client
 * closes the connection; then SSL_shutdown. The caller frees conn. 1 if all went well. */
int demo_serve_conn(SSL *conn, demo_conn_result *res);
/* One log line per connection: peer, listening port, requests, bytes sent, outcome (the
 * serving pid is in the prefix). Tests parse it: "conn from PEER port P: N requests, B bytes
 * sent, ok" (or ", failed: why"). */
void demo_log_conn(SSL *conn, int port, const demo_conn_result *res);

#ifdef USE_QUIC
/* Logs "LABEL: in=N foreign=N forwarded=N accepted=N refused=N retries=N" from
 * OSSLQUIC_get_engine_stats(obj) (label "stats" for a child or worker: the tests parse it),
 * or the error. */
void demo_log_engine_stats(SSL *obj, const char *label);
#endif

/* Monotonic seconds. */
double demo_now(void);

#endif
