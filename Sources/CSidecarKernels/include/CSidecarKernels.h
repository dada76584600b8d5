// CSidecarKernels: hand-written CPU kernels: the embedder's encoder, the router's term sieve, the semantic
// index's Hamming search and the cache key's canonical form.
//
// The dense layers of the encoder compute `c[m, n] = a[m, k] · w[n, k]ᵀ` (PyTorch's
// `[out, in]` weight layout). On x86-64 CPUs with AVX-512 BF16 (Intel Cooper Lake and
// Sapphire Rapids, AMD Zen 4 and later), `sidecar_bf16_linear` does this with `vdpbf16ps`:
// both operands rounded to bfloat16 (round to nearest even), products accumulated in FP32.
//
// Usage: check `sidecar_bf16_is_supported()` once; pack each weight matrix once with
// `sidecar_bf16_pack_weights` into a buffer of `sidecar_bf16_packed_count(n, k)` elements;
// then call `sidecar_bf16_linear` per forward pass. Calling `sidecar_bf16_linear` on a CPU
// without AVX-512 BF16 is undefined (it faults on the first AVX-512 instruction).
#ifndef SIDECAR_KERNELS_H
#define SIDECAR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 if this CPU executes AVX-512 F, BW and BF16 instructions (and the OS saves their
/// registers), 0 otherwise, including on every non-x86-64 build.
int sidecar_bf16_is_supported(void);

/// Whether `sidecar_bf16_linear` accepts an `n`-by-`k` weight matrix: `n` a positive multiple
/// of 16 and `k` a positive even number.
int sidecar_bf16_accepts(size_t n, size_t k);

/// The number of `uint16_t` elements of a packed `n`-by-`k` weight matrix (`n * k`).
size_t sidecar_bf16_packed_count(size_t n, size_t k);

/// Rounds the row-major `weights[n, k]` to bfloat16 and stores them in `packed` in the
/// kernel's layout: blocks of 16 output columns, for each pair of inputs `(2p, 2p + 1)` the
/// 16 columns' two values side by side (64 bytes, one vector); blocks grouped in panels of 4
/// (single blocks for the last `n / 16 mod 4`), and within a panel, pair by pair, the panel's
/// blocks' vectors side by side, so that the kernel reads each panel as one sequential stream
/// (which the hardware prefetchers follow better than four: 8-16% faster at 9-32 rows).
/// Portable scalar code, safe on any CPU. Requires `sidecar_bf16_accepts(n, k)`.
void sidecar_bf16_pack_weights(const float *weights, size_t n, size_t k, uint16_t *packed);

/// `output[m, n] = input[m, k] · weights[n, k]ᵀ` with `packed` from `sidecar_bf16_pack_weights`.
/// `input` and `output` are row-major and contiguous. `scratch` must hold `m * k` elements: the
/// input rounded to bfloat16 is written there first. Requires `sidecar_bf16_is_supported()`.
void sidecar_bf16_linear(
    const float *input, size_t m, size_t k,
    const uint16_t *packed, size_t n,
    float *output, uint16_t *scratch);

/// `matrix[r, c] = gelu(matrix[r, c] + bias[c])` for `rows` contiguous rows of `width`, GELU
/// in its exact form `0.5 x (1 + erf(x / sqrt 2))`, with the [13/8] rational `erf` of Eigen
/// and XLA (as `EncoderKernels.erf`), 16 lanes at a time. Requires `sidecar_bf16_is_supported()`.
void sidecar_bias_gelu(float *matrix, const float *bias, size_t rows, size_t width);

// Encoder operations on AVX-512 F in FP32 (EncoderOps.c): attention, softmax, layer norm.
// Calling them on a CPU without AVX-512 F is undefined; check `sidecar_avx512_is_supported()`.

/// 1 if this CPU executes AVX-512 F instructions (and the OS saves their registers), 0
/// otherwise, including on every non-x86-64 build.
int sidecar_avx512_is_supported(void);

/// The number of floats of scratch `sidecar_attention` needs for a sequence of `length` tokens
/// and heads of `headSize`: the transposed keys of one head and one tile's scores.
size_t sidecar_attention_scratch_count(size_t length, size_t headSize);

/// Softmax of each of `rows` contiguous rows of `width` scores, in place, with a vectorised
/// `exp` (within 2 ulp of libm's). Requires `sidecar_avx512_is_supported()`.
void sidecar_softmax_rows(float *scores, size_t rows, size_t width);

/// Multi-head self-attention of one sequence of `length` tokens: for each of `heads` heads,
/// `context[:, head] = softmax(scale * Q Kᵀ) V`. `queryKeyValue` holds `length` rows of
/// `3 * heads * headSize` floats (all heads' queries, then keys, then values); `context` rows
/// are `contextStride` floats apart, each head's `headSize` columns at `head * headSize`.
/// `headSize` must be a multiple of 16; `scratch` holds
/// `sidecar_attention_scratch_count(length, headSize)` floats. Requires
/// `sidecar_avx512_is_supported()`.
void sidecar_attention(
    const float *queryKeyValue, size_t length, size_t heads, size_t headSize,
    float scale, float *context, size_t contextStride, float *scratch);

