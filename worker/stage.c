/*  worker/stage.c - artifact staging: copy, download, digest, unpack. */
#include "worker/stage.h"

#include "worker/fsutil.h"

#include "protocol/error.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAX_DEPTH 64 /* directory nesting copied from a local artifact */

/* ---- helpers ---------------------------------------------------------- */

static int s_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int ds_stage_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : DS_EIO;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? 0 : DS_EIO;
    return nftw(path, s_rm_cb, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : DS_EIO;
}

int ds_stage_sha256_file(const char *path, char hex[65])
{
    int rc = DS_EIO;
    FILE *f = fopen(path, "rbe");
    if (!f)
        return DS_EIO;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        goto err_file;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto err_ctx;
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if (EVP_DigestUpdate(ctx, buf, n) != 1)
            goto err_ctx;
    if (ferror(f))
        goto err_ctx;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
        goto err_ctx;
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    rc = 0;
err_ctx:
    EVP_MD_CTX_free(ctx);
err_file:
    fclose(f);
    return rc;
}

static bool s_is_url(const char *a)
{
    return strncasecmp(a, "http://", 7) == 0 || strncasecmp(a, "https://", 8) == 0;
}

/*  Splits dest into its parent directory; returns a malloc'd path. */
static char *s_sibling(const char *dest, const char *prefix)
{
    const char *slash = strrchr(dest, '/');
    size_t dirlen = slash ? (size_t)(slash - dest) : 0;
    const char *base = slash ? slash + 1 : dest;
    static unsigned counter;
    size_t len = strlen(dest) + strlen(prefix) + 48;
    char *out = malloc(len);
    if (!out)
        return NULL;
    snprintf(out, len, "%.*s%s%s%s-%ld-%u", (int)dirlen, dest, slash ? "/" : "", prefix, base,
             (long)getpid(), __atomic_add_fetch(&counter, 1u, __ATOMIC_RELAXED));
    return out;
}

/* ---- local directory ------------------------------------------------- */

static int s_copy_dir(const char *from, const char *to, int depth, char *err, size_t errlen)
{
    if (depth > S_MAX_DEPTH)
        return ds_errf(err, errlen, DS_EINVAL, "artifact %s: directories nested deeper than %d",
                       from, S_MAX_DEPTH);
    DIR *d = opendir(from);
    if (!d)
        return ds_errf(err, errlen, DS_EIO, "cannot read %s: %s", from, strerror(errno));
    int rc = 0;
    struct dirent *e;
    char src[4096], dst[4096];
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((size_t)snprintf(src, sizeof src, "%s/%s", from, e->d_name) >= sizeof src ||
            (size_t)snprintf(dst, sizeof dst, "%s/%s", to, e->d_name) >= sizeof dst) {
            rc = ds_errf(err, errlen, DS_EINVAL, "path too long under %s", from);
            break;
        }
        struct stat st;
        if (lstat(src, &st) != 0) {
            rc = ds_errf(err, errlen, DS_EIO, "cannot stat %s: %s", src, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            if (mkdir(dst, (st.st_mode & 07777) | 0700) != 0)
                rc = ds_errf(err, errlen, DS_EIO, "cannot create %s: %s", dst, strerror(errno));
            else
                rc = s_copy_dir(src, dst, depth + 1, err, errlen);
        } else if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t n = readlink(src, target, sizeof target - 1);
            if (n < 0) {
                rc = ds_errf(err, errlen, DS_EIO, "cannot read link %s", src);
            } else {
                target[n] = '\0';
                if (symlink(target, dst) != 0)
                    rc = ds_errf(err, errlen, DS_EIO, "cannot create link %s", dst);
            }
        } else if (S_ISREG(st.st_mode)) {
            if (ds_fs_copy_file(src, dst, st.st_mode, true) != 0)
                rc = ds_errf(err, errlen, DS_EIO, "cannot copy %s: %s", src, strerror(errno));
        }
        /* Sockets, fifos and devices are not part of a release. */
    }
    closedir(d);
    return rc;
}

/* ---- archives --------------------------------------------------------- */

/*  True when a relative path stays inside its root: not absolute, no
    ".." component. */
static bool s_path_safe(const char *p)
{
    if (!p || p[0] == '/')
        return false;
    const char *s = p;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return false;
        if (!e)
            break;
        s = e + 1;
    }
    return true;
}

/*  True when the symlink at entry path `p` with target `t` resolves
    inside the root. */
