/*  tests/unit/fsm_fix.h - a fixture for tests of the replicated state
    machine: a real LMDB store in a fresh directory, and commands applied
    to it as consecutive Raft entries through ds_apply_entry_ex, exactly
    as a replica applies them.

    Define DS_FSM_TAG (the temp directory's name) before including it.
    Header-only: unit tests are single files (tests/CMakeLists.txt). */
#ifndef DS_TESTS_UNIT_FSM_FIX_H
#define DS_TESTS_UNIT_FSM_FIX_H

#include "coordinator/apply.h"
#include "coordinator/fsm.h"
#include "storage/state.h"
#include "tests/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#define DS_FSM_FN static __attribute__((unused))

typedef struct {
    char dir[512];
    ds_store_t *s;
    uint64_t index;           /* last applied */
    ds_apply_effect_t effect; /* of the last command */
} fx_t;

DS_FSM_FN int s_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(ds_test_mkdtemp(DS_FSM_TAG, fx->dir, sizeof fx->dir), 0);
    assert_non_null(fx->s = ds_test_store_open(fx->dir));
    *state = fx;
    return 0;
}

DS_FSM_FN int s_teardown(void **state)
{
    fx_t *fx = *state;
    ds_store_destroy(&fx->s);
    ds_test_rmrf(fx->dir);
    free(fx);
    return 0;
}

typedef struct {
    const ds_raft_entry_t *entry;
    int verdict;
    ds_apply_effect_t *effect;
} s_one_t;

DS_FSM_FN int s_apply_fn(ds_txn_t *txn, void *ctx)
{
    s_one_t *one = ctx;
    return ds_apply_entry_ex(txn, one->entry, &one->verdict, one->effect);
}

/*  Applies encoded command bytes as the next entry; returns the entry's
    result, or the storage failure that stopped it (the index then does
    not advance). */
DS_FSM_FN int s_apply_bytes(fx_t *fx, const ds_buf_t *buf)
{
    ds_raft_entry_t e = {.term = 1,
                         .index = ++fx->index,
                         .type = DS_ENTRY_NORMAL,
                         .data = {buf->data, (uint32_t)buf->len}};
    int result = 1;
    s_one_t one = {&e, 0, &fx->effect};
    int rc = ds_state_apply(fx->s, e.index, 0, s_apply_fn, &one, &result);
    if (rc != 0) {
        fx->index--;
        return rc;
    }
    return result ? result : one.verdict;
}

/*  Encodes and applies a command as the next entry (see s_apply_bytes). */
DS_FSM_FN int s_apply(fx_t *fx, uint16_t type, const char *client, uint64_t req_id, uint64_t ts,
                      const void *body)
{
    ds_buf_t buf = {0};
    assert_int_equal(ds_fsm_encode(type, client, req_id, ts, body, &buf, NULL), 0);
    int result = s_apply_bytes(fx, &buf);
    ds_buf_free(&buf);
    return result;
}

#endif
