// AVX-512 BF16 dense-layer kernel for SidecarCore's embedder; see include/CSidecarKernels.h.
//
// No global compiler flags are needed: the AVX-512 functions carry their own `target`
// attribute, and the caller checks `sidecar_bf16_is_supported()` before using them, so the
// library builds and runs on any x86-64 CPU (and compiles to stubs on other architectures).
#include "CSidecarKernels.h"

#include <string.h>

// Rows of `input` each micro-kernel call handles, and the column blocks (16 columns each)
// it covers: 6 x 4 accumulators + 4 weight vectors + 1 broadcast = 29 of the 32 registers.
enum { ROW_TILE = 6, BLOCK_TILE = 4, BLOCK_COLUMNS = 16 };

// Rows converted and multiplied together: 96 rows of up to 1536 bf16 inputs (288 KB) stay in
// the L2 cache while every column panel of the weights streams past them.
enum { ROW_CHUNK = 96 };

int sidecar_bf16_accepts(size_t n, size_t k) {
    return n > 0 && n % BLOCK_COLUMNS == 0 && k > 0 && k % 2 == 0;
}

size_t sidecar_bf16_packed_count(size_t n, size_t k) { return n * k; }

// FP32 -> bfloat16, rounding to nearest even (as `vcvtne2ps2bf16` does); NaNs stay NaNs.
static uint16_t bf16_from_float(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {
        return (uint16_t)((bits >> 16) | 0x40u);
    }
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

void sidecar_bf16_pack_weights(const float *weights, size_t n, size_t k, uint16_t *packed) {
    const size_t pairs = k / 2;
    const size_t blocks = n / BLOCK_COLUMNS;
    // Panels as `sidecar_bf16_linear` walks them: BLOCK_TILE blocks while they last, then
    // single blocks; within a panel, pair-major, so that the kernel reads one stream.
    for (size_t block = 0; block < blocks;) {
        const size_t width = block + BLOCK_TILE <= blocks ? BLOCK_TILE : 1;
        uint16_t *target = packed + block * pairs * 2 * BLOCK_COLUMNS;
        for (size_t pair = 0; pair < pairs; pair++) {
            for (size_t member = 0; member < width; member++) {
                for (size_t column = 0; column < BLOCK_COLUMNS; column++) {
                    const float *source = weights + ((block + member) * BLOCK_COLUMNS + column) * k + 2 * pair;
                    uint16_t *slot = target + ((pair * width + member) * BLOCK_COLUMNS + column) * 2;
                    slot[0] = bf16_from_float(source[0]);
                    slot[1] = bf16_from_float(source[1]);
                }
            }
        }
        block += width;
    }
}

#if defined(__x86_64__)

#include <immintrin.h>

#define SIDECAR_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

// Fully unrolls a loop with a constant trip count, so arrays of vectors become registers
// (GCC at -O2 does not unroll on its own; clang reads the same pragma).
#define UNROLLED _Pragma("GCC unroll 8")

int sidecar_bf16_is_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512bf16");
}

// `count` floats -> bfloat16, 32 at a time with `vcvtne2ps2bf16`, the tail masked.
SIDECAR_AVX512_BF16
static void convert_row(const float *source, uint16_t *target, size_t count) {
    size_t index = 0;
    for (; index + 32 <= count; index += 32) {
        __m512 low = _mm512_loadu_ps(source + index);
        __m512 high = _mm512_loadu_ps(source + index + 16);
        // The second operand fills the low half of the result.
        _mm512_storeu_si512((void *)(target + index), (__m512i)_mm512_cvtne2ps_pbh(high, low));
    }
    for (; index < count; index++) {
        target[index] = bf16_from_float(source[index]);
    }
}

// `output[ROWS, BLOCKS * 16] = input[ROWS, k] · weights`, `input` bf16 with row stride `k`,
// `panel` the packed weights of BLOCKS consecutive column blocks (for each input pair, the
// BLOCKS blocks' 64 bytes side by side). ROWS and BLOCKS are compile-time constants after
// inlining, so the accumulators live in registers.
SIDECAR_AVX512_BF16
static inline __attribute__((always_inline)) void micro_kernel(
    const uint16_t *input, size_t k, const uint16_t *panel,
    float *output, size_t outputStride, const int ROWS, const int BLOCKS) {
    __m512 sums[ROW_TILE][BLOCK_TILE];
    UNROLLED for (int row = 0; row < ROWS; row++) {
        UNROLLED for (int block = 0; block < BLOCKS; block++) {
            sums[row][block] = _mm512_setzero_ps();
        }
    }
    const size_t pairs = k / 2;
    for (size_t pair = 0; pair < pairs; pair++) {
        __m512bh columns[BLOCK_TILE];
        UNROLLED for (int block = 0; block < BLOCKS; block++) {
            columns[block] = (__m512bh)_mm512_loadu_si512(
                (const void *)(panel + (pair * BLOCKS + block) * 2 * BLOCK_COLUMNS));
        }
        UNROLLED for (int row = 0; row < ROWS; row++) {
            int32_t two;
            memcpy(&two, input + row * k + 2 * pair, sizeof two);
            __m512bh inputs = (__m512bh)_mm512_set1_epi32(two);
            UNROLLED for (int block = 0; block < BLOCKS; block++) {
                sums[row][block] = _mm512_dpbf16_ps(sums[row][block], inputs, columns[block]);
            }
        }
    }
    UNROLLED for (int row = 0; row < ROWS; row++) {
        UNROLLED for (int block = 0; block < BLOCKS; block++) {
            _mm512_storeu_ps(output + row * outputStride + block * BLOCK_COLUMNS, sums[row][block]);
        }
    }
}

