/* One flag parser for every subcommand: a table of options gives parsing, range checks and --help. */
#ifndef JL_CLI_ARGS_H
#define JL_CLI_ARGS_H

/* OPT_INT writes a long, OPT_FLOAT a double; the typed kinds write straight into an options struct:
 * OPT_I32 int, OPT_F32 float, OPT_U64 uint64_t, OPT_SCHED an int (jl_schedule: cosine, linear, constant);
 * OPT_STR_OPT a string whose value may be left out (then dest gets ""); OPT_PREC an int (jl_precision: fp32, bf16). */
typedef enum { OPT_STR, OPT_INT, OPT_FLOAT, OPT_BOOL, OPT_STRS, OPT_I32, OPT_F32, OPT_U64, OPT_SCHED, OPT_STR_OPT, OPT_PREC } opt_kind;

typedef struct {
    char **v; /* points into argv; free(v) only */
    int n;
} cli_strs;

typedef struct {
    const char *name;   /* without the leading "--"; "name|old|older": the name, then accepted aliases */
    opt_kind kind;
    void *dest;         /* char **, long *, double *, int * (bool), cli_strs * */
    const char *help;
    double min, max;    /* inclusive range for OPT_INT / OPT_FLOAT; ignored when min > max */
    int required;
} cli_opt;

enum { CLI_PARSED = 0, CLI_HELP_SHOWN = -1, CLI_BAD_USAGE = 2 };

/* Parses argv[first..argc) as "--name value" / "--flag" / "--name=value" / "--strs a b c".
 * On bad usage prints one line "jielong CMD: ..." to stderr. With --help prints usage + options
 * to stdout. `summary` is the one-line description shown with --help. */
int cli_parse(const char *cmd, const char *summary, const cli_opt *opts, int nopts,
              int argc, char **argv, int first);
/* The same; given[i] (nopts entries) says whether opts[i] was on the command line. */
int cli_parse_given(const char *cmd, const char *summary, const cli_opt *opts, int nopts, int argc, char **argv,
                    int first, unsigned char *given);
/* Whether the option writing to dest was given (given as filled by cli_parse_given). */
int cli_given(const cli_opt *opts, int nopts, const unsigned char *given, const void *dest);

/* Prints a one-line error "jielong: <msg>" to stderr and returns the exit code for `status`. */
int cli_report(const char *cmd, int status);

#define CLI_NOPTS(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define NO_RANGE 1, 0

#endif
