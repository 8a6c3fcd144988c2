/*
 * test_biometh: custom BIO methods (BIO_meth_*). Two methods wrap an end of a
 * BIO_s_dgram_pair kept with BIO_set_data: "rw" has only write/read/ctrl/create/destroy, "mmsg"
 * only sendmmsg/recvmmsg/ctrl/create/destroy. Checked: the method table, create/destroy,
 * init, dispatch with read/read_ex fallbacks, retry flags, missing callbacks, BIO_ctrl
 * pass-through, batches with addresses, and QUIC (client and listener) over each method.
 *
 * With -DTEST_REAL_OPENSSL the BIO parts run against OpenSSL's libcrypto; add
 * -DTEST_WITH_LIBSSL (and libssl) for the QUIC part over the mmsg method (OpenSSL's QUIC
 * needs sendmmsg, so the rw method's QUIC run is osslquic's own fallback).
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* BIO_meth_get_* are deprecated in OpenSSL 3.5 */
#include "testutil.h"

#if !defined(TEST_REAL_OPENSSL) || defined(TEST_WITH_LIBSSL)
#define WITH_QUIC 1
#include <openssl/ssl.h>
#else
#define WITH_QUIC 0
#endif

static const uint32_t ALL_CAPS = BIO_DGRAM_CAP_HANDLES_SRC_ADDR | BIO_DGRAM_CAP_HANDLES_DST_ADDR |
                                 BIO_DGRAM_CAP_PROVIDES_SRC_ADDR | BIO_DGRAM_CAP_PROVIDES_DST_ADDR;

/* How often each callback ran, and how many datagrams crossed them with an address. */
static struct {
    int create, destroy, write, read, ctrl, sendmmsg, recvmmsg;
    long sent_addressed, recv_addressed;
} calls;
static int fail_create;

static BIO *inner(BIO *b)
{
    return (BIO *)BIO_get_data(b);
}

/* create leaves the BIO uninitialised: wrap() attaches the pair end and sets init. */
static int w_create(BIO *b)
{
    (void)b;
    calls.create++;
    return !fail_create;
}

static int w_destroy(BIO *b)
{
    calls.destroy++;
    if (BIO_get_shutdown(b))
        BIO_free(inner(b));
    BIO_set_data(b, NULL);
    BIO_set_init(b, 0);
    return 1;
}

static int w_write(BIO *b, const char *data, int len)
{
    int r;

    calls.write++;
    BIO_clear_retry_flags(b);
    r = BIO_write(inner(b), data, len);
    if (r <= 0 && BIO_should_retry(inner(b)))
        BIO_set_retry_write(b);
    return r;
}

static int w_read(BIO *b, char *data, int len)
{
    int r;

    calls.read++;
    BIO_clear_retry_flags(b);
    r = BIO_read(inner(b), data, len);
    if (r <= 0 && BIO_should_retry(inner(b)))
        BIO_set_retry_read(b);
    return r;
}

static long w_ctrl(BIO *b, int cmd, long larg, void *parg)
{
    calls.ctrl++;
    switch (cmd) {
    case BIO_CTRL_GET_CLOSE:
        return BIO_get_shutdown(b);
    case BIO_CTRL_SET_CLOSE:
        BIO_set_shutdown(b, (int)larg);
        return 1;
    default:
        return BIO_ctrl(inner(b), cmd, larg, parg);
    }
}

static BIO_MSG *msg_at(BIO_MSG *msg, size_t stride, size_t i)
{
    return (BIO_MSG *)((char *)msg + i * stride);
}

static int m_sendmmsg(BIO *b, BIO_MSG *msg, size_t stride, size_t n, uint64_t flags, size_t *done)
{
    size_t i;

    calls.sendmmsg++;
    for (i = 0; i < n; i++)
        calls.sent_addressed += msg_at(msg, stride, i)->peer != NULL;
    return BIO_sendmmsg(inner(b), msg, stride, n, flags, done);
}

static int m_recvmmsg(BIO *b, BIO_MSG *msg, size_t stride, size_t n, uint64_t flags, size_t *done)
{
    size_t i;
    int r;

    calls.recvmmsg++;
    r = BIO_recvmmsg(inner(b), msg, stride, n, flags, done);
    for (i = 0; r == 1 && i < *done; i++) {
        BIO_ADDR *p = msg_at(msg, stride, i)->peer;
        calls.recv_addressed += p != NULL && BIO_ADDR_family(p) == AF_INET;
    }
    return r;
}

static int info_cb(BIO *b, int state, int res)
{
    (void)b;
    (void)state;
    return res;
}

