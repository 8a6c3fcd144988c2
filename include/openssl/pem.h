/* osslquic shim: OpenSSL's <openssl/pem.h>: PEM_read_bio_X509 and PEM_write_bio_X509 come
 * from the generated header. Hand-written. */
#ifndef OSSLQUIC_OPENSSL_PEM_H
#define OSSLQUIC_OPENSSL_PEM_H
#include <openssl/bio.h>
#include <openssl/x509.h>

/* The passphrase callback type (unused: certificates are not encrypted). */
typedef int pem_password_cb(char *buf, int size, int rwflag, void *userdata);

#endif
