/*  worker/sysstat.h - readings from /proc and statvfs for telemetry and
    for recognising a process again after a dsworker restart.

    Every function reads the kernel's files once and never blocks for
    long. Errors: 0 or a negative DS_E code (DS_ENOTFOUND when the process
    is gone, DS_EIO / DS_ECORRUPT when a file cannot be read or parsed).
*/
#ifndef DS_WORKER_SYSSTAT_H
#define DS_WORKER_SYSSTAT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*  One process as /proc/PID/stat shows it. */
typedef struct {
    char state;           /* R S D Z T ... */
    uint64_t start_ticks; /* field 22: start time after boot, clock ticks */
    uint64_t cpu_ticks;   /* utime + stime, clock ticks */
    uint64_t rss_kb;
} ds_procstat_t;

/*  Reads /proc/PID/stat into *out. Returns 0, DS_ENOTFOUND (no such
    process), DS_EIO or DS_ECORRUPT. */
int ds_sysstat_proc(pid_t pid, ds_procstat_t *out) __attribute__((warn_unused_result));

/*  True when `pid` runs, is not a zombie, and started at `start_ticks`
    (so it is the same process, not a recycled pid). */
bool ds_sysstat_proc_alive(pid_t pid, uint64_t start_ticks);

/*  Clock ticks per second (sysconf(_SC_CLK_TCK)). */
uint64_t ds_sysstat_ticks_per_sec(void);

/*  Whole-machine CPU counters from /proc/stat: busy and total ticks. */
int ds_sysstat_cpu(uint64_t *busy, uint64_t *total) __attribute__((warn_unused_result));

/*  1-minute load average from /proc/loadavg. */
int ds_sysstat_load(double *load1) __attribute__((warn_unused_result));

/*  Memory used (total - available) and total, in KiB, from /proc/meminfo. */
int ds_sysstat_mem(uint64_t *used_kb, uint64_t *total_kb) __attribute__((warn_unused_result));

/*  Free space for unprivileged users on the file system of `path`, KiB. */
int ds_sysstat_disk_free(const char *path, uint64_t *free_kb) __attribute__((warn_unused_result));

#endif
