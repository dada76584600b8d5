// The cache key's canonical JSON, fast path (see CSidecarKernels.h and SidecarPolicy's
// CanonicalJSON.swift, whose rules this follows byte for byte on the documents it accepts).
//
// One pass reads the document into nodes (each value's bytes, an object member's key, the
// first child and the next sibling); a second writes them, each object's members sorted.
#include "CSidecarKernels.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { MAX_DEPTH = 32, NONE = UINT32_MAX, LOCAL_NODES = 128, LOCAL_MEMBERS = 32 };

enum kind { OBJECT, ARRAY, STRING, NUMBER, LITERAL };

typedef struct {
    uint32_t kind;
    uint32_t start, end;          // the value's bytes
    uint32_t key_start, key_end;  // an object member's key, without its quotes (no escapes)
    uint32_t first_child, next_sibling;
} node;

typedef struct {
    const uint8_t *input;
    size_t count;
    node *nodes;
    uint32_t node_count, node_capacity;
    int nodes_on_heap;
    uint8_t *output;
    size_t output_length, output_capacity;
    uint8_t *prompt;
    size_t prompt_length;  // SIZE_MAX until a prompt is masked
} writer;

// Every failure is "let the Swift implementation decide": it gives the same answer as here on
// what this accepts, and its own on the rest.
#define GIVE_UP (-1)

static inline size_t skip_space(const writer *w, size_t index) {
    while (index < w->count) {
        uint8_t byte = w->input[index];
        if (byte != 0x20 && byte != 0x09 && byte != 0x0A && byte != 0x0D) break;
        index++;
    }
    return index;
}

static inline int emit(writer *w, const uint8_t *bytes, size_t length) {
    if (length > w->output_capacity - w->output_length) return 0;
    memcpy(w->output + w->output_length, bytes, length);
    w->output_length += length;
    return 1;
}

static inline int emit_byte(writer *w, uint8_t byte) {
    if (w->output_length >= w->output_capacity) return 0;
    w->output[w->output_length++] = byte;
    return 1;
}

// The end of the string whose opening quote is at `index` (after its closing quote), or 0.
static size_t string_end(const writer *w, size_t index) {
    size_t cursor = index + 1;
    for (;;) {
        if (cursor >= w->count) return 0;
        const uint8_t *quote = memchr(w->input + cursor, '"', w->count - cursor);
        if (quote == NULL) return 0;
        size_t at = (size_t)(quote - w->input);
        // Escaped when an odd number of backslashes precede it.
        size_t backslashes = 0;
        while (at - backslashes - 1 > index && w->input[at - backslashes - 1] == '\\') backslashes++;
        if (backslashes % 2 == 0) return at + 1;
        cursor = at + 1;
    }
}

