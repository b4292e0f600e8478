/* Decode attention of one query head against a KV cache: the session's decode and the batch's rows share it. */
#ifndef JL_INFER_ATTEND_H
#define JL_INFER_ATTEND_H

/* out(hs) = softmax(q·k_t / √hs over t < n_keys) · v_t, with k_t = kc + t·kvd (and v_t = vc + t·kvd) already offset
 * to the head's kv group; att: scratch of n_keys floats (ends as the unnormalised exponentials). Serial. The
 * summation order is this function's own (under AVX-512 the scores of 16 keys at once, see attend.c), fixed by q,
 * the cache and n_keys alone. */
void jl_attend_head(const float *q, const float *kc, const float *vc, int kvd, int hs, int n_keys, float *att,
                    float *out);

#endif
