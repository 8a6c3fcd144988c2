/* osslquic shim: <openssl/ssl.h>. The SSL object model arrives with the QUIC and TLS issues;
 * for now this pulls in the BIO, ERR and CRYPTO parts. Hand-written. */
#ifndef OSSLQUIC_OPENSSL_SSL_H
#define OSSLQUIC_OPENSSL_SSL_H
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#endif
