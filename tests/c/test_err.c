/*
 * test_err: the thread-local OpenSSL error queue (ERR_*), code packing and error texts.
 *
 * Errors are produced by real failing BIO calls, so each check also pins down which error a
 * given failure queues: a read on an orphaned dgram pair half (BIO_R_IN_USE), an mmsg
 * item with `local` before local addressing is enabled (BIO_R_LOCAL_ADDR_NOT_AVAILABLE) and
 * with `peer` before the reader's caps allow it (BIO_R_PEER_ADDR_NOT_AVAILABLE).
 */
#include "testutil.h"

#define PACKED_BIO(r) ((unsigned long)(((unsigned long)ERR_LIB_BIO << 23) | (unsigned long)(r)))

/* Queues BIO_R_IN_USE: resizing a dgram pair half's buffer after it was paired. */
static int raise_in_use(void)
{
    BIO *a = NULL, *b = NULL;
    int r;

    if (!BIO_new_bio_dgram_pair(&a, 0, &b, 0))
        return 0;
    r = (int)BIO_set_write_buf_size(a, 4096);
    BIO_free(a);
    BIO_free(b);
    return r == 0;
}

/* Queues BIO_R_LOCAL_ADDR_NOT_AVAILABLE or BIO_R_PEER_ADDR_NOT_AVAILABLE via a dgram mem BIO. */
static int raise_mmsg_error(int use_local)
{
    BIO *m = BIO_new(BIO_s_dgram_mem());
    BIO_ADDR *addr = tu_loopback(AF_INET, 4433);
    BIO_MSG msg;
    char data[4] = "abc";
    size_t done = 99;
    int r;

    if (m == NULL || addr == NULL) {
        BIO_free(m);
        BIO_ADDR_free(addr);
        return 0;
    }
    memset(&msg, 0, sizeof(msg));
    msg.data = data;
    msg.data_len = sizeof(data);
    if (use_local)
        msg.local = addr;
    else
        msg.peer = addr;
    r = BIO_sendmmsg(m, &msg, sizeof(msg), 1, 0, &done);
    BIO_free(m);
    BIO_ADDR_free(addr);
    return r == 0 && done == 0;
}

/* Queues the three errors above, oldest first: IN_USE, LOCAL_ADDR_..., PEER_ADDR_... */
static int raise_three(void)
{
    return raise_in_use() && raise_mmsg_error(1) && raise_mmsg_error(0);
}

static int test_constants(void)
{
    ASSERT_EQ(ERR_LIB_SYS, 2);
    ASSERT_EQ(ERR_LIB_BIO, 32);
    ASSERT_EQ(BIO_R_LOCAL_ADDR_NOT_AVAILABLE, 111);
    ASSERT_EQ(BIO_R_NON_FATAL, 112);
    ASSERT_EQ(BIO_R_PEER_ADDR_NOT_AVAILABLE, 151);
    ASSERT_EQ(BIO_R_UNSUPPORTED_METHOD, 121);
    ASSERT_EQ(BIO_R_PORT_MISMATCH, 150);
    ASSERT_EQ(BIO_R_UNINITIALIZED, 120);
    ASSERT_EQ(BIO_R_BROKEN_PIPE, 124);
    ASSERT_EQ(BIO_R_TRANSFER_ERROR, 104);
    ASSERT_EQ(BIO_R_INVALID_ARGUMENT, 125);
    ASSERT_EQ(BIO_R_IN_USE, 123);
    ASSERT_U64_EQ(ERR_R_PASSED_NULL_PARAMETER, 258 | (1 << 18) | (2 << 18));
    return 1;
}

static int test_empty_queue(void)
{
    ERR_clear_error();
    ASSERT_EQ(ERR_get_error(), 0);
    ASSERT_EQ(ERR_peek_error(), 0);
    ASSERT_EQ(ERR_peek_last_error(), 0);
    return 1;
}

static int test_code_packing(void)
{
    unsigned long e;

    ASSERT_TRUE(raise_in_use());
    e = ERR_peek_error();
    ASSERT_U64_EQ(e, PACKED_BIO(BIO_R_IN_USE));
    ASSERT_EQ(ERR_GET_LIB(e), ERR_LIB_BIO);
    ASSERT_EQ(ERR_GET_LIB(e), 32);
    ASSERT_EQ(ERR_GET_REASON(e), BIO_R_IN_USE);
    ASSERT_EQ(ERR_GET_REASON(e), 123);
    ASSERT_FALSE(ERR_SYSTEM_ERROR(e));
    ASSERT_FALSE(ERR_FATAL_ERROR(e));
    ASSERT_ONE_ERROR();
    return 1;
}

