/* osslquic: <openssl/core_names.h>. The parameter names a session-ticket key callback gives
 * EVP_MAC_CTX_set_params. Hand-written. */
#ifndef OPENSSL_CORE_NAMES_H
#define OPENSSL_CORE_NAMES_H

#define OSSL_ALG_PARAM_DIGEST "digest"
#define OSSL_MAC_PARAM_KEY "key"
#define OSSL_MAC_PARAM_DIGEST OSSL_ALG_PARAM_DIGEST

#endif
