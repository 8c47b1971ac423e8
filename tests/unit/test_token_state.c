/*  tests/unit/test_token_state.c - join tokens through the state machine:
    the hash of the secret, create, consume on a keyed join, revoke,
    expiry, use limits, key pinning and worker removal. */
#define DS_FSM_TAG "token_state"
#include "tests/unit/fsm_fix.h"

#include "coordinator/apply.h"
#include "coordinator/fsm.h"
#include "coordinator/token_state.h"
#include "coordinator/worker_state.h"
#include "protocol/error.h"
#include "protocol/messages.h"
#include "storage/state.h"
#include "tests/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/*  Commands as the admin sends them (no session). */
static int s_admin_apply(fx_t *fx, uint16_t type, uint64_t ts, const void *body)
{
    return s_apply(fx, type, "admin/dsctl-1", 0, ts, body);
}

static const char *const s_secret = "0123456789abcdef0123456789abcdef";

static int s_create(fx_t *fx, const char *id, uint64_t ttl, uint32_t uses, uint64_t ts)
{
    char hash[DS_TOKEN_HASH_LEN + 1];
    ds_token_sha256_hex(s_secret, strlen(s_secret), hash);
    ds_kv_t label = {"team", "ml"};
    ds_token_cmd_t cmd = {(char *)id, hash, ttl, uses, 1, &label};
    return s_admin_apply(fx, DS_CMD_TOKEN_CREATE, ts, &cmd);
}

static int s_join(fx_t *fx, const char *name, const char *key, const char *token, uint64_t ts)
{
    char id[DS_MAX_NAME + 1] = "", hash[DS_TOKEN_HASH_LEN + 1] = "";
    if (token)
        assert_int_equal(ds_token_parse(token, id, sizeof id, hash), 0);
    ds_kv_t labels[] = {{"zone", "a"}};
    ds_join_req_t req = {.name = (char *)name,
                         .worker_id = "0123",
                         .n_labels = 1,
                         .labels = labels,
                         .software_version = "1",
                         .token = ""};
    ds_worker_join_cmd_t cmd = {req, (char *)key, id, hash};
    return s_admin_apply(fx, DS_CMD_WORKER_JOIN_KEYED, ts, &cmd);
}

typedef struct {
    const char *name;
    ds_arena_t *arena;
    ds_worker_record_t w;
    ds_token_record_t t;
} s_read_t;

static int s_read_fn(ds_txn_t *txn, void *ctx)
{
    s_read_t *r = ctx;
    if (strncmp(r->name, "t:", 2) == 0)
        return ds_token_state_get(txn, r->name + 2, r->arena, &r->t);
    return ds_worker_state_get(txn, r->name, r->arena, &r->w);
}

static int s_read(fx_t *fx, const char *name, s_read_t *r)
{
    *r = (s_read_t){.name = name, .arena = ds_arena_new(1u << 20)};
    return ds_store_read(fx->s, s_read_fn, r);
}

