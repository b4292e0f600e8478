#include "cli/summary_cli.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

jl_status cli_summary_append(const cli_summary *s, json_object *r) {
    if (s->label) json_object_object_add(r, "label", json_object_new_string(s->label));
    if (s->lesson) json_object_object_add(r, "lesson", json_object_new_string(s->lesson));
    if (!s->summary) return JL_OK;
    const char *line = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    FILE *f = fopen(s->summary, "a");
    int bad = !f || fprintf(f, "%s\n", line) < 0, err = bad ? errno : 0;
    if (f && fclose(f) != 0 && !bad) bad = 1, err = errno;
    return bad ? jl_fail(JL_ERR_IO, "%s: cannot append the summary: %s", s->summary, err ? strerror(err) : "I/O error")
               : JL_OK;
}