static int has_escape(const uint8_t *bytes, size_t start, size_t end) {
    size_t cursor = start;
#if defined(__x86_64__)
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i control = _mm_set1_epi8(0x1F);
    while (cursor + 16 <= end) {
        __m128i chunk = _mm_loadu_si128((const __m128i *)(bytes + cursor));
        __m128i hits = _mm_or_si128(_mm_cmpeq_epi8(chunk, backslash),
                                    _mm_cmpeq_epi8(_mm_min_epu8(chunk, control), chunk));
        if (_mm_movemask_epi8(hits) != 0) return 1;
        cursor += 16;
    }
#endif
    for (; cursor < end; cursor++) {
        if (bytes[cursor] == '\\' || bytes[cursor] < 0x20) return 1;
    }
    return 0;
}
static int hex4(const uint8_t *bytes, uint32_t *value) {
    uint32_t result = 0;
    for (int offset = 0; offset < 4; offset++) {
        uint8_t byte = bytes[offset];
        uint32_t digit;
        if (byte >= '0' && byte <= '9') digit = byte - '0';
        else if (byte >= 'a' && byte <= 'f') digit = byte - 'a' + 10;
        else if (byte >= 'A' && byte <= 'F') digit = byte - 'A' + 10;
        else return 0;
        result = result << 4 | digit;
    }
    *value = result;
    return 1;
}
static int emit_escaped_byte(writer *w, uint8_t byte) {
    static const char hex[] = "0123456789abcdef";
    switch (byte) {
    case '"': return emit(w, (const uint8_t *)"\\\"", 2);
    case '\\': return emit(w, (const uint8_t *)"\\\\", 2);
    case 0x08: return emit(w, (const uint8_t *)"\\b", 2);
    case 0x0C: return emit(w, (const uint8_t *)"\\f", 2);
    case 0x0A: return emit(w, (const uint8_t *)"\\n", 2);
    case 0x0D: return emit(w, (const uint8_t *)"\\r", 2);
    case 0x09: return emit(w, (const uint8_t *)"\\t", 2);
    default:
        if (byte < 0x20) {
            uint8_t escape[6] = {'\\', 'u', '0', '0', (uint8_t)hex[byte >> 4], (uint8_t)hex[byte & 15]};
            return emit(w, escape, 6);
        }
        return emit_byte(w, byte);
    }
}
static int emit_scalar(writer *w, uint32_t scalar) {
    uint8_t bytes[4];
    size_t length;
    if (scalar < 0x80) {
        return emit_escaped_byte(w, (uint8_t)scalar);
    } else if (scalar < 0x800) {
        bytes[0] = (uint8_t)(0xC0 | scalar >> 6);
        bytes[1] = (uint8_t)(0x80 | (scalar & 0x3F));
        length = 2;
    } else if (scalar < 0x10000) {
        bytes[0] = (uint8_t)(0xE0 | scalar >> 12);
        bytes[1] = (uint8_t)(0x80 | ((scalar >> 6) & 0x3F));
        bytes[2] = (uint8_t)(0x80 | (scalar & 0x3F));
        length = 3;
    } else {
        bytes[0] = (uint8_t)(0xF0 | scalar >> 18);
        bytes[1] = (uint8_t)(0x80 | ((scalar >> 12) & 0x3F));
        bytes[2] = (uint8_t)(0x80 | ((scalar >> 6) & 0x3F));
        bytes[3] = (uint8_t)(0x80 | (scalar & 0x3F));
        length = 4;
    }
    return emit(w, bytes, length);
}
static int write_string(writer *w, size_t index, size_t end) {
    if (!has_escape(w->input, index + 1, end - 1)) return emit(w, w->input + index, end - index);
    if (!emit_byte(w, '"')) return 0;
    size_t cursor = index + 1;
    size_t last = end - 1;
    while (cursor < last) {
        uint8_t byte = w->input[cursor];
        if (byte < 0x20) return 0;
        if (byte != '\\') {
            if (!emit_byte(w, byte)) return 0;
            cursor++;
            continue;
        }
        if (cursor + 1 >= last) return 0;
        uint8_t escape = w->input[cursor + 1];
        cursor += 2;
        uint8_t decoded;
        switch (escape) {
        case '"': case '\\': case '/': decoded = escape; break;
        case 'b': decoded = 0x08; break;
        case 'f': decoded = 0x0C; break;
        case 'n': decoded = 0x0A; break;
        case 'r': decoded = 0x0D; break;
        case 't': decoded = 0x09; break;
        case 'u': {
            uint32_t scalar;
            if (cursor + 4 > last || !hex4(w->input + cursor, &scalar)) return 0;
            cursor += 4;
            uint32_t low;
            if (scalar >= 0xD800 && scalar < 0xDC00 && cursor + 6 <= last && w->input[cursor] == '\\'
                && w->input[cursor + 1] == 'u' && hex4(w->input + cursor + 2, &low) && low >= 0xDC00
                && low < 0xE000) {
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00);
                cursor += 6;
            }
            // A lone surrogate becomes U+FFFD, as a decoder would read it.
            if (scalar >= 0xD800 && scalar < 0xE000) scalar = 0xFFFD;
            if (!emit_scalar(w, scalar)) return 0;
            continue;
        }
        default: return 0;
        }
        if (!emit_escaped_byte(w, decoded)) return 0;
    }
    return emit_byte(w, '"');
}
static int write_number(writer *w, size_t index, size_t end) {
    const uint8_t *bytes = w->input;
    size_t cursor = index;
    if (bytes[cursor] == '-') cursor++;
    size_t digits = cursor;
    if (cursor >= end || bytes[cursor] < '0' || bytes[cursor] > '9') return 0;
    if (bytes[cursor] == '0' && cursor + 1 < end && bytes[cursor + 1] >= '0' && bytes[cursor + 1] <= '9') return 0;
    while (cursor < end && bytes[cursor] >= '0' && bytes[cursor] <= '9') cursor++;
    if (cursor == end) {
        if (end - digits > 15) return 0;
        // -0 is 0.
        if (end - index == 2 && bytes[index] == '-' && bytes[digits] == '0') return emit_byte(w, '0');
        return emit(w, bytes + index, end - index);
    }
    if (bytes[cursor] != '.') return 0;
    size_t point = cursor++;
    if (cursor >= end) return 0;
    while (cursor < end && bytes[cursor] >= '0' && bytes[cursor] <= '9') cursor++;
    if (cursor != end || cursor == point + 1) return 0;
    // Trailing fraction zeros dropped (2.0 is 2).
    size_t last = end;
    while (last > point + 1 && bytes[last - 1] == '0') last--;
    if (last == point + 1) last = point;
    size_t first = digits;
    while (first < last && (bytes[first] == '0' || first == point)) first++;
    if (first < last) {
        size_t significant = 0;
        for (size_t at = first; at < last; at++) significant += at != point;
        if (significant > 15) return 0;
        if (first > point && first - point - 1 >= 4) return 0;
        return emit(w, bytes + index, last - index);
    }
    // A zero: -0.0 is 0.
    return emit(w, bytes + digits, last - digits);
}

