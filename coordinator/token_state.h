/*  coordinator/token_state.h - join tokens, replicated (pure).

    A join token lets a worker the cluster does not know yet join once (or
    N times, or until it expires): `dsctl token create` makes it as
    "ID.SECRET" and the cluster stores, under ID in the tokens table, a
    SHA-256 of SECRET (never the secret), when it expires, how many joins
    it admits and has admitted, whether it was revoked, and labels given
    to every worker that joins with it.

    Commands of the replicated state machine (coordinator/fsm.h) write it:
    DS_CMD_TOKEN_CREATE (ds_token_state_create), DS_CMD_TOKEN_REVOKE
    (ds_token_state_revoke), and a keyed worker join consumes one use
    (ds_token_state_consume, called by coordinator/worker_state.c in the
    join's transaction). Time is the command's ts_ms, never a clock, so
    every member reaches the same verdict.

    Errors: 0, or a negative DS_E code; DS_ENOMEM, DS_ECORRUPT and store
    errors are storage failures; DS_EFORBIDDEN is a token that may not be
    used (unknown, wrong secret, revoked, expired, used up).
*/
#ifndef DS_COORDINATOR_TOKEN_STATE_H
#define DS_COORDINATOR_TOKEN_STATE_H

#include "coordinator/fsm.h"
#include "protocol/arena.h"
#include "protocol/codec.h"
#include "protocol/types.h"
#include "storage/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_TOKEN_HASH_LEN   64u /* hex SHA-256 */
#define DS_TOKEN_SECRET_MIN 32u /* characters of a secret, at least */

/*  A token, as stored. */
typedef struct {
    char *id;
    char *hash; /* hex SHA-256 of the secret */
    uint64_t created_at_ms;
    uint64_t expires_at_ms; /* 0: never */
    uint32_t uses;          /* joins admitted at most; 0: unlimited */
    uint32_t used;
    bool revoked;
    char *created_by; /* the client (key name) that made it */
    uint32_t n_labels;
    ds_kv_t *labels;
} ds_token_record_t;
extern const ds_desc_t ds_token_record_desc;

/*  The body of DS_CMD_TOKEN_CREATE: the request with the secret hashed. */
typedef struct {
    char *id;
    char *hash;
    uint64_t ttl_ms;
    uint32_t uses;
    uint32_t n_labels;
    ds_kv_t *labels;
} ds_token_cmd_t;
extern const ds_desc_t ds_token_cmd_desc;

/*  Writes the hex SHA-256 of `len` bytes at `data` into hex (65 bytes). Pure. */
void ds_token_sha256_hex(const void *data, size_t len, char hex[DS_TOKEN_HASH_LEN + 1]);

/*  Whether `id` is a token id: 1..DS_MAX_NAME of letters, digits, '_'
    and '-'. */
bool ds_token_id_ok(const char *id);

/*  Splits a token "ID.SECRET" into its id (copied to `id`, idlen bytes)
    and the hex hash of its secret. Returns 0, or DS_EINVAL when it is
    not a token (no dot, a bad id, a secret shorter than
    DS_TOKEN_SECRET_MIN or longer than DS_MAX_NAME). */
int ds_token_parse(const char *token, char *id, size_t idlen, char hash[DS_TOKEN_HASH_LEN + 1]);

/*  DS_CMD_TOKEN_CREATE: stores a new token made by cmd->client at
    cmd->ts_ms. Returns 0; DS_EINVAL (bad id, hash or labels); DS_EEXIST
    (the id is taken; retries of one request are answered from the
    session, so this is another request); or a storage failure. */
int ds_token_state_create(ds_txn_t *txn, const ds_command_t *cmd, const ds_token_cmd_t *body)
    __attribute__((warn_unused_result));

/*  DS_CMD_TOKEN_REVOKE: marks the token revoked (revoking it again is a
    no-op). Returns 0, DS_ENOTFOUND, DS_EINVAL or a storage failure. */
int ds_token_state_revoke(ds_txn_t *txn, const char *id) __attribute__((warn_unused_result));

/*  Reads token `id`; strings live in `arena`. Returns 0, DS_ENOTFOUND,
    DS_EINVAL or a storage failure. */
int ds_token_state_get(ds_txn_t *txn, const char *id, ds_arena_t *arena, ds_token_record_t *out)
    __attribute__((warn_unused_result));

/*  Whether token `t` admits a join presenting secret hash `hash` at
    `now_ms`. Returns 0, or DS_EFORBIDDEN with `why` (whylen bytes; may
    be NULL) saying which: wrong secret, revoked, expired, used up. Pure. */
int ds_token_state_usable(const ds_token_record_t *t, const char *hash, uint64_t now_ms, char *why,
                          size_t whylen);

/*  Checks token `id` as ds_token_state_usable does at `now_ms` and counts
    one use. On success *out (may be NULL) is the record before the use,
    strings in `arena`. Returns 0, DS_EFORBIDDEN (also for an unknown
    token), DS_EINVAL or a storage failure. */
int ds_token_state_consume(ds_txn_t *txn, const char *id, const char *hash, uint64_t now_ms,
                           ds_arena_t *arena, ds_token_record_t *out)
    __attribute__((warn_unused_result));

typedef int (*ds_token_state_fn)(void *ctx, const ds_token_record_t *t);

/*  Every token in id order; each record valid only during the call.
    Returns 0, fn's negative code or a storage failure. */
int ds_token_state_list(ds_txn_t *txn, ds_token_state_fn fn, void *ctx)
    __attribute__((warn_unused_result));

#endif
