/* osslquic: <openssl/macros.h>. API-level and deprecation markers: osslquic deprecates
 * nothing, so the markers expand to nothing. Hand-written. */
#ifndef OPENSSL_MACROS_H
#define OPENSSL_MACROS_H

#include <openssl/opensslv.h>

#ifndef OPENSSL_API_COMPAT
#define OPENSSL_API_COMPAT 30500
#endif
#ifndef OPENSSL_API_LEVEL
#define OPENSSL_API_LEVEL 30500
#endif

#define OSSL_DEPRECATED(since)
#define OSSL_DEPRECATED_FOR(since, message)
#define OSSL_DEPRECATEDIN_3_0
#define OSSL_DEPRECATEDIN_3_0_FOR(msg)
#define OSSL_DEPRECATEDIN_1_1_1
#define OSSL_DEPRECATEDIN_1_1_0
#define OSSL_DEPRECATEDIN_1_0_2
#define OPENSSL_UNUSED __attribute__((unused))
#define OPENSSL_FUNC __func__

#endif
