#include "cli/args.h"
#include "cli/dist_cli.h"
#include "jielong/common.h"
#include "core/kernels.h"
#include "train/optim.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_meta(opt_kind k) {
    switch (k) {
    case OPT_STR: return " S";
    case OPT_INT: return " N";
    case OPT_FLOAT: return " X";
    case OPT_STRS: return " S...";
    case OPT_I32: case OPT_U64: return " N";
    case OPT_F32: return " X";
    case OPT_SCHED: return " S";
    case OPT_PREC: return " P";
    case OPT_STR_OPT: return " [S]";
    default: return "";
    }
}

/* " (default X)" from the value the table's destination holds before parsing (the stage's default). */
static void default_text(const cli_opt *o, char *buf, size_t size) {
    buf[0] = 0;
    if (strstr(o->help, "default") || o->required) return;
    switch (o->kind) {
    case OPT_I32: snprintf(buf, size, " (default %d)", *(const int *)o->dest); break;
    case OPT_INT:
        if (*(const long *)o->dest >= 0) snprintf(buf, size, " (default %ld)", *(const long *)o->dest);
        break;
    case OPT_U64: snprintf(buf, size, " (default %llu)", (unsigned long long)*(const uint64_t *)o->dest); break;
    case OPT_F32: snprintf(buf, size, " (default %g)", (double)*(const float *)o->dest); break;
    case OPT_SCHED: snprintf(buf, size, " (default %s)", jl_schedule_name((jl_schedule)*(const int *)o->dest)); break;
    case OPT_PREC: snprintf(buf, size, " (default %s)", jl_precision_name((jl_precision)*(const int *)o->dest)); break;
    default: break;
    }
}

/* "--name, --alias" of a table name "name|alias". */
static void names_text(const char *name, char *buf, size_t size) {
    size_t n = 0;
    for (const char *p = name; *p && n + 4 < size;) {
        size_t len = strcspn(p, "|");
        n += (size_t)snprintf(buf + n, size - n, "%s--%.*s", p == name ? "" : ", ", (int)len, p);
        p += len + (p[len] == '|');
    }
}

static void print_help(const char *cmd, const char *summary, const cli_opt *opts, int nopts) {
    printf("usage: jielong %s [options]\n%s\n\noptions:\n", cmd, summary);
    for (int i = 0; i < nopts; i++) {
        char left[96], names[80], def[64];
        names_text(opts[i].name, names, sizeof names);
        snprintf(left, sizeof left, "%s%s", names, kind_meta(opts[i].kind));
        default_text(&opts[i], def, sizeof def);
        printf("  %-26s %s%s%s", left, opts[i].help, def, opts[i].required ? " (required)" : "");
        if (opts[i].min <= opts[i].max && (opts[i].kind == OPT_INT || opts[i].kind == OPT_I32 || opts[i].kind == OPT_U64))
            printf(" [%.0f..%.0f]", opts[i].min, opts[i].max);
        else if (opts[i].min <= opts[i].max) printf(" [%g..%g]", opts[i].min, opts[i].max);
        printf("\n");
    }
    printf("  %-26s %s\n", "--help", "show this help");
}

/* The first name of a table entry, for messages. */
static const char *main_name(const cli_opt *o, char *buf, size_t size) {
    snprintf(buf, size, "%.*s", (int)strcspn(o->name, "|"), o->name);
    return buf;
}

/* Whether `arg` (name_len chars) is one of the entry's names. */
static int name_matches(const char *names, const char *arg, size_t name_len) {
    for (const char *p = names; *p;) {
        size_t len = strcspn(p, "|");
        if (len == name_len && strncmp(p, arg, len) == 0) return 1;
        p += len + (p[len] == '|');
    }
    return 0;
}

static int bad(const char *cmd, const char *what, const char *name, const char *val) {
    if (val) fprintf(stderr, "jielong %s: --%s %s: %s\n", cmd, name, val, what);
    else fprintf(stderr, "jielong %s: --%s: %s\n", cmd, name, what);
    return CLI_BAD_USAGE;
}

