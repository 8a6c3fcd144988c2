/*
 * Entry points that rustc's ThreadSanitizer instrumentation (a newer LLVM) calls but gcc 12's
 * libtsan does not define. The C library calls they make go through libtsan's interceptors,
 * which check the ranges as the real entry points would.
 */
#include <string.h>

void *__tsan_memcpy(void *d, const void *s, size_t n);
void *__tsan_memmove(void *d, const void *s, size_t n);
void *__tsan_memset(void *d, int c, size_t n);

void *__tsan_memcpy(void *d, const void *s, size_t n)
{
    return memcpy(d, s, n);
}

void *__tsan_memmove(void *d, const void *s, size_t n)
{
    return memmove(d, s, n);
}

void *__tsan_memset(void *d, int c, size_t n)
{
    return memset(d, c, n);
}
