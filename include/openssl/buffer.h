/* osslquic: <openssl/buffer.h>. BUF_MEM is opaque here: osslquic provides no BUF_MEM
 * functions (see README, BIO_s_mem). Hand-written. */
#ifndef OPENSSL_BUFFER_H
#define OPENSSL_BUFFER_H

#include <stddef.h>
#include <openssl/types.h>

#endif
