/* osslquic: <openssl/configuration.h>. What this "build" of the OpenSSL API has and lacks,
 * as OPENSSL_NO_* macros that programs test. Hand-written. */
#ifndef OPENSSL_CONFIGURATION_H
#define OPENSSL_CONFIGURATION_H

#define OPENSSL_CONFIGURED_API 30500
#define OPENSSL_THREADS
#define OPENSSL_RAND_SEED_OS

/* Not provided by osslquic (rustls has no such protocol or feature). QUIC is provided:
 * OPENSSL_NO_QUIC is not defined. */
#define OPENSSL_NO_COMP
#define OPENSSL_NO_COMP_ALG
#define OPENSSL_NO_CT
#define OPENSSL_NO_DTLS
#define OPENSSL_NO_DTLS1
#define OPENSSL_NO_DTLS1_METHOD
#define OPENSSL_NO_DTLS1_2
#define OPENSSL_NO_DTLS1_2_METHOD
#define OPENSSL_NO_ENGINE
#define OPENSSL_NO_KTLS
#define OPENSSL_NO_SCTP
#define OPENSSL_NO_SRP
#define OPENSSL_NO_SRTP
#define OPENSSL_NO_SSL3
#define OPENSSL_NO_SSL3_METHOD
#define OPENSSL_NO_TLS1
#define OPENSSL_NO_TLS1_METHOD
#define OPENSSL_NO_TLS1_1
#define OPENSSL_NO_TLS1_1_METHOD
#define OPENSSL_NO_WEAK_SSL_CIPHERS
#define OPENSSL_NO_TFO

#define SIXTY_FOUR_BIT_LONG

#endif
