/* osslquic: <openssl/pem.h>. OpenSSL's includes; the PEM_* functions osslquic exports
 * (certificates, sessions) come from the generated header. Hand-written. */
#ifndef OPENSSL_PEM_H
#define OPENSSL_PEM_H

#include <openssl/e_os2.h>
#include <openssl/bio.h>
#include <openssl/safestack.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* The passphrase callback type (unused: certificates and keys are not encrypted here). */
typedef int pem_password_cb(char *buf, int size, int rwflag, void *userdata);

#endif
