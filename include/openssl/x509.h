/* osslquic shim: OpenSSL's <openssl/x509.h>. The X509, X509_NAME, ASN1_INTEGER and
 * X509_STORE_CTX functions and the XN_FLAG_* / ASN1_STRFLGS_* values come from the generated
 * header; here are OpenSSL's includes (<string.h> via them, the buffer, EVP and ASN.1 types)
 * and the typed stack accessors, which OpenSSL also provides as macros over the OPENSSL_sk_*
 * functions. Hand-written. */
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

#ifndef STACK_OF
#define STACK_OF(type) struct stack_st_##type
#endif

/* STACK_OF(X509): a connection's peer chain (SSL_get_peer_cert_chain). */
#define sk_X509_num(sk) OPENSSL_sk_num((const OPENSSL_STACK *)(sk))
#define sk_X509_value(sk, i) ((X509 *)OPENSSL_sk_value((const OPENSSL_STACK *)(sk), (i)))

/* STACK_OF(X509_NAME): CA name lists (SSL_load_client_CA_file). */
#define sk_X509_NAME_num(sk) OPENSSL_sk_num((const OPENSSL_STACK *)(sk))
#define sk_X509_NAME_value(sk, i) \
    ((X509_NAME *)OPENSSL_sk_value((const OPENSSL_STACK *)(sk), (i)))
#define sk_X509_NAME_free(sk) OPENSSL_sk_free((OPENSSL_STACK *)(sk))
#define sk_X509_NAME_pop_free(sk, freefunc) \
    OPENSSL_sk_pop_free((OPENSSL_STACK *)(sk), (OPENSSL_sk_freefunc)(freefunc))

#endif
