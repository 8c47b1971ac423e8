/*  tests/integration/test_secure_cluster.c - CURVE on every socket, roles and
    join tokens with real dscoord, dsworker and dsctl processes
    (docs/security.md): whoever does not belong is refused, the refusal
    is logged, and the cluster's state is the same afterwards. */
#include "tests/integration/cluster.h"

#include "protocol/keys.h"

#include <sys/stat.h>

typedef struct {
    ds_cl_t *c;
    char viewer_key[700];
} s_fix_t;

/*  A secure 3-member cluster with a viewer key, worker w1 joined with a
    one-use token. */
static int s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    ds_cl_opts_t o = {.worker_heartbeat = "200ms", .worker_timeout = "3s", .secure = true};
    f->c = ds_cl_new("security", 3, &o);
    char err[512], pub[800], text[4096];
    snprintf(f->viewer_key, sizeof f->viewer_key, "%s/private/viewer.key", f->c->keys);
    assert_int_equal(ds_keys_generate(f->viewer_key, "viewer", err, sizeof err), 0);
    snprintf(pub, sizeof pub, "%s/viewers/viewer.pub", f->c->keys);
    FILE *in = fopen(f->viewer_key, "r"), *out = fopen(pub, "w");
    assert_non_null(in);
    assert_non_null(out);
    size_t n = fread(text, 1, sizeof text, in);
    assert_int_equal(fwrite(text, 1, n, out), n);
    fclose(in);
    fclose(out);
    ds_cl_start_all(f->c);
    ds_cl_wait_leader(f->c, 0, 10000, NULL);
    const char *targs[] = {"--uses", "1", "--label", "team=ml", NULL};
    ds_cl_make_token(f->c, targs);
    ds_cl_workers(f->c, 3);
    ds_cl_worker_start(f->c, 0, NULL);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    ds_cl_destroy(&f->c);
    free(f);
    *state = NULL;
    return 0;
}

static int s_dsctl(s_fix_t *f, ds_cl_run_t *r, const char *const *args)
{
    const char *argv[DS_CL_ARGS] = {"-o", "json", "--timeout", "10s"};
    size_t n = 4;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return ds_cl_dsctl_argv(f->c, r, f->c->rpcs, argv);
}

/*  Waits until `dsctl workers` lists exactly the names in `want`
    (comma-separated, in name order) as up. */
static void s_wait_workers(s_fix_t *f, const char *want)
{
    static ds_cl_run_t r;
    const char *args[] = {"workers", NULL};
    char seen[256] = "";
    for (int64_t end = ds_cl_now_ms() + 30000; ds_cl_now_ms() < end; ds_cl_sleep_ms(200)) {
        if (s_dsctl(f, &r, args) != 0)
            continue;
        seen[0] = '\0';
        for (const char *p = strstr(r.out, "\"name\": \""); p; p = strstr(p + 1, "\"name\": \"")) {
            char name[64] = "", st[16] = "";
            sscanf(p, "\"name\": \"%63[^\"]", name);
            const char *q = strstr(p, "\"state\": \"");
            if (q)
                sscanf(q, "\"state\": \"%15[^\"]", st);
            if (strcmp(st, "up") == 0)
                snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s%s",
                         seen[0] ? "," : "", name);
        }
        if (strcmp(seen, want) == 0)
            return;
    }
    fail_msg("workers up: \"%s\", expected \"%s\"", seen, want);
}

/*  A client with the key pair saved at `path` (NULL: a new unknown key). */
static ds_transport_security_t *s_client_sec(s_fix_t *f, const char *path)
{
    char err[512], server[DS_KEY_TEXT_LEN + 1], fresh[800];
    if (!path) {
        snprintf(fresh, sizeof fresh, "%s/stranger.key", f->c->dir);
        assert_int_equal(ds_keys_generate(fresh, "stranger", err, sizeof err), 0);
        path = fresh;
    }
    zcert_t *cert = NULL;
    ds_transport_security_t *sec = NULL;
    assert_int_equal(ds_keys_load_pair(path, &cert, err, sizeof err), 0);
    assert_int_equal(ds_keys_load_public(f->c->cluster_pub, server, err, sizeof err), 0);
    assert_int_equal(ds_transport_security_new_client(cert, server, &sec, err, sizeof err), 0);
    zcert_destroy(&cert);
    return sec;
}

/*  Sends a kv put to every member with `sec`: returns the code of the
    last reply (DS_ETIMEOUT when nobody answered). */
static int64_t s_put_as(s_fix_t *f, const ds_transport_security_t *sec, const char *sender)
{
    ds_kv_put_t put = {"intruder", {(uint8_t *)"x", 1}};
    int64_t code = DS_ETIMEOUT;
    for (size_t i = 0; i < f->c->n; i++) {
        ds_envelope_t env = {DS_PROTOCOL_VERSION, DS_MSG_KV_PUT, 1000 + i, (char *)sender};
        ds_msg_t *reply = NULL;
        int rc = ds_rpc_call(f->c->m[i].rpc, sec, &env, &put, 1000, &reply, NULL);
        if (rc == 0 && reply->env.type == DS_MSG_ERROR)
            code = ((ds_error_reply_t *)reply->body)->code;
        else if (rc == 0)
            code = 0;
        ds_msg_destroy(&reply);
    }
    return code;
}

