// AVX-512 F attention, softmax and layer norm for SidecarCore's encoder; see
// include/CSidecarKernels.h.
//
// As in CSidecarKernels.c, no global compiler flags: each AVX-512 function carries its own
// `target` attribute and the caller checks `sidecar_avx512_is_supported()` first. Everything
// here is FP32; results differ from the scalar Swift path only in summation order and in
// `exp16`'s last bit or two.
#include "CSidecarKernels.h"

#include <math.h>

#if defined(__x86_64__)

#include <immintrin.h>

#define SIDECAR_AVX512 __attribute__((target("avx512f")))
#define UNROLLED _Pragma("GCC unroll 16")

// Query rows one attention tile handles: 8 accumulators cover the FMA latency of 4 cycles on
// both of Zen 4's pipes (and of Intel's), and 8 broadcasts plus 1 load per step keep the
// load ports under the FMA rate.
enum { QUERY_TILE = 8, LANES = 16 };

int sidecar_avx512_is_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

size_t sidecar_attention_scratch_count(size_t length, size_t headSize) {
    const size_t padded = (length + LANES - 1) / LANES * LANES;
    return (headSize + QUERY_TILE) * padded;
}

// The mask of the first `count` (0...16) lanes.
static __mmask16 lanes_mask(size_t count) {
    return count >= LANES ? (__mmask16)0xffff : (__mmask16)((1u << count) - 1u);
}

// exp(x) on 16 lanes for x <= 0 (scores minus their row's maximum): Cephes' `expf`, i.e.
// n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two for exactness), a degree-6
// polynomial for e^r on [-ln2/2, ln2/2], then 2^n applied with `vscalefps` (which rounds
// into the subnormals like libm). Within 2 ulp of libm; x is clamped at -104, where e^x
// rounds to 0 (and -inf, whose r would be NaN, becomes -104).
SIDECAR_AVX512
static inline __m512 exp16(__m512 input) {
    const __m512 x = _mm512_max_ps(input, _mm512_set1_ps(-104.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    // e^r ~ p r^2 + r + 1
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

// Softmax of the first `width` entries of `line` in place; the rest of its last vector is
// left alone (its lanes are masked off).
SIDECAR_AVX512
static void softmax_line(float *line, size_t width) {
    __m512 maximum = _mm512_set1_ps(-INFINITY);
    for (size_t column = 0; column < width; column += LANES) {
        const __mmask16 mask = lanes_mask(width - column);
        maximum = _mm512_mask_max_ps(maximum, mask, maximum, _mm512_maskz_loadu_ps(mask, line + column));
    }
    const __m512 top = _mm512_set1_ps(_mm512_reduce_max_ps(maximum));
    __m512 total = _mm512_setzero_ps();
    for (size_t column = 0; column < width; column += LANES) {
        const __mmask16 mask = lanes_mask(width - column);
        const __m512 value = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, line + column), top));
        total = _mm512_mask_add_ps(total, mask, total, value);
        _mm512_mask_storeu_ps(line + column, mask, value);
    }
    const __m512 inverse = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(total));
    for (size_t column = 0; column < width; column += LANES) {
        const __mmask16 mask = lanes_mask(width - column);
        _mm512_mask_storeu_ps(line + column, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, line + column), inverse));
    }
}

SIDECAR_AVX512
void sidecar_softmax_rows(float *scores, size_t rows, size_t width) {
    for (size_t row = 0; row < rows; row++) {
        softmax_line(scores + row * width, width);
    }
}

