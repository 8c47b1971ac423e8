/*  dsctl/specfile.h - the release spec file: YAML text to a validated
    ds_spec_t (docs/spec.md, "The spec file").

    The file is one YAML mapping whose keys are the spec's fields. Sections
    (health, strategy, analysis, metrics) are nested mappings, args and
    tests are lists, env and selector are mappings of names to values.
    Durations are written with a unit, as dsctl's flags take them
    ("500ms", "5s", "1.5s", "1m30s"), under the key without "_ms"
    (`interval`, `bake`); the struct member's own name (`interval_ms`,
    `bake_ms`) is accepted as an alias, and there a bare number means
    milliseconds. `canary` and `max_parallel` take a count or a
    percentage ("25%"). `health.kind` and `analysis.on_inconclusive` are
    words (http, tcp, exec, none; fail, promote).

    Parsing starts from ds_spec_init(), sets every field the file gives,
    then runs ds_spec_apply_defaults() and ds_spec_validate(). Every error
    is one line that names the file, the line and column (when known) and
    the field, e.g.
        churn.yaml:12:5: health.interval: "5x" is not a duration (use 500ms, 5s, 1m)
        churn.yaml:3:1: unknown field "comand" (did you mean "command"?)
    Parse errors name fields as the file spells them (health.interval);
    errors from ds_spec_validate() keep its struct names
    (health.interval_ms) and get the position of the key that set them.

    Unknown fields are errors at every level; so are a key given twice,
    anchors and aliases, more than one YAML document, text that is not
    UTF-8, and NUL bytes.

    Ownership: every string and array the parsed spec points to lives in
    the caller's arena (DS_SPECFILE_ARENA_CAP bytes are always enough for
    a file within DS_SPECFILE_MAX_SIZE); the caller destroys the arena
    after its last use of the spec. Strings that ds_spec_apply_defaults()
    fills in are static literals. Nothing else is retained: the file's
    text and the YAML parser are gone when the call returns.
*/
#ifndef DS_DSCTL_SPECFILE_H
#define DS_DSCTL_SPECFILE_H

#include "protocol/arena.h"
#include "protocol/spec.h"

#include <stddef.h>

#define DS_SPECFILE_MAX_SIZE  (1024u * 1024u)      /* bytes of one spec file */
#define DS_SPECFILE_ARENA_CAP (2u * 1024u * 1024u) /* arena cap that fits any such file */
#define DS_SPECFILE_ERR_SIZE  512u                 /* an `err` buffer this big loses nothing */

/*  Parses the spec file text[0..len) into *spec, allocating from `arena`.
    `name` names the text in messages (a file name; NULL means "spec").
    Returns 0 with *spec applied-defaults and validated, or a negative
    DS_E* code with `err` (errlen bytes, may be NULL/0) set to one line:
    DS_EINVAL for anything wrong with the text, DS_ETOOBIG when len
    exceeds DS_SPECFILE_MAX_SIZE, DS_ENOMEM when the arena or memory ran
    out. On failure *spec is reset by ds_spec_init() (it points into
    nothing), though the arena may hold partial allocations. */
int ds_specfile_parse(const char *text, size_t len, const char *name, ds_spec_t *spec,
                      ds_arena_t *arena, char *err, size_t errlen);

/*  Reads the file at `path` (at most DS_SPECFILE_MAX_SIZE bytes; pipes
    and /dev/stdin work too) and parses it as ds_specfile_parse() does,
    naming it `path` in messages. Returns 0, or the codes above plus
    DS_ENOTFOUND (no such file), DS_EPERM (permission denied) and DS_EIO
    (any other read error), with `err` set. */
int ds_specfile_load(const char *path, ds_spec_t *spec, ds_arena_t *arena, char *err,
                     size_t errlen);

#endif
