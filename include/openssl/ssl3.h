/* osslquic: <openssl/ssl3.h>. SSL3_VERSION and the record-size limits come from the
 * generated header. Hand-written. */
#ifndef OPENSSL_SSL3_H
#define OPENSSL_SSL3_H

#include <openssl/e_os2.h>
#include <osslquic.h>

#endif
