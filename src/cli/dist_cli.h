/* The CLI under mpirun (jielong/dist.h): joining the job, one voice (rank 0 reports; the other ranks' standard
 * output and error go to /dev/null), and one error message for the job: the lowest rank that failed by itself
 * prints "jielong CMD: rank R of N: message"; ranks stopped by another's failure stay silent and exit with its
 * code. Without mpirun every function is a no-op and errors print as before. */
#ifndef JL_CLI_DIST_CLI_H
#define JL_CLI_DIST_CLI_H

/* Joins the job when launched by mpirun; 0, or the exit code after printing why it cannot. */
int cli_dist_start(void);
/* Under mpirun with more than one rank: keeps cmd's error (jl_last_error) for cli_dist_end instead of printing it
 * and returns 1; else returns 0 (print as usual). */
int cli_dist_defer(const char *cmd, int status);
/* Agrees on the outcome when this rank failed outside an agreement, prints the job's one error message if it is
 * this rank's, leaves the job; returns rc. */
int cli_dist_end(int rc);

#endif
