/*
 * relay: a UDP impairment relay for loopback fault tests (this kernel has no netem qdisc).
 *
 *   relay [options] SERVER_PORT
 *     -b ADDR          address to listen on and to reach the server at (default 127.0.0.1)
 *     -p PORT          port to listen on (default 0: the system chooses)
 *     -s SEED          seed of the fault schedule (default 1)
 *     -T SEC           exit after SEC seconds (default 120): the relay never outlives a test
 *     --c2s SPEC       faults on client->server datagrams
 *     --s2c SPEC       faults on server->client datagrams
 *     --both SPEC      the same faults in both directions
 *     -v               one line per datagram on stderr: direction, client, index, size, first
 *                      packet's type, fate
 *   SPEC: comma-separated key=value, every key optional:
 *     drop=P           drop with probability P
 *     dup=P            send twice with probability P
 *     reorder=P        hold back with probability P, released after GAP later datagrams of
 *     gap=N            the same direction (default 3) or after hold=MS (default 20) ms
 *     hold=MS
 *     delay=MS         delay every datagram MS ms, plus a uniform jitter in [0, jitter) ms
 *     jitter=MS        (jitter reorders too)
 *     corrupt=P        flip `bits` random bits (default 1) with probability P
 *     bits=K
 *     first=N          faults (all of the above) only on each client's first N datagrams in
 *                      this direction (the handshake phase)
 *     after=N          faults only from each client's datagram N on
 *     bh_at=N          blackhole: drop everything from the moment N datagrams (both
 *     bh_t=SEC         directions) have passed the relay, or SEC s after the first datagram,
 *     bh_for=SEC       for SEC seconds
 *
 * "listening on PORT" on stdout when ready. Each client address gets its own socket towards the
 * server, so the server sees one address per client and several clients work at once.
 *
 * The schedule is a pure function of (seed, direction, client number, datagram index within
 * that client and direction): same seed, same decisions for the same traffic, however the
 * datagrams of different clients interleave. Blackholes are by time or count, as given.
 *
 * Amplification check (RFC 9000 section 8.1): per client address, until the address is proven,
 * the relay adds up the bytes it delivered to the server from that client and the bytes the
 * server sent to it, and counts a violation whenever the server's exceed 3x. The address counts
 * as proven once an intact Handshake or 1-RTT packet from the client has reached the server, or
 * any intact datagram after the server sent a Retry (it carries the token). Bytes of datagrams
 * the relay corrupted count as received (RFC 9000 counts every byte of a datagram attributed
 * to the connection, processed or not; a server answers a corrupted Initial with a Retry before
 * decrypting it) but never prove the address.
 *
 * On SIGTERM/SIGINT or at the time limit it prints what it did, per direction and per client,
 * and exits 0. Every wait is a poll() bounded by the next release, the time limit and 1 s.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 1000
#define MAX_DGRAM 65536
#define MAX_PENDING 4096
#define BATCH 64 /* datagrams read from one socket per pass, so no socket starves the others */

enum { C2S, S2C };
static const char *dir_name[2] = {"c2s", "s2c"};

struct spec {
    double drop, dup, reorder, corrupt;
    unsigned gap, bits;
    double hold_ms, delay_ms, jitter_ms;
    uint64_t first, after, bh_at;
    double bh_t, bh_for;
};

struct dirstate {
    struct spec sp;
    double bh_start; /* < 0: not started */
    uint64_t seen, forwarded, fwd_bytes, dropped, duplicated, reordered, delayed, corrupted, blackholed;
};

struct client {
    struct sockaddr_storage addr;
    socklen_t alen;
    int fd;       /* connected to the server */
    unsigned no;  /* order of first appearance */
    uint64_t idx[2];
    int validated, retry_seen;
    uint64_t unval_in, unval_out; /* bytes before validation: delivered to / sent by the server */
    uint64_t violations;
    double max_ratio;
};

struct pending {
    int dir;
    struct client *c;
    double due;           /* release time */
    uint64_t after_count; /* reorder: release once the direction forwarded this many */
    int held;             /* reorder hold (else: delay) */
    int counted_corrupt;
    size_t len;
    unsigned char *data;
};

static struct dirstate dirs[2];
static struct client clients[MAX_CLIENTS];
static unsigned nclients;
static struct pending pend[MAX_PENDING];
static unsigned npend;
static uint64_t seed = 1, total_seen, pending_overflow;
static double t_first = -1;
static int front_fd = -1;
static struct sockaddr_storage server_addr;
static socklen_t server_alen;
static volatile sig_atomic_t stop_signal;
static int verbose;
static double t_start;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* splitmix64: the schedule's generator, one stream per datagram. */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s)
{
    return (double)(mix(s) >> 11) / 9007199254740992.0; /* [0, 1) */
}

