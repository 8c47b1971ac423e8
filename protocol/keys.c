/*  protocol/keys.c - CURVE keys on disk, roles, the key registry; see keys.h. */
#include "protocol/keys.h"

#include "protocol/error.h"
#include "protocol/limits.h"
#include "protocol/msg.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define S_SECRET_SUFFIX "_secret"
#define S_PUB_SUFFIX    ".pub"
#define S_PATH_MAX      (DS_MAX_PATH + 1)

/* ---- roles and domains ---------------------------------------------- */

const char *ds_role_name(ds_role_t role)
{
    switch (role) {
    case DS_ROLE_NONE:
        return "none";
    case DS_ROLE_PEER:
        return "peer";
    case DS_ROLE_ADMIN:
        return "admin";
    case DS_ROLE_VIEWER:
        return "viewer";
    case DS_ROLE_WORKER:
        return "worker";
    case DS_ROLE_PENDING:
        return "pending";
    case DS_ROLE_INSECURE:
        return "insecure";
    }
    return "?";
}

int ds_role_parse(const char *text, ds_role_t *out)
{
    assert(text && out);
    static const ds_role_t stored[] = {DS_ROLE_PEER, DS_ROLE_ADMIN, DS_ROLE_VIEWER, DS_ROLE_WORKER};
    for (size_t i = 0; i < sizeof stored / sizeof stored[0]; i++)
        if (strcmp(text, ds_role_name(stored[i])) == 0) {
            *out = stored[i];
            return 0;
        }
    return DS_EINVAL;
}

const char *ds_domain_zap(ds_domain_t domain)
{
    switch (domain) {
    case DS_DOMAIN_PEER:
        return "gossamer.peer";
    case DS_DOMAIN_RPC:
        return "gossamer.rpc";
    }
    return NULL;
}

int ds_domain_parse(const char *zap_domain, ds_domain_t *out)
{
    assert(zap_domain && out);
    static const ds_domain_t all[] = {DS_DOMAIN_PEER, DS_DOMAIN_RPC};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(zap_domain, ds_domain_zap(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return DS_EINVAL;
}

bool ds_role_admitted(ds_role_t role, ds_domain_t domain)
{
    switch (domain) {
    case DS_DOMAIN_PEER:
        return role == DS_ROLE_PEER;
    case DS_DOMAIN_RPC:
        return role == DS_ROLE_ADMIN || role == DS_ROLE_VIEWER || role == DS_ROLE_WORKER ||
               role == DS_ROLE_PENDING;
    }
    return false;
}

int ds_role_may_send(ds_role_t role, uint16_t type)
{
    ds_msg_family_t family = ds_msg_family(type);
    bool ok = false;
    switch (role) {
    case DS_ROLE_INSECURE:
        ok = true;
        break;
    case DS_ROLE_PEER:
        ok = family == DS_FAMILY_PEER;
        break;
    case DS_ROLE_ADMIN:
        ok = family == DS_FAMILY_ADMIN || family == DS_FAMILY_VIEW;
        break;
    case DS_ROLE_VIEWER:
        ok = family == DS_FAMILY_VIEW;
        break;
    case DS_ROLE_WORKER:
        ok = family == DS_FAMILY_WORKER;
        break;
    case DS_ROLE_PENDING:
        ok = type == DS_MSG_JOIN;
        break;
    case DS_ROLE_NONE:
        break;
    }
    return ok ? 0 : DS_EFORBIDDEN;
}

/* ---- key text and names ------------------------------------------- */

int ds_keys_check_text(const char *text)
{
    if (!text || strlen(text) != DS_KEY_TEXT_LEN)
        return DS_EINVAL;
    uint8_t bin[32];
    return zmq_z85_decode(bin, text) ? 0 : DS_EINVAL;
}

int ds_keys_check_name(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > DS_MAX_NAME || name[0] == '.')
        return DS_EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return DS_EINVAL;
    }
    return 0;
}

