/* osslquic: its version and feature macros. Included by <openssl/opensslv.h> (so by every
 * OpenSSL header), or directly. Hand-written.
 *
 * OSSLQUIC_VERSION_NUMBER is 0xMMNNPP00L (major, minor, patch of osslquic itself); a program
 * can tell osslquic from OpenSSL with #ifdef OSSLQUIC_VERSION_NUMBER.
 *
 * OSSLQUIC_HAVE_<NAME> (a function's or constant's name in capitals) is defined, as 1, for each
 * function or constant that osslquic added after its first release of a subject and that a program may
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

/* The API OpenSSL added after 3.5 (issue 12): 4.0's peer address, role-less method and
 * peel-off, 3.6's stream-direction flags of SSL_accept_stream. */
#define OSSLQUIC_HAVE_SSL_GET_PEER_ADDR 1
#define OSSLQUIC_HAVE_OSSL_QUIC_METHOD 1
#define OSSLQUIC_HAVE_SSL_LISTEN_EX 1
#define OSSLQUIC_HAVE_SSL_ACCEPT_STREAM_UNI 1
#define OSSLQUIC_HAVE_SSL_ACCEPT_STREAM_BIDI 1

/* Sessions (issue 12): SSL_SESSION objects; the serialised form carries no resumption
 * secrets (rustls cannot rebuild a client session from bytes), see the README. */
#define OSSLQUIC_HAVE_SSL_GET1_SESSION 1
#define OSSLQUIC_HAVE_SSL_SET_SESSION 1
#define OSSLQUIC_HAVE_SSL_CTX_SESS_SET_NEW_CB 1
#define OSSLQUIC_HAVE_PEM_READ_BIO_SSL_SESSION 1
#define OSSLQUIC_HAVE_PEM_WRITE_BIO_SSL_SESSION 1

/* Bounds on what peers can make a server hold (issue 14). */
#define OSSLQUIC_HAVE_OSSLQUIC_SET_MAX_UNVALIDATED_HANDSHAKES 1
#define OSSLQUIC_HAVE_OSSLQUIC_GET_MAX_UNVALIDATED_HANDSHAKES 1
#define OSSLQUIC_HAVE_OSSLQUIC_CTX_SET_HANDSHAKE_TIMEOUT 1
#define OSSLQUIC_HAVE_OSSLQUIC_CTX_GET_HANDSHAKE_TIMEOUT 1

/* A fleet behind load balancers (issue 15): the PROXY protocol in front of TLS servers,
 * QUIC-LB connection IDs. */
#define OSSLQUIC_HAVE_OSSLQUIC_CTX_SET_PROXY_PROTOCOL 1
#define OSSLQUIC_HAVE_OSSLQUIC_SET_PROXY_PROTOCOL 1
#define OSSLQUIC_HAVE_OSSLQUIC_GET_PROXY_VERSION 1
#define OSSLQUIC_HAVE_OSSLQUIC_GET_PROXY_TLV 1
#define OSSLQUIC_HAVE_OSSLQUIC_SET_QUIC_LB 1
#define OSSLQUIC_HAVE_OSSLQUIC_CTX_SET_FLEET_SECRET 1
/* Shared session-ticket keys: the key callback and the libcrypto calls it makes. */
#define OSSLQUIC_HAVE_SSL_CTX_SET_TLSEXT_TICKET_KEY_EVP_CB 1
#define OSSLQUIC_HAVE_RAND_BYTES 1
#define OSSLQUIC_HAVE_RAND_PRIV_BYTES 1
#define OSSLQUIC_HAVE_EVP_AES_128_CBC 1
#define OSSLQUIC_HAVE_EVP_AES_256_CBC 1
#define OSSLQUIC_HAVE_EVP_ENCRYPTINIT_EX 1
#define OSSLQUIC_HAVE_EVP_DECRYPTINIT_EX 1
#define OSSLQUIC_HAVE_EVP_ENCRYPTINIT_EX2 1
#define OSSLQUIC_HAVE_EVP_DECRYPTINIT_EX2 1
#define OSSLQUIC_HAVE_EVP_CIPHER_CTX_GET_IV_LENGTH 1
#define OSSLQUIC_HAVE_EVP_MAC_CTX_SET_PARAMS 1
#define OSSLQUIC_HAVE_OSSL_PARAM_CONSTRUCT_OCTET_STRING 1
#define OSSLQUIC_HAVE_OSSL_PARAM_CONSTRUCT_UTF8_STRING 1
#define OSSLQUIC_HAVE_OSSL_PARAM_CONSTRUCT_END 1