static int parse_spec(const char *text, struct spec *sp)
{
    char buf[512], *tok, *save = NULL;
    if (strlen(text) >= sizeof(buf))
        return 0;
    strcpy(buf, text);
    for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '='), *end;
        double v;
        if (eq == NULL)
            return 0;
        *eq = '\0';
        v = strtod(eq + 1, &end);
        if (*end != '\0' || end == eq + 1 || v < 0)
            return 0;
        if (strcmp(tok, "drop") == 0) sp->drop = v;
        else if (strcmp(tok, "dup") == 0) sp->dup = v;
        else if (strcmp(tok, "reorder") == 0) sp->reorder = v;
        else if (strcmp(tok, "gap") == 0) sp->gap = (unsigned)v;
        else if (strcmp(tok, "hold") == 0) sp->hold_ms = v;
        else if (strcmp(tok, "delay") == 0) sp->delay_ms = v;
        else if (strcmp(tok, "jitter") == 0) sp->jitter_ms = v;
        else if (strcmp(tok, "corrupt") == 0) sp->corrupt = v;
        else if (strcmp(tok, "bits") == 0) sp->bits = (unsigned)v;
        else if (strcmp(tok, "first") == 0) sp->first = (uint64_t)v;
        else if (strcmp(tok, "after") == 0) sp->after = (uint64_t)v;
        else if (strcmp(tok, "bh_at") == 0) sp->bh_at = (uint64_t)v;
        else if (strcmp(tok, "bh_t") == 0) sp->bh_t = v;
        else if (strcmp(tok, "bh_for") == 0) sp->bh_for = v;
        else return 0;
    }
    return 1;
}

static void default_spec(struct spec *sp)
{
    memset(sp, 0, sizeof(*sp));
    sp->gap = 3;
    sp->hold_ms = 20;
    sp->bits = 1;
}

static void addr_str(const struct sockaddr_storage *a, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)a;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
        port = ntohs(s->sin_port);
    } else if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
        port = ntohs(s->sin6_port);
    }
    snprintf(out, cap, "%s:%u", host, port);
}

static struct client *client_for(const struct sockaddr_storage *a, socklen_t alen)
{
    unsigned i;
    struct client *c;
    for (i = 0; i < nclients; i++)
        if (clients[i].alen == alen && memcmp(&clients[i].addr, a, alen) == 0)
            return &clients[i];
    if (nclients == MAX_CLIENTS)
        return NULL;
    c = &clients[nclients];
    memset(c, 0, sizeof(*c));
    c->fd = socket(server_addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&server_addr, server_alen) != 0) {
        perror("relay: socket towards the server");
        if (c->fd >= 0)
            close(c->fd);
        return NULL;
    }
    {
        int bufsize = 4 << 20;
        (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
        (void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    }
    memcpy(&c->addr, a, alen);
    c->alen = alen;
    c->no = nclients++;
    return c;
}

/* The amplification bookkeeping, for a datagram the server is about to receive or has sent. */
static void amp_note(int dir, struct client *c, const unsigned char *p, size_t len, int intact)
{
    if (c->validated || len == 0)
        return;
    if (dir == C2S) {
        int long_hdr = (p[0] & 0x80) != 0, type = (p[0] & 0x30) >> 4;
        if (intact && (c->retry_seen || !long_hdr || type == 2)) {
            c->validated = 1;
            return;
        }
        c->unval_in += len;
    } else {
        double ratio;
        if ((p[0] & 0x80) && ((p[0] & 0x30) >> 4) == 3)
            c->retry_seen = 1;
        c->unval_out += len;
        ratio = c->unval_in ? (double)c->unval_out / (double)c->unval_in : 1e9;
        if (ratio > c->max_ratio)
            c->max_ratio = ratio;
        if (c->unval_out > 3 * c->unval_in)
            c->violations++;
    }
}

static void release_held(int dir);

static const char *pkt_type(const unsigned char *p, size_t len)
{
    static const char *long_types[4] = {"Initial", "0-RTT", "Handshake", "Retry"};
    if (len == 0)
        return "empty";
    if (!(p[0] & 0x80))
        return "1-RTT";
    if (len >= 5 && p[1] == 0 && p[2] == 0 && p[3] == 0 && p[4] == 0)
        return "VersionNegotiation";
    return long_types[(p[0] & 0x30) >> 4];
}

static void trace(int dir, const struct client *c, uint64_t idx, const unsigned char *p, size_t len,
                  const char *fate)
{
    if (verbose)
        fprintf(stderr, "%9.3f %s client %u #%" PRIu64 " %zu bytes %s: %s\n", now_s() - t_start, dir_name[dir], c->no,
                idx, len, pkt_type(p, len), fate);
}

static void deliver(int dir, struct client *c, const unsigned char *p, size_t len, int intact)
{
    struct dirstate *d = &dirs[dir];
    ssize_t r;
    if (dir == C2S) {
        amp_note(C2S, c, p, len, intact);
        r = send(c->fd, p, len, 0);
    } else {
        r = sendto(front_fd, p, len, 0, (const struct sockaddr *)&c->addr, c->alen);
    }
    /* A full socket buffer loses the datagram, as a real link would; it is not counted. */
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNREFUSED)
        perror("relay: send");
    if (r < 0)
        return;
    d->forwarded++;
    d->fwd_bytes += len;
    release_held(dir);
}