/*  Joins printf-style parts into a path of at most DS_MAX_PATH bytes. */
static int s_path(char out[S_PATH_MAX], char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int s_path(char out[S_PATH_MAX], char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, S_PATH_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= S_PATH_MAX)
        return ds_errf(err, errlen, DS_EINVAL, "%.64s...: path longer than %u bytes", out,
                       DS_MAX_PATH);
    return 0;
}

/* ---- writing certificates ----------------------------------------- */

static int s_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/*  Writes one certificate file in czmq's zcert format, creating it with
    `mode` (O_EXCL: never an existing file, whose mode would be kept).
    `secret` NULL writes a public certificate. */
static int s_write_cert(const char *path, mode_t mode, const char *name, const char *public_txt,
                        const char *secret_txt, char *err, size_t errlen)
{
    char text[1024];
    int n;
    if (secret_txt)
        n = snprintf(text, sizeof text,
                     "#   ****  Generated by Gossamer  ****\n"
                     "#   ZeroMQ CURVE **Secret** Certificate\n"
                     "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n"
                     "\n"
                     "metadata\n"
                     "    name = \"%s\"\n"
                     "curve\n"
                     "    public-key = \"%s\"\n"
                     "    secret-key = \"%s\"\n",
                     name, public_txt, secret_txt);
    else
        n = snprintf(text, sizeof text,
                     "#   ****  Generated by Gossamer  ****\n"
                     "#   ZeroMQ CURVE Public Certificate\n"
                     "#   Exchange securely, or use a secure mechanism to verify the contents\n"
                     "#   of this file after exchange.\n"
                     "\n"
                     "metadata\n"
                     "    name = \"%s\"\n"
                     "curve\n"
                     "    public-key = \"%s\"\n",
                     name, public_txt);
    assert(n > 0 && (size_t)n < sizeof text);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        int e = errno;
        if (e == EEXIST)
            return ds_errf(err, errlen, DS_EEXIST,
                           "%s: already exists (keys are never overwritten: remove it first, or "
                           "pick another name)",
                           path);
        return ds_errf(err, errlen, DS_EIO, "%s: cannot create: %s", path, strerror(e));
    }
    /* The umask may have narrowed `mode`; an explicit fchmod sets exactly it. */
    int rc = 0;
    if (fchmod(fd, mode) != 0 || s_write_all(fd, text, (size_t)n) != 0 || fsync(fd) != 0)
        rc = ds_errf(err, errlen, DS_EIO, "%s: cannot write: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == 0)
        rc = ds_errf(err, errlen, DS_EIO, "%s: cannot write: %s", path, strerror(errno));
    if (rc != 0)
        unlink(path);
    return rc;
}

/*  Writes a key pair at `path` from a certificate. */
static int s_write_pair(zcert_t *cert, const char *path, const char *name, char *err, size_t errlen)
{
    char secret_path[S_PATH_MAX];
    int rc = s_path(secret_path, err, errlen, "%s%s", path, S_SECRET_SUFFIX);
    if (rc != 0)
        return rc;
    /* Both names must be free before either is written. */
    struct stat st;
    if (lstat(path, &st) == 0 || lstat(secret_path, &st) == 0)
        return ds_errf(err, errlen, DS_EEXIST,
                       "%s: a key pair already exists there (keys are never overwritten: remove "
                       "%s and %s first, or pick another path)",
                       path, path, secret_path);
    rc = s_write_cert(secret_path, 0600, name, zcert_public_txt(cert), zcert_secret_txt(cert), err,
                      errlen);
    if (rc != 0)
        return rc;
    rc = s_write_cert(path, 0644, name, zcert_public_txt(cert), NULL, err, errlen);
    if (rc != 0)
        unlink(secret_path);
    return rc;
}