static BIO_METHOD *rw_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "test rw");

    if (m == NULL || !BIO_meth_set_write(m, w_write) || !BIO_meth_set_read(m, w_read) ||
        !BIO_meth_set_ctrl(m, w_ctrl) || !BIO_meth_set_create(m, w_create) ||
        !BIO_meth_set_destroy(m, w_destroy)) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

static BIO_METHOD *mmsg_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "test mmsg");

    if (m == NULL || !BIO_meth_set_sendmmsg(m, m_sendmmsg) ||
        !BIO_meth_set_recvmmsg(m, m_recvmmsg) || !BIO_meth_set_ctrl(m, w_ctrl) ||
        !BIO_meth_set_create(m, w_create) || !BIO_meth_set_destroy(m, w_destroy)) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

/* A BIO of method m owning the pair end `in` (freed by its destroy). */
static BIO *wrap(BIO_METHOD *m, BIO *in)
{
    BIO *b = BIO_new(m);

    if (b == NULL) {
        BIO_free(in);
        return NULL;
    }
    BIO_set_data(b, in);
    BIO_set_init(b, 1);
    return b;
}

/* The method table: indexes, setters and getters, the _ex converters, type and name. */
static int test_method_table(void)
{
    int idx = BIO_get_new_index();
    BIO_METHOD *m;
    BIO *b;

    ASSERT_GT(idx, BIO_TYPE_START);
    ASSERT_LE(idx, BIO_TYPE_MASK);
    ASSERT_EQ(BIO_get_new_index(), idx + 1);
    m = BIO_meth_new(idx | BIO_TYPE_SOURCE_SINK, "test table");
    ASSERT_NOT_NULL(m);
    ASSERT_TRUE(BIO_meth_get_write(m) == NULL);
    ASSERT_TRUE(BIO_meth_get_write_ex(m) == NULL);
    ASSERT_TRUE(BIO_meth_get_read(m) == NULL);
    ASSERT_TRUE(BIO_meth_get_read_ex(m) == NULL);
    ASSERT_TRUE(BIO_meth_get_ctrl(m) == NULL);
    ASSERT_TRUE(BIO_meth_get_sendmmsg(m) == NULL);

    ASSERT_EQ(BIO_meth_set_write(m, w_write), 1);
    ASSERT_TRUE(BIO_meth_get_write(m) == w_write);
    ASSERT_TRUE(BIO_meth_get_write_ex(m) != NULL); /* OpenSSL's converter to write */
    ASSERT_EQ(BIO_meth_set_read(m, w_read), 1);
    ASSERT_TRUE(BIO_meth_get_read(m) == w_read);
    ASSERT_TRUE(BIO_meth_get_read_ex(m) != NULL);
    ASSERT_EQ(BIO_meth_set_ctrl(m, w_ctrl), 1);
    ASSERT_TRUE(BIO_meth_get_ctrl(m) == w_ctrl);
    ASSERT_EQ(BIO_meth_set_create(m, w_create), 1);
    ASSERT_TRUE(BIO_meth_get_create(m) == w_create);
    ASSERT_EQ(BIO_meth_set_destroy(m, w_destroy), 1);
    ASSERT_TRUE(BIO_meth_get_destroy(m) == w_destroy);
    ASSERT_EQ(BIO_meth_set_sendmmsg(m, m_sendmmsg), 1);
    ASSERT_TRUE(BIO_meth_get_sendmmsg(m) == m_sendmmsg);
    ASSERT_EQ(BIO_meth_set_recvmmsg(m, m_recvmmsg), 1);
    ASSERT_TRUE(BIO_meth_get_recvmmsg(m) == m_recvmmsg);
    ASSERT_EQ(BIO_meth_set_sendmmsg(m, NULL), 1);
    ASSERT_TRUE(BIO_meth_get_sendmmsg(m) == NULL);
    ASSERT_EQ(BIO_meth_set_recvmmsg(m, NULL), 1);
    ASSERT_TRUE(BIO_meth_get_puts(m) == NULL);
    ASSERT_TRUE(BIO_meth_get_gets(m) == NULL);
    ASSERT_TRUE(BIO_meth_get_callback_ctrl(m) == NULL);

    /* Type and name of a BIO of the method; the converters call the int-length forms. */
    calls.create = calls.destroy = calls.write = calls.read = 0;
    {
        BIO *x = NULL, *y = NULL;
        char buf[16];
        size_t n = 99;

        ASSERT_EQ(BIO_new_bio_dgram_pair(&x, 0, &y, 0), 1);
        b = wrap(m, x);
        ASSERT_NOT_NULL(b);
        ASSERT_EQ(calls.create, 1);
        ASSERT_EQ(BIO_method_type(b), idx | BIO_TYPE_SOURCE_SINK);
        ASSERT_STR_EQ(BIO_method_name(b), "test table");
        ASSERT_EQ(BIO_meth_get_write_ex(m)(b, "conv", 4, &n), 1);
        ASSERT_EQ(n, 4);
        ASSERT_EQ(calls.write, 1);
        ASSERT_EQ(BIO_read(y, buf, sizeof(buf)), 4);
        ASSERT_MEM_EQ(buf, "conv", 4);
        ASSERT_EQ(BIO_write(y, "back", 4), 4);
        n = 99;
        ASSERT_EQ(BIO_meth_get_read_ex(m)(b, buf, sizeof(buf), &n), 1);
        ASSERT_EQ(n, 4);
        ASSERT_MEM_EQ(buf, "back", 4);
        ASSERT_EQ(calls.read, 1);
        ASSERT_EQ(BIO_free(b), 1);
        ASSERT_EQ(calls.destroy, 1);
        BIO_free(y);
    }

    /* Setting the _ex form clears the int form, and the reverse. */
    ASSERT_EQ(BIO_meth_set_write_ex(m, BIO_meth_get_write_ex(m)), 1);
    ASSERT_TRUE(BIO_meth_get_write(m) == NULL);
    ASSERT_TRUE(BIO_meth_get_write_ex(m) != NULL);
    ASSERT_EQ(BIO_meth_set_write(m, w_write), 1);
    ASSERT_TRUE(BIO_meth_get_write(m) == w_write);
    ASSERT_NO_ERROR();
    BIO_meth_free(m);
    BIO_meth_free(NULL);
    ASSERT_NO_ERROR();
    return 1;
}

