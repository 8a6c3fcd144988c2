/* osslquic shim: OpenSSL's <openssl/crypto.h> memory macros over osslquic.h. Hand-written. */
#ifndef OSSLQUIC_OPENSSL_CRYPTO_H
#define OSSLQUIC_OPENSSL_CRYPTO_H
#include <osslquic.h>

#define OPENSSL_FILE __FILE__
#define OPENSSL_LINE __LINE__
#define OPENSSL_malloc(num) CRYPTO_malloc(num, OPENSSL_FILE, OPENSSL_LINE)
#define OPENSSL_zalloc(num) CRYPTO_zalloc(num, OPENSSL_FILE, OPENSSL_LINE)
#define OPENSSL_free(addr) CRYPTO_free(addr, OPENSSL_FILE, OPENSSL_LINE)
#define OPENSSL_strdup(str) CRYPTO_strdup(str, OPENSSL_FILE, OPENSSL_LINE)

#endif
