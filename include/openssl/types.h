/* osslquic: <openssl/types.h>. The SSL, SSL_CTX, BIO, ... types come from the generated
 * <osslquic.h>; the opaque types below are those of OpenSSL's types.h that the SSL API names
 * and osslquic does not (yet) define, with OpenSSL's structure tags, so that prototypes naming
 * them compile. A repeated typedef of the same type is valid C11, so osslquic.h may define
 * any of them later. Hand-written. */
#ifndef OPENSSL_TYPES_H
#define OPENSSL_TYPES_H

#include <limits.h>
#include <openssl/e_os2.h>
#include <openssl/safestack.h>
#include <osslquic.h>

typedef struct asn1_string_st ASN1_INTEGER;
typedef struct asn1_string_st ASN1_OCTET_STRING;
typedef struct asn1_string_st ASN1_STRING;
typedef struct asn1_string_st ASN1_TIME;
typedef struct asn1_object_st ASN1_OBJECT;
typedef struct bignum_st BIGNUM;
typedef struct bignum_ctx BN_CTX;
typedef struct buf_mem_st BUF_MEM;
typedef struct evp_cipher_st EVP_CIPHER;
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;
typedef struct ossl_lib_ctx_st OSSL_LIB_CTX;
typedef struct ossl_param_st OSSL_PARAM;
typedef struct ssl_session_st SSL_SESSION;
typedef struct x509_st X509;
typedef struct X509_crl_st X509_CRL;
typedef struct X509_name_st X509_NAME;
typedef struct x509_store_st X509_STORE;
typedef struct x509_store_ctx_st X509_STORE_CTX;
typedef struct X509_VERIFY_PARAM_st X509_VERIFY_PARAM;
typedef struct engine_st ENGINE;
typedef struct ui_st UI;
typedef struct ui_method_st UI_METHOD;

#endif
