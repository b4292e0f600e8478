#include "cli/args.h"
#include "jielong/common.h"
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
    default: return "";
    }
}

static void print_help(const char *cmd, const char *summary, const cli_opt *opts, int nopts) {
    printf("usage: jielong %s [options]\n%s\n\noptions:\n", cmd, summary);
    for (int i = 0; i < nopts; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", opts[i].name, kind_meta(opts[i].kind));
        printf("  %-26s %s%s", left, opts[i].help, opts[i].required ? " (required)" : "");
        if (opts[i].min <= opts[i].max && opts[i].kind == OPT_INT) printf(" [%.0f..%.0f]", opts[i].min, opts[i].max);
        else if (opts[i].min <= opts[i].max) printf(" [%g..%g]", opts[i].min, opts[i].max);
        printf("\n");
    }
    printf("  %-26s %s\n", "--help", "show this help");
}

static int bad(const char *cmd, const char *what, const char *name, const char *val) {
    if (val) fprintf(stderr, "jielong %s: --%s %s: %s\n", cmd, name, val, what);
    else fprintf(stderr, "jielong %s: --%s: %s\n", cmd, name, what);
    return CLI_BAD_USAGE;
}

static int set_value(const char *cmd, const cli_opt *o, const char *val) {
    char *end;
    errno = 0;
    if (o->kind == OPT_STR) {
        *(const char **)o->dest = val;
        return CLI_PARSED;
    }
    if (o->kind == OPT_INT) {
        long v = strtol(val, &end, 10);
        if (errno || *end || end == val) return bad(cmd, "not an integer", o->name, val);
        if (o->min <= o->max && (v < o->min || v > o->max)) {
            fprintf(stderr, "jielong %s: --%s %s: out of range [%.0f..%.0f]\n", cmd, o->name, val, o->min, o->max);
            return CLI_BAD_USAGE;
        }
        *(long *)o->dest = v;
        return CLI_PARSED;
    }
    double v = strtod(val, &end);
    if (errno || *end || end == val || !isfinite(v)) return bad(cmd, "not a number", o->name, val);
    if (o->min <= o->max && (v < o->min || v > o->max)) {
        fprintf(stderr, "jielong %s: --%s %s: out of range [%g..%g]\n", cmd, o->name, val, o->min, o->max);
        return CLI_BAD_USAGE;
    }
    *(double *)o->dest = v;
    return CLI_PARSED;
}

int cli_parse(const char *cmd, const char *summary, const cli_opt *opts, int nopts,
              int argc, char **argv, int first) {
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
            if (strlen(opts[j].name) == name_len && strncmp(opts[j].name, name, name_len) == 0) k = j;
        if (k < 0) {
            fprintf(stderr, "jielong %s: unknown option '%.*s' (see --help)\n", cmd, (int)name_len + 2, arg);
            rc = CLI_BAD_USAGE;
            break;
        }
        const cli_opt *o = &opts[k];
        seen[k] = 1;
        if (o->kind == OPT_BOOL) {
            if (eq) rc = bad(cmd, "takes no value", o->name, eq + 1);
            else *(int *)o->dest = 1;
            continue;
        }
        if (o->kind == OPT_STRS) {
            cli_strs *s = o->dest;
            int start = i + 1, end = start;
            while (end < argc && strncmp(argv[end], "--", 2) != 0) end++;
            if (eq || end == start) {
                rc = bad(cmd, "needs one or more values", o->name, NULL);
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
            rc = bad(cmd, "needs a value", o->name, NULL);
            break;
        }
        rc = set_value(cmd, o, val);
    }
    for (int j = 0; j < nopts && rc == CLI_PARSED; j++)
        if (opts[j].required && !seen[j]) {
            fprintf(stderr, "jielong %s: --%s is required (see --help)\n", cmd, opts[j].name);
            rc = CLI_BAD_USAGE;
        }
    free(seen);
    return rc;
}

int cli_report(const char *cmd, int status) {
    if (status == JL_OK) return 0;
    fprintf(stderr, "jielong %s: %s\n", cmd, jl_last_error());
    return jl_exit_code((jl_status)status);
}