static bool s_link_safe(const char *p, const char *t)
{
    if (!t || t[0] == '/')
        return false;
    int depth = 0;
    /* The link lives in p's directory. */
    for (const char *s = p; *s; s++)
        if (*s == '/' && s[1] != '\0' && s[1] != '/')
            depth++;
    const char *s = t;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            if (--depth < 0)
                return false;
        } else if (n > 0 && !(n == 1 && s[0] == '.')) {
            depth++;
        }
        if (!e)
            break;
        s = e + 1;
    }
    return true;
}

static int s_copy_data(struct archive *in, struct archive *out)
{
    const void *buf;
    size_t size;
    la_int64_t off;
    for (;;) {
        int r = archive_read_data_block(in, &buf, &size, &off);
        if (r == ARCHIVE_EOF)
            return ARCHIVE_OK;
        if (r < ARCHIVE_OK)
            return r;
        if (archive_write_data_block(out, buf, size, off) < ARCHIVE_OK)
            return ARCHIVE_FATAL;
    }
}

static int s_unpack(const char *file, const char *root, char *err, size_t errlen)
{
    int rc = 0;
    struct archive *in = archive_read_new();
    struct archive *out = archive_write_disk_new();
    if (!in || !out) {
        rc = ds_errf(err, errlen, DS_ENOMEM, "out of memory opening the archive");
        goto done;
    }
    archive_read_support_filter_all(in);
    archive_read_support_format_tar(in);
    archive_read_support_format_gnutar(in);
    /* Paths are checked here and then made absolute under root, so
       SECURE_NOABSOLUTEPATHS cannot be used; the other guards stay. */
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                            ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                            ARCHIVE_EXTRACT_SECURE_SYMLINKS);
    if (archive_read_open_filename(in, file, 65536) != ARCHIVE_OK) {
        rc = ds_errf(err, errlen, DS_EINVAL, "artifact is not a readable tar archive: %s",
                     archive_error_string(in));
        goto done;
    }
    struct archive_entry *entry;
    char full[4096];
    int r;
    size_t n_entries = 0;
    while ((r = archive_read_next_header(in, &entry)) == ARCHIVE_OK) {
        n_entries++;
        char p[2048];
        const char *raw = archive_entry_pathname(entry);
        if (!raw || strlen(raw) >= sizeof p) {
            rc = ds_errf(err, errlen, DS_EINVAL,
                         "archive entry without a usable path; refusing the artifact");
            goto done;
        }
        /* A copy: set_pathname below frees what raw points to. */
        memcpy(p, raw, strlen(raw) + 1);
        if (!s_path_safe(p)) {
            rc = ds_errf(err, errlen, DS_EINVAL,
                         "archive entry \"%s\" has an absolute path or a \"..\" component; "
                         "refusing the artifact",
                         p);
            goto done;
        }
        const char *hl = archive_entry_hardlink(entry);
        if (hl && !s_path_safe(hl)) {
            rc = ds_errf(err, errlen, DS_EINVAL,
                         "archive entry \"%s\" is a hard link outside the release (\"%s\"); "
                         "refusing the artifact",
                         p, hl);
            goto done;
        }
        const char *sl = archive_entry_symlink(entry);
        if (archive_entry_filetype(entry) == AE_IFLNK && !s_link_safe(p, sl)) {
            rc = ds_errf(err, errlen, DS_EINVAL,
                         "archive entry \"%s\" is a symbolic link outside the release "
                         "(\"%s\"); refusing the artifact",
                         p, sl ? sl : "");
            goto done;
        }
        mode_t type = archive_entry_filetype(entry);
        if (!hl && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
            continue; /* devices, fifos: not part of a release */
        }
        if ((size_t)snprintf(full, sizeof full, "%s/%s", root, p) >= sizeof full) {
            rc = ds_errf(err, errlen, DS_EINVAL, "archive entry path too long: %s", p);
            goto done;
        }
        archive_entry_set_pathname(entry, full);
        if (hl) {
            char target[4096];
            if ((size_t)snprintf(target, sizeof target, "%s/%s", root, hl) >= sizeof target) {
                rc = ds_errf(err, errlen, DS_EINVAL, "archive link path too long: %s", hl);
                goto done;
            }
            archive_entry_set_hardlink(entry, target);
        }
        if (archive_write_header(out, entry) < ARCHIVE_OK) {
            rc = ds_errf(err, errlen, DS_EIO, "cannot unpack \"%s\": %s", p,
                         archive_error_string(out));
            goto done;
        }
        if (archive_entry_size(entry) > 0 && s_copy_data(in, out) < ARCHIVE_OK) {
            rc = ds_errf(err, errlen, DS_EIO, "cannot unpack \"%s\": %s", p,
                         archive_error_string(in));
            goto done;
        }
        if (archive_write_finish_entry(out) < ARCHIVE_OK) {
            rc = ds_errf(err, errlen, DS_EIO, "cannot unpack \"%s\": %s", p,
                         archive_error_string(out));
            goto done;
        }
    }
    if (r != ARCHIVE_EOF) {
        rc = ds_errf(err, errlen, DS_EINVAL, "artifact is not a valid tar archive: %s",
                     archive_error_string(in));
        goto done;
    }
    if (n_entries == 0)
        rc = ds_errf(err, errlen, DS_EINVAL, "artifact archive is empty");
