/* SVG line plots (see include/jielong/plot.h). */
#include "jielong/plot.h"
#include "io/fileio.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    int64_t n;
    double *x, *y;
} plot_series;

struct jl_plot {
    char *title, *x_label, *y_label;
    int width, height, log_y, smooth;
    plot_series *series;
    int n_series;
};

/* Distinct colours that stay readable on white (the usual "category 10" set). */
static const char *palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define N_COLORS ((int)(sizeof palette / sizeof palette[0]))

enum { MARGIN_LEFT = 72, MARGIN_RIGHT = 24, MARGIN_TOP = 44, MARGIN_BOTTOM = 52, FONT = 12 };

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

jl_status jl_plot_new(const jl_plot_options *opt, jl_plot **out) {
    *out = NULL;
    jl_plot *p = calloc(1, sizeof *p);
    if (!p) return jl_fail(JL_ERR_NOMEM, "plot: out of memory");
    p->title = dup_or_empty(opt->title);
    p->x_label = dup_or_empty(opt->x_label);
    p->y_label = dup_or_empty(opt->y_label);
    p->width = opt->width > 0 ? opt->width : 760;
    p->height = opt->height > 0 ? opt->height : 440;
    p->log_y = opt->log_y;
    p->smooth = opt->smooth > 1 ? opt->smooth : 1;
    if (!p->title || !p->x_label || !p->y_label) {
        jl_plot_free(p);
        return jl_fail(JL_ERR_NOMEM, "plot: out of memory");
    }
    if (p->width < 200 || p->height < 150 || p->width > 10000 || p->height > 10000) {
        jl_plot_free(p);
        return jl_fail(JL_ERR_ARG, "plot: size %dx%d outside 200x150 .. 10000x10000", opt->width, opt->height);
    }
    *out = p;
    return JL_OK;
}

void jl_plot_free(jl_plot *p) {
    if (!p) return;
    for (int i = 0; i < p->n_series; i++) {
        free(p->series[i].name);
        free(p->series[i].x);
        free(p->series[i].y);
    }
    free(p->series);
    free(p->title);
    free(p->x_label);
    free(p->y_label);
    free(p);
}

jl_status jl_plot_add(jl_plot *p, const char *name, int64_t n, const double *x, const double *y) {
    if (!name || !*name) return jl_fail(JL_ERR_ARG, "plot: a series needs a name");
    if (n < 0) return jl_fail(JL_ERR_ARG, "plot: series '%s': negative length", name);
    plot_series *grown = realloc(p->series, sizeof *grown * (size_t)(p->n_series + 1));
    if (!grown) return jl_fail(JL_ERR_NOMEM, "plot: out of memory");
    p->series = grown;
    plot_series *s = &p->series[p->n_series];
    memset(s, 0, sizeof *s);
    s->name = strdup(name);
    s->x = malloc(sizeof(double) * (size_t)(n + 1));
    s->y = malloc(sizeof(double) * (size_t)(n + 1));
    if (!s->name || !s->x || !s->y) {
        free(s->name);
        free(s->x);
        free(s->y);
        return jl_fail(JL_ERR_NOMEM, "plot: out of memory");
    }
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) continue;
        s->x[s->n] = x[i];
        s->y[s->n] = y[i];
        s->n++;
    }
    p->n_series++;
    return JL_OK;
}

/* ------------------------------------------------------------------------------------------ text building */

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *sb, const char *fmt, ...) {
    if (sb->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            sb->failed = 1;
            return;
        }
        if ((size_t)n < sb->cap - sb->len) {
            sb->len += (size_t)n;
            return;
        }
        size_t cap = (sb->cap + (size_t)n + 1) * 2;
        char *b = realloc(sb->buf, cap);
        if (!b) {
            sb->failed = 1;
            return;
        }
        sb->buf = b;
        sb->cap = cap;
    }
}

/* Text content or attribute value with the XML specials escaped. */
static void sb_escaped(strbuf *sb, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_printf(sb, "&amp;"); break;
        case '<': sb_printf(sb, "&lt;"); break;
        case '>': sb_printf(sb, "&gt;"); break;
        case '"': sb_printf(sb, "&quot;"); break;
        case '\'': sb_printf(sb, "&apos;"); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t') sb_printf(sb, "%c", *s); /* XML 1.0 forbids other controls */
        }
    }
}

