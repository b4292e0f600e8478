/* Best-fit packing (data/pack.h). Rows wait in stacks by the room they have left (0..cap), so placing an item
 * of length l is a scan for the first non-empty stack at room ≥ l: O(cap) per item, no search over rows. */
#include "data/pack.h"
#include <stdlib.h>
#include <string.h>

jl_status jl_packer_init(jl_packer *p, size_t n_max, int cap) {
    memset(p, 0, sizeof *p);
    if (cap < 1) return jl_fail(JL_ERR_ARG, "packing: rows of %d tokens", cap);
    const size_t n = n_max ? n_max : 1;
    p->cap = cap;
    p->n_max = n_max;
    p->row_start = malloc(sizeof *p->row_start * (n + 1));
    p->items = malloc(sizeof *p->items * n);
    p->room = malloc(sizeof *p->room * n);
    p->next = malloc(sizeof *p->next * n);
    p->head = malloc(sizeof *p->head * ((size_t)cap + 1));
    p->row_of = malloc(sizeof *p->row_of * n);
    if (!p->row_start || !p->items || !p->room || !p->next || !p->head || !p->row_of) {
        jl_packer_free(p);
        return jl_fail(JL_ERR_NOMEM, "packing: out of memory for %zu sequences", n_max);
    }
    return JL_OK;
}

void jl_packer_free(jl_packer *p) {
    free(p->row_start);
    free(p->items);
    free(p->room);
    free(p->next);
    free(p->head);
    free(p->row_of);
    memset(p, 0, sizeof *p);
}

static void push_row(jl_packer *p, int32_t row) {
    p->next[row] = p->head[p->room[row]];
    p->head[p->room[row]] = row;
}

jl_status jl_pack_best_fit(jl_packer *p, const size_t *order, size_t n, const int *len) {
    if (n > p->n_max) return jl_fail(JL_ERR_ARG, "packing: %zu sequences, room for %zu", n, p->n_max);
    for (int r = 0; r <= p->cap; r++) p->head[r] = -1;
    size_t rows = 0;
    for (size_t k = 0; k < n; k++) {
        const int l = len[order[k]];
        if (l < 1 || l > p->cap) return jl_fail(JL_ERR_ARG, "packing: sequence %zu has %d tokens, rows hold %d",
                                                order[k], l, p->cap);
        int r = l;
        while (r <= p->cap && p->head[r] < 0) r++;
        int32_t row;
        if (r <= p->cap) { /* the fullest row that still fits */
            row = p->head[r];
            p->head[r] = p->next[row];
        } else {
            row = (int32_t)rows++;
            p->room[row] = p->cap;
        }
        p->room[row] -= l;
        push_row(p, row);
        p->row_of[k] = (size_t)row;
    }
    /* Items row by row, each row's in placement order (a counting sort by row). */
    memset(p->row_start, 0, sizeof *p->row_start * (rows + 1));
    for (size_t k = 0; k < n; k++) p->row_start[p->row_of[k] + 1]++;
    for (size_t r = 0; r < rows; r++) p->row_start[r + 1] += p->row_start[r];
    for (size_t r = 0; r < rows; r++) p->next[r] = (int32_t)p->row_start[r]; /* fill position per row */
    for (size_t k = 0; k < n; k++) p->items[p->next[p->row_of[k]]++] = order[k];
    p->rows = rows;
    return JL_OK;
}