done:
    if (out) {
        archive_write_close(out);
        archive_write_free(out);
    }
    if (in)
        archive_read_free(in);
    return rc;
}

/* ---- download ------------------------------------------------------------ */

static int s_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    const atomic_bool *cancel = ctx;
    return cancel && atomic_load(cancel) ? 1 : 0;
}

static int s_download(const char *url, const char *file, const atomic_bool *cancel, char *err,
                      size_t errlen)
{
    int rc = 0;
    FILE *f = fopen(file, "wbe");
    if (!f)
        return ds_errf(err, errlen, DS_EIO, "cannot create %s: %s", file, strerror(errno));
    CURL *h = curl_easy_init();
    if (!h) {
        fclose(f);
        return ds_errf(err, errlen, DS_ENOMEM, "cannot start a download (curl)");
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, DS_STAGE_DOWNLOAD_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, s_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)cancel);
    CURLcode cr = curl_easy_perform(h);
    if (cr == CURLE_ABORTED_BY_CALLBACK)
        rc = ds_errf(err, errlen, DS_EIO, "download of %s cancelled", url);
    else if (cr != CURLE_OK)
        rc = ds_errf(err, errlen, DS_EIO, "download of %s failed: %s", url,
                     cerr[0] ? cerr : curl_easy_strerror(cr));
    curl_easy_cleanup(h);
    if (fclose(f) != 0 && rc == 0)
        rc = ds_errf(err, errlen, DS_EIO, "cannot write %s: %s", file, strerror(errno));
    return rc;
}

/* ---- staging --------------------------------------------------------------- */

