/* The line loop shared by every JSONL reader: parse each line with json-c, hand the object to a callback,
 * prefix its error with "FILE:LINE: ", then stop or skip as the options say. */
#ifndef JL_DATA_JSONL_H
#define JL_DATA_JSONL_H
#include "jielong/dataset.h"
#include <json-c/json.h>
#include <stdio.h>

/* Validates and keeps one record. On a bad record returns JL_ERR_FORMAT with a message "FIELD: problem"
 * and keeps nothing of it; any other failure status stops the reading whatever the options. */
typedef jl_status (*jl_jsonl_record_fn)(void *ctx, json_object *obj);

jl_status jl_jsonl_read(const char *path, const jl_jsonl_options *opt, jl_jsonl_stats *stats,
                        jl_jsonl_record_fn keep, void *ctx);

/* The string field `key` of obj into *out (and its length into *len if not NULL). Fails with
 * "KEY: missing" / "KEY: must be a string" / "KEY: contains a NUL character". `where` prefixes the field name (e.g. "messages[2]."), may be "". */
jl_status jl_json_string_field(json_object *obj, const char *where, const char *key, const char **out, size_t *len);

/* 1 when s is empty or only white space. */
int jl_blank(const char *s);

/* Writes obj as one compact JSON line (UTF-8 kept as is) to f; JL_ERR_IO on a write error. */
jl_status jl_json_write_line(FILE *f, json_object *obj, const char *path);

#endif