static int test_fifo_order(void)
{
    ASSERT_TRUE(raise_three());
    ASSERT_U64_EQ(ERR_peek_error(), PACKED_BIO(BIO_R_IN_USE));
    ASSERT_U64_EQ(ERR_peek_last_error(), PACKED_BIO(BIO_R_PEER_ADDR_NOT_AVAILABLE));
    /* Peeking removes nothing. */
    ASSERT_U64_EQ(ERR_peek_error(), PACKED_BIO(BIO_R_IN_USE));
    ASSERT_U64_EQ(ERR_get_error(), PACKED_BIO(BIO_R_IN_USE));
    ASSERT_U64_EQ(ERR_peek_error(), PACKED_BIO(BIO_R_LOCAL_ADDR_NOT_AVAILABLE));
    ASSERT_U64_EQ(ERR_get_error(), PACKED_BIO(BIO_R_LOCAL_ADDR_NOT_AVAILABLE));
    ASSERT_U64_EQ(ERR_peek_last_error(), PACKED_BIO(BIO_R_PEER_ADDR_NOT_AVAILABLE));
    ASSERT_U64_EQ(ERR_get_error(), PACKED_BIO(BIO_R_PEER_ADDR_NOT_AVAILABLE));
    ASSERT_EQ(ERR_get_error(), 0);
    ASSERT_EQ(ERR_peek_error(), 0);
    ASSERT_EQ(ERR_peek_last_error(), 0);
    return 1;
}

static int test_clear(void)
{
    ASSERT_TRUE(raise_three());
    ASSERT_NE(ERR_peek_error(), 0);
    ERR_clear_error();
    ASSERT_EQ(ERR_peek_error(), 0);
    ASSERT_EQ(ERR_peek_last_error(), 0);
    ASSERT_EQ(ERR_get_error(), 0);
    /* The queue works again after clearing. */
    ASSERT_TRUE(raise_in_use());
    ASSERT_U64_EQ(ERR_get_error(), PACKED_BIO(BIO_R_IN_USE));
    return 1;
}

/* Many errors: the queue keeps the newest ones and never grows without bound or crashes. */
static int test_overflow(void)
{
    int i, n = 0;
    unsigned long e;

    for (i = 0; i < 100; i++)
        ASSERT_TRUE(raise_in_use());
    ASSERT_TRUE(raise_mmsg_error(1));
    ASSERT_U64_EQ(ERR_peek_last_error(), PACKED_BIO(BIO_R_LOCAL_ADDR_NOT_AVAILABLE));
    while ((e = ERR_get_error()) != 0)
        n++;
    ASSERT_GE(n, 2);
    ASSERT_LE(n, 101);
    return 1;
}

static int test_reason_and_lib_strings(void)
{
    unsigned long e = PACKED_BIO(BIO_R_IN_USE);
    const char *r = ERR_reason_error_string(e), *l = ERR_lib_error_string(e);

    ASSERT_NOT_NULL(r);
    ASSERT_STR_EQ(r, "in use");
    ASSERT_NOT_NULL(l);
    ASSERT_STR_EQ(l, "BIO routines");
    r = ERR_reason_error_string(PACKED_BIO(BIO_R_PEER_ADDR_NOT_AVAILABLE));
    ASSERT_NOT_NULL(r);
    ASSERT_STR_CONTAINS(r, "peer addr");
    r = ERR_reason_error_string(PACKED_BIO(BIO_R_NON_FATAL));
    ASSERT_NOT_NULL(r);
    ASSERT_STR_CONTAINS(r, "non-fatal");
    return 1;
}

