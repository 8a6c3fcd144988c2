/* osslquic shim: OpenSSL's <openssl/x509_vfy.h>: X509_STORE_CTX and the X509_V_* codes come
 * from the generated header. Hand-written. */
#ifndef OSSLQUIC_OPENSSL_X509_VFY_H
#define OSSLQUIC_OPENSSL_X509_VFY_H
#ifndef OPENSSL_X509_VFY_H
#define OPENSSL_X509_VFY_H
#endif

#include <time.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/safestack.h>
#include <openssl/types.h>

#endif