// MARK: Reading

static uint32_t new_node(writer *w, uint32_t kind, size_t start) {
    if (w->node_count == w->node_capacity) {
        uint32_t capacity = 2 * w->node_capacity;
        node *grown;
        if (w->nodes_on_heap) {
            grown = realloc(w->nodes, capacity * sizeof(node));
        } else {
            grown = malloc(capacity * sizeof(node));
            if (grown != NULL) memcpy(grown, w->nodes, w->node_count * sizeof(node));
        }
        if (grown == NULL) return NONE;
        w->nodes = grown;
        w->node_capacity = capacity;
        w->nodes_on_heap = 1;
    }
    uint32_t index = w->node_count++;
    w->nodes[index] = (node){kind, (uint32_t)start, 0, 0, 0, NONE, NONE};
    return index;
}

// Reads the value at `index` into a node; returns it, or NONE. `*end` is the index after it.
static uint32_t read_value(writer *w, size_t index, int depth, size_t *end) {
    if (depth > MAX_DEPTH || index >= w->count) return NONE;
    uint8_t opening = w->input[index];
    uint32_t kind = opening == '{' ? OBJECT
        : opening == '[' ? ARRAY
        : opening == '"' ? STRING
        : (opening == 't' || opening == 'f' || opening == 'n') ? LITERAL
        : NUMBER;
    uint32_t made = new_node(w, kind, index);
    if (made == NONE) return NONE;
    size_t cursor;
    if (kind == OBJECT || kind == ARRAY) {
        uint8_t close = kind == OBJECT ? '}' : ']';
        uint32_t last = NONE;
        cursor = skip_space(w, index + 1);
        if (cursor >= w->count) return NONE;
        if (w->input[cursor] != close) {
            for (;;) {
                size_t key = 0, key_end = 0;
                if (kind == OBJECT) {
                    if (cursor >= w->count || w->input[cursor] != '"') return NONE;
                    key_end = string_end(w, cursor);
                    if (key_end == 0 || has_escape(w->input, cursor + 1, key_end - 1)) return NONE;
                    key = cursor + 1;
                    cursor = skip_space(w, key_end);
                    if (cursor >= w->count || w->input[cursor] != ':') return NONE;
                    cursor = skip_space(w, cursor + 1);
                }
                size_t value_end;
                uint32_t child = read_value(w, cursor, depth + 1, &value_end);
                if (child == NONE) return NONE;
                w->nodes[child].key_start = (uint32_t)key;
                w->nodes[child].key_end = kind == OBJECT ? (uint32_t)(key_end - 1) : 0;
                if (last == NONE) w->nodes[made].first_child = child;
                else w->nodes[last].next_sibling = child;
                last = child;
                cursor = skip_space(w, value_end);
                if (cursor >= w->count) return NONE;
                if (w->input[cursor] == close) break;
                if (w->input[cursor] != ',') return NONE;
                cursor = skip_space(w, cursor + 1);
            }
        }
        cursor += 1;
    } else if (kind == STRING) {
        cursor = string_end(w, index);
        if (cursor == 0) return NONE;
    } else {
        cursor = index;
        while (cursor < w->count) {
            uint8_t byte = w->input[cursor];
            if (byte == ',' || byte == '}' || byte == ']' || byte == 0x20 || byte == 0x09 || byte == 0x0A
                || byte == 0x0D)
                break;
            cursor++;
        }
        if (cursor == index) return NONE;
    }
    w->nodes[made].end = (uint32_t)cursor;
    *end = cursor;
    return made;
}

