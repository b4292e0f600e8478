/* Internal knobs of the inference session (tests). */
#ifndef JL_INFER_SESSION_H
#define JL_INFER_SESSION_H
#include "jielong/generate.h"

/* Tokens per prefill block (matrix products over the block, causal attention against the cache);
 * longer prompts run in several blocks. Clamped to [1, the allocated block]. */
void jl_session_set_prefill_block(jl_session *s, int block);

#endif
