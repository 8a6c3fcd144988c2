/* osslquic: <openssl/evp.h>. The key, digest and cipher types that the SSL API names
 * (EVP_PKEY, EVP_MD, EVP_CIPHER, ...) are opaque, declared in <openssl/types.h>. osslquic's
 * EVP functions (in <osslquic.h>) are those a session-ticket key callback calls
 * (SSL_CTX_set_tlsext_ticket_key_evp_cb): EVP_aes_128_cbc, EVP_aes_256_cbc,
 * EVP_EncryptInit_ex(2), EVP_DecryptInit_ex(2), EVP_CIPHER_CTX_get_iv_length and
 * EVP_MAC_CTX_set_params, on the contexts that callback is given. Hand-written. */
#ifndef OPENSSL_EVP_H
#define OPENSSL_EVP_H

#include <stdio.h>
#include <openssl/bio.h>
#include <openssl/types.h>
#include <openssl/params.h>

#define EVP_CIPHER_CTX_iv_length EVP_CIPHER_CTX_get_iv_length

#endif