/* ------------------------------------------------------------------------------------------------ scales */

/* A "nice" number (1, 2, 5 × 10^k) near `range`: rounded to nearest, or the next one up (Heckbert). */
static double nice_number(double range, int round_it) {
    double exponent = floor(log10(range)), fraction = range / pow(10, exponent), nice;
    if (round_it) nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
    else nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
    return nice * pow(10, exponent);
}

typedef struct {
    double lo, hi;      /* axis range (data space; log10 of it for a log axis) */
    int log;
    double ticks[64];
    int n_ticks;
    double step;        /* tick spacing (linear axes), for label precision */
} axis;

/* Linear axis from data range: extend to whole tick steps, about `want` ticks. */
static void linear_axis(axis *a, double lo, double hi, int want) {
    if (hi - lo < 1e-12 * (fabs(lo) + fabs(hi)) || hi == lo) { /* one value: give it some room */
        double pad = lo == 0 ? 1 : fabs(lo) * 0.1;
        lo -= pad;
        hi += pad;
    }
    double step = nice_number(nice_number(hi - lo, 0) / (want - 1), 1);
    a->lo = floor(lo / step) * step;
    a->hi = ceil(hi / step) * step;
    a->step = step;
    a->log = 0;
    a->n_ticks = 0;
    for (int k = 0; a->lo + k * step <= a->hi + step * 0.5 && a->n_ticks < 64; k++) {
        double t = a->lo + k * step; /* multiply, not accumulate: no drift */
        a->ticks[a->n_ticks++] = fabs(t) < step * 1e-9 ? 0 : t;
    }
}

/* log10 of the nearest 1, 2 or 5 × 10^k at or below (down) / at or above (!down) v. */
static double log_bound(double v, int down) {
    static const double mantissas[] = {1, 2, 5, 10};
    double decade = floor(log10(v)), best = down ? decade : decade + 1;
    for (int i = 0; i < 4; i++) {
        double c = decade + log10(mantissas[i]);
        if (down && c <= log10(v) + 1e-12) best = c;
        if (!down && c >= log10(v) - 1e-12) return c;
    }
    return best;
}

/* Log axis from 1/2/5 × 10^k bounds: the decades (at most ~8 labels), with the 2× and 5× marks as well when the
 * range is narrow. Works in log10 space. */
static void log_axis(axis *a, double lo, double hi) {
    a->lo = log_bound(lo, 1);
    a->hi = log_bound(hi, 0);
    if (a->hi <= a->lo) a->hi = a->lo + 1;
    a->log = 1;
    a->n_ticks = 0;
    int fine = a->hi - a->lo <= 2.5, stride = (int)ceil((a->hi - a->lo) / 8);
    for (double d = floor(a->lo); d <= a->hi + 1e-9 && a->n_ticks < 60; d += 1) {
        const double marks[] = {0, log10(2), log10(5)};
        for (int m = 0; m < (fine ? 3 : 1); m++) {
            double t = d + marks[m];
            if (t < a->lo - 1e-9 || t > a->hi + 1e-9) continue;
            if (!fine && (int)(d - floor(a->lo)) % stride != 0) continue;
            a->ticks[a->n_ticks++] = t;
        }
    }
}

/* Tick label: plain numbers with as many decimals as the spacing needs; k/M/G for large ones. */
static void tick_label(const axis *a, double t, char *buf, size_t size) {
    if (a->log) {
        double v = pow(10, t);
        snprintf(buf, size, "%g", v);
        return;
    }
    double biggest = fmax(fabs(a->lo), fabs(a->hi)), scale = 1;
    const char *suffix = "";
    if (biggest >= 1e9) scale = 1e9, suffix = "G";
    else if (biggest >= 1e6) scale = 1e6, suffix = "M";
    else if (biggest >= 1e4) scale = 1e3, suffix = "k";
    int decimals = (int)fmax(0, -floor(log10(a->step / scale) + 1e-9));
    if (decimals > 8) {
        snprintf(buf, size, "%.2g", t);
        return;
    }
    if (t == 0) snprintf(buf, size, "0");
    else snprintf(buf, size, "%.*f%s", decimals, t / scale, suffix);
}

