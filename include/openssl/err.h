/* osslquic shim: OpenSSL's <openssl/err.h> inline helpers over osslquic.h. Hand-written. */
#ifndef OSSLQUIC_OPENSSL_ERR_H
#define OSSLQUIC_OPENSSL_ERR_H
#ifndef OPENSSL_ERR_H
#define OPENSSL_ERR_H
#endif
/* As OpenSSL's err.h: <stdio.h>, <stdlib.h>, <errno.h> and the BIO header. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/e_os2.h>
#include <openssl/bio.h>
#include <osslquic.h>

#define ERR_SYSTEM_MASK ((unsigned int)0x7FFFFFFF)
#define ERR_LIB_OFFSET 23L
#define ERR_LIB_MASK 0xFF
#define ERR_REASON_MASK 0X7FFFFF
#define ERR_RFLAGS_MASK 0x1F

#define ERR_SYSTEM_ERROR(errcode) (((errcode) & ERR_SYSTEM_FLAG) != 0)
#define ERR_PACK(lib, func, reason) \
    ((((unsigned long)(lib) & ERR_LIB_MASK) << ERR_LIB_OFFSET) | (((unsigned long)(reason) & ERR_REASON_MASK)))

static inline int ERR_GET_LIB(unsigned long errcode)
{
    if (ERR_SYSTEM_ERROR(errcode))
        return ERR_LIB_SYS;
    return (int)((errcode >> ERR_LIB_OFFSET) & ERR_LIB_MASK);
}

static inline int ERR_GET_RFLAGS(unsigned long errcode)
{
    if (ERR_SYSTEM_ERROR(errcode))
        return 0;
    return (int)(errcode & ((unsigned long)ERR_RFLAGS_MASK << ERR_RFLAGS_OFFSET));
}

static inline int ERR_GET_REASON(unsigned long errcode)
{
    if (ERR_SYSTEM_ERROR(errcode))
        return (int)(errcode & ERR_SYSTEM_MASK);
    return (int)(errcode & ERR_REASON_MASK);
}

static inline int ERR_FATAL_ERROR(unsigned long errcode)
{
    return (ERR_GET_RFLAGS(errcode) & ERR_RFLAG_FATAL) != 0;
}

#define ERR_GET_FUNC(e) 0
#define ERR_print_errors(bp) ERR_print_errors_fp(stderr)

#endif