// MARK: Writing

static int key_is(const writer *w, const node *n, const char *name, size_t length) {
    return n->key_end - n->key_start == length && memcmp(w->input + n->key_start, name, length) == 0;
}

static int order(const writer *w, const node *a, const node *b) {
    size_t a_length = a->key_end - a->key_start;
    size_t b_length = b->key_end - b->key_start;
    size_t common = a_length < b_length ? a_length : b_length;
    int result = common > 0 ? memcmp(w->input + a->key_start, w->input + b->key_start, common) : 0;
    if (result != 0) return result;
    return a_length < b_length ? -1 : (a_length > b_length ? 1 : 0);
}

// Sorts `count` members by key, stably (equal keys keep their order): by insertion when few,
// else by merging (an object of many members is not quadratic). `scratch` holds `count`.
static void sort_members(const writer *w, uint32_t *members, uint32_t *scratch, size_t count) {
    if (count <= LOCAL_MEMBERS) {
        for (size_t at = 1; at < count; at++) {
            uint32_t moving = members[at];
            size_t position = at;
            while (position > 0 && order(w, &w->nodes[moving], &w->nodes[members[position - 1]]) < 0) {
                members[position] = members[position - 1];
                position--;
            }
            members[position] = moving;
        }
        return;
    }
    uint32_t *from = members, *to = scratch;
    for (size_t width = 1; width < count; width *= 2) {
        for (size_t left = 0; left < count; left += 2 * width) {
            size_t middle = left + width < count ? left + width : count;
            size_t right = left + 2 * width < count ? left + 2 * width : count;
            size_t i = left, j = middle, k = left;
            while (i < middle && j < right) {
                to[k++] = order(w, &w->nodes[from[j]], &w->nodes[from[i]]) < 0 ? from[j++] : from[i++];
            }
            while (i < middle) to[k++] = from[i++];
            while (j < right) to[k++] = from[j++];
        }
        uint32_t *swap = from;
        from = to;
        to = swap;
    }
    if (from != members) memcpy(members, from, count * sizeof(uint32_t));
}