/* The rw method over a pair: create/init, dispatch, fallbacks, retry flags, ctrl, missing
 * callbacks, destroy on the last free, and create failing. */
static int test_rw_dispatch(void)
{
    BIO_METHOD *m = rw_method();
    BIO *b, *x = NULL, *y = NULL;
    BIO_MSG msg;
    char buf[64], big[1000];
    size_t n = 99;
    int i, r = 0, c0;

    ASSERT_NOT_NULL(m);
    memset(&calls, 0, sizeof(calls));
    b = BIO_new(m);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(calls.create, 1);
    ASSERT_EQ(BIO_get_init(b), 0);
    ASSERT_EQ(BIO_get_shutdown(b), 1);
    ASSERT_NULL(BIO_get_data(b));
    ASSERT_EQ(BIO_method_type(b) & BIO_TYPE_SOURCE_SINK, BIO_TYPE_SOURCE_SINK);
    ASSERT_STR_EQ(BIO_method_name(b), "test rw");

    /* Not initialised: I/O fails before reaching the method. */
    ASSERT_EQ(BIO_write(b, "x", 1), -1);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNINITIALIZED);
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), -1);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNINITIALIZED);
    ASSERT_NO_ERROR();
    ASSERT_EQ(calls.write + calls.read, 0);

    ASSERT_EQ(BIO_new_bio_dgram_pair(&x, 0, &y, 0), 1);
    BIO_set_data(b, x);
    BIO_set_init(b, 1);
    ASSERT_PTR_EQ(BIO_get_data(b), x);
    ASSERT_EQ(BIO_get_init(b), 1);

    /* Reading an empty pair: -1 and the retry flags the method set, nothing queued. */
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), -1);
    ASSERT_TRUE(BIO_should_retry(b));
    ASSERT_TRUE(BIO_should_read(b));
    ASSERT_FALSE(BIO_should_write(b));
    ASSERT_NO_ERROR();
    ASSERT_EQ(calls.read, 1);

    /* Bytes both ways, through the int-length callbacks and the _ex calls. */
    ASSERT_EQ(BIO_write(b, "hello", 5), 5);
    ASSERT_FALSE(BIO_should_retry(b));
    ASSERT_EQ(calls.write, 1);
    ASSERT_EQ(BIO_read(y, buf, sizeof(buf)), 5);
    ASSERT_MEM_EQ(buf, "hello", 5);
    ASSERT_EQ(BIO_write(y, "world!", 6), 6);
    c0 = calls.ctrl;
    ASSERT_EQ(BIO_ctrl_pending(b), 6); /* BIO_ctrl reaches the method's ctrl */
    ASSERT_EQ(calls.ctrl, c0 + 1);
    ASSERT_EQ(BIO_read_ex(b, buf, sizeof(buf), &n), 1);
    ASSERT_EQ(n, 6);
    ASSERT_MEM_EQ(buf, "world!", 6);
    ASSERT_EQ(calls.read, 2);
    ASSERT_EQ(BIO_write_ex(b, "abc", 3, &n), 1);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(calls.write, 2);
    ASSERT_EQ(BIO_read(y, buf, sizeof(buf)), 3);
    ASSERT_MEM_EQ(buf, "abc", 3);
    ASSERT_EQ(BIO_write(b, "x", 0), 0); /* no call for an empty write */
    ASSERT_EQ(calls.write, 2);
    ASSERT_NO_ERROR();

    /* Filling the pair: -1 and retry-write from the method. */
    memset(big, 7, sizeof(big));
    for (i = 0; i < 100000; i++)
        if ((r = BIO_write(b, big, sizeof(big))) != (int)sizeof(big))
            break;
    ASSERT_EQ(r, -1);
    ASSERT_GT(i, 0);
    ASSERT_TRUE(BIO_should_retry(b));
    ASSERT_TRUE(BIO_should_write(b));
    ASSERT_FALSE(BIO_should_read(b));
    ERR_clear_error(); /* whatever the pair itself queued for "full" */

    /* Every ctrl goes to the method: its own close flag, the pair's MTU and caps. */
    c0 = calls.ctrl;
    ASSERT_EQ(BIO_get_close(b), BIO_CLOSE);
    ASSERT_EQ(BIO_set_close(b, BIO_NOCLOSE), 1);
    ASSERT_EQ(BIO_get_shutdown(b), 0);
    BIO_set_shutdown(b, 1);
    ASSERT_EQ(BIO_get_close(b), BIO_CLOSE);
    ASSERT_EQ(BIO_dgram_get_mtu(b), BIO_dgram_get_mtu(x));
    ASSERT_EQ(BIO_dgram_get_effective_caps(b), 0);
    ASSERT_EQ(BIO_dgram_set_caps(b, BIO_DGRAM_CAP_HANDLES_DST_ADDR), 1);
    ASSERT_EQ(BIO_dgram_get_effective_caps(y), BIO_DGRAM_CAP_HANDLES_DST_ADDR);
    ASSERT_EQ(calls.ctrl, c0 + 6);
    ASSERT_NO_ERROR();

    /* Callbacks the method lacks: OpenSSL's failure values and an "unsupported method". */
    ASSERT_EQ(BIO_puts(b, "line"), -2);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    ASSERT_EQ(BIO_gets(b, buf, sizeof(buf)), -2);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    memset(&msg, 0, sizeof(msg));
    msg.data = buf;
    msg.data_len = 1;
    n = 99;
    ASSERT_EQ(BIO_sendmmsg(b, &msg, sizeof(msg), 1, 0, &n), 0);
    ASSERT_EQ(n, 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    n = 99;
    ASSERT_EQ(BIO_recvmmsg(b, &msg, sizeof(msg), 1, 0, &n), 0);
    ASSERT_EQ(n, 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    ASSERT_EQ(BIO_callback_ctrl(b, BIO_CTRL_SET_CALLBACK, info_cb), -2);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    ASSERT_NO_ERROR();

    /* destroy runs once, on the last free (it frees x: shutdown is 1). */
    ASSERT_EQ(BIO_up_ref(b), 1);
    ASSERT_EQ(BIO_free(b), 1);
    ASSERT_EQ(calls.destroy, 0);
    ASSERT_EQ(BIO_free(b), 1);
    ASSERT_EQ(calls.destroy, 1);
    BIO_free(y);

    /* create failing: BIO_new returns NULL and calls nothing else. */
    fail_create = 1;
    ASSERT_NULL(BIO_new(m));
    fail_create = 0;
    ASSERT_EQ(calls.create, 2);
    ASSERT_EQ(calls.destroy, 1);
    ASSERT_ERROR_IS(ERR_LIB_BIO, ERR_R_INIT_FAIL);
    ASSERT_NO_ERROR();
    BIO_meth_free(m);
    return 1;
}

/* A method with no callbacks at all: BIO_new works (initialised, as there is no create),
 * every operation fails with "unsupported method". */
static int test_bare_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "bare");
    BIO_POLL_DESCRIPTOR d;
    char buf[8];
    size_t n = 99;
    BIO *b;

    ASSERT_NOT_NULL(m);
    b = BIO_new(m);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_get_init(b), 1);
    ASSERT_EQ(BIO_read(b, buf, sizeof(buf)), -2);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    ASSERT_EQ(BIO_write(b, "x", 1), -2);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    ASSERT_EQ(BIO_read_ex(b, buf, sizeof(buf), &n), 0);
    if (HAVE_OSSLQUIC)
        ASSERT_EQ(n, 0); /* OpenSSL leaves *readbytes alone here */
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    n = 99;
    ASSERT_EQ(BIO_write_ex(b, "x", 1, &n), 0);
    ASSERT_EQ(n, 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    ASSERT_EQ(BIO_ctrl(b, BIO_CTRL_PENDING, 0, NULL), -2);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    ASSERT_EQ(BIO_get_rpoll_descriptor(b, &d), -2);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    ASSERT_EQ(BIO_puts(b, "x"), -2);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    ASSERT_NO_ERROR();
    ASSERT_EQ(BIO_free(b), 1);
    BIO_meth_free(m);
    return 1;
}

