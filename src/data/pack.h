/* Packing of short sequences (SFT conversations) into rows of a fixed length, by the best-fit rule: in the
 * given order, each sequence goes into the open row with the least room left that still holds it, else it
 * opens a new row. Every row stays open to the end (offline best fit over the whole order), so with many short
 * sequences the rows come out nearly full. Deterministic: ties go to the row that reached that room last.
 * All memory is allocated once (jl_packer_init); packing allocates nothing. */
#ifndef JL_DATA_PACK_H
#define JL_DATA_PACK_H
#include "jielong/common.h"
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int cap;            /* tokens per row */
    size_t n_max;       /* most items one packing can take */
    size_t rows;        /* rows of the last packing */
    size_t *row_start;  /* (rows + 1): row r holds items[row_start[r] .. row_start[r+1]) */
    size_t *items;      /* item ids row by row, in the order they were placed */
    int32_t *room;      /* (n_max) scratch: room left per row */
    int32_t *next;      /* (n_max) scratch: rows with equal room, as stacks */
    int32_t *head;      /* (cap + 1) scratch: top row of each room's stack, -1 if none */
    size_t *row_of;     /* (n_max) scratch: the row of the k-th placed item */
} jl_packer;

jl_status jl_packer_init(jl_packer *p, size_t n_max, int cap);
void jl_packer_free(jl_packer *p);

/* Packs items order[0..n) (ids into len[], n ≤ n_max); len[id] in 1..cap. Fills rows, row_start, items. */
jl_status jl_pack_best_fit(jl_packer *p, const size_t *order, size_t n, const int *len);

#endif