static int set_value(const char *cmd, const cli_opt *opt, const char *val) {
    char *end, name[64];
    errno = 0;
    cli_opt named = *opt;
    named.name = main_name(opt, name, sizeof name);
    const cli_opt *o = &named;
    if (o->kind == OPT_STR || o->kind == OPT_STR_OPT) {
        *(const char **)o->dest = val;
        return CLI_PARSED;
    }
    if (o->kind == OPT_PREC) {
        jl_precision p;
        if (jl_precision_parse(val, &p)) return bad(cmd, "expected fp32 or bf16", o->name, val);
        *(int *)o->dest = (int)p;
        return CLI_PARSED;
    }
    if (o->kind == OPT_SCHED) {
        jl_schedule s;
        if (jl_schedule_parse(val, &s) != JL_OK) return bad(cmd, "expected cosine, linear or constant", o->name, val);
        *(int *)o->dest = (int)s;
        return CLI_PARSED;
    }
    if (o->kind == OPT_INT || o->kind == OPT_I32 || o->kind == OPT_U64) {
        long v = strtol(val, &end, 10);
        if (errno || *end || end == val) return bad(cmd, "not an integer", o->name, val);
        if (o->min <= o->max && (v < o->min || v > o->max)) {
            fprintf(stderr, "jielong %s: --%s %s: out of range [%.0f..%.0f]\n", cmd, o->name, val, o->min, o->max);
            return CLI_BAD_USAGE;
        }
        if (o->kind == OPT_I32 && (v < -2147483647L || v > 2147483647L)) return bad(cmd, "out of range", o->name, val);
        if (o->kind == OPT_U64 && v < 0) return bad(cmd, "must not be negative", o->name, val);
        if (o->kind == OPT_INT) *(long *)o->dest = v;
        else if (o->kind == OPT_I32) *(int *)o->dest = (int)v;
        else *(uint64_t *)o->dest = (uint64_t)v;
        return CLI_PARSED;
    }
    double v = strtod(val, &end);
    if (errno || *end || end == val || !isfinite(v)) return bad(cmd, "not a number", o->name, val);
    if (o->min <= o->max && (v < o->min || v > o->max)) {
        fprintf(stderr, "jielong %s: --%s %s: out of range [%g..%g]\n", cmd, o->name, val, o->min, o->max);
        return CLI_BAD_USAGE;
    }
    if (o->kind == OPT_F32) *(float *)o->dest = (float)v;
    else *(double *)o->dest = v;
    return CLI_PARSED;
}

int cli_parse(const char *cmd, const char *summary, const cli_opt *opts, int nopts,
              int argc, char **argv, int first) {
    return cli_parse_given(cmd, summary, opts, nopts, argc, argv, first, NULL);
}

int cli_given(const cli_opt *opts, int nopts, const unsigned char *given, const void *dest) {
    for (int i = 0; i < nopts; i++)
        if (opts[i].dest == dest && given[i]) return 1;
    return 0;
}

int cli_parse_given(const char *cmd, const char *summary, const cli_opt *opts, int nopts, int argc, char **argv,
                    int first, unsigned char *given) {
    char *seen = calloc((size_t)nopts + 1, 1);
    if (!seen) return CLI_BAD_USAGE;
    int rc = CLI_PARSED;
    for (int i = first; i < argc && rc == CLI_PARSED; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help(cmd, summary, opts, nopts);
            rc = CLI_HELP_SHOWN;
            break;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "jielong %s: unexpected argument '%s' (see --help)\n", cmd, arg);
            rc = CLI_BAD_USAGE;
            break;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        int k = -1;
        for (int j = 0; j < nopts; j++)
            if (name_matches(opts[j].name, name, name_len)) k = j;
        if (k < 0) {
            fprintf(stderr, "jielong %s: unknown option '%.*s' (see --help)\n", cmd, (int)name_len + 2, arg);
            rc = CLI_BAD_USAGE;
            break;
        }
        const cli_opt *o = &opts[k];
        seen[k] = 1;
        char oname[64];
        main_name(o, oname, sizeof oname);
        if (o->kind == OPT_STR_OPT && !eq && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            *(const char **)o->dest = "";
            continue;
        }
        if (o->kind == OPT_BOOL) {
            if (eq) rc = bad(cmd, "takes no value", oname, eq + 1);
            else *(int *)o->dest = 1;
            continue;
        }
        if (o->kind == OPT_STRS) {
            cli_strs *s = o->dest;
            int start = i + 1, end = start;
            while (end < argc && strncmp(argv[end], "--", 2) != 0) end++;
            if (eq || end == start) {
                rc = bad(cmd, "needs one or more values", oname, NULL);
                break;
            }
            char **v = realloc(s->v, sizeof(char *) * (size_t)(s->n + end - start));
            if (!v) { rc = CLI_BAD_USAGE; break; }
            s->v = v;
            for (int j = start; j < end; j++) s->v[s->n++] = argv[j];
            i = end - 1;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) {
            rc = bad(cmd, "needs a value", oname, NULL);
            break;
        }
        rc = set_value(cmd, o, val);
    }
    for (int j = 0; j < nopts && rc == CLI_PARSED; j++)
        if (opts[j].required && !seen[j]) {
            char oname[64];
            fprintf(stderr, "jielong %s: --%s is required (see --help)\n", cmd, main_name(&opts[j], oname, sizeof oname));
            rc = CLI_BAD_USAGE;
        }
    if (given) memcpy(given, seen, (size_t)nopts);
    free(seen);
    return rc;
}

int cli_report(const char *cmd, int status) {
    if (status == JL_OK) return 0;
    if (!cli_dist_defer(cmd, status)) fprintf(stderr, "jielong %s: %s\n", cmd, jl_last_error());
    return jl_exit_code((jl_status)status);
}
