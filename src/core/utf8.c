#include "core/utf8.h"
#include <string.h>

size_t jl_utf8_decode(const char *s, size_t len, uint32_t *cp) {
    if (len == 0) return 0;
    const unsigned char *u = (const unsigned char *)s;
    *cp = JL_UTF8_INVALID;
    size_t need;
    uint32_t v, min;
    if (u[0] < 0x80) { *cp = u[0]; return 1; }
    else if ((u[0] & 0xE0) == 0xC0) { need = 2; v = u[0] & 0x1F; min = 0x80; }
    else if ((u[0] & 0xF0) == 0xE0) { need = 3; v = u[0] & 0x0F; min = 0x800; }
    else if ((u[0] & 0xF8) == 0xF0) { need = 4; v = u[0] & 0x07; min = 0x10000; }
    else return 1;
    if (len < need) return 1;
    for (size_t i = 1; i < need; i++) {
        if ((u[i] & 0xC0) != 0x80) return 1;
        v = (v << 6) | (u[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 1;
    *cp = v;
    return need;
}

size_t jl_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t jl_utf8_count(const char *s) {
    size_t len = strlen(s), n = 0;
    uint32_t cp;
    for (size_t i = 0; i < len; n++) i += jl_utf8_decode(s + i, len - i, &cp);
    return n;
}

size_t jl_utf8_offset(const char *s, size_t n) {
    size_t len = strlen(s), i = 0;
    uint32_t cp;
    while (n-- > 0 && i < len) i += jl_utf8_decode(s + i, len - i, &cp);
    return i;
}

int jl_is_han(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
           (cp >= 0x20000 && cp <= 0x323AF) || cp == 0x3007;
}