/* osslquic's contract: NULL and foreign arguments fail cleanly with one error; a method
 * freed while a BIO of it lives stays usable by that BIO. */
static int test_null_and_foreign_args(void)
{
    BIO_METHOD *m;
    BIO *b, *x = NULL, *y = NULL;
    char buf[8];
    int marker;

    if (!HAVE_OSSLQUIC) {
        tu_skip("osslquic's NULL-argument contract (OpenSSL crashes on these)");
        return 1;
    }
    ASSERT_NULL(BIO_meth_new(1, NULL));
    ASSERT_ONE_ERROR();
    ASSERT_EQ(BIO_meth_set_write(NULL, w_write), 0);
    ASSERT_ONE_ERROR();
    ASSERT_TRUE(BIO_meth_get_ctrl(NULL) == NULL);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(BIO_meth_set_ctrl((BIO_METHOD *)BIO_s_dgram_pair(), w_ctrl), 0);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    ASSERT_NO_ERROR();
    BIO_set_data(NULL, &marker);
    ASSERT_ONE_ERROR();
    ASSERT_NULL(BIO_get_data(NULL));
    ASSERT_ONE_ERROR();
    BIO_set_init(NULL, 1);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(BIO_get_init(NULL), 0);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(BIO_puts(NULL, "x"), -1);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(BIO_gets(NULL, buf, sizeof(buf)), -1);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(BIO_callback_ctrl(NULL, BIO_CTRL_SET_CALLBACK, info_cb), -2);
    ASSERT_ONE_ERROR();

    /* Built-in BIOs have no method data; their init is always 1. */
    ASSERT_EQ(BIO_new_bio_dgram_pair(&x, 0, &y, 0), 1);
    BIO_set_data(x, &marker);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    ASSERT_NULL(BIO_get_data(x));
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    ASSERT_EQ(BIO_get_init(x), 1);
    ASSERT_NO_ERROR();

    m = rw_method();
    ASSERT_NOT_NULL(m);
    memset(&calls, 0, sizeof(calls));
    b = wrap(m, x);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(BIO_read(b, NULL, 5), -1);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(BIO_puts(b, NULL), -1);
    ASSERT_ONE_ERROR();
    ASSERT_EQ(calls.read, 0);

    /* The method outlives BIO_meth_free while a BIO of it lives. */
    BIO_meth_free(m);
    ASSERT_STR_EQ(BIO_method_name(b), "test rw");
    ASSERT_EQ(BIO_write(b, "still", 5), 5);
    ASSERT_EQ(BIO_read(y, buf, sizeof(buf)), 5);
    ASSERT_EQ(BIO_free(b), 1);
    ASSERT_EQ(calls.destroy, 1);
    BIO_free(y);
    ASSERT_NO_ERROR();
    return 1;
}