static void test_sha256_matches_the_standard_vectors(void **state)
{
    (void)state;
    char hex[DS_TOKEN_HASH_LEN + 1];
    ds_token_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ds_token_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ds_token_sha256_hex(m, strlen(m), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_parse_refuses_what_is_not_a_token(void **state)
{
    (void)state;
    char id[DS_MAX_NAME + 1], hash[DS_TOKEN_HASH_LEN + 1];
    assert_int_equal(ds_token_parse("t1.0123456789abcdef0123456789abcdef", id, sizeof id, hash), 0);
    assert_string_equal(id, "t1");
    assert_int_equal(ds_token_parse("t1", id, sizeof id, hash), DS_EINVAL);
    assert_int_equal(ds_token_parse("t1.short", id, sizeof id, hash), DS_EINVAL);
    assert_int_equal(ds_token_parse(".0123456789abcdef0123456789abcdef", id, sizeof id, hash),
                     DS_EINVAL);
    assert_int_equal(ds_token_parse("t 1.0123456789abcdef0123456789abcdef", id, sizeof id, hash),
                     DS_EINVAL);
}

static void test_a_token_admits_its_uses_then_is_used_up(void **state)
{
    fx_t *fx = *state;
    const char *tok = "t1.0123456789abcdef0123456789abcdef";
    assert_int_equal(s_create(fx, "t1", 0, 1, 1000), 0);
    assert_int_equal(s_create(fx, "t1", 0, 1, 1000), DS_EEXIST);
    assert_int_equal(s_join(fx, "w1", "KEY1", tok, 2000), 0);
    assert_int_equal(fx->effect.kind, DS_APPLY_KEY_PIN);
    assert_string_equal(fx->effect.key, "KEY1");
    assert_string_equal(fx->effect.name, "w1");
    s_read_t r;
    assert_int_equal(s_read(fx, "w1", &r), 0);
    assert_string_equal(r.w.key, "KEY1");
    assert_int_equal(r.w.n_labels, 2); /* zone=a and the token's team=ml */
    ds_arena_destroy(&r.arena);
    assert_int_equal(s_read(fx, "t:t1", &r), 0);
    assert_int_equal(r.t.used, 1);
    assert_string_equal(r.t.created_by, "admin/dsctl-1");
    ds_arena_destroy(&r.arena);
    /* used up: refused, nothing written, no key pinned */
    assert_int_equal(s_join(fx, "w2", "KEY2", tok, 3000), DS_EFORBIDDEN);
    assert_int_equal(fx->effect.kind, DS_APPLY_KEY_NONE);
    assert_int_equal(s_read(fx, "w2", &r), DS_ENOTFOUND);
    ds_arena_destroy(&r.arena);
    /* the joined key rejoins without a token */
    assert_int_equal(s_join(fx, "w1", "KEY1", NULL, 4000), 0);
    /* another key may not take over w1's name */
    assert_int_equal(s_create(fx, "t2", 0, 0, 5000), 0);
    assert_int_equal(s_join(fx, "w1", "KEY9", "t2.0123456789abcdef0123456789abcdef", 6000),
                     DS_EEXIST);
}

static void test_expired_revoked_wrong_and_unknown_tokens_are_refused(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_create(fx, "short", 1000, 0, 1000), 0);
    assert_int_equal(s_join(fx, "w1", "K1", "short.0123456789abcdef0123456789abcdef", 1999), 0);
    assert_int_equal(s_join(fx, "w2", "K2", "short.0123456789abcdef0123456789abcdef", 2000),
                     DS_EFORBIDDEN);
    assert_int_equal(s_create(fx, "rv", 0, 0, 1000), 0);
    assert_int_equal(s_admin_apply(fx, DS_CMD_TOKEN_REVOKE, 1500, &(ds_token_revoke_t){"rv"}), 0);
    assert_int_equal(s_join(fx, "w3", "K3", "rv.0123456789abcdef0123456789abcdef", 1600),
                     DS_EFORBIDDEN);
    assert_int_equal(s_join(fx, "w4", "K4", "rv.0123456789abcdef0123456789abcdeX", 1600),
                     DS_EFORBIDDEN);
    assert_int_equal(s_join(fx, "w5", "K5", "nope.0123456789abcdef0123456789abcdef", 1600),
                     DS_EFORBIDDEN);
    assert_int_equal(s_admin_apply(fx, DS_CMD_TOKEN_REVOKE, 1500, &(ds_token_revoke_t){"nope"}),
                     DS_ENOTFOUND);
    ds_token_record_t t = {.hash = "h", .expires_at_ms = 10, .uses = 1, .used = 0};
    char why[64];
    assert_int_equal(ds_token_state_usable(&t, "x", 0, why, sizeof why), DS_EFORBIDDEN);
    assert_string_equal(why, "wrong secret");
    assert_int_equal(ds_token_state_usable(&t, "h", 10, why, sizeof why), DS_EFORBIDDEN);
    assert_string_equal(why, "expired");
    t.used = 1;
    assert_int_equal(ds_token_state_usable(&t, "h", 0, why, sizeof why), DS_EFORBIDDEN);
    assert_string_equal(why, "used up");
}

static void test_removing_a_worker_deletes_it_and_reports_its_key(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_create(fx, "t1", 0, 0, 1000), 0);
    assert_int_equal(s_join(fx, "w1", "KEY1", "t1.0123456789abcdef0123456789abcdef", 2000), 0);
    assert_int_equal(s_admin_apply(fx, DS_CMD_WORKER_REMOVE, 3000, &(ds_worker_remove_t){"w1"}), 0);
    assert_int_equal(fx->effect.kind, DS_APPLY_KEY_REVOKE);
    assert_string_equal(fx->effect.key, "KEY1");
    s_read_t r;
    assert_int_equal(s_read(fx, "w1", &r), DS_ENOTFOUND);
    ds_arena_destroy(&r.arena);
    assert_int_equal(s_admin_apply(fx, DS_CMD_WORKER_REMOVE, 3000, &(ds_worker_remove_t){"w1"}),
                     DS_ENOTFOUND);
    assert_int_equal(fx->effect.kind, DS_APPLY_KEY_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_matches_the_standard_vectors),
        cmocka_unit_test(test_parse_refuses_what_is_not_a_token),
        cmocka_unit_test_setup_teardown(test_a_token_admits_its_uses_then_is_used_up, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_expired_revoked_wrong_and_unknown_tokens_are_refused,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_removing_a_worker_deletes_it_and_reports_its_key,
                                        s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
