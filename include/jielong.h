/* jielong — the whole recipe of a ChatGPT-style model in one C library.
 * This umbrella header pulls in one public header per concern (include/jielong/). */
#ifndef JIELONG_H
#define JIELONG_H
#include "jielong/common.h"
#include "jielong/generate.h"
#endif
