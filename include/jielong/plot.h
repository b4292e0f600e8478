/* SVG line plots: one or more named (x, y) series with axes, nice-number ticks, grid, legend, title and axis
 * labels; optional log-scale y and moving-average smoothing of dense series (the raw curve stays visible, faint,
 * under the smoothed one; the ends are never moved; sparse series are drawn raw with a marker per point).
 * Used by `jielong plot` and the evaluation report. */
#ifndef JIELONG_PLOT_H
#define JIELONG_PLOT_H
#include "jielong/common.h"
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *title;   /* NULL or "": none */
    const char *x_label;
    const char *y_label;
    int width, height;   /* pixels; 0 → 760 × 440 */
    int log_y;           /* log10 y axis; points with y <= 0 are left out */
    int smooth;          /* centred moving-average window in points for series of ≥ 3 windows; 0 or 1: none */
} jl_plot_options;

typedef struct jl_plot jl_plot;

/* Copies the options (and their strings). */
jl_status jl_plot_new(const jl_plot_options *opt, jl_plot **out);
/* Copies the points; points with a non-finite x or y are left out. Names must be non-empty. */
jl_status jl_plot_add(jl_plot *p, const char *name, int64_t n, const double *x, const double *y);
/* Renders to a malloc'd NUL-terminated SVG document. JL_ERR_ARG when no series has a point to draw. */
jl_status jl_plot_svg(const jl_plot *p, char **svg, size_t *len);
/* Renders and writes atomically. */
jl_status jl_plot_write(const jl_plot *p, const char *path);
void jl_plot_free(jl_plot *p);

#endif
