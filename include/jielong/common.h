/* Status codes and the error message every library call leaves behind on failure. */
#ifndef JIELONG_COMMON_H
#define JIELONG_COMMON_H
#include <stddef.h>
#include <stdint.h>

#define JL_VERSION "0.1.0"

typedef enum {
    JL_OK = 0,
    JL_ERR_IO,        /* a file could not be opened, read or written */
    JL_ERR_FORMAT,    /* a file or record is malformed, truncated or of another kind */
    JL_ERR_ARG,       /* an argument or flag is out of range or inconsistent */
    JL_ERR_NOMEM,     /* an allocation failed */
    JL_ERR_RUNTIME,   /* a computation failed (e.g. NaN loss that cannot be skipped) */
} jl_status;

/* The one-line message of the last failure on this thread ("" if none). */
const char *jl_last_error(void);

/* Records a failure message (printf-style) and returns `status`, so callers can write
 * `return jl_fail(JL_ERR_FORMAT, "%s: bad magic", path);`. */
jl_status jl_fail(jl_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the current error message with "context: ", keeping the status. */
jl_status jl_fail_context(jl_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void jl_clear_error(void);

/* Exit code the CLI uses for a status: 0 ok, 2 bad usage/input, 1 runtime failure. */
int jl_exit_code(jl_status status);

#endif
