#include "cli/precision.h"
#include "core/perf.h"
#include <stdio.h>

void cli_precision_report(const char *stage, jl_run_cfg *r) {
    const jl_precision p = r->precision == JL_PREC_BF16 ? JL_PREC_BF16 : JL_PREC_FP32;
    if (p == JL_PREC_BF16 && !jl_cpu_has_bf16())
        fprintf(stderr, "%s: warning: this CPU has no bf16 dot products; bf16 products run slower than fp32\n",
                stage);
    jl_peak peak = jl_peak_probe();
    double pk = jl_peak_for(&peak, p);
    if (!(pk > 0)) pk = peak.fp32; /* bf16 emulated: it runs at most at the fp32 rate */
    r->peak_gflops = pk;
    fprintf(stderr, "%s: precision %s (%s), peak %.0f GFLOP/s %s (probe loop, %d threads), the MFU yardstick\n",
            stage, jl_precision_name(p), jl_matmul_impl(p), pk, jl_precision_name(p), peak.threads);
}
