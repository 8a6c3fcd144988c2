/* osslquic: <openssl/stack.h>. The opaque stack type, so that prototypes naming a
 * STACK_OF(...) compile; OPENSSL_sk_num/_value/_free/_pop_free come from the generated header
 * (peer certificate chains, CA name lists). Hand-written. */
#ifndef OPENSSL_STACK_H
#define OPENSSL_STACK_H

typedef struct stack_st OPENSSL_STACK;

#endif