/// `matrix[r, c] += bias[c]` for `rows` contiguous rows of `width` (a multiple of 16).
/// Requires `sidecar_avx512_is_supported()`.
void sidecar_add_bias(float *matrix, const float *bias, size_t rows, size_t width);

/// `residual = layerNorm(input + bias + residual) * scale + shift` for `rows` contiguous rows
/// of `width` (a multiple of 16), the mean and variance taken over each row; `bias` may be
/// NULL. Requires `sidecar_avx512_is_supported()`.
void sidecar_add_layer_norm(
    const float *input, const float *bias, float *residual,
    const float *scale, const float *shift, size_t rows, size_t width, float epsilon);


// ---- Semantic cache search -------------------------------------------------------------
// Sign-bit codes: each vector is `words` 64-bit words (bit i set when component i > 0). The
// search keeps the `k` codes nearest to `query` in Hamming distance; uses POPCNT when the CPU
// has it (checked once), portable code otherwise.

/// Writes up to `k` indices of the codes nearest `query` (ascending distance) to `indices` and
/// their distances to `distances`; returns how many were written (min(k, count)). `k` <= 64.
size_t sidecar_hamming_nearest(const uint64_t *codes, size_t count, size_t words, const uint64_t *query,
                               size_t k, uint32_t *indices, uint32_t *distances);

/// The dot product of an int8 vector (scaled by `scale`) with a float vector.
float sidecar_dot_i8_f32(const int8_t *vector, float scale, const float *query, size_t dims);

/// Gives the calling thread the lowest CPU priority (nice 19, Linux: per thread). 0 on success.
int sidecar_lower_thread_priority(void);

// ---- Text scanning for the heuristic scorer ---------------------------------------------

/// The bytes a fingerprint looks at from each position.
#define SIDECAR_FINGERPRINT_BYTES 4

/// The positions `position ..< position + 64` of `text[0 ..< count]` whose fingerprint is not
/// empty, as bits (bit i for `position + i`; none at or past `count`). `masks` holds, for each
/// of the `SIDECAR_FINGERPRINT_BYTES` bytes from a position, 16 bytes by the byte's low nibble
/// then 16 by its high nibble: a position's fingerprint is the AND over those bytes of
/// `low[byte & 15] & high[byte >> 4]`, each bit a bucket of terms, and bytes past `count` read
/// as zero. Uses AVX2 when the CPU has it (checked once), portable code otherwise.
uint64_t sidecar_fingerprint_block(const uint8_t *masks, const uint8_t *text, size_t count, size_t position);

/// `sidecar_fingerprint_block` in portable code only (for tests: both must agree).
uint64_t sidecar_fingerprint_block_portable(const uint8_t *masks, const uint8_t *text, size_t count,
                                            size_t position);

/// The index of the first line break in `text[0 ..< count]` (`count` if none); adds to
/// `*counted` how many bytes equal to `byte` come before it.
size_t sidecar_line_end(const uint8_t *text, size_t count, size_t *counted, uint8_t byte);

// The cache key's canonical JSON (CanonicalJSON.c), the fast path of SidecarPolicy's
// `CanonicalJSON`: the same bytes on the documents it accepts, which are the common ones (keys
// without escapes, numbers whose canonical form needs no `Double`, at most 32 levels deep).

/// Marks the masked prompt's place in the canonical document.
#define SIDECAR_CANONICAL_PROMPT_MARKER 0x01

typedef struct {
    size_t output_length;
    /// 1 when a prompt was masked; then `prompt` holds `prompt_length` bytes.
    int masked;
    size_t prompt_length;
    /// The raw value ranges of the top-level `n` and `temperature` (an end of 0: absent).
    size_t n_start, n_end, temperature_start, temperature_end;
} sidecar_canonical_json_result;

/// Writes the canonical form of the JSON object `input[0, count)` to `output` (room for
/// `output_capacity` bytes; `count + 1` always suffices), leaving out the top-level members named
/// in `dropping` (each name a length byte, then its bytes). With `mask_prompt` and a `prompt`
/// buffer of `output_capacity` bytes, the last user message's `content` (or a top-level `prompt`
/// without `messages`) goes to `prompt` and SIDECAR_CANONICAL_PROMPT_MARKER takes its place.
/// Returns 1, or -1 when the document is outside what this handles (then the Swift
/// implementation decides, including whether it is canonicalisable at all).
int sidecar_canonical_json(const uint8_t *input, size_t count, const uint8_t *dropping, size_t dropping_length,
                           int mask_prompt, uint8_t *output, size_t output_capacity, uint8_t *prompt,
                           sidecar_canonical_json_result *result);

#ifdef __cplusplus
}
#endif

#endif
