/* osslquic: <openssl/e_os2.h>: the platform macros and, as OpenSSL's, <stdint.h> and
 * <inttypes.h>. Hand-written. */
#ifndef OPENSSL_E_OS2_H
#define OPENSSL_E_OS2_H
#define HEADER_E_OS2_H

#include <openssl/macros.h>
#include <openssl/opensslconf.h>

#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OPENSSL_SYS_UNIX
#if defined(__linux__) && !defined(OPENSSL_SYS_LINUX)
#define OPENSSL_SYS_LINUX
#endif

#define OPENSSL_EXPORT extern
#define OPENSSL_EXTERN extern
#define ossl_inline inline
#define ossl_noreturn __attribute__((noreturn))
#define ossl_unused __attribute__((unused))
#define ossl_ssize_t ssize_t
#define OSSL_SSIZE_MAX SSIZE_MAX

#endif