static int test_error_string_n(void)
{
    unsigned long e = PACKED_BIO(BIO_R_IN_USE);
    char full[256], buf[300], hex[16], minimal[64];
    size_t lens[] = {1, 2, 5, 9, 10, 20, 0, 0, 0, 256}, flen, i, j;

    ERR_error_string_n(e, full, sizeof(full));
    flen = strlen(full);
    snprintf(hex, sizeof(hex), "%08lX", e);
    ASSERT_EQ(strncmp(full, "error:", 6), 0);
    ASSERT_STR_CONTAINS(full, hex);
    ASSERT_STR_CONTAINS(full, "BIO routines");
    ASSERT_STR_CONTAINS(full, "in use");
    /* OpenSSL switches to "err:<code>:<lib>:0:<reason>" when the text does not fit. */
    snprintf(minimal, sizeof(minimal), "err:%lx:%lx:%lx:%lx", e, (unsigned long)ERR_GET_LIB(e),
             0UL, (unsigned long)ERR_GET_REASON(e));
    lens[6] = flen;
    lens[7] = flen + 1;
    lens[8] = flen + 2;
    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t len = lens[i], got;

        memset(buf, 'X', sizeof(buf));
        ERR_error_string_n(e, buf, len);
        got = strnlen(buf, sizeof(buf));
        ASSERT_LT(got, len);              /* NUL-terminated inside len */
        for (j = len; j < sizeof(buf); j++) /* nothing written past len */
            ASSERT_EQ(buf[j], 'X');
        if (len >= flen + 2) {
            ASSERT_STR_EQ(buf, full);
        } else {
            ASSERT_TRUE(strncmp(buf, full, got) == 0 || strncmp(buf, minimal, got) == 0);
        }
    }
    /* len 0 writes nothing at all. */
    memset(buf, 'X', sizeof(buf));
    ERR_error_string_n(e, buf, 0);
    ASSERT_EQ(buf[0], 'X');
    return 1;
}

static int test_error_string(void)
{
    unsigned long e = PACKED_BIO(BIO_R_IN_USE);
    char full[256], buf[256];
    char *p;

    ERR_error_string_n(e, full, sizeof(full));
    p = ERR_error_string(e, NULL);
    ASSERT_NOT_NULL(p);
    ASSERT_STR_EQ(p, full);
    p = ERR_error_string(e, buf);
    ASSERT_PTR_EQ(p, buf);
    ASSERT_STR_EQ(buf, full);
    /* An unknown reason still formats, with a readable placeholder. */
    p = ERR_error_string(PACKED_BIO(4000), NULL);
    ASSERT_NOT_NULL(p);
    ASSERT_EQ(strncmp(p, "error:", 6), 0);
    return 1;
}

struct lines {
    int n, stop_after;
    char text[4][512];
    size_t len[4];
};

static int collect_line(const char *str, size_t len, void *u)
{
    struct lines *l = u;

    if (l->n < 4) {
        snprintf(l->text[l->n], sizeof(l->text[l->n]), "%s", str);
        l->len[l->n] = len;
    }
    l->n++;
    return l->stop_after == 0 || l->n < l->stop_after;
}

static int test_print_errors_cb(void)
{
    struct lines l;
    char hex[16];
    unsigned long codes[3] = {PACKED_BIO(BIO_R_IN_USE),
                              PACKED_BIO(BIO_R_LOCAL_ADDR_NOT_AVAILABLE),
                              PACKED_BIO(BIO_R_PEER_ADDR_NOT_AVAILABLE)};
    int i;

    memset(&l, 0, sizeof(l));
    ASSERT_TRUE(raise_three());
    ERR_print_errors_cb(collect_line, &l);
    ASSERT_EQ(l.n, 3);
    for (i = 0; i < 3; i++) {
        ASSERT_EQ(l.len[i], strlen(l.text[i]));
        ASSERT_EQ(l.text[i][l.len[i] - 1], '\n');
        snprintf(hex, sizeof(hex), "error:%08lX", codes[i]);
        ASSERT_STR_CONTAINS(l.text[i], hex);
        ASSERT_STR_CONTAINS(l.text[i], ERR_reason_error_string(codes[i]));
        ASSERT_STR_CONTAINS(l.text[i], "BIO routines");
    }
    ASSERT_EQ(ERR_peek_error(), 0);

    /* A callback returning 0 stops the report; the errors not yet reported stay queued. */
    memset(&l, 0, sizeof(l));
    l.stop_after = 1;
    ASSERT_TRUE(raise_three());
    ERR_print_errors_cb(collect_line, &l);
    ASSERT_EQ(l.n, 1);
    ASSERT_U64_EQ(ERR_get_error(), codes[1]);
    ASSERT_U64_EQ(ERR_get_error(), codes[2]);
    ASSERT_EQ(ERR_get_error(), 0);
    return 1;
}