/* What OpenSSL's QUIC lacks (issue 16): key updates on demand. */
#define OSSLQUIC_HAVE_SSL_KEY_UPDATE 1
#define OSSLQUIC_HAVE_SSL_GET_KEY_UPDATE_TYPE 1
/* Early data: TLS 1.3 over TCP and QUIC 0-RTT (issue 16). */
#define OSSLQUIC_HAVE_SSL_WRITE_EARLY_DATA 1
#define OSSLQUIC_HAVE_SSL_READ_EARLY_DATA 1
#define OSSLQUIC_HAVE_SSL_GET_EARLY_DATA_STATUS 1
#define OSSLQUIC_HAVE_SSL_CTX_SET_MAX_EARLY_DATA 1
#define OSSLQUIC_HAVE_SSL_CTX_GET_MAX_EARLY_DATA 1
#define OSSLQUIC_HAVE_SSL_SET_MAX_EARLY_DATA 1
#define OSSLQUIC_HAVE_SSL_GET_MAX_EARLY_DATA 1
#define OSSLQUIC_HAVE_SSL_CTX_SET_RECV_MAX_EARLY_DATA 1
#define OSSLQUIC_HAVE_SSL_CTX_GET_RECV_MAX_EARLY_DATA 1
#define OSSLQUIC_HAVE_SSL_SET_RECV_MAX_EARLY_DATA 1
#define OSSLQUIC_HAVE_SSL_GET_RECV_MAX_EARLY_DATA 1
#define OSSLQUIC_HAVE_SSL_SESSION_SET_MAX_EARLY_DATA 1
/* Congestion control choice, a connection's measurements, qlog under QLOGDIR. */
#define OSSLQUIC_HAVE_OSSLQUIC_CTX_SET_CONGESTION_CONTROL 1
#define OSSLQUIC_HAVE_OSSLQUIC_CTX_GET_CONGESTION_CONTROL 1
#define OSSLQUIC_HAVE_OSSLQUIC_GET_CONN_STATS 1
/* RFC 9221 datagrams. */
#define OSSLQUIC_HAVE_OSSLQUIC_CTX_SET_DATAGRAMS 1
#define OSSLQUIC_HAVE_OSSLQUIC_WRITE_DATAGRAM 1
#define OSSLQUIC_HAVE_OSSLQUIC_READ_DATAGRAM 1
#define OSSLQUIC_HAVE_OSSLQUIC_GET_MAX_DATAGRAM_SIZE 1
/* Key-exchange groups (issue 16): X25519MLKEM768 first by default (aws-lc-rs), chosen with
 * OpenSSL's lists; SSL_CTX_set1_groups_list, SSL_set1_groups_list, SSL_CTX_set1_groups,
 * SSL_set1_groups and SSL_get_negotiated_group are macros over SSL_CTX_ctrl/SSL_ctrl. */
#define OSSLQUIC_HAVE_SSL_CTX_SET1_GROUPS_LIST 1
#define OSSLQUIC_HAVE_SSL_SET1_GROUPS_LIST 1
#define OSSLQUIC_HAVE_SSL_CTX_SET1_GROUPS 1
#define OSSLQUIC_HAVE_SSL_SET1_GROUPS 1
#define OSSLQUIC_HAVE_SSL_GET_NEGOTIATED_GROUP 1
#define OSSLQUIC_HAVE_SSL_GROUP_TO_NAME 1
#define OSSLQUIC_HAVE_SSL_GET0_GROUP_NAME 1
/* ECN on datagram socket BIOs; with them came the ecn_* fields at the end of
 * OSSLQUIC_BIO_STATS and OSSLQUIC_CONN_STATS. */
#define OSSLQUIC_HAVE_OSSLQUIC_BIO_DGRAM_SET_ECN 1
#define OSSLQUIC_HAVE_OSSLQUIC_BIO_DGRAM_GET_ECN 1
/* The handshake's progress as OpenSSL reports it (SSL_in_connect_init and
 * SSL_in_accept_init are macros over SSL_in_init and SSL_is_server). */
#define OSSLQUIC_HAVE_SSL_IN_INIT 1
#define OSSLQUIC_HAVE_SSL_IN_BEFORE 1
#define OSSLQUIC_HAVE_SSL_IS_INIT_FINISHED 1

#endif
