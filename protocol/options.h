/*  protocol/options.h - command-line flags and config files, from one table.

    The daemons describe their settings once, as a table of ds_option_t.
    The same table parses `--name VALUE` / `--name=VALUE` flags, parses
    config files whose keys are the flags' long names (`name = value`,
    `#` comments), prints --help, and applies defaults. Flags win over the
    config file: parse the file first, then the flags.

    Pure: the caller reads the file and passes its text.
*/
#ifndef DS_PROTOCOL_OPTIONS_H
#define DS_PROTOCOL_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    DS_OPT_STR,      /* char[size] buffer at offset (size in `size`) */
    DS_OPT_U32,      /* uint32_t, decimal, within [min, max] */
    DS_OPT_DURATION, /* uint32_t milliseconds: 250ms, 5s, 2m, 1h; within [min, max] */
    DS_OPT_BOOL,     /* bool; a flag with no value sets true; file: true/false */
    DS_OPT_LIST      /* char[size] buffer; repeated flags append ",value" */
} ds_option_kind_t;

typedef struct {
    const char *name; /* long name without dashes: "heartbeat-ms" */
    ds_option_kind_t kind;
    size_t offset;      /* of the member in the config struct */
    size_t size;        /* buffer size for STR and LIST */
    uint32_t min, max;  /* numeric bounds */
    const char *defval; /* default as text, NULL = none (empty / 0 / false) */
    const char *metavar;
    const char *help;
} ds_option_t;

/*  Sets every option to its default. Returns 0, or DS_EINVAL if a
    default does not parse (a programming error the tests catch). */
int ds_options_defaults(const ds_option_t *opts, size_t n, void *cfg, char *err, size_t errlen);

/*  Applies a config file's text. `source` names it in messages
    ("dscoord.conf:12: ..."). Unknown keys are errors. Returns 0 or
    DS_EINVAL with `err` naming the line, the key and the problem. */
int ds_options_parse_text(const ds_option_t *opts, size_t n, void *cfg, const char *text,
                          const char *source, char *err, size_t errlen);

/*  Applies flags argv[first..argc). Positional words are not allowed.
    `--help` sets *help. `--config` is skipped here (see
    ds_options_find_config). Returns 0 or DS_EINVAL with `err` naming the
    flag and the problem. */
int ds_options_parse_argv(const ds_option_t *opts, size_t n, void *cfg, int argc, char **argv,
                          int first, bool *help, char *err, size_t errlen);

/*  Returns the value of `--config FILE` / `--config=FILE` in argv, or
    NULL. */
const char *ds_options_find_config(int argc, char **argv, int first);

/*  Fills `cfg` from the defaults, then the file of `--config FILE` in
    argv (if any), then the flags argv[1..argc), flags winning. `--help`
    sets *help. Returns 0, or DS_EINVAL with `err` saying what was wrong
    (an unreadable file, a bad line or flag). Reads a file: ds_io. */
int ds_options_load(const ds_option_t *opts, size_t n, void *cfg, int argc, char **argv, bool *help,
                    char *err, size_t errlen);

/*  Prints one line per option: flag, metavar, help and default. */
void ds_options_print_help(const ds_option_t *opts, size_t n, FILE *out);

/*  Parses a duration into milliseconds: one or more <number><unit>
    groups, units ms, s, m, h, numbers with an optional fraction ("500ms",
    "5s", "1m30s", "1.5h"). A bare number has no unit and is refused.
    Returns 0, or DS_EINVAL (also on overflow or NULL/empty text). */
int ds_parse_duration_ms(const char *text, uint64_t *ms);

#endif
