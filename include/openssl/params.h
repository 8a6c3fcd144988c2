/* osslquic: <openssl/params.h>. OSSL_PARAM_construct_octet_string,
 * OSSL_PARAM_construct_utf8_string and OSSL_PARAM_construct_end are in <osslquic.h>.
 * Hand-written. */
#ifndef OPENSSL_PARAMS_H
#define OPENSSL_PARAMS_H

#include <openssl/core.h>

#define OSSL_PARAM_UNMODIFIED ((size_t)-1)

#endif
