/* Preference pairs encoded once (chosen and rejected as rl_seq), a seeded held-out split, and batches of pairs
 * for the reward model and DPO. */
#ifndef JL_TRAIN_RL_PAIRS_H
#define JL_TRAIN_RL_PAIRS_H
#include "train/rl_common.h"

typedef struct {
    rl_seq *seqs;    /* 2n: chosen, rejected of pair i at 2i, 2i+1 */
    size_t n, n_train;
    size_t *order;   /* order[0..n_train): training pairs, order[n_train..n): held-out */
    size_t pos;
    uint64_t rng;
} rl_pairs;

/* Errors name the pair (1-based): identical chosen/rejected, empty responses, too long for max_len (unless
 * *skipped is not NULL: then such pairs are dropped and counted there). */
jl_status rl_pairs_encode(const jl_tokenizer *tok, const jl_chat_format *fmt, const jl_pref_set *set, int max_len,
                          double eval_fraction, uint64_t seed, rl_pairs *p, size_t *skipped);
void rl_pairs_free(rl_pairs *p);
/* Tokens in the longest chosen or rejected sequence (the row length batches need). */
int rl_pairs_longest(const rl_pairs *p);
/* The next `batch` training pairs (reshuffled every epoch) as rows chosen, rejected, ...; returns 2·batch. */
int rl_pairs_next(rl_pairs *p, int batch, const rl_seq **rows);
/* This rank's pairs of a global step of batch × ranks pairs (every rank draws all, so the order stays in step):
 * rows get 2·batch entries. */
int rl_pairs_next_mine(rl_pairs *p, int batch, const rl_seq **rows);
/* Held-out pairs from *cursor on, at most `batch`; returns the rows filled (0 at the end). */
int rl_pairs_eval(const rl_pairs *p, size_t *cursor, int batch, const rl_seq **rows);

/* The data position, order and RNG in a training state. */
void rl_pairs_state_save(const rl_pairs *p, json_object *j);
jl_status rl_pairs_state_restore(rl_pairs *p, json_object *j);

#endif
