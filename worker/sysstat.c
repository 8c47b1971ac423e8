/*  worker/sysstat.c - /proc and statvfs readings. */
#include "worker/sysstat.h"

#include "protocol/error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

uint64_t ds_sysstat_ticks_per_sec(void)
{
    long t = sysconf(_SC_CLK_TCK);
    return t > 0 ? (uint64_t)t : 100;
}

/*  Reads a small file into buf (NUL-terminated). */
static int s_read_file(const char *path, char *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT || errno == ESRCH ? DS_ENOTFOUND : DS_EIO;
    size_t n = fread(buf, 1, cap - 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return DS_EIO;
    buf[n] = '\0';
    if (len)
        *len = n;
    return 0;
}

int ds_sysstat_proc(pid_t pid, ds_procstat_t *out)
{
    char path[64];
    char buf[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int rc = s_read_file(path, buf, sizeof buf, NULL);
    if (rc)
        return rc;
    /* The command name may hold spaces and parentheses: fields start
       after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return DS_ECORRUPT;
    p += 2;
    /* p is field 3 (state). */
    char state = *p;
    uint64_t utime = 0, stime = 0, start = 0;
    long long rss_pages = 0;
    int field = 3;
    char *save = NULL;
    for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
        if (field == 14)
            utime = strtoull(tok, NULL, 10);
        else if (field == 15)
            stime = strtoull(tok, NULL, 10);
        else if (field == 22)
            start = strtoull(tok, NULL, 10);
        else if (field == 24) {
            rss_pages = strtoll(tok, NULL, 10);
            break;
        }
    }
    if (field < 24)
        return DS_ECORRUPT;
    long page = sysconf(_SC_PAGESIZE);
    out->state = state;
    out->start_ticks = start;
    out->cpu_ticks = utime + stime;
    out->rss_kb =
        rss_pages > 0 ? (uint64_t)rss_pages * (uint64_t)(page > 0 ? page : 4096) / 1024u : 0;
    return 0;
}

bool ds_sysstat_proc_alive(pid_t pid, uint64_t start_ticks)
{
    if (pid <= 0)
        return false;
    ds_procstat_t st;
    if (ds_sysstat_proc(pid, &st) != 0)
        return false;
    return st.state != 'Z' && st.state != 'X' && st.start_ticks == start_ticks;
}

int ds_sysstat_cpu(uint64_t *busy, uint64_t *total)
{
    char buf[1024];
    int rc = s_read_file("/proc/stat", buf, sizeof buf, NULL);
    if (rc)
        return rc;
    unsigned long long v[8] = {0};
    if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) < 4)
        return DS_ECORRUPT;
    uint64_t all = 0;
    for (int i = 0; i < 8; i++)
        all += v[i];
    *total = all;
    *busy = all - v[3] - v[4]; /* minus idle and iowait */
    return 0;
}

int ds_sysstat_load(double *load1)
{
    char buf[256];
    int rc = s_read_file("/proc/loadavg", buf, sizeof buf, NULL);
    if (rc)
        return rc;
    char *end = NULL;
    double v = strtod(buf, &end);
    if (end == buf)
        return DS_ECORRUPT;
    *load1 = v;
    return 0;
}

int ds_sysstat_mem(uint64_t *used_kb, uint64_t *total_kb)
{
    char buf[8192];
    int rc = s_read_file("/proc/meminfo", buf, sizeof buf, NULL);
    if (rc)
        return rc;
    unsigned long long total = 0, avail = 0;
    const char *t = strstr(buf, "MemTotal:");
    const char *a = strstr(buf, "MemAvailable:");
    if (!t || !a || sscanf(t, "MemTotal: %llu", &total) != 1 ||
        sscanf(a, "MemAvailable: %llu", &avail) != 1)
        return DS_ECORRUPT;
    *total_kb = total;
    *used_kb = total > avail ? total - avail : 0;
    return 0;
}

int ds_sysstat_disk_free(const char *path, uint64_t *free_kb)
{
    struct statvfs vfs;
    if (statvfs(path, &vfs) != 0)
        return errno == ENOENT ? DS_ENOTFOUND : DS_EIO;
    *free_kb = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize / 1024u;
    return 0;
}
