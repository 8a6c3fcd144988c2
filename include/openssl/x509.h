/* osslquic shim: OpenSSL's <openssl/x509.h>. osslquic has no X509 objects; what a verify
 * callback uses (X509_STORE_CTX_get_error, ..., X509_verify_cert_error_string) comes from
 * the generated header. Hand-written. */
#ifndef OSSLQUIC_OPENSSL_X509_H
#define OSSLQUIC_OPENSSL_X509_H
#include <openssl/x509_vfy.h>

#endif
