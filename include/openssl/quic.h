/* osslquic: <openssl/quic.h>. The QUIC methods, SSL_POLL_*, OSSL_QUIC_ERR_* and the
 * listener/stream API come from the generated header; as OpenSSL's, this header includes
 * <openssl/ssl.h>. Hand-written. */
#ifndef OPENSSL_QUIC_H
#define OPENSSL_QUIC_H

#include <openssl/ssl.h>

#endif