// One micro-kernel call for `rows` (1...ROW_TILE) rows, dispatched to a specialised copy.
#define SIDECAR_ROWS_CASE(ROWS, BLOCKS) \
    case ROWS: micro_kernel(input, k, panel, output, n, ROWS, BLOCKS); break;

SIDECAR_AVX512_BF16
static void tile_wide(const uint16_t *input, size_t k, const uint16_t *panel, float *output,
                      size_t n, size_t rows) {
    switch (rows) {
        SIDECAR_ROWS_CASE(1, BLOCK_TILE) SIDECAR_ROWS_CASE(2, BLOCK_TILE) SIDECAR_ROWS_CASE(3, BLOCK_TILE)
        SIDECAR_ROWS_CASE(4, BLOCK_TILE) SIDECAR_ROWS_CASE(5, BLOCK_TILE) SIDECAR_ROWS_CASE(6, BLOCK_TILE)
        default: break;
    }
}

SIDECAR_AVX512_BF16
static void tile_narrow(const uint16_t *input, size_t k, const uint16_t *panel, float *output,
                        size_t n, size_t rows) {
    switch (rows) {
        SIDECAR_ROWS_CASE(1, 1) SIDECAR_ROWS_CASE(2, 1) SIDECAR_ROWS_CASE(3, 1)
        SIDECAR_ROWS_CASE(4, 1) SIDECAR_ROWS_CASE(5, 1) SIDECAR_ROWS_CASE(6, 1)
        default: break;
    }
}

SIDECAR_AVX512_BF16
void sidecar_bf16_linear(const float *input, size_t m, size_t k, const uint16_t *packed, size_t n,
                         float *output, uint16_t *scratch) {
    const size_t blockStride = k * BLOCK_COLUMNS;
    const size_t blocks = n / BLOCK_COLUMNS;
    for (size_t chunk = 0; chunk < m; chunk += ROW_CHUNK) {
        const size_t chunkRows = m - chunk < ROW_CHUNK ? m - chunk : ROW_CHUNK;
        uint16_t *converted = scratch + chunk * k;
        for (size_t row = 0; row < chunkRows; row++) {
            convert_row(input + (chunk + row) * k, converted + row * k, k);
        }
        // Column panels outermost: a panel's weights (k * 128 bytes) stay in L2 while every
        // row tile of the chunk passes over them.
        for (size_t block = 0; block < blocks;) {
            const int wide = block + BLOCK_TILE <= blocks;
            const uint16_t *panel = packed + block * blockStride;
            for (size_t row = 0; row < chunkRows; row += ROW_TILE) {
                const size_t rows = chunkRows - row < ROW_TILE ? chunkRows - row : ROW_TILE;
                float *target = output + (chunk + row) * n + block * BLOCK_COLUMNS;
                if (wide) {
                    tile_wide(converted + row * k, k, panel, target, n, rows);
                } else {
                    tile_narrow(converted + row * k, k, panel, target, n, rows);
                }
            }
            block += wide ? BLOCK_TILE : 1;
        }
    }
}

// erf(x) on 16 lanes: x clamped to [-4, 4] (erf is +-1 in float beyond), then p(x) / q(x).
SIDECAR_AVX512_BF16
static __m512 erf16(__m512 input) {
    const __m512 x = _mm512_min_ps(_mm512_max_ps(input, _mm512_set1_ps(-4.0f)), _mm512_set1_ps(4.0f));
    const __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_fmadd_ps(x2, _mm512_set1_ps(-2.72614225801306e-10f), _mm512_set1_ps(2.77068142495902e-08f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-2.10102402082508e-06f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-5.69250639462346e-05f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-7.34990630326855e-04f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-2.95459980854025e-03f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-1.60960333262415e-02f));
    p = _mm512_mul_ps(x, p);
    __m512 q = _mm512_fmadd_ps(x2, _mm512_set1_ps(-1.45660718464996e-05f), _mm512_set1_ps(-2.13374055278905e-04f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-1.68282697438203e-03f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-7.37332916720468e-03f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-1.42647390514189e-02f));
    return _mm512_div_ps(p, q);
}

SIDECAR_AVX512_BF16
void sidecar_bias_gelu(float *matrix, const float *bias, size_t rows, size_t width) {
    const __m512 half = _mm512_set1_ps(0.5f);
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 inverseRoot2 = _mm512_set1_ps(0.70710677f);
    for (size_t row = 0; row < rows; row++) {
        float *line = matrix + row * width;
        for (size_t column = 0; column < width; column += 16) {
            // The last vector of a row whose width is not a multiple of 16 is masked.
            const size_t left = width - column;
            const __mmask16 mask = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
            const __m512 x = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, line + column),
                                           _mm512_maskz_loadu_ps(mask, bias + column));
            const __m512 gelu = _mm512_mul_ps(_mm512_mul_ps(half, x),
                                              _mm512_add_ps(one, erf16(_mm512_mul_ps(x, inverseRoot2))));
            _mm512_mask_storeu_ps(line + column, mask, gelu);
        }
    }
}

#else

int sidecar_bf16_is_supported(void) { return 0; }

void sidecar_bias_gelu(float *matrix, const float *bias, size_t rows, size_t width) {
    (void)matrix; (void)bias; (void)rows; (void)width;
}

void sidecar_bf16_linear(const float *input, size_t m, size_t k, const uint16_t *packed, size_t n,
                         float *output, uint16_t *scratch) {
    (void)input; (void)m; (void)k; (void)packed; (void)n; (void)output; (void)scratch;
}

#endif