// The object's members sorted by key, the last of a repeated key kept, in `local` (which holds
// `LOCAL_MEMBERS`) or, for more, in an allocated array the caller frees.
static uint32_t *sorted_members(const writer *w, uint32_t object, uint32_t *local, size_t *count) {
    size_t total = 0;
    for (uint32_t child = w->nodes[object].first_child; child != NONE; child = w->nodes[child].next_sibling) total++;
    uint32_t *members = local;
    uint32_t *scratch = NULL;
    if (total > LOCAL_MEMBERS) {
        members = malloc(2 * total * sizeof(uint32_t));
        if (members == NULL) return NULL;
        scratch = members + total;
    }
    size_t filled = 0;
    for (uint32_t child = w->nodes[object].first_child; child != NONE; child = w->nodes[child].next_sibling) {
        members[filled++] = child;
    }
    sort_members(w, members, scratch, filled);
    size_t kept = 0;
    for (size_t at = 0; at < filled; at++) {
        if (kept > 0 && order(w, &w->nodes[members[kept - 1]], &w->nodes[members[at]]) == 0) {
            members[kept - 1] = members[at];
        } else {
            members[kept++] = members[at];
        }
    }
    *count = kept;
    return members;
}

static int write_node(writer *w, uint32_t index);

// Writes the node to the prompt and the marker in its place.
static int write_mask(writer *w, uint32_t index) {
    size_t start = w->output_length;
    if (!write_node(w, index)) return 0;
    size_t length = w->output_length - start;
    if (w->prompt_length != SIZE_MAX) return 0;
    memcpy(w->prompt, w->output + start, length);
    w->prompt_length = length;
    w->output_length = start;
    return emit_byte(w, SIDECAR_CANONICAL_PROMPT_MARKER);
}

static int write_key(writer *w, const node *n) {
    return emit_byte(w, '"') && emit(w, w->input + n->key_start, n->key_end - n->key_start)
        && emit(w, (const uint8_t *)"\":", 2);
}

// Writes an object, its member `mask_key` (if any) masked.
static int write_object(writer *w, uint32_t object, const char *mask_key, size_t mask_length) {
    uint32_t local[LOCAL_MEMBERS];
    size_t count;
    uint32_t *members = sorted_members(w, object, local, &count);
    if (members == NULL) return 0;
    int ok = emit_byte(w, '{');
    for (size_t at = 0; ok && at < count; at++) {
        const node *member = &w->nodes[members[at]];
        ok = (at == 0 || emit_byte(w, ',')) && write_key(w, member);
        if (!ok) break;
        if (mask_key != NULL && key_is(w, member, mask_key, mask_length)) {
            ok = write_mask(w, members[at]);
        } else {
            ok = write_node(w, members[at]);
        }
    }
    if (members != local) free(members);
    return ok && emit_byte(w, '}');
}

static int write_node(writer *w, uint32_t index) {
    const node *n = &w->nodes[index];
    switch (n->kind) {
    case OBJECT: return write_object(w, index, NULL, 0);
    case ARRAY: {
        if (!emit_byte(w, '[')) return 0;
        for (uint32_t child = n->first_child; child != NONE; child = w->nodes[child].next_sibling) {
            if (child != n->first_child && !emit_byte(w, ',')) return 0;
            if (!write_node(w, child)) return 0;
        }
        return emit_byte(w, ']');
    }
    case STRING: return write_string(w, n->start, n->end);
    case LITERAL: {
        size_t length = n->end - n->start;
        const uint8_t *bytes = w->input + n->start;
        int known = (length == 4 && (memcmp(bytes, "true", 4) == 0 || memcmp(bytes, "null", 4) == 0))
            || (length == 5 && memcmp(bytes, "false", 5) == 0);
        return known && emit(w, bytes, length);
    }
    default: return write_number(w, n->start, n->end);
    }
}

// The `messages` array, the last `user` message's `content` masked.
static int write_messages(writer *w, uint32_t array) {
    // The last element whose `role` (the last, if repeated) is the plain string "user".
    uint32_t last_user = NONE;
    for (uint32_t element = w->nodes[array].first_child; element != NONE; element = w->nodes[element].next_sibling) {
        if (w->nodes[element].kind != OBJECT) continue;
        uint32_t role = NONE;
        for (uint32_t m = w->nodes[element].first_child; m != NONE; m = w->nodes[m].next_sibling) {
            if (key_is(w, &w->nodes[m], "role", 4)) role = m;
        }
        if (role == NONE || w->nodes[role].kind != STRING) continue;
        const node *value = &w->nodes[role];
        if (has_escape(w->input, value->start + 1, value->end - 1)) return 0;
        if (value->end - value->start == 6 && memcmp(w->input + value->start, "\"user\"", 6) == 0) last_user = element;
    }
    if (!emit_byte(w, '[')) return 0;
    for (uint32_t element = w->nodes[array].first_child; element != NONE; element = w->nodes[element].next_sibling) {
        if (element != w->nodes[array].first_child && !emit_byte(w, ',')) return 0;
        int ok = element == last_user ? write_object(w, element, "content", 7) : write_node(w, element);
        if (!ok) return 0;
    }
    return emit_byte(w, ']');
}

