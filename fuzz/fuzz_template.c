/* The Jinja chat-template renderer: any template text parses to a template or a one-line error, and renders a
 * chat context (messages, bos/eos, add_generation_prompt, tools) to text or a one-line error, within its bounds. */
#include "fuzz_util.h"
#include "jielong/template.h"

static const char context[] =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"写一首诗\"},"
    "{\"role\":\"assistant\",\"content\":\"床前明月光\"},{\"role\":\"user\",\"content\":\"again\"}],"
    "\"bos_token\":\"<|bos|>\",\"eos_token\":\"<|end|>\",\"add_generation_prompt\":true,"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    jl_template *t;
    if (jl_template_parse((const char *)data, size, &t) != JL_OK) {
        if (!jl_last_error()[0]) abort(); /* an error always says why */
        return 0;
    }
    char *out = NULL;
    size_t len = 0;
    if (jl_template_render_json(t, context, &out, &len) == JL_OK) {
        if (strlen(out) > len) abort(); /* NUL-terminated at len */
        fuzz_touch(out, len);
    } else if (!jl_last_error()[0]) {
        abort();
    }
    free(out);
    jl_template_free(t);
    return 0;
}