int ds_stage_run(const char *artifact, const char *sha256, const char *dest,
                 const atomic_bool *cancel, char *err, size_t errlen)
{
    int rc = 0;
    char *stage = NULL, *download = NULL;
    struct stat st;
    bool check = sha256 && sha256[0];
    if (!artifact || !artifact[0])
        return ds_errf(err, errlen, DS_EINVAL, "the spec has no artifact");
    if (stat(dest, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    const char *slash = strrchr(dest, '/');
    if (slash && slash != dest) {
        char parent[4096];
        size_t plen = (size_t)(slash - dest);
        if (plen >= sizeof parent)
            return ds_errf(err, errlen, DS_EINVAL, "release path too long");
        memcpy(parent, dest, plen);
        parent[plen] = '\0';
        if (ds_fs_mkdir_p(parent) != 0)
            return ds_errf(err, errlen, DS_EIO, "cannot create %s: %s", parent, strerror(errno));
    }
    stage = s_sibling(dest, ".stage-");
    if (!stage)
        return ds_errf(err, errlen, DS_ENOMEM, "out of memory");
    (void)ds_stage_rmtree(stage);
    const char *file = artifact;
    if (s_is_url(artifact)) {
        download = s_sibling(dest, ".download-");
        if (!download) {
            rc = ds_errf(err, errlen, DS_ENOMEM, "out of memory");
            goto out;
        }
        rc = s_download(artifact, download, cancel, err, errlen);
        if (rc)
            goto out;
        file = download;
    } else if (stat(artifact, &st) != 0) {
        rc = ds_errf(err, errlen, DS_ENOTFOUND, "artifact %s: %s", artifact, strerror(errno));
        goto out;
    } else if (S_ISDIR(st.st_mode)) {
        if (check) {
            rc = ds_errf(err, errlen, DS_EINVAL,
                         "artifact %s is a directory, which has no sha256; remove sha256 from "
                         "the spec or ship a .tar.gz",
                         artifact);
            goto out;
        }
        if (mkdir(stage, 0755) != 0) {
            rc = ds_errf(err, errlen, DS_EIO, "cannot create %s: %s", stage, strerror(errno));
            goto out;
        }
        rc = s_copy_dir(artifact, stage, 0, err, errlen);
        if (rc)
            goto out;
        goto publish;
    }
    if (check) {
        char hex[65];
        if (ds_stage_sha256_file(file, hex) != 0) {
            rc = ds_errf(err, errlen, DS_EIO, "cannot read %s to check its sha256", file);
            goto out;
        }
        if (strcasecmp(hex, sha256) != 0) {
            rc = ds_errf(err, errlen, DS_EINVAL,
                         "sha256 mismatch for %s: expected %s, got %s; refusing the artifact",
                         artifact, sha256, hex);
            goto out;
        }
    }
    if (mkdir(stage, 0755) != 0) {
        rc = ds_errf(err, errlen, DS_EIO, "cannot create %s: %s", stage, strerror(errno));
        goto out;
    }
    rc = s_unpack(file, stage, err, errlen);
    if (rc)
        goto out;
publish:
    if (rename(stage, dest) != 0) {
        /* Another job finished first: its copy is as good as ours. */
        if ((errno == ENOTEMPTY || errno == EEXIST) && stat(dest, &st) == 0) {
            rc = 0;
            goto out;
        }
        rc = ds_errf(err, errlen, DS_EIO, "cannot rename %s to %s: %s", stage, dest,
                     strerror(errno));
        goto out;
    }
out:
    if (stage)
        (void)ds_stage_rmtree(stage);
    if (download)
        (void)unlink(download);
    free(stage);
    free(download);
    return rc;
}

/* ---- the job thread -------------------------------------------------------- */

struct ds_stage_job {
    char *artifact;
    char *sha256;
    char *dest;
    pthread_t thread;
    int pipe[2];
    atomic_bool cancel;
    atomic_bool done;
    int rc;
    char reason[DS_STAGE_REASON];
};

static void *s_job_main(void *arg)
{
    ds_stage_job_t *job = arg;
    job->rc = ds_stage_run(job->artifact, job->sha256, job->dest, &job->cancel, job->reason,
                           sizeof job->reason);
    atomic_store(&job->done, true);
    char b = 1;
    ssize_t w = write(job->pipe[1], &b, 1);
    (void)w; /* the flag is what counts; the byte only wakes the loop */
    return NULL;
}

int ds_stage_job_start(const char *artifact, const char *sha256, const char *dest,
                       ds_stage_job_t **out, char *err, size_t errlen)
{
    ds_stage_job_t *job = calloc(1, sizeof *job);
    if (!job)
        return ds_errf(err, errlen, DS_ENOMEM, "out of memory");
    job->pipe[0] = job->pipe[1] = -1;
    job->artifact = strdup(artifact ? artifact : "");
    job->sha256 = strdup(sha256 ? sha256 : "");
    job->dest = strdup(dest);
    if (!job->artifact || !job->sha256 || !job->dest) {
        ds_stage_job_destroy(&job);
        return ds_errf(err, errlen, DS_ENOMEM, "out of memory");
    }
    if (ds_fs_pipe(job->pipe) != 0) {
        int e = errno;
        ds_stage_job_destroy(&job);
        return ds_errf(err, errlen, DS_EIO, "pipe: %s", strerror(e));
    }
    atomic_init(&job->cancel, false);
    atomic_init(&job->done, false);
    int e = pthread_create(&job->thread, NULL, s_job_main, job);
    if (e != 0) {
        close(job->pipe[0]);
        close(job->pipe[1]);
        job->pipe[0] = job->pipe[1] = -1;
        free(job->artifact);
        free(job->sha256);
        free(job->dest);
        free(job);
        return ds_errf(err, errlen, DS_EIO, "cannot start the staging thread: %s", strerror(e));
    }
    *out = job;
    return 0;
}

int ds_stage_job_fd(const ds_stage_job_t *job)
{
    return job->pipe[0];
}

bool ds_stage_job_done(ds_stage_job_t *job, int *rc, char *reason, size_t len)
{
    if (!atomic_load(&job->done))
        return false;
    char b[8];
    while (read(job->pipe[0], b, sizeof b) > 0) {
    }
    *rc = job->rc;
    if (reason && len)
        snprintf(reason, len, "%s", job->reason);
    return true;
}

void ds_stage_job_destroy(ds_stage_job_t **job_p)
{
    if (!job_p || !*job_p)
        return;
    ds_stage_job_t *job = *job_p;
    if (job->pipe[0] >= 0) { /* started: the thread exists */
        atomic_store(&job->cancel, true);
        pthread_join(job->thread, NULL);
        close(job->pipe[0]);
        close(job->pipe[1]);
    }
    free(job->artifact);
    free(job->sha256);
    free(job->dest);
    free(job);
    *job_p = NULL;
}
