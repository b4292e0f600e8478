/* Progress line on stderr (see progress.h). */
#include "cli/progress.h"
#include "core/timer.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

void cli_format_si(double v, char *buf, size_t size) {
    static const char *suffix[] = {"", "k", "M", "G", "T", "P"};
    if (!isfinite(v)) {
        snprintf(buf, size, "?");
        return;
    }
    int k = 0;
    double a = fabs(v);
    while (a >= 999.5 && k < 5) {
        a /= 1000;
        v /= 1000;
        k++;
    }
    if (k == 0 && a == floor(a)) snprintf(buf, size, "%.0f", v);
    else snprintf(buf, size, a < 9.995 ? "%.2f%s" : a < 99.95 ? "%.1f%s" : "%.0f%s", v, suffix[k]);
}

void cli_format_duration(double seconds, char *buf, size_t size) {
    if (!isfinite(seconds) || seconds < 0 || seconds > 1e8) {
        snprintf(buf, size, "?");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s < 60) snprintf(buf, size, "%lds", s);
    else if (s < 3600) snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
    else snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

static int terminal_width(void) {
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 100;
}

void cli_progress_restart(cli_progress *p, double done) {
    p->start = jl_now();
    p->base = done;
    p->done = done; /* a resumed run's first event may be its last step's evaluation: no update has come yet */
}

void cli_progress_start(cli_progress *p, const char *label, double total, const char *unit) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
    p->total = total;
    p->tty = isatty(STDERR_FILENO);
    p->min_interval = p->tty ? 0.1 : 5.0;
    p->start = p->last_draw = jl_now();
}

/* "label [#####.....]  45% 1.23k/2.70k tok  812 tok/s  0:12<0:15  extra" */
static void format_line(const cli_progress *p, double now, const char *extra, char *line, size_t size) {
    double elapsed = now - p->start, rate = elapsed > 0 && p->done > p->base ? (p->done - p->base) / elapsed : 0;
    char done[16], total[16], rate_s[16], el[16], eta[16];
    cli_format_si(p->done, done, sizeof done);
    cli_format_si(rate, rate_s, sizeof rate_s);
    cli_format_duration(elapsed, el, sizeof el);
    const char *sp = p->unit[0] ? " " : "";
    size_t n = (size_t)snprintf(line, size, "%s ", p->label);
    if (p->total > 0) {
        enum { BAR = 24 };
        double frac = p->done / p->total;
        frac = frac < 0 ? 0 : frac > 1 ? 1 : frac;
        char bar[BAR + 1];
        int filled = (int)(frac * BAR + 0.5);
        for (int i = 0; i < BAR; i++) bar[i] = i < filled ? '#' : '.';
        bar[BAR] = '\0';
        cli_format_si(p->total, total, sizeof total);
        cli_format_duration(rate > 0 ? (p->total - p->done) / rate : NAN, eta, sizeof eta);
        n += (size_t)snprintf(line + n, n < size ? size - n : 0, "[%s] %3.0f%% %s/%s%s%s  %s %s/s  %s<%s", bar,
                              frac * 100, done, total, sp, p->unit, rate_s, p->unit, el, eta);
    } else {
        n += (size_t)snprintf(line + n, n < size ? size - n : 0, "%s%s%s  %s %s/s  %s", done, sp, p->unit, rate_s,
                              p->unit, el);
    }
    if (extra && *extra && n < size) snprintf(line + n, size - n, "  %s", extra);
}

static void draw(cli_progress *p, double now, const char *extra, int final) {
    char line[512];
    format_line(p, now, extra, line, sizeof line);
    if (p->tty) {
        int width = terminal_width() - 1; /* never wrap: a wrapped line cannot be redrawn with \r */
        if ((int)strlen(line) > width) line[width] = '\0';
        fprintf(stderr, "\r%s\x1b[K%s", line, final ? "\n" : "");
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
    p->last_draw = now;
    p->drawn = 1;
}

void cli_progress_update(cli_progress *p, double done, const char *extra) {
    p->done = done;
    double now = jl_now();
    if (now - p->last_draw < p->min_interval) return;
    draw(p, now, extra, 0);
}

void cli_progress_note(cli_progress *p, const char *fmt, ...) {
    if (p->tty && p->drawn) fputs("\r\x1b[K", stderr); /* clear the bar; the next update redraws it */
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    p->last_draw = 0; /* redraw at the next update */
}

void cli_progress_finish(cli_progress *p, const char *extra) { draw(p, jl_now(), extra, 1); }