/* ------------------------------------------------------------------------------------------------ drawing */

typedef struct {
    double x0, y0, w, h; /* plot area in pixels */
    axis ax, ay;
} frame;

static double px(const frame *f, double x) { return f->x0 + (x - f->ax.lo) / (f->ax.hi - f->ax.lo) * f->w; }
static double py(const frame *f, double y) {
    double v = f->ay.log ? log10(y) : y;
    return f->y0 + f->h - (v - f->ay.lo) / (f->ay.hi - f->ay.lo) * f->h;
}

static int usable(const jl_plot *p, double y) { return !p->log_y || y > 0; }

/* Trailing moving average over the usable points (window w); returns a new array with the same indexing. */
/* Centred moving average over the usable points: point k of m averages points k−h..k+h with
 * h = min(w/2, k, m−1−k), so the window shrinks at both ends and the first and last points stay where they are
 * (a trailing average would end above a falling curve's last value). Unusable points keep their value. */
static double *moving_average(const jl_plot *p, const plot_series *s, int w) {
    double *out = malloc(sizeof(double) * (size_t)(s->n + 1));
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(s->n + 1)), m = 0;
    double *prefix = malloc(sizeof(double) * (size_t)(s->n + 2));
    if (!out || !idx || !prefix) {
        free(out);
        free(idx);
        free(prefix);
        return NULL;
    }
    prefix[0] = 0;
    for (int64_t i = 0; i < s->n; i++) {
        out[i] = s->y[i];
        if (!usable(p, s->y[i])) continue;
        idx[m] = i;
        prefix[m + 1] = prefix[m] + s->y[i];
        m++;
    }
    for (int64_t k = 0; k < m; k++) {
        int64_t h = w / 2;
        if (h > k) h = k;
        if (h > m - 1 - k) h = m - 1 - k;
        out[idx[k]] = (prefix[k + h + 1] - prefix[k - h]) / (double)(2 * h + 1);
    }
    free(idx);
    free(prefix);
    return out;
}

/* A series is smoothed only when it is dense: at least three windows of usable points. Sparse series (held-out
 * loss every few hundred steps) are drawn as they are, with a marker on every point. */
static int dense_enough(const jl_plot *p, const plot_series *s) {
    int64_t m = 0;
    for (int64_t i = 0; i < s->n; i++) m += usable(p, s->y[i]);
    return m >= 3 * (int64_t)p->smooth;
}

#define MARKER_MAX 80 /* series with at most this many points get a marker on each */

