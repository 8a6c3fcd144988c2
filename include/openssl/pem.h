/* osslquic: <openssl/pem.h>. OpenSSL's includes; any PEM_* functions osslquic exports come
 * from the generated header. Hand-written. */
#ifndef OPENSSL_PEM_H
#define OPENSSL_PEM_H

#include <openssl/e_os2.h>
#include <openssl/bio.h>
#include <openssl/safestack.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#endif
