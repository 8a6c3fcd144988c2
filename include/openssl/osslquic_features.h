/* osslquic: its version and feature macros. Included by <openssl/opensslv.h> (so by every
 * OpenSSL header), or directly. Hand-written.
 *
 * OSSLQUIC_VERSION_NUMBER is 0xMMNNPP00L (major, minor, patch of osslquic itself); a program
 * can tell osslquic from OpenSSL with #ifdef OSSLQUIC_VERSION_NUMBER.
 *
 * OSSLQUIC_HAVE_<FUNCTION> (the function's name in capitals) is defined, as 1, for each
 * function that osslquic added after its first release of a subject and that a program may
 * want to test for at compile time, e.g. OSSLQUIC_HAVE_SSL_GET_PEER_ADDR for
 * SSL_get_peer_addr. A macro is added here in the same change that exports its function;
 * no macro is ever defined for a function the library does not export. */
#ifndef OSSLQUIC_FEATURES_H
#define OSSLQUIC_FEATURES_H

#define OSSLQUIC_VERSION_MAJOR 0
#define OSSLQUIC_VERSION_MINOR 1
#define OSSLQUIC_VERSION_PATCH 0
#define OSSLQUIC_VERSION_NUMBER 0x00010000L
#define OSSLQUIC_VERSION_TEXT "osslquic 0.1.0"

/* Functions of issue 12 (headers as OpenSSL ships them). */
#define OSSLQUIC_HAVE_BIO_NEW_FILE 1
#define OSSLQUIC_HAVE_SSL_CTX_SET_CIPHERSUITES 1
#define OSSLQUIC_HAVE_SSL_SET_CIPHERSUITES 1

#endif