int ds_keys_generate(const char *path, const char *name, char *err, size_t errlen)
{
    assert(path);
    if (ds_keys_check_name(name) != 0)
        return ds_errf(err, errlen, DS_EINVAL,
                       "key name \"%s\": use 1 to %u characters of A-Z a-z 0-9 . _ - (not "
                       "starting with .)",
                       name ? name : "", DS_MAX_NAME);
    zcert_t *cert = zcert_new();
    if (!cert)
        return ds_errf(err, errlen, DS_EIO,
                       "cannot generate a CURVE key pair: %s (is libzmq built with CURVE?)",
                       zmq_strerror(zmq_errno()));
    int rc = s_write_pair(cert, path, name, err, errlen);
    zcert_destroy(&cert);
    return rc;
}

/* ---- reading certificates ----------------------------------------- */

static int s_check_mode(const char *path, const struct stat *st, char *err, size_t errlen)
{
    if (!S_ISREG(st->st_mode))
        return ds_errf(err, errlen, DS_EINVAL, "%s: not a regular file", path);
    if ((st->st_mode & (S_IRWXG | S_IRWXO)) != 0)
        return ds_errf(err, errlen, DS_EPERM,
                       "%s: secret key file has mode %04o: its group or others may read it; "
                       "it must be readable by its owner only (run: chmod 600 %s)",
                       path, (unsigned)(st->st_mode & 07777), path);
    return 0;
}

int ds_keys_check_secret_mode(const char *secret_path, char *err, size_t errlen)
{
    assert(secret_path);
    struct stat st;
    if (stat(secret_path, &st) != 0) {
        int e = errno;
        return ds_errf(err, errlen, e == ENOENT ? DS_ENOTFOUND : DS_EIO, "%s: %s", secret_path,
                       strerror(e));
    }
    return s_check_mode(secret_path, &st, err, errlen);
}

/*  Reads a certificate file (checking its mode first when `secret`) and
    parses it; the caller destroys *out with zconfig_destroy. */
static int s_read_cert(const char *path, bool secret, zconfig_t **out, char *err, size_t errlen)
{
    *out = NULL;
    char *text = NULL;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return ds_errf(err, errlen, e == ENOENT ? DS_ENOTFOUND : DS_EIO, "%s: cannot open: %s",
                       path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = ds_errf(err, errlen, DS_EIO, "%s: %s", path, strerror(errno));
        goto exit;
    }
    rc = secret ? s_check_mode(path, &st, err, errlen)
                : (S_ISREG(st.st_mode)
                       ? 0
                       : ds_errf(err, errlen, DS_EINVAL, "%s: not a regular file", path));
    if (rc != 0)
        goto exit;
    if (st.st_size > DS_KEY_MAX_FILE) {
        rc = ds_errf(err, errlen, DS_EINVAL, "%s: %lld bytes is too big for a key file", path,
                     (long long)st.st_size);
        goto exit;
    }
    rc = DS_ENOMEM;
    if (!(text = malloc(DS_KEY_MAX_FILE + 1)))
        goto exit;
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, text + len, DS_KEY_MAX_FILE + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ds_errf(err, errlen, DS_EIO, "%s: cannot read: %s", path, strerror(errno));
            goto exit;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > DS_KEY_MAX_FILE) {
            rc = ds_errf(err, errlen, DS_EINVAL, "%s: too big for a key file", path);
            goto exit;
        }
    }
    text[len] = '\0';
    if (memchr(text, '\0', len) || !(*out = zconfig_str_load(text))) {
        rc = ds_errf(err, errlen, DS_EINVAL, "%s: not a certificate file (ZPL text)", path);
        goto exit;
    }
    rc = 0;
exit:
    free(text);
    close(fd);
    return rc;
}

/*  The key at `keypath` ("curve/public-key") of a parsed certificate. */
static int s_cert_key(zconfig_t *root, const char *keypath, const char *path, char *err,
                      size_t errlen, const char **out)
{
    const char *text = zconfig_get(root, keypath, NULL);
    if (!text || ds_keys_check_text(text) != 0)
        return ds_errf(err, errlen, DS_EINVAL,
                       "%s: %s is missing or not a 40-character Z85 key (regenerate the key)", path,
                       keypath);
    *out = text;
    return 0;
}