static void draw_markers(strbuf *sb, const jl_plot *p, const frame *f, const plot_series *s, const char *color) {
    sb_printf(sb, "<g class=\"points\" data-name=\"");
    sb_escaped(sb, s->name);
    sb_printf(sb, "\" fill=\"%s\">", color);
    for (int64_t i = 0; i < s->n; i++)
        if (usable(p, s->y[i])) sb_printf(sb, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>", px(f, s->x[i]), py(f, s->y[i]));
    sb_printf(sb, "</g>\n");
}

/* Path data for one curve. With many more points than pixels, keeps per pixel column the first, lowest,
 * highest and last point (in order), so spikes stay visible and the file stays small. */
static void draw_curve(strbuf *sb, const jl_plot *p, const frame *f, const plot_series *s, const double *y,
                       const char *cls, const char *color, double width, double opacity) {
    sb_printf(sb, "<path class=\"%s\" data-name=\"", cls);
    sb_escaped(sb, s->name);
    sb_printf(sb, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-opacity=\"%.2f\" "
                  "stroke-linejoin=\"round\" d=\"",
              color, width, opacity);
    int pen_down = 0;
    int64_t i = 0;
    while (i < s->n) {
        if (!usable(p, y[i])) { i++; continue; }
        double col = floor(px(f, s->x[i]));
        int64_t lo = i, hi = i, last = i, j = i + 1; /* gather this pixel column's run of points */
        while (j < s->n && floor(px(f, s->x[j])) == col) {
            if (usable(p, y[j])) {
                if (y[j] < y[lo]) lo = j;
                if (y[j] > y[hi]) hi = j;
                last = j;
            }
            j++;
        }
        int64_t keep[4] = {i, lo < hi ? lo : hi, lo < hi ? hi : lo, last};
        for (int k = 0; k < 4; k++) {
            if (k > 0 && keep[k] == keep[k - 1]) continue;
            sb_printf(sb, "%s%.1f %.1f", pen_down ? " L" : "M", px(f, s->x[keep[k]]), py(f, y[keep[k]]));
            pen_down = 1;
        }
        i = j;
    }
    sb_printf(sb, "\"/>\n");
}

static void draw_axes(strbuf *sb, const jl_plot *p, const frame *f) {
    char label[64];
    sb_printf(sb, "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n");
    for (int i = 0; i < f->ay.n_ticks; i++) {
        double y = f->y0 + f->h - (f->ay.ticks[i] - f->ay.lo) / (f->ay.hi - f->ay.lo) * f->h;
        sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", f->x0, y, f->x0 + f->w, y);
    }
    for (int i = 0; i < f->ax.n_ticks; i++) {
        double x = px(f, f->ax.ticks[i]);
        sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x, f->y0, x, f->y0 + f->h);
    }
    sb_printf(sb, "</g>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n",
              f->x0, f->y0, f->w, f->h);
    sb_printf(sb, "<g class=\"ticks\" font-size=\"%d\" fill=\"#333\">\n", FONT - 1);
    for (int i = 0; i < f->ay.n_ticks; i++) {
        double y = f->y0 + f->h - (f->ay.ticks[i] - f->ay.lo) / (f->ay.hi - f->ay.lo) * f->h;
        tick_label(&f->ay, f->ay.ticks[i], label, sizeof label);
        sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", f->x0 - 6, y + FONT * 0.3,
                  label);
    }
    for (int i = 0; i < f->ax.n_ticks; i++) {
        tick_label(&f->ax, f->ax.ticks[i], label, sizeof label);
        sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", px(f, f->ax.ticks[i]),
                  f->y0 + f->h + 16, label);
    }
    sb_printf(sb, "</g>\n");
    if (*p->title) {
        sb_printf(sb, "<text class=\"title\" x=\"%.1f\" y=\"26\" text-anchor=\"middle\" font-size=\"%d\" "
                      "font-weight=\"bold\">", f->x0 + f->w / 2, FONT + 3);
        sb_escaped(sb, p->title);
        sb_printf(sb, "</text>\n");
    }
    if (*p->x_label) {
        sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", f->x0 + f->w / 2, f->y0 + f->h + 38);
        sb_escaped(sb, p->x_label);
        sb_printf(sb, "</text>\n");
    }
    if (*p->y_label) {
        double cy = f->y0 + f->h / 2;
        sb_printf(sb, "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 18 %.1f)\">", cy, cy);
        sb_escaped(sb, p->y_label);
        sb_printf(sb, "</text>\n");
    }
}

/* Legend box in the top-right corner of the plot area (training curves fall, so that corner is usually free). */
static void draw_legend(strbuf *sb, const jl_plot *p, const frame *f) {
    size_t longest = 0;
    for (int i = 0; i < p->n_series; i++) {
        size_t chars = 0; /* count characters, not UTF-8 bytes; wide scripts are estimated by the same width */
        for (const unsigned char *c = (const unsigned char *)p->series[i].name; *c; c++) chars += (*c & 0xC0) != 0x80;
        if (chars > longest) longest = chars;
    }
    double row = FONT + 6, w = 36 + (double)longest * FONT * 0.62, h = row * p->n_series + 8;
    double x = f->x0 + f->w - w - 8, y = f->y0 + 8;
    sb_printf(sb, "<g class=\"legend\" font-size=\"%d\">\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                  "fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\" rx=\"3\"/>\n",
              FONT, x, y, w, h);
    for (int i = 0; i < p->n_series; i++) {
        double cy = y + 4 + row * i + row / 2;
        sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"/>\n",
                  x + 8, cy, x + 28, cy, palette[i % N_COLORS]);
        sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\">", x + 34, cy + FONT * 0.35);
        sb_escaped(sb, p->series[i].name);
        sb_printf(sb, "</text>\n");
    }
    sb_printf(sb, "</g>\n");
}

