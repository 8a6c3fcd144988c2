/* osslquic: <openssl/core.h>. OSSL_PARAM (struct ossl_param_st, OpenSSL's layout) and its
 * data type constants come from the generated header. Hand-written. */
#ifndef OPENSSL_CORE_H
#define OPENSSL_CORE_H

#include <stddef.h>
#include <openssl/types.h>

#endif