static int s_log_total(s_fix_t *f, const char *needle)
{
    int n = 0;
    for (size_t i = 0; i < f->c->n; i++)
        n += ds_cl_log_count(f->c, i, needle);
    return n;
}

static int s_worker_log_count(s_fix_t *f, size_t w, const char *needle)
{
    FILE *fp = fopen(f->c->w[w].log, "r");
    if (!fp)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, fp))
        n += strstr(line, needle) != NULL;
    fclose(fp);
    return n;
}

static void s_wait_worker_log(s_fix_t *f, size_t w, const char *needle)
{
    for (int64_t end = ds_cl_now_ms() + 20000; ds_cl_now_ms() < end; ds_cl_sleep_ms(100))
        if (s_worker_log_count(f, w, needle) > 0)
            return;
    fail_msg("worker %s never logged \"%s\" (see %s)", f->c->w[w].name, needle, f->c->w[w].log);
}

/*  The parts of the state the refusals must not change. */
static void s_snapshot(s_fix_t *f, char *out, size_t len)
{
    static ds_cl_run_t r;
    const char *kv[] = {"kv", "get", "intruder", NULL};
    const char *tokens[] = {"token", "list", NULL};
    const char *status[] = {"status", NULL};
    assert_int_equal(s_dsctl(f, &r, kv), 1); /* not found */
    size_t n = (size_t)snprintf(out, len, "kv:%s|", r.out);
    assert_int_equal(s_dsctl(f, &r, tokens), 0);
    n += (size_t)snprintf(out + n, len - n, "tokens:%s|", r.out);
    assert_int_equal(s_dsctl(f, &r, status), 0);
    snprintf(out + n, len - n, "status:%s", r.out);
}

static void test_every_intruder_is_refused_logged_and_changes_nothing(void **state)
{
    s_fix_t *f = *state;
    s_wait_workers(f, "w1");
    static char before[3 * DS_CL_OUT], after[3 * DS_CL_OUT];
    s_snapshot(f, before, sizeof before);
    int refused0 = s_log_total(f, "forbidden message refused");

    /* No key: a plain client never gets through the CURVE handshake. */
    assert_int_equal(s_put_as(f, NULL, "nokey"), DS_ETIMEOUT);
    /* An unknown key: admitted as "pending" (it could join with a token),
       so its admin request gets a forbidden error. */
    ds_transport_security_t *stranger = s_client_sec(f, NULL);
    assert_int_equal(s_put_as(f, stranger, "stranger"), DS_EFORBIDDEN);
    ds_transport_security_destroy(&stranger);
    /* A worker's key asking for an admin command. */
    char wkey[800];
    snprintf(wkey, sizeof wkey, "%s/worker.key", f->c->w[0].data);
    ds_transport_security_t *worker = s_client_sec(f, wkey);
    assert_int_equal(s_put_as(f, worker, "w1"), DS_EFORBIDDEN);
    ds_transport_security_destroy(&worker);
    /* A viewer key: reads are fine, a deploy is forbidden (exit 1). */
    ds_cl_run_t r;
    f->c->dsctl_key = f->viewer_key;
    const char *status[] = {"status", NULL};
    assert_int_equal(s_dsctl(f, &r, status), 0);
    const char *deploy[] = {"deploy", "svc", "--artifact", f->c->dir, "--cmd", "true", NULL};
    assert_int_equal(s_dsctl(f, &r, deploy), 1);
    assert_non_null(strstr(r.err, "DS_EFORBIDDEN"));
    const char *remove[] = {"workers", "remove", "w1", NULL};
    assert_int_equal(s_dsctl(f, &r, remove), 1);
    /* dsctl without a key is told how to give one (exit 2). */
    f->c->dsctl_key = "";
    assert_int_equal(s_dsctl(f, &r, status), 2);
    assert_non_null(strstr(r.err, "--key"));
    f->c->dsctl_key = NULL;

    assert_true(s_log_total(f, "forbidden message refused") >= refused0 + 5);
    s_snapshot(f, after, sizeof after);
    assert_string_equal(before, after);
    s_wait_workers(f, "w1");
    ds_cl_workers_alive(f->c);
    ds_cl_passed(f->c);
}