/* The mmsg method: caps through ctrl, BIO_sendmmsg/BIO_recvmmsg with both addresses. */
static int test_mmsg_batches(void)
{
    enum { N = 3 };
    BIO_METHOD *m = mmsg_method();
    BIO *x = NULL, *y = NULL, *c, *d;
    BIO_ADDR *src = tu_loopback(AF_INET, 4000), *dst[N], *gp[N + 1], *gl[N + 1];
    BIO_MSG out[N], in[N + 1];
    char bufs[N + 1][32], want[32];
    size_t n = 99, i;

    ASSERT_NOT_NULL(m);
    ASSERT_NOT_NULL(src);
    memset(&calls, 0, sizeof(calls));
    ASSERT_EQ(BIO_new_bio_dgram_pair(&x, 0, &y, 0), 1);
    ASSERT_EQ(BIO_dgram_set_caps(x, ALL_CAPS), 1);
    ASSERT_EQ(BIO_dgram_set_caps(y, ALL_CAPS), 1);
    c = wrap(m, x);
    d = wrap(m, y);
    ASSERT_NOT_NULL(c);
    ASSERT_NOT_NULL(d);
    ASSERT_EQ(BIO_dgram_get_effective_caps(c), ALL_CAPS);
    ASSERT_EQ(BIO_dgram_set_local_addr_enable(c, 1), 1);
    ASSERT_EQ(BIO_dgram_set_local_addr_enable(d, 1), 1);

    memset(out, 0, sizeof(out));
    memset(in, 0, sizeof(in));
    for (i = 0; i < N; i++) {
        dst[i] = tu_loopback(AF_INET6, (unsigned short)(5000 + i));
        ASSERT_NOT_NULL(dst[i]);
        snprintf(bufs[i], sizeof(bufs[i]), "datagram %zu", i);
        out[i].data = bufs[i];
        out[i].data_len = strlen(bufs[i]);
        out[i].peer = dst[i];
        out[i].local = src;
    }
    ASSERT_EQ(BIO_sendmmsg(c, out, sizeof(BIO_MSG), N, 0, &n), 1);
    ASSERT_EQ(n, N);
    ASSERT_EQ(calls.sendmmsg, 1);
    ASSERT_EQ(calls.sent_addressed, N);
    for (i = 0; i < N + 1; i++) {
        gp[i] = BIO_ADDR_new();
        gl[i] = BIO_ADDR_new();
        ASSERT_NOT_NULL(gp[i]);
        ASSERT_NOT_NULL(gl[i]);
        in[i].data = bufs[i];
        in[i].data_len = sizeof(bufs[i]);
        in[i].peer = gp[i];
        in[i].local = gl[i];
    }
    n = 99;
    ASSERT_EQ(BIO_recvmmsg(d, in, sizeof(BIO_MSG), N + 1, 0, &n), 1);
    ASSERT_EQ(n, N);
    ASSERT_EQ(calls.recvmmsg, 1);
    ASSERT_EQ(calls.recv_addressed, N);
    for (i = 0; i < N; i++) {
        snprintf(want, sizeof(want), "datagram %zu", i);
        ASSERT_EQ(in[i].data_len, strlen(want));
        ASSERT_MEM_EQ(bufs[i], want, strlen(want));
        ASSERT_ADDR_EQ(gp[i], src);
        ASSERT_ADDR_EQ(gl[i], dst[i]);
    }

    /* Nothing waiting: 0 with a non-fatal error, as from the pair itself. */
    n = 99;
    ASSERT_EQ(BIO_recvmmsg(d, in, sizeof(BIO_MSG), 1, 0, &n), 0);
    ASSERT_EQ(n, 0);
    ASSERT_TRUE(BIO_err_is_non_fatal(ERR_peek_last_error()));
    ERR_clear_error();

    /* No read/write callbacks here. */
    ASSERT_EQ(BIO_write(c, "x", 1), -2);
    ASSERT_ERROR_IS(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD);
    ASSERT_NO_ERROR();

    ASSERT_EQ(BIO_free(c), 1);
    ASSERT_EQ(BIO_free(d), 1);
    ASSERT_EQ(calls.destroy, 2);
    for (i = 0; i < N; i++)
        BIO_ADDR_free(dst[i]);
    for (i = 0; i < N + 1; i++) {
        BIO_ADDR_free(gp[i]);
        BIO_ADDR_free(gl[i]);
    }
    BIO_ADDR_free(src);
    BIO_meth_free(m);
    return 1;
}

