/* osslquic shim: OpenSSL's <openssl/x509.h>. What a verify callback uses
 * (X509_STORE_CTX_get_error, ..., X509_verify_cert_error_string) comes from the generated
 * header; the includes are OpenSSL's (<string.h> via them, the buffer, EVP and ASN.1 types).
 * Hand-written. */
#ifndef OSSLQUIC_OPENSSL_X509_H
#define OSSLQUIC_OPENSSL_X509_H
#ifndef OPENSSL_X509_H
#define OPENSSL_X509_H
#endif

#include <string.h>
#include <openssl/e_os2.h>
#include <openssl/asn1.h>
#include <openssl/buffer.h>
#include <openssl/evp.h>
#include <openssl/safestack.h>
#include <openssl/types.h>
#include <openssl/x509_vfy.h>

#endif