static bool s_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int ds_keys_load_pair(const char *path, zcert_t **out, char *err, size_t errlen)
{
    assert(path && out);
    *out = NULL;
    char secret_path[S_PATH_MAX];
    int rc = s_ends_with(path, S_SECRET_SUFFIX)
                 ? s_path(secret_path, err, errlen, "%s", path)
                 : s_path(secret_path, err, errlen, "%s%s", path, S_SECRET_SUFFIX);
    if (rc != 0)
        return rc;
    zconfig_t *root = NULL;
    rc = s_read_cert(secret_path, true, &root, err, errlen);
    if (rc != 0)
        return rc;
    const char *pub_txt = NULL, *sec_txt = NULL;
    rc = s_cert_key(root, "curve/public-key", secret_path, err, errlen, &pub_txt);
    if (rc == 0)
        rc = s_cert_key(root, "curve/secret-key", secret_path, err, errlen, &sec_txt);
    if (rc != 0)
        goto exit;
    uint8_t pub[32], sec[32], derived[41];
    zmq_z85_decode(pub, pub_txt);
    zmq_z85_decode(sec, sec_txt);
    /* A pair whose halves do not match would fail every handshake later,
       with no hint why: refuse it here. */
    if (zmq_curve_public((char *)derived, sec_txt) != 0 || strcmp((char *)derived, pub_txt) != 0) {
        rc = ds_errf(err, errlen, DS_EINVAL,
                     "%s: the public key does not belong to the secret key (regenerate the pair)",
                     secret_path);
        goto exit;
    }
    rc = DS_ENOMEM;
    if (!(*out = zcert_new_from(pub, sec)))
        goto exit;
    const char *name = zconfig_get(root, "metadata/name", NULL);
    if (name && ds_keys_check_name(name) == 0)
        zcert_set_meta(*out, "name", "%s", name);
    rc = 0;
exit:
    zconfig_destroy(&root);
    return rc;
}

int ds_keys_load_public(const char *path, char key[DS_KEY_TEXT_LEN + 1], char *err, size_t errlen)
{
    assert(path && key);
    key[0] = '\0';
    zconfig_t *root = NULL;
    int rc = s_read_cert(path, false, &root, err, errlen);
    if (rc != 0)
        return rc;
    const char *text = NULL;
    rc = s_cert_key(root, "curve/public-key", path, err, errlen, &text);
    if (rc == 0)
        memcpy(key, text, DS_KEY_TEXT_LEN + 1);
    zconfig_destroy(&root);
    return rc;
}

/* ---- bootstrap ---------------------------------------------------- */