#if WITH_QUIC
static char certs[512];
static const unsigned char alpn[] = {13, 'o', 's', 's', 'l', 'q', 'u', 'i', 'c', '-', 't', 'e', 's', 't'};

static const char *cert_path(const char *name)
{
    static char buf[4][600];
    static int k;
    char *b = buf[k++ & 3];

    snprintf(b, 600, "%s/%s", certs, name);
    return b;
}

/* The server picks the test's protocol from the client's offer (OpenSSL's QUIC server needs
 * a selection callback). */
static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)s;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, alpn, sizeof(alpn), in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *server_ctx(void)
{
    SSL_CTX *c = SSL_CTX_new(OSSL_QUIC_server_method());

    if (c == NULL || !SSL_CTX_use_certificate_chain_file(c, cert_path("chain.pem")) ||
        !SSL_CTX_use_PrivateKey_file(c, cert_path("key.pem"), SSL_FILETYPE_PEM)) {
        SSL_CTX_free(c);
        return NULL;
    }
    SSL_CTX_set_alpn_select_cb(c, alpn_select, NULL);
    return c;
}

static SSL_CTX *client_ctx(void)
{
    SSL_CTX *c = SSL_CTX_new(OSSL_QUIC_client_method());

    if (c == NULL || !SSL_CTX_load_verify_locations(c, cert_path("ca.pem"), NULL)) {
        SSL_CTX_free(c);
        return NULL;
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    return c;
}

struct peerset {
    SSL *listener, *client, *server;
};

/* Runs both sides until `cond` holds, for at most 10 s. */
#define PUMP(ps, cond)                                                                         \
    do {                                                                                       \
        uint64_t deadline_ = tu_now_ms() + 10000;                                              \
        while (!(cond)) {                                                                      \
            ASSERT_TRUE(tu_now_ms() < deadline_);                                              \
            SSL_handle_events((ps)->listener);                                                 \
            SSL_handle_events((ps)->client);                                                   \
            if ((ps)->server == NULL)                                                          \
                (ps)->server =                                                                 \
                    SSL_accept_connection((ps)->listener, SSL_ACCEPT_CONNECTION_NO_BLOCK);     \
        }                                                                                      \
    } while (0)

static int handshake(struct peerset *ps)
{
    int r = 0;

    PUMP(ps, (r = SSL_connect(ps->client)) == 1 ||
                 SSL_get_error(ps->client, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    PUMP(ps, ps->server != NULL);
    PUMP(ps, (r = SSL_accept(ps->server)) == 1 ||
                 SSL_get_error(ps->server, r) != SSL_ERROR_WANT_READ);
    ASSERT_EQ(r, 1);
    ERR_clear_error();
    return 1;
}

/* The client sends `len` patterned bytes and FIN on its default stream; the server checks
 * them and echoes them back with FIN; the client checks every byte. */
static int exchange(struct peerset *ps, size_t len)
{
    unsigned char *out = malloc(len), *in = malloc(len), buf[16384];
    size_t sent = 0, got = 0, echoed = 0, back = 0, n, i;
    int r = 0, server_fin = 0, client_fin = 0;
    uint64_t deadline = tu_now_ms() + 20000;

    ASSERT_NOT_NULL(out);
    ASSERT_NOT_NULL(in);
    for (i = 0; i < len; i++)
        out[i] = (unsigned char)(i * 7 + (i >> 8));
    while (!(client_fin && back == len)) {
        ASSERT_TRUE(tu_now_ms() < deadline);
        if (sent < len) {
            r = SSL_write_ex2(ps->client, out + sent, len - sent, SSL_WRITE_FLAG_CONCLUDE, &n);
            if (r == 1)
                sent += n;
            else
                ASSERT_EQ(SSL_get_error(ps->client, r), SSL_ERROR_WANT_WRITE);
        }
        SSL_handle_events(ps->listener);
        while (!server_fin && got < len &&
               (r = SSL_read_ex(ps->server, in + got, len - got, &n)) == 1)
            got += n;
        if (!server_fin && got == len &&
            (r = SSL_read_ex(ps->server, buf, 1, &n)) == 0 &&
            SSL_get_error(ps->server, r) == SSL_ERROR_ZERO_RETURN)
            server_fin = 1;
        if (server_fin && echoed < len) {
            ASSERT_MEM_EQ(in, out, len);
            r = SSL_write_ex2(ps->server, in + echoed, len - echoed, SSL_WRITE_FLAG_CONCLUDE, &n);
            if (r == 1)
                echoed += n;
        }
        SSL_handle_events(ps->client);
        while ((r = SSL_read_ex(ps->client, buf, sizeof(buf), &n)) == 1) {
            ASSERT_LE(back + n, len);
            ASSERT_MEM_EQ(buf, out + back, n);
            back += n;
        }
        if (SSL_get_error(ps->client, r) == SSL_ERROR_ZERO_RETURN)
            client_fin = 1;
        else
            ASSERT_EQ(SSL_get_error(ps->client, r), SSL_ERROR_WANT_READ);
        ERR_clear_error();
    }
    ASSERT_EQ(got, len);
    ASSERT_EQ(back, len);
    free(out);
    free(in);
    return 1;
}

/* A QUIC client and listener whose network BIOs are BIOs of method m wrapping the two ends of
 * a datagram pair; addressed when the pair's caps say so (then each end stamps its own
 * address as the source of what it sends). */
static int quic_over(BIO_METHOD *m, int addressed)
{
    SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
    BIO *a = NULL, *b = NULL, *ls, *cs;
    BIO_ADDR *srv = tu_loopback(AF_INET, 4433), *cli = tu_loopback(AF_INET, 5544);
    struct peerset ps = {0};

    ASSERT_NOT_NULL(sctx);
    ASSERT_NOT_NULL(cctx);
    ASSERT_EQ(BIO_new_bio_dgram_pair(&a, 1 << 20, &b, 1 << 20), 1);
    if (addressed) {
        ASSERT_EQ(BIO_dgram_set_caps(a, ALL_CAPS), 1);
        ASSERT_EQ(BIO_dgram_set_caps(b, ALL_CAPS), 1);
        ASSERT_EQ(BIO_dgram_set0_local_addr(a, BIO_ADDR_dup(srv)), 1);
        ASSERT_EQ(BIO_dgram_set0_local_addr(b, BIO_ADDR_dup(cli)), 1);
    }
    ls = wrap(m, a);
    cs = wrap(m, b);
    ASSERT_NOT_NULL(ls);
    ASSERT_NOT_NULL(cs);
    ASSERT_EQ(BIO_dgram_get_effective_caps(cs), addressed ? ALL_CAPS : 0);
    ps.listener = SSL_new_listener(sctx, 0);
    ASSERT_NOT_NULL(ps.listener);
    ASSERT_EQ(SSL_set_blocking_mode(ps.listener, 0), 1); /* this thread drives both sides */
    SSL_set_bio(ps.listener, ls, ls);
    ASSERT_EQ(SSL_listen(ps.listener), 1);
    ps.client = SSL_new(cctx);
    ASSERT_NOT_NULL(ps.client);
    SSL_set_bio(ps.client, cs, cs);
    ASSERT_EQ(SSL_set_blocking_mode(ps.client, 0), 1);
    if (addressed)
        ASSERT_EQ(SSL_set1_initial_peer_addr(ps.client, srv), 1);
    ASSERT_EQ(SSL_set_tlsext_host_name(ps.client, "localhost"), 1);
    ASSERT_EQ(SSL_set_alpn_protos(ps.client, alpn, sizeof(alpn)), 0);
    ASSERT_TRUE(handshake(&ps));
    ASSERT_TRUE(exchange(&ps, 100000));
    SSL_free(ps.server);
    SSL_free(ps.client);
    SSL_free(ps.listener);
    ASSERT_EQ(calls.destroy, 2); /* both custom BIOs went with their SSL objects */
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    BIO_ADDR_free(srv);
    BIO_ADDR_free(cli);
    return 1;
}

/* QUIC over the read/write-only method: the reactor falls back to one write/read per
 * datagram, unaddressed. */
static int test_quic_over_rw(void)
{
    BIO_METHOD *m;

    if (!HAVE_OSSLQUIC) {
        tu_skip("OpenSSL's QUIC needs BIO_sendmmsg on its network BIOs");
        return 1;
    }
    m = rw_method();
    ASSERT_NOT_NULL(m);
    memset(&calls, 0, sizeof(calls));
    ASSERT_TRUE(quic_over(m, 0));
    ASSERT_EQ(calls.create, 2);
    ASSERT_GT(calls.write, 10);
    ASSERT_GT(calls.read, 10);
    ASSERT_EQ(calls.sendmmsg + calls.recvmmsg, 0);
    BIO_meth_free(m);
    return 1;
}

/* QUIC over the mmsg method: batches through the callbacks, with addresses both ways. */
static int test_quic_over_mmsg(void)
{
    BIO_METHOD *m = mmsg_method();

    ASSERT_NOT_NULL(m);
    memset(&calls, 0, sizeof(calls));
    ASSERT_TRUE(quic_over(m, 1));
    ASSERT_EQ(calls.create, 2);
    ASSERT_GT(calls.sendmmsg, 2);
    ASSERT_GT(calls.recvmmsg, 2);
    ASSERT_GT(calls.sent_addressed, 10);
    ASSERT_GT(calls.recv_addressed, 10);
    ASSERT_EQ(calls.write + calls.read, 0);
    BIO_meth_free(m);
    return 1;
}
#endif

/* Runs last: the index space ends at BIO_TYPE_MASK, then -1. */
static int test_index_exhaustion(void)
{
    int i, last = 0, r = 0;

    for (i = 0; i < 300; i++) {
        if ((r = BIO_get_new_index()) == -1)
            break;
        last = r;
    }
    ASSERT_EQ(r, -1);
    ASSERT_EQ(last, BIO_TYPE_MASK);
    ASSERT_EQ(BIO_get_new_index(), -1);
    ERR_clear_error();
    return 1;
}

int main(int argc, char **argv)
{
#if WITH_QUIC
    const char *dir = getenv("OSSLQUIC_CERTS");

    snprintf(certs, sizeof(certs), "%s", dir != NULL ? dir : "build/certs");
#endif
    tu_init(argc, argv);
    RUN(test_method_table);
    RUN(test_rw_dispatch);
    RUN(test_bare_method);
    RUN(test_null_and_foreign_args);
    RUN(test_mmsg_batches);
#if WITH_QUIC
    RUN(test_quic_over_rw);
    RUN(test_quic_over_mmsg);
#endif
    RUN(test_index_exhaustion);
    return tu_finish();
}