/* Data range over all usable points; returns how many there are. */
static int64_t data_range(const jl_plot *p, double *xlo, double *xhi, double *ylo, double *yhi) {
    int64_t count = 0;
    *xlo = *ylo = INFINITY;
    *xhi = *yhi = -INFINITY;
    for (int i = 0; i < p->n_series; i++)
        for (int64_t j = 0; j < p->series[i].n; j++) {
            double x = p->series[i].x[j], y = p->series[i].y[j];
            if (!usable(p, y)) continue;
            *xlo = fmin(*xlo, x), *xhi = fmax(*xhi, x), *ylo = fmin(*ylo, y), *yhi = fmax(*yhi, y);
            count++;
        }
    return count;
}

jl_status jl_plot_svg(const jl_plot *p, char **svg, size_t *len) {
    *svg = NULL;
    *len = 0;
    double xlo, xhi, ylo, yhi;
    if (data_range(p, &xlo, &xhi, &ylo, &yhi) == 0)
        return jl_fail(JL_ERR_ARG, "plot: no %spoints to draw", p->log_y ? "positive " : "");
    frame f;
    f.x0 = MARGIN_LEFT;
    f.y0 = MARGIN_TOP;
    f.w = p->width - MARGIN_LEFT - MARGIN_RIGHT;
    f.h = p->height - MARGIN_TOP - MARGIN_BOTTOM;
    linear_axis(&f.ax, xlo, xhi, 7);
    if (p->log_y) log_axis(&f.ay, ylo, yhi);
    else { /* a little room so curves do not run along the frame, but never pad non-negative data below 0 */
        double pad = (yhi - ylo) * 0.03, padded_lo = ylo >= 0 && ylo - pad < 0 ? 0 : ylo - pad;
        linear_axis(&f.ay, padded_lo, yhi + pad, 6);
    }

    strbuf sb = {0};
    sb_printf(&sb, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                   "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"%d\">\n"
                   "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                   "<defs><clipPath id=\"plot-area\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>"
                   "</clipPath></defs>\n",
              p->width, p->height, p->width, p->height, FONT, f.x0, f.y0, f.w, f.h);
    draw_axes(&sb, p, &f);
    sb_printf(&sb, "<g clip-path=\"url(#plot-area)\">\n");
    jl_status st = JL_OK;
    for (int i = 0; i < p->n_series && st == JL_OK; i++) {
        const plot_series *s = &p->series[i];
        const char *color = palette[i % N_COLORS];
        int64_t points = 0;
        for (int64_t j = 0; j < s->n; j++) points += usable(p, s->y[j]);
        if (p->smooth <= 1 || !dense_enough(p, s)) {
            draw_curve(&sb, p, &f, s, s->y, "series", color, 2.0, 1.0);
            if (points <= MARKER_MAX) draw_markers(&sb, p, &f, s, color);
            continue;
        }
        double *smoothed = moving_average(p, s, p->smooth);
        if (!smoothed) {
            st = jl_fail(JL_ERR_NOMEM, "plot: out of memory");
            break;
        }
        draw_curve(&sb, p, &f, s, s->y, "series-raw", color, 1.0, 0.25);
        draw_curve(&sb, p, &f, s, smoothed, "series", color, 2.0, 1.0);
        free(smoothed);
    }
    sb_printf(&sb, "</g>\n");
    draw_legend(&sb, p, &f);
    sb_printf(&sb, "</svg>\n");
    if (st == JL_OK && sb.failed) st = jl_fail(JL_ERR_NOMEM, "plot: out of memory");
    if (st != JL_OK) {
        free(sb.buf);
        return st;
    }
    *svg = sb.buf;
    *len = sb.len;
    return JL_OK;
}

jl_status jl_plot_write(const jl_plot *p, const char *path) {
    char *svg;
    size_t len;
    jl_status st = jl_plot_svg(p, &svg, &len);
    if (st != JL_OK) return jl_fail_context(st, "%s", path);
    st = jl_write_file_atomic(path, svg, len);
    free(svg);
    return st;
}