static int s_mkdir(const char *path, mode_t mode, char *err, size_t errlen)
{
    if (mkdir(path, mode) != 0 && errno != EEXIST)
        return ds_errf(err, errlen, DS_EIO, "%s: cannot create the directory: %s", path,
                       strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return ds_errf(err, errlen, DS_EINVAL, "%s: exists and is not a directory", path);
    if ((st.st_mode & 07777) != mode && chmod(path, mode) != 0)
        return ds_errf(err, errlen, DS_EIO, "%s: cannot set mode %04o: %s", path, (unsigned)mode,
                       strerror(errno));
    return 0;
}

/*  Generates a pair at DIR/private/NAME.key, and writes its public half
    to `pub_path` too (NULL: nowhere else). */
static int s_bootstrap_key(const char *dir, const char *name, const char *pub_path, char *err,
                           size_t errlen)
{
    char path[S_PATH_MAX];
    int rc = s_path(path, err, errlen, "%s/private/%s.key", dir, name);
    if (rc != 0)
        return rc;
    zcert_t *cert = zcert_new();
    if (!cert)
        return ds_errf(err, errlen, DS_EIO, "cannot generate a CURVE key pair: %s",
                       zmq_strerror(zmq_errno()));
    rc = s_write_pair(cert, path, name, err, errlen);
    if (rc == 0 && pub_path)
        rc = s_write_cert(pub_path, 0644, name, zcert_public_txt(cert), NULL, err, errlen);
    zcert_destroy(&cert);
    return rc;
}

int ds_keys_bootstrap(const char *dir, unsigned n_coords, const char *admin_name, char *err,
                      size_t errlen)
{
    assert(dir);
    if (n_coords < 1 || n_coords > DS_KEYS_MAX_COORD)
        return ds_errf(err, errlen, DS_EINVAL, "%u coordinators: use 1 to %u (3 or 5 is usual)",
                       n_coords, DS_KEYS_MAX_COORD);
    if (ds_keys_check_name(admin_name) != 0 || strcmp(admin_name, "cluster") == 0 ||
        strncmp(admin_name, "coord-", 6) == 0)
        return ds_errf(err, errlen, DS_EINVAL,
                       "admin name \"%s\": use 1 to %u characters of A-Z a-z 0-9 . _ - (not "
                       "\"cluster\" nor coord-N)",
                       admin_name ? admin_name : "", DS_MAX_NAME);
    static const char *const subdirs[] = {"peers", "admins", "viewers", "workers"};
    char path[S_PATH_MAX];
    int rc = s_mkdir(dir, 0755, err, errlen);
    for (size_t i = 0; rc == 0 && i < sizeof subdirs / sizeof subdirs[0]; i++) {
        rc = s_path(path, err, errlen, "%s/%s", dir, subdirs[i]);
        if (rc == 0)
            rc = s_mkdir(path, 0755, err, errlen);
    }
    if (rc == 0)
        rc = s_path(path, err, errlen, "%s/private", dir);
    if (rc == 0)
        rc = s_mkdir(path, 0700, err, errlen);
    if (rc == 0)
        rc = s_path(path, err, errlen, "%s/cluster.pub", dir);
    if (rc == 0)
        rc = s_bootstrap_key(dir, "cluster", path, err, errlen);
    for (unsigned i = 1; rc == 0 && i <= n_coords; i++) {
        char name[32];
        snprintf(name, sizeof name, "coord-%u", i);
        rc = s_path(path, err, errlen, "%s/peers/%s.pub", dir, name);
        if (rc == 0)
            rc = s_bootstrap_key(dir, name, path, err, errlen);
    }
    if (rc == 0)
        rc = s_path(path, err, errlen, "%s/admins/%s.pub", dir, admin_name);
    if (rc == 0)
        rc = s_bootstrap_key(dir, admin_name, path, err, errlen);
    return rc;
}

/* ---- the registry ------------------------------------------------- */

typedef struct {
    ds_role_t role;
    bool revoked;
    char name[DS_MAX_NAME + 1];
} s_entry_t;

struct ds_keyring {
    pthread_mutex_t lock;
    zhashx_t *keys; /* Z85 text -> s_entry_t (revoked keys stay as tombstones) */
    size_t live;    /* entries not revoked */
    bool joins;
};

static void s_entry_free(void **item)
{
    free(*item);
    *item = NULL;
}

ds_keyring_t *ds_keyring_new(void)
{
    ds_keyring_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (pthread_mutex_init(&self->lock, NULL) != 0)
        goto err_free;
    if (!(self->keys = zhashx_new()))
        goto err_mutex;
    zhashx_set_destructor(self->keys, s_entry_free);
    return self;
err_mutex:
    pthread_mutex_destroy(&self->lock);
err_free:
    free(self);
    return NULL;
}

void ds_keyring_destroy(ds_keyring_t **self_p)
{
    assert(self_p);
    ds_keyring_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->keys);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

int ds_keyring_add(ds_keyring_t *self, const char *key, ds_role_t role, const char *name, char *err,
                   size_t errlen)
{
    assert(self);
    if (ds_keys_check_text(key) != 0)
        return ds_errf(err, errlen, DS_EINVAL, "\"%.48s\" is not a 40-character Z85 public key",
                       key ? key : "");
    if (role != DS_ROLE_PEER && role != DS_ROLE_ADMIN && role != DS_ROLE_VIEWER &&
        role != DS_ROLE_WORKER)
        return ds_errf(err, errlen, DS_EINVAL,
                       "role %s cannot be given to a key (use peer, "
                       "admin, viewer or worker)",
                       ds_role_name(role));
    if (ds_keys_check_name(name) != 0)
        return ds_errf(err, errlen, DS_EINVAL,
                       "key name \"%s\": use 1 to %u characters of A-Z a-z 0-9 . _ -",
                       name ? name : "", DS_MAX_NAME);
    int rc = 0;
    pthread_mutex_lock(&self->lock);
    s_entry_t *e = zhashx_lookup(self->keys, key);
    if (e && !e->revoked) {
        if (e->role != role || strcmp(e->name, name) != 0)
            rc = ds_errf(err, errlen, DS_EEXIST,
                         "key %s is already %s \"%s\": remove it before adding it as %s \"%s\"",
                         key, ds_role_name(e->role), e->name, ds_role_name(role), name);
        goto exit;
    }
    if (!e) {
        rc = DS_ENOMEM;
        if (!(e = calloc(1, sizeof *e)))
            goto exit;
        if (zhashx_insert(self->keys, key, e) != 0) {
            free(e);
            goto exit;
        }
    }
    e->role = role;
    e->revoked = false;
    snprintf(e->name, sizeof e->name, "%s", name);
    self->live++;
    rc = 0;
exit:
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int ds_keyring_remove(ds_keyring_t *self, const char *key)
{
    assert(self);
    if (ds_keys_check_text(key) != 0)
        return DS_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&self->lock);
    s_entry_t *e = zhashx_lookup(self->keys, key);
    if (!e) {
        /* Revoke it anyway: a key removed before it was ever added (a
           replayed removal) must not connect as pending either. */
        rc = DS_ENOTFOUND;
        if ((e = calloc(1, sizeof *e)) && zhashx_insert(self->keys, key, e) == 0)
            e->revoked = true;
        else
            free(e);
    } else if (e->revoked) {
        rc = DS_ENOTFOUND;
    } else {
        e->revoked = true;
        self->live--;
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int ds_keyring_lookup(ds_keyring_t *self, const char *key, ds_role_t *role, char *name,
                      size_t namelen)
{
    assert(self && role);
    *role = DS_ROLE_NONE;
    if (name && namelen)
        name[0] = '\0';
    if (!key)
        return DS_ENOTFOUND;
    int rc = DS_ENOTFOUND;
    pthread_mutex_lock(&self->lock);
    const s_entry_t *e = zhashx_lookup(self->keys, key);
    if (e && e->revoked) {
        rc = DS_EPERM;
    } else if (e) {
        *role = e->role;
        if (name && namelen)
            snprintf(name, namelen, "%s", e->name);
        rc = 0;
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int ds_keyring_resolve(ds_keyring_t *self, const char *key, ds_domain_t domain, ds_role_t *role,
                       char *name, size_t namelen)
{
    assert(self && role);
    ds_role_t r = DS_ROLE_NONE;
    int rc = ds_keyring_lookup(self, key, &r, name, namelen);
    if (rc == DS_ENOTFOUND && domain == DS_DOMAIN_RPC && ds_keys_check_text(key) == 0) {
        pthread_mutex_lock(&self->lock);
        bool joins = self->joins;
        pthread_mutex_unlock(&self->lock);
        if (joins) {
            r = DS_ROLE_PENDING;
            rc = 0;
        }
    }
    *role = rc == 0 && ds_role_admitted(r, domain) ? r : DS_ROLE_NONE;
    return *role == DS_ROLE_NONE ? DS_EFORBIDDEN : 0;
}

void ds_keyring_set_joins(ds_keyring_t *self, bool open)
{
    assert(self);
    pthread_mutex_lock(&self->lock);
    self->joins = open;
    pthread_mutex_unlock(&self->lock);
}

size_t ds_keyring_size(ds_keyring_t *self)
{
    assert(self);
    pthread_mutex_lock(&self->lock);
    size_t n = self->live;
    pthread_mutex_unlock(&self->lock);
    return n;
}

static int s_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*  The sorted names of the entries of `path` that do not start with '.';
 *n_out is their count. The caller frees each and the array. */
static int s_list_dir(const char *path, char ***out, size_t *n_out, char *err, size_t errlen)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return ds_errf(err, errlen, DS_EIO, "%s: cannot list: %s", path, strerror(errno));
    }
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == DS_KEYS_PER_DIR) {
            rc = ds_errf(err, errlen, DS_ELIMIT, "%s: more than %u files", path, DS_KEYS_PER_DIR);
            break;
        }
        char **grown = realloc(names, (n + 1) * sizeof *names);
        if (!grown || !(grown[n] = strdup(de->d_name))) {
            names = grown ? grown : names;
            rc = DS_ENOMEM;
            break;
        }
        names = grown;
        n++;
    }
    closedir(d);
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return rc;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, s_cmp_names);
    *out = names;
    *n_out = n;
    return 0;
}

