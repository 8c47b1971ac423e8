/*  dsctl/deployflags.h - the flags of `dsctl deploy` to a release spec.

    Pure: no files, no clock. The command (cmd_release.c) loads a spec file
    if --spec was given, makes a relative artifact absolute with
    ds_deployflags_absolute(), then calls ds_deployflags_apply(), which
    lays the flags over the spec, applies the defaults and validates it.

    Flags override the file's values. --env and --selector override per
    key: a key the file has gets the flag's value, a new key is added.
    Choosing a health check (--health-http, --health-tcp, --health-exec)
    replaces the file's check kind with its path or command.
    --healthy-deadline longer than the spec's progress deadline raises
    that too (the default rule of docs/spec.md), unless
    --progress-deadline is given.

    Error messages name the flag that set the field, the value and what
    is allowed, e.g.
        --canary: "abc" is not a count or a percentage (e.g. 3 or 25%)
        --canary: strategy.canary: 150 is out of range (1 to 100 ...)
    and carry no "dsctl: " prefix.
*/
#ifndef DS_DSCTL_DEPLOYFLAGS_H
#define DS_DSCTL_DEPLOYFLAGS_H

#include "protocol/arena.h"
#include "protocol/limits.h"
#include "protocol/spec.h"

#include <stdbool.h>
#include <stddef.h>

#define DS_DEPLOYFLAGS_ERR_SIZE 512u /* an `err` buffer this big loses nothing */

/*  What the user typed; NULL / false / 0 = not given. Strings are
    borrowed: the spec built from them points into them, so they must
    outlive it. */
typedef struct {
    const char *artifact;          /* --artifact PATH|URL (absolute already) */
    const char *cmd;               /* --cmd CMD */
    const char *sha256;            /* --sha256 HEX */
    const char *canary;            /* --canary N|P% */
    const char *max_parallel;      /* --max-parallel N|P% */
    const char *bake;              /* --bake DURATION */
    const char *healthy_deadline;  /* --healthy-deadline DURATION */
    const char *progress_deadline; /* --progress-deadline DURATION */
    const char *health_http;       /* --health-http PATH */
    bool health_tcp;               /* --health-tcp */
    const char *health_exec;       /* --health-exec CMD */
    bool no_auto_promote;          /* --no-auto-promote */
    size_t n_env;
    const char *env[DS_MAX_ENV]; /* --env K=V, in order */
    size_t n_selector;
    const char *selector[DS_MAX_LABELS]; /* --selector K=V, in order */
} ds_deployflags_t;

/*  Lays the flags `f` over `spec` and finishes it: ds_spec_apply_defaults()
    then ds_spec_validate(). `spec` is either fresh from ds_spec_init()
    (`origin` NULL: then --artifact and --cmd are required) or loaded from
    the spec file named `origin` (defaults applied, validated). New arrays
    and strings come from `arena`. Returns 0, or DS_EINVAL (a bad flag
    value, flags that conflict, a missing flag, a spec the validator
    refuses) or DS_ENOMEM, with `err` (errlen bytes; may be NULL/0) set to
    one line that names the flag, or else the file. */
int ds_deployflags_apply(const ds_deployflags_t *f, const char *origin, ds_spec_t *spec,
                         ds_arena_t *arena, char *err, size_t errlen);

/*  Writes the artifact `artifact` as the cluster should get it into
    `out`: an http(s) URL or an absolute path as it is; a relative path
    joined to the absolute directory `base` ("model" and "/srv/ml" give
    "/srv/ml/model"; leading "./" are dropped). Returns 0, or DS_ETOOBIG
    when the result does not fit in outlen bytes. */
int ds_deployflags_absolute(const char *artifact, const char *base, char *out, size_t outlen);

#endif
