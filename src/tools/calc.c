/* The calculator tool: a recursive-descent parser over exact fractions of 128-bit integers.
 *   expr  := term (('+' | '-') term)*
 *   term  := unary (('*' | '/') unary)*
 *   unary := ('-' | '+') unary | '(' expr ')' | number
 * Unicode − × ÷ and full-width （ ） are the same operators. Every overflow is an error, never a wrong value. */
#include "jielong/tools.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef __int128 i128;
typedef struct {
    i128 num, den; /* den > 0, gcd(|num|, den) == 1 */
} frac;

typedef struct {
    const char *s, *p;
    int depth;
    char err[160];
} parser;

#define CALC_MAX_DEPTH 64
#define CALC_MAX_LEN 4096

static int fail(parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser *ps, const char *fmt, ...) {
    if (ps->err[0]) return 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err, sizeof ps->err, fmt, ap);
    va_end(ap);
    return 0;
}

static i128 gcd(i128 a, i128 b) {
    if (a < 0) a = -a;
    while (b) {
        i128 t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static frac reduce(i128 num, i128 den) {
    i128 g = gcd(num, den);
    if (g > 1) {
        num /= g;
        den /= g;
    }
    return (frac){num, den};
}

static int add(parser *ps, frac a, frac b, int sign, frac *r) {
    i128 g = gcd(a.den, b.den), x, y, n, d;
    if (sign < 0) b.num = -b.num;
    if (__builtin_mul_overflow(a.num, b.den / g, &x) || __builtin_mul_overflow(b.num, a.den / g, &y) ||
        __builtin_add_overflow(x, y, &n) || __builtin_mul_overflow(a.den / g, b.den, &d))
        return fail(ps, "error: number too large");
    *r = reduce(n, d);
    return 1;
}

static int mul(parser *ps, frac a, frac b, int divide, frac *r) {
    if (divide) {
        if (b.num == 0) return fail(ps, "error: division by zero");
        i128 t = b.num < 0 ? -b.den : b.den;
        b.den = b.num < 0 ? -b.num : b.num;
        b.num = t;
    }
    i128 g1 = gcd(a.num, b.den), g2 = gcd(b.num, a.den), n, d;
    if (g1 == 0) g1 = 1;
    if (g2 == 0) g2 = 1;
    if (__builtin_mul_overflow(a.num / g1, b.num / g2, &n) || __builtin_mul_overflow(a.den / g2, b.den / g1, &d))
        return fail(ps, "error: number too large");
    *r = reduce(n, d);
    return 1;
}

static void skip_space(parser *ps) {
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ps->p++;
    if (!strncmp(ps->p, "\xe3\x80\x80", 3)) { /* ideographic space */
        ps->p += 3;
        skip_space(ps);
    }
}

/* The operator at p ('+', '-', '*', '/', '(', ')'), consuming it when take; 0 if none. */
static int peek_op(parser *ps, int take) {
    static const struct {
        const char *text;
        char op;
    } ops[] = {{"+", '+'}, {"-", '-'}, {"*", '*'}, {"/", '/'}, {"(", '('}, {")", ')'},
               {"\xe2\x88\x92", '-'}, {"\xc3\x97", '*'}, {"\xc3\xb7", '/'}, {"\xef\xbc\x88", '('},
               {"\xef\xbc\x89", ')'}, {"\xef\xbc\x8b", '+'}, {"\xef\xbc\x8d", '-'}, {"\xc2\xb7", '*'}};
    skip_space(ps);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t n = strlen(ops[i].text);
        if (!strncmp(ps->p, ops[i].text, n)) {
            if (take) ps->p += n;
            return ops[i].op;
        }
    }
    return 0;
}

static int position(const parser *ps) {
    int n = 1; /* characters, not bytes */
    for (const char *q = ps->s; q < ps->p; q++) n += ((unsigned char)*q & 0xC0) != 0x80;
    return n;
}

static int unexpected(parser *ps) {
    if (!*ps->p) return fail(ps, "error: the expression ends too early");
    int len = 1;
    while (len < 4 && ((unsigned char)ps->p[len] & 0xC0) == 0x80) len++;
    return fail(ps, "error: unexpected '%.*s' at character %d", len, ps->p, position(ps));
}

static int number(parser *ps, frac *r) {
    i128 num = 0, den = 1;
    int digits = 0, point = 0;
    for (;; ps->p++) {
        char c = *ps->p;
        if (c == '.' && !point) {
            point = 1;
            continue;
        }
        if (c < '0' || c > '9') break;
        if (++digits > 36) return fail(ps, "error: number too long (36 digits at most)");
        num = num * 10 + (c - '0');
        if (point) den *= 10;
    }
    if (digits == 0) return unexpected(ps);
    *r = reduce(num, den);
    return 1;
}

static int expr(parser *ps, frac *r);

static int unary(parser *ps, frac *r) {
    if (++ps->depth > CALC_MAX_DEPTH) return fail(ps, "error: nested deeper than %d", CALC_MAX_DEPTH);
    int op = peek_op(ps, 0), ok;
    if (op == '-' || op == '+') {
        peek_op(ps, 1);
        ok = unary(ps, r);
        if (ok && op == '-') r->num = -r->num;
    } else if (op == '(') {
        peek_op(ps, 1);
        ok = expr(ps, r);
        if (ok && peek_op(ps, 0) != ')') ok = *ps->p ? unexpected(ps) : fail(ps, "error: missing ')'");
        if (ok) peek_op(ps, 1);
    } else {
        ok = number(ps, r);
    }
    ps->depth--;
    return ok;
}

static int term(parser *ps, frac *r) {
    if (!unary(ps, r)) return 0;
    for (int op; (op = peek_op(ps, 0)) == '*' || op == '/';) {
        peek_op(ps, 1);
        frac b;
        if (!unary(ps, &b) || !mul(ps, *r, b, op == '/', r)) return 0;
    }
    return 1;
}

static int expr(parser *ps, frac *r) {
    if (!term(ps, r)) return 0;
    for (int op; (op = peek_op(ps, 0)) == '+' || op == '-';) {
        peek_op(ps, 1);
        frac b;
        if (!term(ps, &b) || !add(ps, *r, b, op == '+' ? 1 : -1, r)) return 0;
    }
    return 1;
}

/* Decimal digits of |v| into buf (reversed order undone). */
static void put_int(char *buf, size_t cap, i128 v) {
    char tmp[48];
    int n = 0, neg = v < 0;
    unsigned __int128 u = neg ? (unsigned __int128)(-(v + 1)) + 1 : (unsigned __int128)v;
    do {
        tmp[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    size_t k = 0;
    if (neg && k + 1 < cap) buf[k++] = '-';
    while (n > 0 && k + 1 < cap) buf[k++] = tmp[--n];
    buf[k] = '\0';
}

/* den has only the prime factors 2 and 5: the exact decimal expansion has at most `*places` digits. */
static int terminating(i128 den, int *places) {
    int twos = 0, fives = 0;
    while (den % 2 == 0) den /= 2, twos++;
    while (den % 5 == 0) den /= 5, fives++;
    *places = twos > fives ? twos : fives;
    return den == 1;
}

static void format_decimal(char *out, size_t cap, frac v, int places) {
    /* v.num / v.den = v.num * 10^places / den exactly; scale in i128 with an overflow check */
    i128 scaled = v.num, mult = 1;
    for (int i = 0; i < places; i++) mult *= 10;
    i128 factor = mult / v.den, q;
    if (__builtin_mul_overflow(scaled, factor, &q)) {
        snprintf(out, cap, "error: number too large");
        return;
    }
    char digits[64];
    put_int(digits, sizeof digits, q < 0 ? -q : q);
    size_t nd = strlen(digits);
    char body[96];
    size_t k = 0;
    if (q < 0) body[k++] = '-';
    if ((int)nd <= places) { /* 0.00ddd */
        body[k++] = '0';
        body[k++] = '.';
        for (int i = 0; i < places - (int)nd; i++) body[k++] = '0';
        memcpy(body + k, digits, nd);
        k += nd;
    } else {
        memcpy(body + k, digits, nd - (size_t)places);
        k += nd - (size_t)places;
        body[k++] = '.';
        memcpy(body + k, digits + nd - places, (size_t)places);
        k += (size_t)places;
    }
    body[k] = '\0';
    snprintf(out, cap, "%s", body);
}

static void format_result(char *out, size_t cap, frac v) {
    int places;
    if (v.den == 1) {
        put_int(out, cap, v.num);
    } else if (terminating(v.den, &places) && places <= 30) {
        format_decimal(out, cap, v, places);
    } else {
        char n[48], d[48];
        put_int(n, sizeof n, v.num);
        put_int(d, sizeof d, v.den);
        snprintf(out, cap, "%s/%s \xe2\x89\x88 %.12g", n, d, (double)v.num / (double)v.den);
    }
}

int jl_calc_eval(const char *text, char *out, size_t cap) {
    if (cap == 0) return 1;
    parser ps = {.s = text ? text : "", .p = text ? text : ""};
    frac v = {0, 1};
    if (strlen(ps.s) > CALC_MAX_LEN) fail(&ps, "error: expression longer than %d bytes", CALC_MAX_LEN);
    skip_space(&ps);
    if (!ps.err[0] && !*ps.p) fail(&ps, "error: empty expression");
    if (!ps.err[0] && expr(&ps, &v)) {
        skip_space(&ps);
        if (*ps.p) unexpected(&ps);
    }
    if (ps.err[0]) {
        snprintf(out, cap, "%s", ps.err);
        return 1;
    }
    format_result(out, cap, v);
    return strncmp(out, "error:", 6) == 0;
}