/*  Adds one NAME.pub file of a role directory. */
static int s_load_one(ds_keyring_t *self, const char *dirpath, const char *file, ds_role_t role,
                      char *err, size_t errlen)
{
    char path[S_PATH_MAX];
    int rc = s_path(path, err, errlen, "%s/%s", dirpath, file);
    if (rc != 0)
        return rc;
    if (s_ends_with(file, S_SECRET_SUFFIX))
        return ds_errf(err, errlen, DS_EINVAL,
                       "%s: a secret key file in an allow-list directory (move it out: only "
                       "public NAME.pub files belong here)",
                       path);
    if (!s_ends_with(file, S_PUB_SUFFIX))
        return 0; /* not a certificate by name: README and the like */
    char name[DS_MAX_NAME + 1];
    size_t len = strlen(file) - strlen(S_PUB_SUFFIX);
    if (len >= sizeof name)
        return ds_errf(err, errlen, DS_EINVAL, "%s: key name longer than %u characters", path,
                       DS_MAX_NAME);
    memcpy(name, file, len);
    name[len] = '\0';
    if (ds_keys_check_name(name) != 0)
        return ds_errf(err, errlen, DS_EINVAL,
                       "%s: \"%s\" is not a key name (use A-Z a-z 0-9 . _ -)", path, name);
    char key[DS_KEY_TEXT_LEN + 1];
    rc = ds_keys_load_public(path, key, err, errlen);
    if (rc != 0)
        return rc;
    char why[256];
    rc = ds_keyring_add(self, key, role, name, why, sizeof why);
    if (rc != 0)
        return ds_errf(err, errlen, rc, "%s: %s", path, why);
    return 0;
}

int ds_keyring_load_dir(ds_keyring_t *self, const char *dir, char *err, size_t errlen)
{
    assert(self && dir);
    static const struct {
        const char *sub;
        ds_role_t role;
    } dirs[] = {{"peers", DS_ROLE_PEER},
                {"admins", DS_ROLE_ADMIN},
                {"viewers", DS_ROLE_VIEWER},
                {"workers", DS_ROLE_WORKER}};
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ds_errf(err, errlen, DS_ENOTFOUND,
                       "%s: not a key directory (make one with the bootstrap command)", dir);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[S_PATH_MAX];
        char **names = NULL;
        size_t n = 0;
        rc = s_path(path, err, errlen, "%s/%s", dir, dirs[i].sub);
        if (rc == 0)
            rc = s_list_dir(path, &names, &n, err, errlen);
        for (size_t j = 0; j < n; j++) {
            if (rc == 0)
                rc = s_load_one(self, path, names[j], dirs[i].role, err, errlen);
            free(names[j]);
        }
        free(names);
    }
    return rc;
}
