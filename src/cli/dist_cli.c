#include "cli/dist_cli.h"
#include "jielong/dist.h"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static FILE *real_err;  /* rank > 0: the standard error mpirun gave us */
static char deferred[1200];
static int deferred_status;

int cli_dist_start(void) {
    if (jl_dist_init() != JL_OK) {
        fprintf(stderr, "jielong: %s\n", jl_last_error());
        return 1;
    }
    if (jl_dist_rank() == 0) return 0;
    int keep = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);
    if (keep < 0 || null < 0) return 0; /* then every rank speaks: noisy, not wrong */
    real_err = fdopen(keep, "w");
    fflush(stdout);
    fflush(stderr);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    close(null);
    return 0;
}

int cli_dist_defer(const char *cmd, int status) {
    if (jl_dist_size() == 1) return 0;
    snprintf(deferred, sizeof deferred, "jielong %s: rank %d of %d: %s", cmd, jl_dist_rank(), jl_dist_size(),
             jl_last_error());
    deferred_status = status;
    return 1;
}

int cli_dist_end(int rc) {
    if (jl_dist_size() == 1) {
        jl_dist_finish(rc);
        return rc;
    }
    /* the outcome, unless an agreement in the run already told every rank: a rank that failed in set-up stops the
     * others at their next agreement */
    if (jl_dist_first_failed() < 0 && !jl_dist_broken())
        jl_dist_agree(rc == 0 ? JL_OK : deferred_status ? (jl_status)deferred_status
                                         : rc == 2 ? JL_ERR_ARG : JL_ERR_RUNTIME, NULL);
    if (rc != 0 && (jl_dist_first_failed() == jl_dist_rank() || jl_dist_broken()) && deferred[0]) {
        FILE *err = real_err ? real_err : stderr;
        fprintf(err, "%s\n", deferred);
        fflush(err);
    }
    if (rc != 0 && !jl_dist_broken()) { /* the message is out before any rank exits (mpirun then ends the job) */
        char none = 0, all[1024];
        if (jl_dist_size() <= (int)sizeof all) jl_dist_allgather(&none, all, 1);
    }
    jl_dist_finish(rc);
    if (real_err) fclose(real_err);
    return rc;
}
