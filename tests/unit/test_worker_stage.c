/*  tests/unit/test_worker_stage.c - staging artifacts: directories,
    tarballs (made here with libarchive), sha256 checks, unsafe archives,
    http downloads from ds_testsvc on 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol/error.h"
#include "tests/testutil.h"
#include "worker/stage.h"

typedef struct {
    char dir[512];
    pid_t server;
} fx_t;

typedef struct {
    const char *path;
    const char *body; /* regular file when link is NULL */
    const char *link; /* symlink target */
    const char *hard; /* hard link target */
} s_entry_t;

static void s_tar(const char *file, const s_entry_t *e, size_t n)
{
    struct archive *a = archive_write_new();
    assert_non_null(a);
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_open_filename(a, file), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *en = archive_entry_new();
        archive_entry_set_pathname(en, e[i].path);
        if (e[i].link) {
            archive_entry_set_filetype(en, AE_IFLNK);
            archive_entry_set_symlink(en, e[i].link);
            archive_entry_set_perm(en, 0777);
        } else if (e[i].hard) {
            archive_entry_set_filetype(en, AE_IFREG);
            archive_entry_set_hardlink(en, e[i].hard);
            archive_entry_set_perm(en, 0644);
        } else {
            archive_entry_set_filetype(en, AE_IFREG);
            archive_entry_set_perm(en, 0755);
            archive_entry_set_size(en, (la_int64_t)strlen(e[i].body));
        }
        assert_int_equal(archive_write_header(a, en), ARCHIVE_OK);
        if (!e[i].link && !e[i].hard)
            assert_int_equal(archive_write_data(a, e[i].body, strlen(e[i].body)),
                             (la_ssize_t)strlen(e[i].body));
        archive_entry_free(en);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

static void s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void s_expect_file(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("missing %s", path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_string_equal(buf, text);
}

static int s_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(ds_test_mkdtemp("wstage", fx->dir, sizeof fx->dir), 0);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *fx = *state;
    if (fx->server > 0) {
        kill(fx->server, SIGKILL);
        int st;
        waitpid(fx->server, &st, 0);
    }
    ds_test_rmrf(fx->dir);
    free(fx);
    return 0;
}

static void test_directory_is_copied_atomically(void **state)
{
    fx_t *fx = *state;
    char src[700], path[800], dest[700];
    snprintf(src, sizeof src, "%s/src", fx->dir);
    assert_int_equal(mkdir(src, 0755), 0);
    snprintf(path, sizeof path, "%s/bin", src);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/bin/run", src);
    s_write(path, "#!/bin/sh\n");
    assert_int_equal(chmod(path, 0755), 0);
    snprintf(path, sizeof path, "%s/link", src);
    assert_int_equal(symlink("bin/run", path), 0);
    snprintf(dest, sizeof dest, "%s/releases/svc/1", fx->dir);
    char err[512] = "";
    int rc = ds_stage_run(src, NULL, dest, NULL, err, sizeof err);
    if (rc)
        fail_msg("stage: %s", err);
    snprintf(path, sizeof path, "%s/bin/run", dest);
    s_expect_file(path, "#!/bin/sh\n");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_mode & S_IXUSR);
    snprintf(path, sizeof path, "%s/link", dest);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    /* Already staged: a no-op. */
    assert_int_equal(ds_stage_run(src, NULL, dest, NULL, err, sizeof err), 0);
    /* No staging leftovers next to it. */
    char cmd[900];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s/releases/svc | grep -v '^1$')\"", fx->dir);
    assert_int_equal(system(cmd), 0);
    /* A sha256 for a directory is refused. */
    snprintf(dest, sizeof dest, "%s/releases/svc/2", fx->dir);
    assert_int_equal(ds_stage_run(src, "00", dest, NULL, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "directory"));
}

