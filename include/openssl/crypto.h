/* osslquic: <openssl/crypto.h>: OpenSSL's memory macros over osslquic.h, and the includes
 * OpenSSL's crypto.h brings (<stdlib.h>, <time.h>, <stdio.h>, <pthread.h>, the version and
 * type headers). Hand-written; the functions come from the generated header. */
#ifndef OSSLQUIC_OPENSSL_CRYPTO_H
#define OSSLQUIC_OPENSSL_CRYPTO_H
#ifndef OPENSSL_CRYPTO_H
#define OPENSSL_CRYPTO_H
#endif
#ifndef HEADER_CRYPTO_H
#define HEADER_CRYPTO_H
#endif

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <pthread.h>

#include <openssl/e_os2.h>
#include <openssl/opensslv.h>
#include <openssl/safestack.h>
#include <openssl/types.h>
#include <osslquic.h>

#define OPENSSL_FILE __FILE__
#define OPENSSL_LINE __LINE__
#define OPENSSL_malloc(num) CRYPTO_malloc(num, OPENSSL_FILE, OPENSSL_LINE)
#define OPENSSL_zalloc(num) CRYPTO_zalloc(num, OPENSSL_FILE, OPENSSL_LINE)
#define OPENSSL_realloc(addr, num) CRYPTO_realloc(addr, num, OPENSSL_FILE, OPENSSL_LINE)
#define OPENSSL_free(addr) CRYPTO_free(addr, OPENSSL_FILE, OPENSSL_LINE)
#define OPENSSL_strdup(str) CRYPTO_strdup(str, OPENSSL_FILE, OPENSSL_LINE)

#endif
