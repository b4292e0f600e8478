#include "cli/precision.h"
#include "core/perf.h"
#include <stdio.h>

jl_status cli_precision_apply(const char *stage, const char *flag, double *peak_gflops) {
    jl_precision p = jl_precision_default();
    if (flag && jl_precision_parse(flag, &p))
        return jl_fail(JL_ERR_ARG, "--precision: unknown '%s' (fp32 or bf16)", flag);
    if (p == JL_PREC_BF16 && !jl_cpu_has_bf16())
        fprintf(stderr, "%s: warning: this CPU has no bf16 dot products; bf16 products will be slower than fp32\n",
                stage);
    jl_matmul_set_precision(p);
    jl_peak peak = jl_peak_probe();
    double pk = jl_peak_for(&peak, p);
    if (!(pk > 0)) pk = peak.fp32; /* bf16 emulated: measure against the fp32 rate it runs at */
    *peak_gflops = pk;
    fprintf(stderr, "%s: precision %s (%s%s), peak %.0f GFLOP/s %s (probe loop, %d threads) — the MFU yardstick\n",
            stage, jl_precision_name(p), flag ? "" : "default; ", jl_matmul_impl(p), pk, jl_precision_name(p),
            peak.threads);
    return JL_OK;
}
