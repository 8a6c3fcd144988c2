/* osslquic: <openssl/safestack.h>. STACK_OF(TYPE) names an opaque typed stack, as in
 * OpenSSL; the typed sk_TYPE_* helpers are not provided. Hand-written. */
#ifndef OPENSSL_SAFESTACK_H
#define OPENSSL_SAFESTACK_H

#include <openssl/stack.h>

#define STACK_OF(type) struct stack_st_##type

#endif