static int test_print_errors_fp(void)
{
    FILE *f = tmpfile();
    char text[4096], hex[16];
    size_t n;
    int lines = 0;
    char *p;

    ASSERT_NOT_NULL(f);
    ASSERT_TRUE(raise_three());
    ERR_print_errors_fp(f);
    ASSERT_EQ(ERR_peek_error(), 0);
    rewind(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    for (p = text; *p; p++)
        lines += *p == '\n';
    ASSERT_EQ(lines, 3);
    ASSERT_STR_CONTAINS(text, "in use");
    ASSERT_STR_CONTAINS(text, ERR_reason_error_string(PACKED_BIO(BIO_R_LOCAL_ADDR_NOT_AVAILABLE)));
    ASSERT_STR_CONTAINS(text, ERR_reason_error_string(PACKED_BIO(BIO_R_PEER_ADDR_NOT_AVAILABLE)));
    snprintf(hex, sizeof(hex), "%08lX", PACKED_BIO(BIO_R_IN_USE));
    ASSERT_STR_CONTAINS(text, hex);
    return 1;
}

/* A system error: recvmmsg on an empty non-blocking socket queues ERR_SYSTEM_ERROR(EAGAIN). */
static int test_system_error_packing(void)
{
    BIO *b = tu_udp_bio(AF_INET, NULL, NULL);
    BIO_MSG msg;
    char buf[64];
    size_t done = 99;
    unsigned long e;
    char text[256];

    ASSERT_NOT_NULL(b);
    memset(&msg, 0, sizeof(msg));
    msg.data = buf;
    msg.data_len = sizeof(buf);
    ASSERT_EQ(BIO_recvmmsg(b, &msg, sizeof(msg), 1, 0, &done), 0);
    ASSERT_EQ(done, 0);
    e = ERR_peek_last_error();
    BIO_free(b);
    ASSERT_TRUE(ERR_SYSTEM_ERROR(e));
    ASSERT_EQ(ERR_GET_LIB(e), ERR_LIB_SYS);
    ASSERT_EQ(ERR_GET_REASON(e), EAGAIN);
    ASSERT_U64_EQ(e, 0x80000000UL | (unsigned long)EAGAIN);
    ASSERT_TRUE(BIO_err_is_non_fatal((unsigned int)e));
    ERR_error_string_n(e, text, sizeof(text));
    ASSERT_STR_CONTAINS(text, strerror(EAGAIN));
    ERR_clear_error();
    /* BIO_err_is_non_fatal: (BIO, NON_FATAL) yes, (BIO, BROKEN_PIPE) no, SYS ECONNREFUSED no. */
    ASSERT_TRUE(BIO_err_is_non_fatal((unsigned int)PACKED_BIO(BIO_R_NON_FATAL)));
    ASSERT_FALSE(BIO_err_is_non_fatal((unsigned int)PACKED_BIO(BIO_R_BROKEN_PIPE)));
    ASSERT_TRUE(BIO_err_is_non_fatal(0x80000000U | (unsigned int)EINTR));
    ASSERT_FALSE(BIO_err_is_non_fatal(0x80000000U | (unsigned int)ECONNREFUSED));
    return 1;
}

struct thread_result {
    unsigned long seen_before, seen_after;
};

static void *other_thread(void *arg)
{
    struct thread_result *r = arg;

    r->seen_before = ERR_peek_error(); /* the main thread's errors are not visible here */
    raise_in_use();
    r->seen_after = ERR_peek_error();
    ERR_clear_error();
    return NULL;
}

static int test_thread_local(void)
{
    pthread_t t;
    struct thread_result r = {1, 0};

    ASSERT_TRUE(raise_mmsg_error(1));
    ASSERT_EQ(pthread_create(&t, NULL, other_thread, &r), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(r.seen_before, 0);
    ASSERT_U64_EQ(r.seen_after, PACKED_BIO(BIO_R_IN_USE));
    /* Our queue holds only our own error. */
    ASSERT_U64_EQ(ERR_get_error(), PACKED_BIO(BIO_R_LOCAL_ADDR_NOT_AVAILABLE));
    ASSERT_EQ(ERR_get_error(), 0);
    return 1;
}

int main(int argc, char **argv)
{
    tu_init(argc, argv);
    RUN(test_constants);
    RUN(test_empty_queue);
    RUN(test_code_packing);
    RUN(test_fifo_order);
    RUN(test_clear);
    RUN(test_overflow);
    RUN(test_reason_and_lib_strings);
    RUN(test_error_string_n);
    RUN(test_error_string);
    RUN(test_print_errors_cb);
    RUN(test_print_errors_fp);
    RUN(test_system_error_packing);
    RUN(test_thread_local);
    return tu_finish();
}
