#include "cli/summary_cli.h"
#include <stdio.h>

jl_status cli_summary_append(const cli_summary *s, json_object *r) {
    if (s->label) json_object_object_add(r, "label", json_object_new_string(s->label));
    if (s->lesson) json_object_object_add(r, "lesson", json_object_new_string(s->lesson));
    if (!s->summary) return JL_OK;
    const char *line = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    FILE *f = fopen(s->summary, "a");
    int bad = !f || fprintf(f, "%s\n", line) < 0;
    if (f && fclose(f) != 0) bad = 1;
    return bad ? jl_fail(JL_ERR_IO, "%s: cannot append the summary", s->summary) : JL_OK;
}
