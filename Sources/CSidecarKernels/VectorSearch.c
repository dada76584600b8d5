// Brute-force search for the semantic cache: Hamming distance over sign-bit codes, then an
// int8 dot product to rescore the nearest few. See CSidecarKernels.h.
#include "CSidecarKernels.h"

#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SIDECAR_POPCNT __attribute__((target("popcnt")))

static size_t insert_nearest(uint32_t *indices, uint32_t *distances, size_t kept, size_t k, uint32_t index,
                             uint32_t distance) {
    // Keeps `indices`/`distances` sorted by distance; `kept` < k grows the list.
    size_t position = kept < k ? kept : k - 1;
    if (kept == k && distance >= distances[k - 1]) return kept;
    while (position > 0 && distances[position - 1] > distance) {
        distances[position] = distances[position - 1];
        indices[position] = indices[position - 1];
        position--;
    }
    distances[position] = distance;
    indices[position] = index;
    return kept < k ? kept + 1 : kept;
}

// The scan, inlined into two callers: one compiled for POPCNT, one portable.
static inline __attribute__((always_inline)) size_t nearest(const uint64_t *codes, size_t count, size_t words,
                                                            const uint64_t *query, size_t k, uint32_t *indices,
                                                            uint32_t *distances) {
    size_t kept = 0;
    uint32_t worst = UINT32_MAX;
    for (size_t row = 0; row < count; row++) {
        const uint64_t *code = codes + row * words;
        uint32_t distance = 0;
        for (size_t word = 0; word < words; word++) distance += (uint32_t)__builtin_popcountll(code[word] ^ query[word]);
        if (kept == k && distance >= worst) continue;
        kept = insert_nearest(indices, distances, kept, k, (uint32_t)row, distance);
        if (kept == k) worst = distances[k - 1];
    }
    return kept;
}

SIDECAR_POPCNT
static size_t nearest_popcnt(const uint64_t *codes, size_t count, size_t words, const uint64_t *query, size_t k,
                             uint32_t *indices, uint32_t *distances) {
    return nearest(codes, count, words, query, k, indices, distances);
}

static size_t nearest_portable(const uint64_t *codes, size_t count, size_t words, const uint64_t *query, size_t k,
                               uint32_t *indices, uint32_t *distances) {
    return nearest(codes, count, words, query, k, indices, distances);
}

size_t sidecar_hamming_nearest(const uint64_t *codes, size_t count, size_t words, const uint64_t *query, size_t k,
                               uint32_t *indices, uint32_t *distances) {
    static int has_popcnt = -1;
    if (k == 0) return 0;
    if (k > 64) k = 64;
    int supported = __atomic_load_n(&has_popcnt, __ATOMIC_RELAXED);
    if (supported < 0) {
        supported = __builtin_cpu_supports("popcnt") ? 1 : 0;
        __atomic_store_n(&has_popcnt, supported, __ATOMIC_RELAXED);
    }
    if (supported) return nearest_popcnt(codes, count, words, query, k, indices, distances);
    return nearest_portable(codes, count, words, query, k, indices, distances);
}

float sidecar_dot_i8_f32(const int8_t *vector, float scale, const float *query, size_t dims) {
    float sum = 0;
    for (size_t index = 0; index < dims; index++) sum += (float)vector[index] * query[index];
    return sum * scale;
}

int sidecar_lower_thread_priority(void) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
}
