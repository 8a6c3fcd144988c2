/* osslquic: <openssl/opensslconf.h>, as OpenSSL's: the configuration and the API macros.
 * Hand-written. */
#ifndef OPENSSL_OPENSSLCONF_H
#define OPENSSL_OPENSSLCONF_H

#include <openssl/configuration.h>
#include <openssl/macros.h>

#endif
