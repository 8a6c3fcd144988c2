/* osslquic: <openssl/tls1.h>. TLS1_*_VERSION, TLSEXT_* and the SSL_TLSEXT_ERR_* values come
 * from the generated header; the function-like macros are in <openssl/ssl.h>. Hand-written. */
#ifndef OPENSSL_TLS1_H
#define OPENSSL_TLS1_H

#include <openssl/e_os2.h>
#include <openssl/x509.h>
#include <osslquic.h>

#endif
