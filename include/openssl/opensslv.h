/* osslquic: <openssl/opensslv.h>. The OpenSSL release whose API osslquic provides (3.5), so
 * that a program testing OPENSSL_VERSION_NUMBER >= 0x30500000L takes its 3.5 path, and
 * osslquic's own version and feature macros (see <openssl/osslquic_features.h>).
 * Hand-written. */
#ifndef OPENSSL_OPENSSLV_H
#define OPENSSL_OPENSSLV_H

#define OPENSSL_VERSION_MAJOR 3
#define OPENSSL_VERSION_MINOR 5
#define OPENSSL_VERSION_PATCH 0
#define OPENSSL_VERSION_PRE_RELEASE ""
#define OPENSSL_VERSION_BUILD_METADATA "+osslquic"
#define OPENSSL_SHLIB_VERSION 3
#define OPENSSL_VERSION_STR "3.5.0"
#define OPENSSL_FULL_VERSION_STR "3.5.0+osslquic"
#define OPENSSL_RELEASE_DATE "osslquic"
#define OPENSSL_VERSION_TEXT "OpenSSL 3.5.0+osslquic (API of OpenSSL 3.5 on rustls and quinn-proto)"

/* 0xMNN00PP0L as in OpenSSL 3 (major, minor, patch); a literal so that #if can test it. */
#define OPENSSL_VERSION_NUMBER 0x30500000L
#define OPENSSL_VERSION_PREREQ(maj, min) \
    ((OPENSSL_VERSION_MAJOR << 16) + OPENSSL_VERSION_MINOR >= ((maj) << 16) + (min))

#include <openssl/osslquic_features.h>

#endif
