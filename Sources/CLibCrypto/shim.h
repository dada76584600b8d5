// libcrypto (OpenSSL 3, Debian's libssl-dev): SHA-256 for the response cache's keys.
#include <openssl/evp.h>
