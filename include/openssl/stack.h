/* osslquic: <openssl/stack.h>. The opaque stack type, so that prototypes naming a
 * STACK_OF(...) compile. osslquic exports no OPENSSL_sk_* functions. Hand-written. */
#ifndef OPENSSL_STACK_H
#define OPENSSL_STACK_H

typedef struct stack_st OPENSSL_STACK;

#endif
