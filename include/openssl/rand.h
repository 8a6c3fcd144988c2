/* osslquic: <openssl/rand.h>. OpenSSL's includes; osslquic exports no RAND_* functions.
 * Hand-written. */
#ifndef OPENSSL_RAND_H
#define OPENSSL_RAND_H

#include <stdlib.h>
#include <openssl/e_os2.h>
#include <openssl/types.h>

#endif