static void test_tarball_is_unpacked_and_checked(void **state)
{
    fx_t *fx = *state;
    char tgz[700], dest[700], path[800], hex[65];
    snprintf(tgz, sizeof tgz, "%s/a.tar.gz", fx->dir);
    s_entry_t e[] = {{"bin/", NULL, NULL, NULL},
                     {"bin/serve", "hello\n", NULL, NULL},
                     {"cur", NULL, "bin/serve", NULL},
                     {"copy", NULL, NULL, "bin/serve"}};
    /* A directory entry: give it a body-less regular file instead. */
    e[0] = (s_entry_t){"VERSION", "1\n", NULL, NULL};
    s_tar(tgz, e, 4);
    assert_int_equal(ds_stage_sha256_file(tgz, hex), 0);
    /* Cross-check the digest with sha256sum. */
    char cmd[900], sum[128] = "";
    snprintf(cmd, sizeof cmd, "sha256sum %s", tgz);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(sum, sizeof sum, p));
    pclose(p);
    assert_memory_equal(sum, hex, 64);
    snprintf(dest, sizeof dest, "%s/rel/1", fx->dir);
    char err[512] = "";
    int rc = ds_stage_run(tgz, hex, dest, NULL, err, sizeof err);
    if (rc)
        fail_msg("stage: %s", err);
    snprintf(path, sizeof path, "%s/bin/serve", dest);
    s_expect_file(path, "hello\n");
    snprintf(path, sizeof path, "%s/cur", dest);
    s_expect_file(path, "hello\n");
    snprintf(path, sizeof path, "%s/copy", dest);
    s_expect_file(path, "hello\n");
}

static void test_wrong_sha256_is_refused_and_nothing_is_unpacked(void **state)
{
    fx_t *fx = *state;
    char tgz[700], dest[700];
    snprintf(tgz, sizeof tgz, "%s/a.tar.gz", fx->dir);
    s_entry_t e[] = {{"run", "x\n", NULL, NULL}};
    s_tar(tgz, e, 1);
    snprintf(dest, sizeof dest, "%s/rel/1", fx->dir);
    char err[512] = "";
    assert_int_equal(
        ds_stage_run(tgz, "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12", dest,
                     NULL, err, sizeof err),
        DS_EINVAL);
    assert_non_null(strstr(err, "sha256 mismatch"));
    assert_non_null(strstr(err, "ab12ab12"));
    assert_int_not_equal(access(dest, F_OK), 0);
}

static void s_expect_refused(fx_t *fx, const s_entry_t *e, size_t n, const char *outside)
{
    char tgz[700], dest[700], path[800];
    snprintf(tgz, sizeof tgz, "%s/bad.tar.gz", fx->dir);
    unlink(tgz);
    s_tar(tgz, e, n);
    snprintf(dest, sizeof dest, "%s/rel/sub/1", fx->dir);
    char err[512] = "";
    assert_int_equal(ds_stage_run(tgz, NULL, dest, NULL, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "refusing the artifact"));
    assert_int_not_equal(access(dest, F_OK), 0);
    if (outside) {
        snprintf(path, sizeof path, "%s/%s", fx->dir, outside);
        assert_int_not_equal(access(path, F_OK), 0);
    }
    /* No staging directory is left behind. */
    char cmd[900];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s/rel/sub)\"", fx->dir);
    assert_int_equal(system(cmd), 0);
}

static void test_traversal_entries_and_escaping_links_are_refused(void **state)
{
    fx_t *fx = *state;
    s_entry_t dotdot[] = {{"ok", "1\n", NULL, NULL}, {"../../evil", "x\n", NULL, NULL}};
    s_expect_refused(fx, dotdot, 2, "evil");
    s_entry_t inner[] = {{"a/../../evil2", "x\n", NULL, NULL}};
    s_expect_refused(fx, inner, 1, "evil2");
    s_entry_t abs[] = {{"/tmp/gossamer-evil-abs", "x\n", NULL, NULL}};
    s_expect_refused(fx, abs, 1, NULL);
    assert_int_not_equal(access("/tmp/gossamer-evil-abs", F_OK), 0);
    s_entry_t sym[] = {{"d/link", NULL, "../../x", NULL}};
    s_expect_refused(fx, sym, 1, NULL);
    s_entry_t symabs[] = {{"link", NULL, "/etc/passwd", NULL}};
    s_expect_refused(fx, symabs, 1, NULL);
    s_entry_t hard[] = {{"h", NULL, NULL, "../outside"}};
    s_expect_refused(fx, hard, 1, NULL);
}

