/*  dsctl/table.h - aligned, plain-text tables for human output.

        ID  ROLE      RPC                    LAG
        1   leader    tcp://10.0.0.1:7001    0
        2   follower  tcp://10.0.0.2:7001    12

    Columns are as wide as their widest cell (counted in UTF-8 characters)
    and separated by two spaces; the last column has no trailing padding.
    Control characters in cells are shown as '?', so text from the network
    cannot move the cursor or clear the terminal.
*/
#ifndef DS_DSCTL_TABLE_H
#define DS_DSCTL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define DS_TABLE_MAX_COLS 16

typedef struct ds_table ds_table_t;

/*  Creates a table with `ncols` columns (1..DS_TABLE_MAX_COLS) headed by
    `headers` (copied). Returns NULL when out of memory. */
ds_table_t *ds_table_new(const char *const *headers, size_t ncols);

/*  Frees the table and sets *self_p to NULL. Accepts NULL. */
void ds_table_destroy(ds_table_t **self_p);

/*  Right-aligns column `col` (for numbers). */
void ds_table_align_right(ds_table_t *self, size_t col);

/*  Appends a row of `ncols` cells (copied; NULL is shown as "-").
    Returns 0, or DS_ENOMEM (the table is unchanged). */
int ds_table_add_row(ds_table_t *self, const char *const *cells);

/*  Writes the header and every row to `out`. Returns 0, or DS_EIO. */
int ds_table_print(const ds_table_t *self, FILE *out);

#endif