// target[c, r] = source[r, c] for a 16 x 16 block: `rows` (1...16) rows of `source` are read,
// the rest taken as zeros; target rows are `targetStride` floats apart. The usual three
// rounds of in-register shuffles (pairs of floats, then of 128-bit lanes, twice), rather
// than the gathers a compiler emits for a scalar loop (slow on Zen 4).
SIDECAR_AVX512
static void transpose_block(const float *source, size_t sourceStride, size_t rows, float *target,
                            size_t targetStride) {
    __m512 r[LANES], t[LANES];
    UNROLLED for (int row = 0; row < LANES; row++) {
        r[row] = (size_t)row < rows ? _mm512_loadu_ps(source + (size_t)row * sourceStride) : _mm512_setzero_ps();
    }
    UNROLLED for (int pair = 0; pair < LANES; pair += 2) {
        t[pair] = _mm512_unpacklo_ps(r[pair], r[pair + 1]);
        t[pair + 1] = _mm512_unpackhi_ps(r[pair], r[pair + 1]);
    }
    UNROLLED for (int quad = 0; quad < LANES; quad += 4) {
        r[quad] = _mm512_shuffle_ps(t[quad], t[quad + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[quad + 1] = _mm512_shuffle_ps(t[quad], t[quad + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[quad + 2] = _mm512_shuffle_ps(t[quad + 1], t[quad + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[quad + 3] = _mm512_shuffle_ps(t[quad + 1], t[quad + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    UNROLLED for (int half = 0; half < LANES; half += 8) {
        UNROLLED for (int index = 0; index < 4; index++) {
            t[half + index] = _mm512_shuffle_f32x4(r[half + index], r[half + index + 4], 0x88);
            t[half + index + 4] = _mm512_shuffle_f32x4(r[half + index], r[half + index + 4], 0xdd);
        }
    }
    UNROLLED for (int index = 0; index < 8; index++) {
        r[index] = _mm512_shuffle_f32x4(t[index], t[index + 8], 0x88);
        r[index + 8] = _mm512_shuffle_f32x4(t[index], t[index + 8], 0xdd);
    }
    UNROLLED for (int row = 0; row < LANES; row++) {
        _mm512_storeu_ps(target + (size_t)row * targetStride, r[row]);
    }
}

// One tile of up to QUERY_TILE query rows starting at `first` of one head: scores against
// every key, softmax, then the probability-weighted sum of the values into `context`. Rows
// past the sequence's end repeat its last row and are computed but not stored.
SIDECAR_AVX512
static void attention_tile(const float *queries, const float *values, size_t stride, size_t length,
                           size_t first, size_t headSize, float scale, const float *keysT,
                           float *scores, size_t padded, float *context, size_t contextStride) {
    const float *rows[QUERY_TILE];
    UNROLLED for (int row = 0; row < QUERY_TILE; row++) {
        const size_t index = first + (size_t)row < length ? first + (size_t)row : length - 1;
        rows[row] = queries + index * stride;
    }
    // scores[r, j] = scale * q_r · k_j, 16 keys at a time from the transposed keys.
    for (size_t column = 0; column < padded; column += LANES) {
        __m512 sums[QUERY_TILE];
        UNROLLED for (int row = 0; row < QUERY_TILE; row++) { sums[row] = _mm512_setzero_ps(); }
        for (size_t depth = 0; depth < headSize; depth++) {
            const __m512 keys = _mm512_loadu_ps(keysT + depth * padded + column);
            UNROLLED for (int row = 0; row < QUERY_TILE; row++) {
                sums[row] = _mm512_fmadd_ps(_mm512_set1_ps(rows[row][depth]), keys, sums[row]);
            }
        }
        UNROLLED for (int row = 0; row < QUERY_TILE; row++) {
            _mm512_storeu_ps(scores + row * padded + column, _mm512_mul_ps(sums[row], _mm512_set1_ps(scale)));
        }
    }
    for (int row = 0; row < QUERY_TILE; row++) {
        softmax_line(scores + row * padded, length);
    }
    // context[r, c] = sum_j p[r, j] v[j, c], 16 columns at a time.
    const size_t count = length - first < QUERY_TILE ? length - first : QUERY_TILE;
    for (size_t column = 0; column < headSize; column += LANES) {
        __m512 sums[QUERY_TILE];
        UNROLLED for (int row = 0; row < QUERY_TILE; row++) { sums[row] = _mm512_setzero_ps(); }
        for (size_t key = 0; key < length; key++) {
            const __m512 value = _mm512_loadu_ps(values + key * stride + column);
            UNROLLED for (int row = 0; row < QUERY_TILE; row++) {
                sums[row] = _mm512_fmadd_ps(_mm512_set1_ps(scores[row * padded + key]), value, sums[row]);
            }
        }
        UNROLLED for (int row = 0; row < QUERY_TILE; row++) {
            if ((size_t)row < count) {
                _mm512_storeu_ps(context + (first + (size_t)row) * contextStride + column, sums[row]);
            }
        }
    }
}

SIDECAR_AVX512
void sidecar_attention(const float *queryKeyValue, size_t length, size_t heads, size_t headSize,
                       float scale, float *context, size_t contextStride, float *scratch) {
    const size_t hidden = heads * headSize;
    const size_t stride = 3 * hidden;
    const size_t padded = (length + LANES - 1) / LANES * LANES;
    float *keysT = scratch;
    float *scores = scratch + headSize * padded;
    for (size_t head = 0; head < heads; head++) {
        const float *queries = queryKeyValue + head * headSize;
        const float *keys = queries + hidden;
        const float *values = keys + hidden;
        // keysT[d, j] = k_j[d], zero beyond the last key so whole vectors can be read.
        for (size_t key = 0; key < length; key += LANES) {
            for (size_t depth = 0; depth < headSize; depth += LANES) {
                transpose_block(keys + key * stride + depth, stride, length - key, keysT + depth * padded + key,
                                padded);
            }
        }
        for (size_t first = 0; first < length; first += QUERY_TILE) {
            attention_tile(queries, values, stride, length, first, headSize, scale, keysT, scores, padded,
                           context + head * headSize, contextStride);
        }
    }
}

SIDECAR_AVX512
void sidecar_add_bias(float *matrix, const float *bias, size_t rows, size_t width) {
    for (size_t row = 0; row < rows; row++) {
        float *line = matrix + row * width;
        for (size_t column = 0; column < width; column += LANES) {
            _mm512_storeu_ps(line + column, _mm512_add_ps(_mm512_loadu_ps(line + column), _mm512_loadu_ps(bias + column)));
        }
    }
}

// The sums alternate between two accumulators: a single one chains `width / 16` dependent
// additions, whose latency bounds a 384-wide row (two make the whole step 30% faster).
SIDECAR_AVX512
void sidecar_add_layer_norm(const float *input, const float *bias, float *residual, const float *scale,
                            const float *shift, size_t rows, size_t width, float epsilon) {
    const float inverseWidth = 1.0f / (float)width;
    for (size_t row = 0; row < rows; row++) {
        const float *inputLine = input + row * width;
        float *line = residual + row * width;
        __m512 sum = _mm512_setzero_ps(), other = _mm512_setzero_ps();
        for (size_t column = 0; column < width; column += LANES) {
            __m512 value = _mm512_add_ps(_mm512_loadu_ps(inputLine + column), _mm512_loadu_ps(line + column));
            if (bias) {
                value = _mm512_add_ps(value, _mm512_loadu_ps(bias + column));
            }
            _mm512_storeu_ps(line + column, value);
            if ((column / LANES) % 2) {
                other = _mm512_add_ps(other, value);
            } else {
                sum = _mm512_add_ps(sum, value);
            }
        }
        const __m512 mean = _mm512_set1_ps(_mm512_reduce_add_ps(_mm512_add_ps(sum, other)) * inverseWidth);
        __m512 squares = _mm512_setzero_ps(), otherSquares = _mm512_setzero_ps();
        for (size_t column = 0; column < width; column += LANES) {
            const __m512 centred = _mm512_sub_ps(_mm512_loadu_ps(line + column), mean);
            if ((column / LANES) % 2) {
                otherSquares = _mm512_fmadd_ps(centred, centred, otherSquares);
            } else {
                squares = _mm512_fmadd_ps(centred, centred, squares);
            }
        }
        const float variance = _mm512_reduce_add_ps(_mm512_add_ps(squares, otherSquares)) * inverseWidth;
        const __m512 inverseDeviation = _mm512_set1_ps(1.0f / sqrtf(variance + epsilon));
        for (size_t column = 0; column < width; column += LANES) {
            const __m512 normalized = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(line + column), mean),
                                                    inverseDeviation);
            _mm512_storeu_ps(line + column, _mm512_fmadd_ps(normalized, _mm512_loadu_ps(scale + column),
                                                            _mm512_loadu_ps(shift + column)));
        }
    }
}

#else

int sidecar_avx512_is_supported(void) { return 0; }

size_t sidecar_attention_scratch_count(size_t length, size_t headSize) {
    (void)length; (void)headSize;
    return 0;
}

void sidecar_softmax_rows(float *scores, size_t rows, size_t width) {
    (void)scores; (void)rows; (void)width;
}

void sidecar_attention(const float *queryKeyValue, size_t length, size_t heads, size_t headSize,
                       float scale, float *context, size_t contextStride, float *scratch) {
    (void)queryKeyValue; (void)length; (void)heads; (void)headSize; (void)scale; (void)context;
    (void)contextStride; (void)scratch;
}

void sidecar_add_bias(float *matrix, const float *bias, size_t rows, size_t width) {
    (void)matrix; (void)bias; (void)rows; (void)width;
}

void sidecar_add_layer_norm(const float *input, const float *bias, float *residual, const float *scale,
                            const float *shift, size_t rows, size_t width, float epsilon) {
    (void)input; (void)bias; (void)residual; (void)scale; (void)shift; (void)rows; (void)width;
    (void)epsilon;
}

#endif
