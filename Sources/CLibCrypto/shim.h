// libcrypto (OpenSSL 3, Debian's libssl-dev): SHA-256 for the response cache's keys and the
// client tokens' digests. The low-level SHA256_* calls (deprecated in OpenSSL 3 in favour of EVP,
// still built and still using the CPU's SHA instructions) hash on the stack: an EVP digest
// allocates and frees its context on every key. Suppressing the deprecation keeps Swift quiet.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