/* Reordered datagrams of `dir` whose gap has been filled go now. */
static void release_held(int dir)
{
    unsigned i = 0;
    while (i < npend) {
        struct pending *q = &pend[i];
        if (q->held && q->dir == dir && dirs[dir].forwarded >= q->after_count) {
            struct pending x = *q;
            pend[i] = pend[--npend]; /* removed before delivering: deliver recurses */
            deliver(x.dir, x.c, x.data, x.len, !x.counted_corrupt);
            free(x.data);
            i = 0;
            continue;
        }
        i++;
    }
}

static void enqueue(int dir, struct client *c, const unsigned char *p, size_t len, double due, int held,
                    uint64_t after_count, int corrupted)
{
    struct pending *q;
    if (npend == MAX_PENDING) {
        pending_overflow++;
        return;
    }
    q = &pend[npend];
    q->data = malloc(len);
    if (q->data == NULL) {
        pending_overflow++;
        return;
    }
    memcpy(q->data, p, len);
    q->dir = dir;
    q->c = c;
    q->len = len;
    q->due = due;
    q->held = held;
    q->after_count = after_count;
    q->counted_corrupt = corrupted;
    npend++;
}

/* Starts the blackholes whose trigger has come; 1 if `dir` is blackholed now. */
static int blackholed(int dir, double now)
{
    int k;
    for (k = 0; k < 2; k++) {
        struct dirstate *d = &dirs[k];
        if (d->sp.bh_for <= 0 || d->bh_start >= 0)
            continue;
        if ((d->sp.bh_at > 0 && total_seen >= d->sp.bh_at) ||
            (d->sp.bh_t > 0 && t_first >= 0 && now - t_first >= d->sp.bh_t)) {
            d->bh_start = now;
            fprintf(stderr, "relay: %s blackhole from now for %.1f s (after %" PRIu64 " datagrams)\n", dir_name[k],
                    d->sp.bh_for, total_seen);
        }
    }
    return dirs[dir].bh_start >= 0 && now < dirs[dir].bh_start + dirs[dir].sp.bh_for;
}

