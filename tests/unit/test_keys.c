/*  tests/unit/test_keys.c - CURVE key files, modes, bootstrap layout, and
    the key registry (protocol/keys.h). Real files in a fresh temporary
    directory per test. */
#include "protocol/error.h"
#include "protocol/keys.h"
#include "protocol/msg.h"
#include "tests/testutil.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct {
    char dir[512];
    ds_keyring_t *ring;
} s_fix_t;

static int s_setup(void **state)
{
    s_fix_t *fx = calloc(1, sizeof *fx);
    if (!fx || ds_test_mkdtemp("keys", fx->dir, sizeof fx->dir) != 0) {
        free(fx);
        return -1;
    }
    fx->ring = ds_keyring_new();
    if (!fx->ring) {
        ds_test_rmrf(fx->dir);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *fx = *state;
    ds_keyring_destroy(&fx->ring);
    ds_test_rmrf(fx->dir);
    free(fx);
    return 0;
}

static void s_join(char *out, size_t len, const char *dir, const char *rel)
{
    int n = snprintf(out, len, "%s/%s", dir, rel);
    assert_true(n > 0 && (size_t)n < len);
}

static unsigned s_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (unsigned)(st.st_mode & 07777);
}

static bool s_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/*  A fresh Z85 public key. */
static void s_new_key(char key[DS_KEY_TEXT_LEN + 1])
{
    zcert_t *c = zcert_new();
    assert_non_null(c);
    memcpy(key, zcert_public_txt(c), DS_KEY_TEXT_LEN + 1);
    zcert_destroy(&c);
}

static void test_generate_writes_pair_with_modes(void **state)
{
    s_fix_t *fx = *state;
    char path[600], secret[640], err[512] = "";
    s_join(path, sizeof path, fx->dir, "alice.key");
    snprintf(secret, sizeof secret, "%s_secret", path);
    mode_t old = umask(0); /* a lax umask must not widen the secret file */
    int rc = ds_keys_generate(path, "alice", err, sizeof err);
    umask(old);
    assert_int_equal(rc, 0);
    assert_int_equal(s_mode(path), 0644);
    assert_int_equal(s_mode(secret), 0600);

    zcert_t *pair = NULL;
    assert_int_equal(ds_keys_load_pair(path, &pair, err, sizeof err), 0);
    assert_non_null(pair);
    char pub[DS_KEY_TEXT_LEN + 1];
    assert_int_equal(ds_keys_load_public(path, pub, err, sizeof err), 0);
    assert_string_equal(pub, zcert_public_txt(pair));
    assert_string_equal(zcert_meta(pair, "name"), "alice");

    /* czmq's own loader reads the same files (interoperable with zcert). */
    zcert_t *theirs = zcert_load(path);
    assert_non_null(theirs);
    assert_string_equal(zcert_public_txt(theirs), zcert_public_txt(pair));
    assert_string_equal(zcert_secret_txt(theirs), zcert_secret_txt(pair));
    zcert_destroy(&theirs);
    zcert_destroy(&pair);

    /* The secret path itself loads as well. */
    assert_int_equal(ds_keys_load_pair(secret, &pair, err, sizeof err), 0);
    zcert_destroy(&pair);
}

