// Text scanning for the heuristic scorer: a fingerprint filter over many terms at once (in the
// manner of Hyperscan's "Teddy") and a line scan. See CSidecarKernels.h.
#include "CSidecarKernels.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define SIDECAR_AVX2 __attribute__((target("avx2")))
#endif

// The fingerprint of one position: the buckets whose terms may start there, judged by the
// low and high nibbles of the four bytes from there on.
static inline uint8_t fingerprint_at(const uint8_t *masks, const uint8_t *bytes) {
    uint8_t buckets = 0xFF;
    for (size_t offset = 0; offset < SIDECAR_FINGERPRINT_BYTES; offset++) {
        const uint8_t *low = masks + 32 * offset;
        buckets &= low[bytes[offset] & 15] & low[16 + (bytes[offset] >> 4)];
    }
    return buckets;
}

// 64 positions from `bytes`, which must hold 64 + 3 readable bytes.
static uint64_t fingerprint_block_portable(const uint8_t *masks, const uint8_t *bytes) {
    uint64_t positions = 0;
    for (size_t index = 0; index < 64; index++) {
        if (fingerprint_at(masks, bytes + index) != 0) positions |= (uint64_t)1 << index;
    }
    return positions;
}

#if defined(__x86_64__)
SIDECAR_AVX2
static uint64_t fingerprint_block_avx2(const uint8_t *masks, const uint8_t *bytes) {
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    __m256i low[SIDECAR_FINGERPRINT_BYTES];
    __m256i high[SIDECAR_FINGERPRINT_BYTES];
    for (size_t offset = 0; offset < SIDECAR_FINGERPRINT_BYTES; offset++) {
        low[offset] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(masks + 32 * offset)));
        high[offset] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(masks + 32 * offset + 16)));
    }
    uint64_t positions = 0;
    for (size_t half = 0; half < 2; half++) {
        __m256i buckets = _mm256_set1_epi8(-1);
        for (size_t offset = 0; offset < SIDECAR_FINGERPRINT_BYTES; offset++) {
            __m256i text = _mm256_loadu_si256((const __m256i *)(bytes + 32 * half + offset));
            __m256i byLow = _mm256_shuffle_epi8(low[offset], _mm256_and_si256(text, nibble));
            __m256i byHigh = _mm256_shuffle_epi8(high[offset], _mm256_and_si256(_mm256_srli_epi16(text, 4), nibble));
            buckets = _mm256_and_si256(buckets, _mm256_and_si256(byLow, byHigh));
        }
        uint32_t empty = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(buckets, _mm256_setzero_si256()));
        positions |= (uint64_t)(uint32_t)~empty << (32 * half);
    }
    return positions;
}
#endif

uint64_t sidecar_fingerprint_block(const uint8_t *masks, const uint8_t *text, size_t count, size_t position) {
    if (position >= count) return 0;
    size_t left = count - position;
    const size_t needed = 64 + SIDECAR_FINGERPRINT_BYTES - 1;
    uint8_t padded[64 + SIDECAR_FINGERPRINT_BYTES - 1];
    const uint8_t *bytes = text + position;
    if (left < needed) {
        // Past the text's end reads as zero bytes, as the term matcher reads it.
        memset(padded, 0, sizeof padded);
        memcpy(padded, bytes, left);
        bytes = padded;
    }
    uint64_t positions;
#if defined(__x86_64__)
    static int has_avx2 = -1;
    int supported = __atomic_load_n(&has_avx2, __ATOMIC_RELAXED);
    if (supported < 0) {
        __builtin_cpu_init();
        supported = __builtin_cpu_supports("avx2") ? 1 : 0;
        __atomic_store_n(&has_avx2, supported, __ATOMIC_RELAXED);
    }
    positions = supported ? fingerprint_block_avx2(masks, bytes) : fingerprint_block_portable(masks, bytes);
#else
    positions = fingerprint_block_portable(masks, bytes);
#endif
    return left < 64 ? positions & (((uint64_t)1 << left) - 1) : positions;
}

uint64_t sidecar_fingerprint_block_portable(const uint8_t *masks, const uint8_t *text, size_t count,
                                            size_t position) {
    if (position >= count) return 0;
    size_t left = count - position;
    uint8_t padded[64 + SIDECAR_FINGERPRINT_BYTES - 1];
    memset(padded, 0, sizeof padded);
    memcpy(padded, text + position, left < sizeof padded ? left : sizeof padded);
    uint64_t positions = fingerprint_block_portable(masks, padded);
    return left < 64 ? positions & (((uint64_t)1 << left) - 1) : positions;
}

size_t sidecar_line_end(const uint8_t *text, size_t count, size_t *counted, uint8_t byte) {
    size_t index = 0;
    size_t found = 0;
#if defined(__x86_64__)
    // SSE2 is part of x86-64.
    const __m128i lineBreaks = _mm_set1_epi8('\n');
    const __m128i wanted = _mm_set1_epi8((char)byte);
    while (index + 16 <= count) {
        __m128i chunk = _mm_loadu_si128((const __m128i *)(text + index));
        uint32_t breaks = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, lineBreaks));
        uint32_t hits = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, wanted));
        if (breaks != 0) {
            uint32_t first = (uint32_t)__builtin_ctz(breaks);
            found += (size_t)__builtin_popcount(hits & ((1u << first) - 1));
            *counted += found;
            return index + first;
        }
        found += (size_t)__builtin_popcount(hits);
        index += 16;
    }
#endif
    for (; index < count; index++) {
        if (text[index] == '\n') break;
        if (text[index] == byte) found++;
    }
    *counted += found;
    return index;
}
