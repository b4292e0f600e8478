/* Internal: the phrasings of the poem tasks and of the general chat turns (all written for jielong). */
#ifndef JL_DATA_POEM_TASKS_H
#define JL_DATA_POEM_TASKS_H
#include "core/rng.h"
#include "data/text.h"
#include "jielong/dataset.h"

/* Appends a randomly phrased "write a poem titled X in form F" request for poem p. */
void jl_task_write_prompt(const jl_poem *p, jl_rng *rng, jl_text *user);

/* Appends the user request, the assistant answer and the expected answer (for evaluation: the poem, the
 * author, the next line, the form id) of task `task` on poem p. */
void jl_task_render(const jl_poem *p, jl_poem_task task, jl_rng *rng, jl_text *user, jl_text *assistant,
                    jl_text *expected);

/* General chat exchanges (greeting, identity, abilities, forms, thanks...): how many topics there are, and
 * one randomly phrased exchange of topic k. */
int jl_chat_topic_count(void);
void jl_chat_topic_render(int k, jl_rng *rng, jl_text *user, jl_text *assistant);
/* A topic index, greeting and identity weighted up (three times each other topic). */
int jl_chat_topic_pick(jl_rng *rng);

/* Held-out greeting/identity prompts (phrasings SFT never sees): how many, and the k-th with the "|"-separated
 * phrases a right answer holds and a reference answer. */
int jl_chat_probe_count(void);
void jl_chat_probe(int k, const char **prompt, const char **expected, const char **answer);

/* A randomly chosen system prompt. */
const char *jl_system_prompt(jl_rng *rng);

#endif
