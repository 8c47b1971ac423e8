/*  protocol/options_load.c - settings from defaults, a config file and
    flags, in that order (the I/O half of options.h: it reads the file). */
#include "protocol/options.h"

#include "protocol/error.h"

#include <stdio.h>
#include <stdlib.h>

/*  The whole file as a NUL-terminated string the caller frees, or NULL. */
static char *s_read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[4096];
    size_t n;
    while (mem && (n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, mem);
    if (mem)
        fclose(mem);
    fclose(f);
    return text;
}

int ds_options_load(const ds_option_t *opts, size_t n, void *cfg, int argc, char **argv, bool *help,
                    char *err, size_t errlen)
{
    const char *file = ds_options_find_config(argc, argv, 1);
    int rc = ds_options_defaults(opts, n, cfg, err, errlen);
    if (rc == 0 && file) {
        char *text = s_read_file(file);
        if (!text)
            return ds_errf(err, errlen, DS_EINVAL, "--config %s: cannot read the file", file);
        rc = ds_options_parse_text(opts, n, cfg, text, file, err, errlen);
        free(text);
    }
    if (rc == 0)
        rc = ds_options_parse_argv(opts, n, cfg, argc, argv, 1, help, err, errlen);
    return rc;
}
