/*  dsctl/json.h - dsctl's JSON writer is the project's one (protocol/json.h). */
#ifndef DS_DSCTL_JSON_H
#define DS_DSCTL_JSON_H

#include "protocol/json.h"

#endif
