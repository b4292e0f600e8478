/* Thread-local last-error message. Library code never prints; it records here and returns a status. */
#include "jielong/common.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

const char *jl_last_error(void) { return last_error; }

void jl_clear_error(void) { last_error[0] = '\0'; }

jl_status jl_fail(jl_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

jl_status jl_fail_context(jl_status status, const char *fmt, ...) {
    char prefix[512], previous[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(previous, last_error, sizeof previous);
    size_t n = strlen(prefix);
    if (n > sizeof last_error - 3) n = sizeof last_error - 3;
    memcpy(last_error, prefix, n);
    memcpy(last_error + n, ": ", 2);
    size_t rest = sizeof last_error - n - 3;
    size_t m = strnlen(previous, rest);
    memcpy(last_error + n + 2, previous, m);
    last_error[n + 2 + m] = '\0';
    return status;
}

int jl_exit_code(jl_status status) {
    switch (status) {
    case JL_OK: return 0;
    case JL_ERR_FORMAT:
    case JL_ERR_ARG:
    case JL_ERR_IO: return 2;
    default: return 1;
    }
}