/* One datagram in from either side: the schedule decides its fate. */
static void process(int dir, struct client *c, unsigned char *p, size_t len, double now)
{
    struct dirstate *d = &dirs[dir];
    const struct spec *sp = &d->sp;
    uint64_t idx = c->idx[dir]++, s;
    double u_drop, u_dup, u_reorder, u_corrupt, u_jitter;
    int faulty, corrupted = 0;
    unsigned k;

    if (t_first < 0)
        t_first = now;
    d->seen++;
    total_seen++;
    if (dir == S2C)
        amp_note(S2C, c, p, len, 1); /* what the server sent, whatever becomes of it */
    if (blackholed(dir, now)) {
        d->blackholed++;
        trace(dir, c, idx, p, len, "blackholed");
        return;
    }
    /* Every draw is made, used or not, so each decision depends only on the datagram. */
    s = seed ^ ((uint64_t)dir << 62) ^ ((uint64_t)c->no << 40) ^ idx;
    (void)mix(&s);
    u_drop = unit(&s);
    u_dup = unit(&s);
    u_reorder = unit(&s);
    u_corrupt = unit(&s);
    u_jitter = unit(&s);
    faulty = (sp->first == 0 || idx < sp->first) && idx >= sp->after;
    if (!faulty) {
        trace(dir, c, idx, p, len, "forwarded (no faults for it)");
        deliver(dir, c, p, len, 1);
        return;
    }
    if (u_drop < sp->drop) {
        d->dropped++;
        trace(dir, c, idx, p, len, "dropped");
        return;
    }
    if (u_corrupt < sp->corrupt && len > 0) {
        for (k = 0; k < sp->bits; k++) {
            uint64_t bit = mix(&s) % ((uint64_t)len * 8);
            p[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            if (verbose)
                fprintf(stderr, "%9.3f %s client %u #%" PRIu64 ": flipping bit %u of byte %" PRIu64 "\n",
                        now_s() - t_start, dir_name[dir], c->no, idx, (unsigned)(bit % 8), bit / 8);
        }
        d->corrupted++;
        corrupted = 1;
    }
    if (verbose) {
        char fate[128];
        snprintf(fate, sizeof(fate), "%s%s%s%s", corrupted ? "corrupted, " : "", u_dup < sp->dup ? "duplicated, " : "",
                 u_reorder < sp->reorder ? "held back, " : "",
                 sp->delay_ms + sp->jitter_ms > 0 ? "delayed" : "forwarded");
        trace(dir, c, idx, p, len, fate);
    }
    for (k = 0; k < (u_dup < sp->dup ? 2u : 1u); k++) {
        double delay = (sp->delay_ms + u_jitter * sp->jitter_ms) / 1000.0;
        if (k == 1)
            d->duplicated++;
        if (k == 0 && u_reorder < sp->reorder) {
            d->reordered++;
            enqueue(dir, c, p, len, now + delay + sp->hold_ms / 1000.0, 1, d->forwarded + sp->gap, corrupted);
        } else if (delay > 0) {
            d->delayed++;
            enqueue(dir, c, p, len, now + delay, 0, 0, corrupted);
        } else {
            deliver(dir, c, p, len, !corrupted);
        }
    }
}

/* Sends what is due; returns the time of the next release (or `limit`). */
static double release_due(double now, double limit)
{
    double next = limit;
    unsigned i = 0;
    while (i < npend) {
        if (pend[i].due <= now) {
            struct pending x = pend[i];
            pend[i] = pend[--npend];
            deliver(x.dir, x.c, x.data, x.len, !x.counted_corrupt);
            free(x.data);
            i = 0; /* deliver may have released held datagrams: rescan */
            continue;
        }
        if (pend[i].due < next)
            next = pend[i].due;
        i++;
    }
    return next;
}

static void report(double t0)
{
    int k;
    unsigned i;
    uint64_t violations = 0;
    double max_ratio = 0;
    printf("relay: seed %" PRIu64 ", %.3f s, %u clients%s\n", seed, now_s() - t0, nclients,
           pending_overflow ? " (pending queue overflowed)" : "");
    for (k = 0; k < 2; k++) {
        struct dirstate *d = &dirs[k];
        printf("relay: %s: seen %" PRIu64 ", forwarded %" PRIu64 " (%" PRIu64 " bytes), dropped %" PRIu64
               ", duplicated %" PRIu64 ", reordered %" PRIu64 ", delayed %" PRIu64 ", corrupted %" PRIu64
               ", blackholed %" PRIu64 "\n",
               dir_name[k], d->seen, d->forwarded, d->fwd_bytes, d->dropped, d->duplicated, d->reordered, d->delayed,
               d->corrupted, d->blackholed);
    }
    for (i = 0; i < nclients; i++) {
        struct client *c = &clients[i];
        char a[80];
        addr_str(&c->addr, a, sizeof(a));
        printf("relay: client %u %s: before validation the server got %" PRIu64 " bytes and sent %" PRIu64
               " (max ratio %.2f), %s, %" PRIu64 " amplification violations\n",
               c->no, a, c->unval_in, c->unval_out, c->max_ratio, c->validated ? "validated" : "never validated",
               c->violations);
        violations += c->violations;
        if (c->max_ratio > max_ratio)
            max_ratio = c->max_ratio;
    }
    printf("relay: amplification: %" PRIu64 " violations, max ratio before validation %.2f\n", violations, max_ratio);
    fflush(stdout);
}

static int usage(void)
{
    fprintf(stderr, "usage: relay [-v] [-b ADDR] [-p PORT] [-s SEED] [-T SEC] [--c2s SPEC] [--s2c SPEC] [--both SPEC] "
                    "SERVER_PORT\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *bind_addr = "127.0.0.1";
    unsigned port = 0, server_port = 0;
    double lifetime = 120, t0, deadline;
    struct sockaddr_storage ss;
    socklen_t sl;
    struct sigaction sa;
    static unsigned char buf[MAX_DGRAM];
    static struct pollfd pfds[MAX_CLIENTS + 1];
    int i, have_port = 0;

    default_spec(&dirs[C2S].sp);
    default_spec(&dirs[S2C].sp);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (strcmp(a, "-b") == 0 && more) {
            bind_addr = argv[++i];
        } else if (strcmp(a, "-p") == 0 && more) {
            port = (unsigned)atoi(argv[++i]);
        } else if (strcmp(a, "-s") == 0 && more) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(a, "-v") == 0) {
            verbose = 1;
        } else if (strcmp(a, "-T") == 0 && more) {
            lifetime = atof(argv[++i]);
        } else if ((strcmp(a, "--c2s") == 0 || strcmp(a, "--s2c") == 0 || strcmp(a, "--both") == 0) && more) {
            const char *v = argv[++i];
            if ((a[2] != 's' && !parse_spec(v, &dirs[C2S].sp)) || (a[2] != 'c' && !parse_spec(v, &dirs[S2C].sp))) {
                fprintf(stderr, "relay: bad fault spec %s\n", v);
                return usage();
            }
        } else if (a[0] != '-' && !have_port) {
            server_port = (unsigned)atoi(a);
            have_port = 1;
        } else {
            return usage();
        }
    }
    if (!have_port || server_port == 0 || server_port > 65535 || port > 65535 || lifetime <= 0)
        return usage();
    dirs[C2S].bh_start = dirs[S2C].bh_start = -1;

    memset(&ss, 0, sizeof(ss));
    memset(&server_addr, 0, sizeof(server_addr));
    if (inet_pton(AF_INET, bind_addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
        sl = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, bind_addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ss.ss_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
        sl = sizeof(struct sockaddr_in6);
    } else {
        fprintf(stderr, "relay: bad address %s\n", bind_addr);
        return 2;
    }
    memcpy(&server_addr, &ss, sl);
    server_alen = sl;
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&server_addr)->sin_port = htons((uint16_t)server_port);
    else
        ((struct sockaddr_in6 *)&server_addr)->sin6_port = htons((uint16_t)server_port);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    front_fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (front_fd < 0 || bind(front_fd, (struct sockaddr *)&ss, sl) != 0 ||
        getsockname(front_fd, (struct sockaddr *)&ss, &sl) != 0) {
        perror("relay: listening socket");
        return 1;
    }
    {
        int bufsize = 4 << 20;
        (void)setsockopt(front_fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
        (void)setsockopt(front_fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    }
    printf("listening on %u\n",
           ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port));
    fflush(stdout);

    t0 = t_start = now_s();
    deadline = t0 + lifetime;
    while (!stop_signal) {
        double now = now_s(), next;
        unsigned n, k;
        int ms;
        if (now >= deadline)
            break;
        next = release_due(now, deadline);
        if (next > now + 1)
            next = now + 1;
        ms = (int)((next - now) * 1000 + 0.999);
        if (ms < 0)
            ms = 0;
        pfds[0].fd = front_fd;
        pfds[0].events = POLLIN;
        for (k = 0; k < nclients; k++) {
            pfds[k + 1].fd = clients[k].fd;
            pfds[k + 1].events = POLLIN;
        }
        n = nclients + 1;
        if (poll(pfds, n, ms) < 0) {
            if (errno == EINTR)
                continue;
            perror("relay: poll");
            return 1;
        }
        for (k = 0; k < n; k++) {
            int b;
            if (!(pfds[k].revents & (POLLIN | POLLERR)))
                continue;
            for (b = 0; b < BATCH; b++) {
                struct sockaddr_storage from;
                socklen_t flen = sizeof(from);
                ssize_t r = recvfrom(pfds[k].fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
                if (r < 0)
                    break; /* EAGAIN, or ECONNREFUSED from a server that is gone: next pass */
                if (k == 0) {
                    struct client *c = client_for(&from, flen);
                    if (c != NULL)
                        process(C2S, c, buf, (size_t)r, now_s());
                } else {
                    process(S2C, &clients[k - 1], buf, (size_t)r, now_s());
                }
            }
        }
    }
    report(t0);
    return 0;
}
