/* osslquic: <openssl/asn1.h>. The ASN1_* types are opaque (declared in <openssl/types.h>);
 * osslquic provides no ASN.1 functions. Hand-written. */
#ifndef OPENSSL_ASN1_H
#define OPENSSL_ASN1_H

#include <time.h>
#include <openssl/e_os2.h>
#include <openssl/bio.h>
#include <openssl/safestack.h>
#include <openssl/types.h>

#endif