static void s_wait_listening(uint16_t port)
{
    for (int i = 0; i < 500; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("ds_testsvc did not listen on %u", (unsigned)port);
}

static void test_http_artifact_is_downloaded_checked_and_unpacked(void **state)
{
    fx_t *fx = *state;
    char srv[700], tgz[800], hex[65], dest[700], url[256], path[800];
    snprintf(srv, sizeof srv, "%s/srv", fx->dir);
    assert_int_equal(mkdir(srv, 0755), 0);
    snprintf(tgz, sizeof tgz, "%s/rel.tar.gz", srv);
    s_entry_t e[] = {{"bin/serve", "remote\n", NULL, NULL}};
    s_tar(tgz, e, 1);
    assert_int_equal(ds_stage_sha256_file(tgz, hex), 0);
    uint16_t port = ds_test_free_port();
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    fx->server = fork();
    assert_true(fx->server >= 0);
    if (fx->server == 0) {
        execl(DS_TESTSVC_BIN, "ds_testsvc", "--port", portstr, "--serve-dir", srv, (char *)NULL);
        _exit(127);
    }
    s_wait_listening(port);

    /* Asynchronously, as the reconciler does it. */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/files/rel.tar.gz", (unsigned)port);
    snprintf(dest, sizeof dest, "%s/rel/1", fx->dir);
    char err[512] = "";
    ds_stage_job_t *job = NULL;
    assert_int_equal(ds_stage_job_start(url, hex, dest, &job, err, sizeof err), 0);
    int rc = -1;
    bool done = false;
    for (int i = 0; i < 500 && !done; i++) {
        struct pollfd pfd = {.fd = ds_stage_job_fd(job), .events = POLLIN};
        (void)poll(&pfd, 1, 20);
        done = ds_stage_job_done(job, &rc, err, sizeof err);
    }
    ds_stage_job_destroy(&job);
    assert_null(job);
    assert_true(done);
    if (rc)
        fail_msg("stage: %s", err);
    snprintf(path, sizeof path, "%s/bin/serve", dest);
    s_expect_file(path, "remote\n");

    /* A 404 is a clear failure. */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/files/missing.tar.gz", (unsigned)port);
    snprintf(dest, sizeof dest, "%s/rel/2", fx->dir);
    assert_int_equal(ds_stage_run(url, NULL, dest, NULL, err, sizeof err), DS_EIO);
    assert_non_null(strstr(err, "download"));
    assert_int_not_equal(access(dest, F_OK), 0);
    /* A wrong digest on a download too. */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/files/rel.tar.gz", (unsigned)port);
    hex[0] = hex[0] == 'a' ? 'b' : 'a';
    assert_int_equal(ds_stage_run(url, hex, dest, NULL, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "sha256 mismatch"));
}

static void test_missing_artifact_is_a_clear_error(void **state)
{
    fx_t *fx = *state;
    char dest[700];
    snprintf(dest, sizeof dest, "%s/rel/1", fx->dir);
    char err[512] = "";
    assert_int_equal(
        ds_stage_run("/nonexistent/gossamer/artifact.tar.gz", NULL, dest, NULL, err, sizeof err),
        DS_ENOTFOUND);
    assert_non_null(strstr(err, "/nonexistent/gossamer/artifact.tar.gz"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_directory_is_copied_atomically, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_tarball_is_unpacked_and_checked, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_sha256_is_refused_and_nothing_is_unpacked,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_traversal_entries_and_escaping_links_are_refused,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_http_artifact_is_downloaded_checked_and_unpacked,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_missing_artifact_is_a_clear_error, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
