/* osslquic: <openssl/rand.h>. RAND_bytes and RAND_priv_bytes (in <osslquic.h>) fill a
 * buffer from the operating system's generator. Hand-written. */
#ifndef OPENSSL_RAND_H
#define OPENSSL_RAND_H

#include <stdlib.h>
#include <openssl/e_os2.h>
#include <openssl/types.h>

#endif
