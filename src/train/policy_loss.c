/* The clipped policy objective shared by GRPO and PPO, with PPO's clipped value loss on a value head. */
#include "train/rl_losses.h"
#include "core/kernels.h"
#include "core/seqloss.h"
#include "model/model.h"
#include <math.h>
#include <string.h>

static double dot(const float *a, const float *b, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* −min(ρA, clip(ρ)A) and its derivative with respect to log π (0 where the clipped branch is taken). */
static double surrogate(double ratio, double adv, double eps, double *dlogp, int *clipped) {
    double clipped_ratio = ratio < 1 - eps ? 1 - eps : ratio > 1 + eps ? 1 + eps : ratio;
    double s1 = ratio * adv, s2 = clipped_ratio * adv;
    *clipped = fabs(ratio - 1) > eps;
    if (s2 < s1) {
        *dlogp = 0.0;
        return -s2;
    }
    *dlogp = -ratio * adv; /* d(−ρA)/d log π = −ρA */
    return -s1;
}

/* ½·max((v−R)², (clip(v, v_old ± c) − R)²) and d/dv. */
static double value_loss(double v, double v_old, double ret, double c, double *dv) {
    double l1 = (v - ret) * (v - ret);
    if (c <= 0) {
        *dv = v - ret;
        return 0.5 * l1;
    }
    double vc = v < v_old - c ? v_old - c : v > v_old + c ? v_old + c : v;
    double l2 = (vc - ret) * (vc - ret);
    if (l2 > l1) {
        *dv = vc == v ? v - ret : 0.0;
        return 0.5 * l2;
    }
    *dv = v - ret;
    return 0.5 * l1;
}

double policy_batch_loss(jl_model *m, jl_acts *a, const rl_batch *b, const policy_inputs *in, rl_head *vh,
                         float *logp, float *buf, const jl_params *grads, policy_stats *s) {
    const jl_config *c = &m->cfg;
    const int C = c->dim, N = b->rows * b->T;
    rl_forward_logprobs_at(m, a, b, in->temperature, logp, buf); /* buf: entropy, then d loss / d logp */
    memset(s, 0, sizeof *s);
    long tokens = 0;
    float *dv = NULL;
    float dv_store[vh ? N : 1];
    if (vh) {
        dv = dv_store;
        memset(dv, 0, sizeof dv_store);
    }
    for (int r = 0; r < b->rows; r++) {
        int n = rl_row_count(b, r);
        if (!n) continue;
        double w = 1.0 / ((double)b->rows * n), row_kl = 0.0;
        for (int t = 0; t < b->T; t++) {
            size_t p = (size_t)r * b->T + t;
            if (b->targets[p] < 0) {
                buf[p] = 0.0f;
                continue;
            }
            double ratio = exp((double)logp[p] - in->old_logp[p]), dlogp;
            int clipped;
            double tok_loss = surrogate(ratio, in->adv[p], in->clip_eps, &dlogp, &clipped);
            s->policy_loss += w * tok_loss;
            s->clip_frac += clipped;
            s->ratio_mean += ratio;
            s->entropy += buf[p];
            tokens++;
            if (in->ref_logp) {
                double d = (double)in->ref_logp[p] - logp[p], k3 = exp(d) - d - 1.0;
                row_kl += k3;
                if (in->kl_coef > 0) {
                    tok_loss += in->kl_coef * k3;
                    dlogp += in->kl_coef * (1.0 - exp(d));
                }
            }
            s->loss += w * tok_loss;
            buf[p] = (float)(w * dlogp);
            if (vh) {
                double v = dot(vh->w, rl_hidden(a, b, r, t, C), C), d_v;
                double lv = value_loss(v, in->old_values[p], in->returns[p], in->value_clip, &d_v);
                s->value_loss += w * lv;
                s->loss += in->vf_coef * w * lv;
                dv[p] = (float)(in->vf_coef * w * d_v);
            }
        }
        s->kl += row_kl / b->rows;
    }
    if (tokens) {
        s->clip_frac /= tokens;
        s->ratio_mean /= tokens;
        s->entropy /= tokens;
    }
    if (!grads) return s->loss;
    if (in->temperature > 0 && in->temperature != 1.0f) /* d logits = d (logits / T) / T */
        for (int p = 0; p < N; p++) buf[p] /= in->temperature;
    jl_token_logprobs_backward(a->logits, a->logits, b->targets, buf, N, c->vocab_size, c->padded_vocab);
    if (!vh) {
        jl_model_backward(m, a, b->tokens, grads, b->rows, b->T);
        return s->loss;
    }
    /* d hidden = d logits · lm_head + d v · w (the value head reads the same final hidden state) */
    memset(a->dln, 0, (size_t)N * C * sizeof(float));
    jl_matmul_backward(a->dln, grads->lm_head, NULL, a->logits, a->lnf, m->w.lm_head, N, C, c->padded_vocab);
    for (int p = 0; p < N; p++) {
        if (dv[p] == 0.0f) continue;
        const float *h = a->lnf + (size_t)p * C;
        float *dh = a->dln + (size_t)p * C;
        for (int k = 0; k < C; k++) {
            dh[k] += dv[p] * vh->w[k];
            vh->g[k] += dv[p] * h[k];
        }
    }
    jl_model_backward_from_hidden(m, a, b->tokens, grads, b->rows, b->T);
    return s->loss;
}
