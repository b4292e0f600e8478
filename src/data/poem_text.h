/* Internal: writing poem lines as text ("line1，line2。\nline3，line4。"). */
#ifndef JL_DATA_POEM_TEXT_H
#define JL_DATA_POEM_TEXT_H
#include "data/text.h"
#include "jielong/dataset.h"

/* Appends n lines: "，" after lines 1,3,5..., "。" after 2,4,6... and a line break after each couplet
 * but the last. An odd n ends on "，". */
void jl_render_lines(jl_text *t, const char *const *lines, int n);

/* Appends a poem's heading "《title》（form）": it opens every pretraining document (followed by the author) and
 * every poem the assistant writes (followed by a line break), so the form the poem must have is named right
 * before it in both. The poem rules skip 《》 and （） spans. */
void jl_render_heading(jl_text *t, const jl_poem *poem);

#endif