static void test_generate_never_overwrites(void **state)
{
    s_fix_t *fx = *state;
    char path[600], err[512] = "";
    s_join(path, sizeof path, fx->dir, "k.key");
    assert_int_equal(ds_keys_generate(path, "k", err, sizeof err), 0);
    char before[DS_KEY_TEXT_LEN + 1], after[DS_KEY_TEXT_LEN + 1];
    assert_int_equal(ds_keys_load_public(path, before, err, sizeof err), 0);
    assert_int_equal(ds_keys_generate(path, "k", err, sizeof err), DS_EEXIST);
    assert_non_null(strstr(err, path));
    assert_int_equal(ds_keys_load_public(path, after, err, sizeof err), 0);
    assert_string_equal(before, after);

    /* A lone, world-readable secret file in the way: refused, not reused. */
    char other[600], secret[640];
    s_join(other, sizeof other, fx->dir, "o.key");
    snprintf(secret, sizeof secret, "%s_secret", other);
    FILE *f = fopen(secret, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(ds_keys_generate(other, "o", err, sizeof err), DS_EEXIST);
    assert_false(s_exists(other));
}

static void test_generate_refuses_bad_name(void **state)
{
    s_fix_t *fx = *state;
    char path[600], err[512] = "";
    s_join(path, sizeof path, fx->dir, "x.key");
    assert_int_equal(ds_keys_generate(path, "bad name", err, sizeof err), DS_EINVAL);
    assert_int_equal(ds_keys_generate(path, "", err, sizeof err), DS_EINVAL);
    assert_int_equal(ds_keys_generate(path, "a\"b", err, sizeof err), DS_EINVAL);
    assert_false(s_exists(path));
}

static void test_secret_readable_by_others_refused_with_chmod_hint(void **state)
{
    s_fix_t *fx = *state;
    char path[600], secret[640], err[1024] = "";
    s_join(path, sizeof path, fx->dir, "w.key");
    snprintf(secret, sizeof secret, "%s_secret", path);
    assert_int_equal(ds_keys_generate(path, "w", err, sizeof err), 0);
    assert_int_equal(chmod(secret, 0644), 0);
    zcert_t *pair = NULL;
    assert_int_equal(ds_keys_load_pair(path, &pair, err, sizeof err), DS_EPERM);
    assert_null(pair);
    assert_non_null(strstr(err, secret));
    assert_non_null(strstr(err, "0644"));
    char hint[700];
    snprintf(hint, sizeof hint, "chmod 600 %s", secret);
    assert_non_null(strstr(err, hint));
    assert_int_equal(ds_keys_check_secret_mode(secret, err, sizeof err), DS_EPERM);

    /* Group-only bits count too; stricter than 0600 is fine. */
    assert_int_equal(chmod(secret, 0640), 0);
    assert_int_equal(ds_keys_load_pair(path, &pair, err, sizeof err), DS_EPERM);
    assert_int_equal(chmod(secret, 0400), 0);
    assert_int_equal(ds_keys_load_pair(path, &pair, err, sizeof err), 0);
    zcert_destroy(&pair);
    assert_int_equal(chmod(secret, 0600), 0);
    assert_int_equal(ds_keys_check_secret_mode(secret, err, sizeof err), 0);
}

static void s_write(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_load_refuses_missing_and_bad_files(void **state)
{
    s_fix_t *fx = *state;
    char path[600], secret[640], err[512] = "";
    char key[DS_KEY_TEXT_LEN + 1];
    s_join(path, sizeof path, fx->dir, "none.key");
    assert_int_equal(ds_keys_load_public(path, key, err, sizeof err), DS_ENOTFOUND);
    assert_non_null(strstr(err, path));
    zcert_t *pair = NULL;
    assert_int_equal(ds_keys_load_pair(path, &pair, err, sizeof err), DS_ENOTFOUND);

    s_join(path, sizeof path, fx->dir, "junk.key");
    s_write(path, "curve\n    public-key = \"short\"\n", 0644);
    assert_int_equal(ds_keys_load_public(path, key, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "public-key"));

    /* A pair whose halves do not belong together. */
    zcert_t *a = zcert_new(), *b = zcert_new();
    char text[512];
    snprintf(text, sizeof text, "curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n",
             zcert_public_txt(a), zcert_secret_txt(b));
    zcert_destroy(&a);
    zcert_destroy(&b);
    s_join(path, sizeof path, fx->dir, "mixed.key");
    snprintf(secret, sizeof secret, "%s_secret", path);
    s_write(secret, text, 0600);
    assert_int_equal(ds_keys_load_pair(path, &pair, err, sizeof err), DS_EINVAL);
    assert_null(pair);
    assert_non_null(strstr(err, "does not belong"));
}

static void test_bootstrap_writes_layout(void **state)
{
    s_fix_t *fx = *state;
    char dir[600], path[700], err[512] = "";
    s_join(dir, sizeof dir, fx->dir, "cluster-keys");
    assert_int_equal(ds_keys_bootstrap(dir, 3, "alice", err, sizeof err), 0);

    static const char *const pub[] = {"cluster.pub", "peers/coord-1.pub", "peers/coord-2.pub",
                                      "peers/coord-3.pub", "admins/alice.pub"};
    for (size_t i = 0; i < sizeof pub / sizeof pub[0]; i++) {
        s_join(path, sizeof path, dir, pub[i]);
        assert_int_equal(s_mode(path), 0644);
    }
    static const char *const secret[] = {"private/cluster.key_secret", "private/coord-1.key_secret",
                                         "private/coord-2.key_secret", "private/coord-3.key_secret",
                                         "private/alice.key_secret"};
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++) {
        s_join(path, sizeof path, dir, secret[i]);
        assert_int_equal(s_mode(path), 0600);
    }
    s_join(path, sizeof path, dir, "private");
    assert_int_equal(s_mode(path), 0700);
    s_join(path, sizeof path, dir, "viewers");
    assert_true(s_exists(path));
    s_join(path, sizeof path, dir, "workers");
    assert_true(s_exists(path));
    s_join(path, sizeof path, dir, "peers/coord-4.pub");
    assert_false(s_exists(path));

    /* The allow-list loads: 3 peers and 1 admin, each with its name; the
       cluster key itself is not admitted as anyone. */
    assert_int_equal(ds_keyring_load_dir(fx->ring, dir, err, sizeof err), 0);
    assert_int_equal(ds_keyring_size(fx->ring), 4);
    zcert_t *pair = NULL;
    s_join(path, sizeof path, dir, "private/coord-2.key");
    assert_int_equal(ds_keys_load_pair(path, &pair, err, sizeof err), 0);
    ds_role_t role;
    char name[DS_MAX_NAME + 1];
    assert_int_equal(ds_keyring_lookup(fx->ring, zcert_public_txt(pair), &role, name, sizeof name),
                     0);
    assert_int_equal(role, DS_ROLE_PEER);
    assert_string_equal(name, "coord-2");
    zcert_destroy(&pair);
    s_join(path, sizeof path, dir, "private/alice.key");
    assert_int_equal(ds_keys_load_pair(path, &pair, err, sizeof err), 0);
    assert_int_equal(ds_keyring_lookup(fx->ring, zcert_public_txt(pair), &role, name, sizeof name),
                     0);
    assert_int_equal(role, DS_ROLE_ADMIN);
    assert_string_equal(name, "alice");
    zcert_destroy(&pair);
    char cluster[DS_KEY_TEXT_LEN + 1];
    s_join(path, sizeof path, dir, "cluster.pub");
    assert_int_equal(ds_keys_load_public(path, cluster, err, sizeof err), 0);
    assert_int_equal(ds_keyring_lookup(fx->ring, cluster, &role, NULL, 0), DS_ENOTFOUND);

    /* Running it again never overwrites a key. */
    assert_int_equal(ds_keys_bootstrap(dir, 3, "alice", err, sizeof err), DS_EEXIST);
    char again[DS_KEY_TEXT_LEN + 1];
    assert_int_equal(ds_keys_load_public(path, again, err, sizeof err), 0);
    assert_string_equal(again, cluster);
}

static void test_bootstrap_refuses_bad_arguments(void **state)
{
    s_fix_t *fx = *state;
    char dir[600], err[512] = "";
    s_join(dir, sizeof dir, fx->dir, "b");
    assert_int_equal(ds_keys_bootstrap(dir, 0, "alice", err, sizeof err), DS_EINVAL);
    assert_int_equal(ds_keys_bootstrap(dir, DS_KEYS_MAX_COORD + 1, "alice", err, sizeof err),
                     DS_EINVAL);
    assert_int_equal(ds_keys_bootstrap(dir, 3, "coord-1", err, sizeof err), DS_EINVAL);
    assert_int_equal(ds_keys_bootstrap(dir, 3, "a b", err, sizeof err), DS_EINVAL);
    assert_false(s_exists(dir));
}

static void test_load_dir_refuses_secret_and_double_role(void **state)
{
    s_fix_t *fx = *state;
    char dir[600], path[700], path2[700], err[512] = "";
    s_join(dir, sizeof dir, fx->dir, "allow");
    assert_int_equal(ds_keys_bootstrap(dir, 1, "admin", err, sizeof err), 0);

    /* A secret file dropped into an allow-list directory. */
    s_join(path, sizeof path, dir, "private/admin.key_secret");
    s_join(path2, sizeof path2, dir, "admins/admin.key_secret");
    assert_int_equal(link(path, path2), 0);
    assert_int_equal(ds_keyring_load_dir(fx->ring, dir, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, path2));
    assert_int_equal(unlink(path2), 0);

    /* The admin's key also listed as a viewer. */
    ds_keyring_t *ring = ds_keyring_new();
    assert_non_null(ring);
    s_join(path, sizeof path, dir, "admins/admin.pub");
    s_join(path2, sizeof path2, dir, "viewers/admin.pub");
    assert_int_equal(link(path, path2), 0);
    int rc = ds_keyring_load_dir(ring, dir, err, sizeof err);
    ds_keyring_destroy(&ring);
    assert_int_equal(rc, DS_EEXIST);
    assert_non_null(strstr(err, path2));

    /* Files that are not NAME.pub are ignored; a missing dir is empty. */
    assert_int_equal(unlink(path2), 0);
    s_join(path, sizeof path, dir, "workers/README");
    s_write(path, "worker keys go here\n", 0644);
    ring = ds_keyring_new();
    assert_non_null(ring);
    rc = ds_keyring_load_dir(ring, dir, err, sizeof err);
    size_t n = ds_keyring_size(ring);
    ds_keyring_destroy(&ring);
    assert_int_equal(rc, 0);
    assert_int_equal(n, 2);

    s_join(path, sizeof path, fx->dir, "nowhere");
    assert_int_equal(ds_keyring_load_dir(fx->ring, path, err, sizeof err), DS_ENOTFOUND);
}

static void test_keyring_add_remove_lookup(void **state)
{
    s_fix_t *fx = *state;
    char k[DS_KEY_TEXT_LEN + 1], err[512] = "";
    s_new_key(k);
    ds_role_t role;
    char name[DS_MAX_NAME + 1];
    assert_int_equal(ds_keyring_lookup(fx->ring, k, &role, name, sizeof name), DS_ENOTFOUND);
    assert_int_equal(ds_keyring_add(fx->ring, k, DS_ROLE_WORKER, "w1", err, sizeof err), 0);
    /* Replayed add: no change, no error. */
    assert_int_equal(ds_keyring_add(fx->ring, k, DS_ROLE_WORKER, "w1", err, sizeof err), 0);
    assert_int_equal(ds_keyring_size(fx->ring), 1);
    assert_int_equal(ds_keyring_add(fx->ring, k, DS_ROLE_ADMIN, "w1", err, sizeof err), DS_EEXIST);
    assert_non_null(strstr(err, "already worker"));
    assert_int_equal(ds_keyring_lookup(fx->ring, k, &role, name, sizeof name), 0);
    assert_int_equal(role, DS_ROLE_WORKER);
    assert_string_equal(name, "w1");

    assert_int_equal(ds_keyring_remove(fx->ring, k), 0);
    assert_int_equal(ds_keyring_size(fx->ring), 0);
    assert_int_equal(ds_keyring_lookup(fx->ring, k, &role, name, sizeof name), DS_EPERM);
    assert_int_equal(ds_keyring_remove(fx->ring, k), DS_ENOTFOUND);
    /* Added again: admitted again, with the new role if it changed. */
    assert_int_equal(ds_keyring_add(fx->ring, k, DS_ROLE_VIEWER, "w1", err, sizeof err), 0);
    assert_int_equal(ds_keyring_lookup(fx->ring, k, &role, NULL, 0), 0);
    assert_int_equal(role, DS_ROLE_VIEWER);

    assert_int_equal(ds_keyring_add(fx->ring, "not-a-key", DS_ROLE_ADMIN, "x", err, sizeof err),
                     DS_EINVAL);
    char k2[DS_KEY_TEXT_LEN + 1];
    s_new_key(k2);
    assert_int_equal(ds_keyring_add(fx->ring, k2, DS_ROLE_PENDING, "x", err, sizeof err),
                     DS_EINVAL);
    assert_int_equal(ds_keyring_add(fx->ring, k2, DS_ROLE_ADMIN, "bad name", err, sizeof err),
                     DS_EINVAL);
    assert_int_equal(ds_keyring_remove(fx->ring, "short"), DS_EINVAL);
}

static void test_keyring_resolve_by_domain(void **state)
{
    s_fix_t *fx = *state;
    char peer[DS_KEY_TEXT_LEN + 1], admin[DS_KEY_TEXT_LEN + 1], unknown[DS_KEY_TEXT_LEN + 1];
    s_new_key(peer);
    s_new_key(admin);
    s_new_key(unknown);
    assert_int_equal(ds_keyring_add(fx->ring, peer, DS_ROLE_PEER, "coord-1", NULL, 0), 0);
    assert_int_equal(ds_keyring_add(fx->ring, admin, DS_ROLE_ADMIN, "alice", NULL, 0), 0);
    ds_role_t role;
    assert_int_equal(ds_keyring_resolve(fx->ring, peer, DS_DOMAIN_PEER, &role, NULL, 0), 0);
    assert_int_equal(role, DS_ROLE_PEER);
    assert_int_equal(ds_keyring_resolve(fx->ring, peer, DS_DOMAIN_RPC, &role, NULL, 0),
                     DS_EFORBIDDEN);
    assert_int_equal(ds_keyring_resolve(fx->ring, admin, DS_DOMAIN_PEER, &role, NULL, 0),
                     DS_EFORBIDDEN);
    assert_int_equal(ds_keyring_resolve(fx->ring, admin, DS_DOMAIN_RPC, &role, NULL, 0), 0);
    assert_int_equal(role, DS_ROLE_ADMIN);

    /* Unknown keys: refused, unless joins are open, and then on rpc only
       and as pending. A revoked key is not pending. */
    assert_int_equal(ds_keyring_resolve(fx->ring, unknown, DS_DOMAIN_RPC, &role, NULL, 0),
                     DS_EFORBIDDEN);
    ds_keyring_set_joins(fx->ring, true);
    assert_int_equal(ds_keyring_resolve(fx->ring, unknown, DS_DOMAIN_RPC, &role, NULL, 0), 0);
    assert_int_equal(role, DS_ROLE_PENDING);
    assert_int_equal(ds_keyring_resolve(fx->ring, unknown, DS_DOMAIN_PEER, &role, NULL, 0),
                     DS_EFORBIDDEN);
    assert_int_equal(ds_keyring_remove(fx->ring, admin), 0);
    assert_int_equal(ds_keyring_resolve(fx->ring, admin, DS_DOMAIN_RPC, &role, NULL, 0),
                     DS_EFORBIDDEN);
    assert_int_equal(ds_keyring_resolve(fx->ring, NULL, DS_DOMAIN_RPC, &role, NULL, 0),
                     DS_EFORBIDDEN);
}

static void test_role_may_send_by_family(void **state)
{
    (void)state;
    assert_int_equal(ds_role_may_send(DS_ROLE_PEER, DS_RAFT_VOTE), 0);
    assert_int_equal(ds_role_may_send(DS_ROLE_PEER, DS_MSG_PEER_HELLO), 0);
    assert_int_equal(ds_role_may_send(DS_ROLE_PEER, DS_MSG_DEPLOY), DS_EFORBIDDEN);
    assert_int_equal(ds_role_may_send(DS_ROLE_ADMIN, DS_MSG_DEPLOY), 0);
    assert_int_equal(ds_role_may_send(DS_ROLE_ADMIN, DS_MSG_STATUS), 0);
    assert_int_equal(ds_role_may_send(DS_ROLE_ADMIN, DS_MSG_HEARTBEAT), DS_EFORBIDDEN);
    assert_int_equal(ds_role_may_send(DS_ROLE_ADMIN, DS_RAFT_APPEND), DS_EFORBIDDEN);
    assert_int_equal(ds_role_may_send(DS_ROLE_VIEWER, DS_MSG_STATUS), 0);
    assert_int_equal(ds_role_may_send(DS_ROLE_VIEWER, DS_MSG_EVENTS), 0);
    assert_int_equal(ds_role_may_send(DS_ROLE_VIEWER, DS_MSG_DEPLOY), DS_EFORBIDDEN);
    assert_int_equal(ds_role_may_send(DS_ROLE_VIEWER, DS_MSG_KV_PUT), DS_EFORBIDDEN);
    assert_int_equal(ds_role_may_send(DS_ROLE_WORKER, DS_MSG_HEARTBEAT), 0);
    assert_int_equal(ds_role_may_send(DS_ROLE_WORKER, DS_MSG_JOIN), 0);
    assert_int_equal(ds_role_may_send(DS_ROLE_WORKER, DS_MSG_DEPLOY), DS_EFORBIDDEN);
    assert_int_equal(ds_role_may_send(DS_ROLE_WORKER, DS_MSG_STATUS), DS_EFORBIDDEN);
    assert_int_equal(ds_role_may_send(DS_ROLE_PENDING, DS_MSG_JOIN), 0);
    assert_int_equal(ds_role_may_send(DS_ROLE_PENDING, DS_MSG_HEARTBEAT), DS_EFORBIDDEN);
    assert_int_equal(ds_role_may_send(DS_ROLE_NONE, DS_MSG_STATUS), DS_EFORBIDDEN);
    /* Replies are never accepted by a server, whoever sends them. */
    assert_int_equal(ds_role_may_send(DS_ROLE_ADMIN, DS_MSG_OP_REPLY), DS_EFORBIDDEN);
    assert_int_equal(ds_role_may_send(DS_ROLE_WORKER, DS_MSG_ASSIGNMENT), DS_EFORBIDDEN);
    assert_int_equal(ds_role_may_send(DS_ROLE_INSECURE, DS_MSG_DEPLOY), 0);

    assert_false(ds_role_admitted(DS_ROLE_PEER, DS_DOMAIN_RPC));
    assert_true(ds_role_admitted(DS_ROLE_PEER, DS_DOMAIN_PEER));
    assert_false(ds_role_admitted(DS_ROLE_WORKER, DS_DOMAIN_PEER));
    assert_true(ds_role_admitted(DS_ROLE_PENDING, DS_DOMAIN_RPC));
    ds_role_t r;
    assert_int_equal(ds_role_parse("viewer", &r), 0);
    assert_int_equal(r, DS_ROLE_VIEWER);
    assert_int_equal(ds_role_parse("pending", &r), DS_EINVAL);
    ds_domain_t d;
    assert_int_equal(ds_domain_parse("gossamer.peer", &d), 0);
    assert_int_equal(d, DS_DOMAIN_PEER);
    assert_int_equal(ds_domain_parse("global", &d), DS_EINVAL);
}

/*  Lookups from another thread while keys come and go (run under ASan and
    TSan builds to see the lock at work). */
typedef struct {
    ds_keyring_t *ring;
    char keys[8][DS_KEY_TEXT_LEN + 1];
    unsigned found;
} s_race_t;

static void *s_reader(void *arg)
{
    s_race_t *r = arg;
    for (unsigned i = 0; i < 20000; i++) {
        ds_role_t role;
        char name[DS_MAX_NAME + 1];
        if (ds_keyring_lookup(r->ring, r->keys[i % 8], &role, name, sizeof name) == 0)
            r->found++;
    }
    return NULL;
}

static void test_keyring_is_thread_safe(void **state)
{
    s_fix_t *fx = *state;
    s_race_t r = {.ring = fx->ring, .found = 0};
    for (int i = 0; i < 8; i++)
        s_new_key(r.keys[i]);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_reader, &r), 0);
    for (unsigned i = 0; i < 4000; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%u", i % 8);
        (void)ds_keyring_add(fx->ring, r.keys[i % 8], DS_ROLE_WORKER, name, NULL, 0);
        (void)ds_keyring_remove(fx->ring, r.keys[(i + 3) % 8]);
    }
    pthread_join(t, NULL);
    assert_true(ds_keyring_size(fx->ring) <= 8);
}

#define S_TEST(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)

int main(void)
{
    zsys_handler_set(NULL);
    const struct CMUnitTest tests[] = {
        S_TEST(test_generate_writes_pair_with_modes),
        S_TEST(test_generate_never_overwrites),
        S_TEST(test_generate_refuses_bad_name),
        S_TEST(test_secret_readable_by_others_refused_with_chmod_hint),
        S_TEST(test_load_refuses_missing_and_bad_files),
        S_TEST(test_bootstrap_writes_layout),
        S_TEST(test_bootstrap_refuses_bad_arguments),
        S_TEST(test_load_dir_refuses_secret_and_double_role),
        S_TEST(test_keyring_add_remove_lookup),
        S_TEST(test_keyring_resolve_by_domain),
        S_TEST(test_role_may_send_by_family),
        S_TEST(test_keyring_is_thread_safe),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    return failed;
}