static void test_bad_tokens_are_refused_and_the_worker_keeps_retrying(void **state)
{
    s_fix_t *f = *state;
    s_wait_workers(f, "w1");
    ds_cl_run_t r;
    /* w1's token admitted one join: it is used up now. */
    const char *list[] = {"token", "list", NULL};
    assert_int_equal(s_dsctl(f, &r, list), 0);
    assert_int_equal(ds_cl_json_u64(r.out, "used"), 1);

    /* w2: the used-up token. */
    ds_cl_worker_start(f->c, 1, NULL);
    s_wait_worker_log(f, 1, "used up");
    /* w3: an expired token, then a revoked one, then a wrong secret. */
    const char *expired[] = {"--ttl", "1ms", "--id", "expiring", NULL};
    ds_cl_make_token(f->c, expired);
    ds_cl_sleep_ms(50);
    ds_cl_worker_start(f->c, 2, NULL);
    s_wait_worker_log(f, 2, "expired");
    ds_cl_worker_kill(f->c, 2);
    const char *revoked[] = {"--id", "revoked", NULL};
    ds_cl_make_token(f->c, revoked);
    const char *revoke[] = {"token", "revoke", "revoked", NULL};
    assert_int_equal(s_dsctl(f, &r, revoke), 0);
    ds_cl_worker_start(f->c, 2, NULL);
    s_wait_worker_log(f, 2, "revoked");
    ds_cl_worker_kill(f->c, 2);
    char *dot = strchr(f->c->token, '.');
    assert_non_null(dot);
    snprintf(dot + 1, sizeof f->c->token - (size_t)(dot + 1 - f->c->token), "%s",
             "0000000000000000000000000000000000000000000000");
    ds_cl_worker_start(f->c, 2, NULL);
    s_wait_worker_log(f, 2, "wrong secret");
    assert_true(s_log_total(f, "join refused") >= 4);

    /* Nothing joined; the refused workers keep trying, with a backoff. */
    s_wait_workers(f, "w1");
    ds_cl_sleep_ms(1500);
    ds_cl_workers_alive(f->c);
    int attempts = s_worker_log_count(f, 1, "join refused");
    assert_true(attempts >= 1 && attempts < 40);
    s_wait_workers(f, "w1");

    /* A good token lets w2 in (and gives it the token's label). */
    const char *good[] = {"--label", "tier=gpu", NULL};
    ds_cl_make_token(f->c, good);
    ds_cl_worker_kill(f->c, 1);
    ds_cl_worker_start(f->c, 1, NULL);
    s_wait_workers(f, "w1,w2");
    const char *workers[] = {"workers", NULL};
    assert_int_equal(s_dsctl(f, &r, workers), 0);
    assert_non_null(strstr(r.out, "gpu"));
    ds_cl_passed(f->c);
}

static void test_removed_worker_is_refused_from_its_next_message(void **state)
{
    s_fix_t *f = *state;
    s_wait_workers(f, "w1");
    ds_cl_run_t r;
    const char *remove[] = {"workers", "remove", "w1", NULL};
    assert_int_equal(s_dsctl(f, &r, remove), 0);
    s_wait_worker_log(f, 0, "DS_EFORBIDDEN");
    const char *workers[] = {"workers", NULL};
    for (int64_t end = ds_cl_now_ms() + 10000; ds_cl_now_ms() < end; ds_cl_sleep_ms(100)) {
        assert_int_equal(s_dsctl(f, &r, workers), 0);
        if (!strstr(r.out, "\"w1\""))
            break;
    }
    assert_null(strstr(r.out, "\"w1\""));
    ds_cl_sleep_ms(1000); /* it keeps trying, and stays out */
    assert_int_equal(s_dsctl(f, &r, workers), 0);
    assert_null(strstr(r.out, "\"w1\""));
    assert_true(s_log_total(f, "worker key revoked") >= 3);
    ds_cl_passed(f->c);
}

static void test_unknown_peer_cannot_join_the_raft_group(void **state)
{
    s_fix_t *f = *state;
    size_t lead = ds_cl_wait_leader(f->c, 0, 10000, NULL);
    ds_cl_view_t v0;
    assert_int_equal(ds_cl_view(f->c, lead, &v0), 0);
    /* A stranger with its own key and the cluster's public key (as a
       leaked cluster.pub would allow) asks every member for votes with a
       huge term, as member 2. */
    ds_transport_security_t *sec = s_client_sec(f, NULL);
    for (size_t i = 0; i < f->c->n; i++) {
        char err[256];
        zsock_t *s = NULL;
        assert_int_equal(ds_transport_peer_connect(f->c->m[i].peer, "2", sec, &s, err, sizeof err),
                         0);
        ds_raft_msg_t vote = {.type = DS_RAFT_VOTE,
                              .from = 2,
                              .to = f->c->m[i].id,
                              .term = v0.term + 1000,
                              .log_term = v0.term + 1000,
                              .index = 1u << 30};
        ds_envelope_t env = {DS_PROTOCOL_VERSION, DS_RAFT_VOTE, 0, "2"};
        for (int k = 0; k < 20; k++) {
            (void)ds_transport_send(s, NULL, &env, &vote, NULL);
            ds_cl_sleep_ms(10);
        }
        zsock_destroy(&s);
    }
    ds_transport_security_destroy(&sec);
    ds_cl_sleep_ms(500);
    size_t lead2 = ds_cl_wait_leader(f->c, 0, 10000, NULL);
    ds_cl_view_t v1;
    assert_int_equal(ds_cl_view(f->c, lead2, &v1), 0);
    assert_int_equal(lead2, lead);
    assert_int_equal(v1.term, v0.term);
    ds_cl_passed(f->c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_intruder_is_refused_logged_and_changes_nothing,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_tokens_are_refused_and_the_worker_keeps_retrying,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_removed_worker_is_refused_from_its_next_message,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_peer_cannot_join_the_raft_group, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
