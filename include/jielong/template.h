/* Jinja templates (src/template): the subset Hugging Face chat templates use, rendered as @huggingface/jinja
 * (the renderer of transformers.js) renders them — trim_blocks and lstrip_blocks on, one trailing newline dropped.
 *
 * Supported: {{ }}, {% %}, {# #} with '-' whitespace control; if/elif/else, for (loop.index, index0, first,
 * last, length, revindex, previtem, nextitem; else; an `if` filter; break/continue), set (also ns.attr and block
 * set), macro, call blocks with caller(), filter blocks; literals (strings, numbers, lists, dicts, tuples),
 * attribute/subscript/slice, calls with keyword arguments, comparisons, in / not in, not/and/or, + - * / // % **,
 * ~, x if c else y; tests (defined, none, string, number, mapping, iterable, true, false, odd, even, …); filters
 * (trim, tojson, length, upper, lower, title, capitalize, replace, join, first, last, default, items, string,
 * int, float, list, reverse, sort, unique, map, select/reject(attr), indent, round, safe, escape, …); string,
 * list and dict methods (strip/lstrip/rstrip(chars), split, startswith, endswith, replace, find, items, get, …);
 * globals range, namespace, dict, raise_exception, strftime_now.
 *
 * Bounded: a render holds at most 256 MB, writes at most 64 MB of text, runs at most 50M steps and nests macro
 * calls / blocks at most 200 deep; past a bound it fails cleanly. Any template text gives a result or a one-line
 * error "template line L, column C: message" (JL_ERR_FORMAT for syntax, JL_ERR_ARG for a render error, including
 * raise_exception) — never a crash. */
#ifndef JIELONG_TEMPLATE_H
#define JIELONG_TEMPLATE_H
#include "jielong/common.h"
#include <stddef.h>

typedef struct jl_template jl_template;

/* Parses a template. */
jl_status jl_template_parse(const char *text, size_t len, jl_template **out);
void jl_template_free(jl_template *t);
/* Renders with the variables of `context_json` (a JSON object text; NULL = no variables). *out is malloc'd and
 * NUL-terminated; *out_len (may be NULL) its length. */
jl_status jl_template_render_json(const jl_template *t, const char *context_json, char **out, size_t *out_len);
/* Parse + render in one call. */
jl_status jl_template_render(const char *tmpl, size_t tmpl_len, const char *context_json, char **out,
                             size_t *out_len);

/* For the chat renderer: context is a json-c object; the dicts of its "messages" array are numbered, and
 * spans[i] (n_msgs entries, zeroed by the call) receives the output bytes written while a for-loop variable was
 * message i (seen = 0 when never). */
struct json_object;
typedef struct {
    size_t start, end;
    int seen;
} jl_template_span;
jl_status jl_template_render_ctx(const jl_template *t, struct json_object *context, jl_template_span *spans,
                                 int n_msgs, char **out, size_t *out_len);

#endif
