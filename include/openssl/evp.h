/* osslquic: <openssl/evp.h>. The key, digest and cipher types that the SSL API names
 * (EVP_PKEY, EVP_MD, EVP_CIPHER, ...) are opaque, declared in <openssl/types.h>; osslquic
 * has no EVP functions of its own. Hand-written. */
#ifndef OPENSSL_EVP_H
#define OPENSSL_EVP_H

#include <stdio.h>
#include <openssl/bio.h>
#include <openssl/types.h>

#endif
