/* Small json-c helpers for Hugging Face config files: typed field reads whose errors name the file and field. */
#ifndef JL_IO_HF_JSON_H
#define JL_IO_HF_JSON_H
#include "jielong/common.h"
#include <json.h>

/* Parses a whole JSON object (UTF-8 validated); the error names the file. */
jl_status hfj_parse(const char *path, const char *text, json_object **out);
int hfj_has(json_object *o, const char *key);
int hfj_is_null(json_object *o, const char *key);                 /* absent or null */
const char *hfj_str(json_object *o, const char *key, const char *dflt); /* NULL when present but not a string */
int hfj_bool(json_object *o, const char *key, int dflt);
/* Integer field; dflt < 0 makes it required. */
jl_status hfj_int(const char *path, json_object *o, const char *key, int *dst, int dflt);
/* Number field with a default; *set (may be NULL) says whether it was present. */
jl_status hfj_float(const char *path, json_object *o, const char *key, float *dst, float dflt, int *set);

#endif