// Whether the member's key is in `names` (each name a length byte, then its bytes).
static int is_named(const writer *w, const node *member, const uint8_t *names, size_t length) {
    size_t at = 0;
    while (at < length) {
        size_t name_length = names[at];
        if (at + 1 + name_length > length) return 0;
        if (member->key_end - member->key_start == name_length
            && memcmp(w->input + member->key_start, names + at + 1, name_length) == 0)
            return 1;
        at += 1 + name_length;
    }
    return 0;
}

static int write_top_level(writer *w, uint32_t object, const uint8_t *dropping, size_t dropping_length,
                           int mask_prompt, sidecar_canonical_json_result *result) {
    uint32_t local[LOCAL_MEMBERS];
    size_t count;
    uint32_t *members = sorted_members(w, object, local, &count);
    if (members == NULL) return 0;
    int has_messages = 0;
    for (size_t at = 0; at < count; at++) {
        const node *member = &w->nodes[members[at]];
        if (member->kind == ARRAY && key_is(w, member, "messages", 8)) has_messages = 1;
    }
    int ok = emit_byte(w, '{');
    size_t written = 0;
    for (size_t at = 0; ok && at < count; at++) {
        const node *member = &w->nodes[members[at]];
        if (is_named(w, member, dropping, dropping_length)) continue;
        ok = (written++ == 0 || emit_byte(w, ',')) && write_key(w, member);
        if (!ok) break;
        if (mask_prompt && member->kind == ARRAY && key_is(w, member, "messages", 8)) {
            ok = write_messages(w, members[at]);
        } else if (mask_prompt && !has_messages && member->kind == STRING && key_is(w, member, "prompt", 6)) {
            ok = write_mask(w, members[at]);
        } else {
            ok = write_node(w, members[at]);
            if (key_is(w, member, "n", 1)) {
                result->n_start = member->start;
                result->n_end = member->end;
            } else if (key_is(w, member, "temperature", 11)) {
                result->temperature_start = member->start;
                result->temperature_end = member->end;
            }
        }
    }
    if (members != local) free(members);
    return ok && emit_byte(w, '}');
}

int sidecar_canonical_json(const uint8_t *input, size_t count, const uint8_t *dropping, size_t dropping_length,
                           int mask_prompt, uint8_t *output, size_t output_capacity, uint8_t *prompt,
                           sidecar_canonical_json_result *result) {
    *result = (sidecar_canonical_json_result){0};
    if (count >= UINT32_MAX) return GIVE_UP;
    node local[LOCAL_NODES];
    writer w = {
        .input = input,
        .count = count,
        .nodes = local,
        .node_capacity = LOCAL_NODES,
        .output = output,
        .output_capacity = output_capacity,
        .prompt = prompt,
        .prompt_length = SIZE_MAX,
    };
    size_t start = skip_space(&w, 0);
    size_t end = 0;
    uint32_t root = start < count && input[start] == '{' ? read_value(&w, start, 0, &end) : NONE;
    int ok = root != NONE && skip_space(&w, end) == count
        && write_top_level(&w, root, dropping, dropping_length, mask_prompt && prompt != NULL, result);
    if (w.nodes_on_heap) free(w.nodes);
    if (!ok) return GIVE_UP;
    result->output_length = w.output_length;
    result->masked = w.prompt_length != SIZE_MAX;
    result->prompt_length = result->masked ? w.prompt_length : 0;
    return 1;
}
