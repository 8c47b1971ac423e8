/*  protocol/clock.c - the monotonic and the wall clock. */
#include "protocol/clock.h"

#include <time.h>

static uint64_t s_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t ds_clock_mono_us(void)
{
    return s_us(CLOCK_MONOTONIC);
}

uint64_t ds_clock_mono_ms(void)
{
    return ds_clock_mono_us() / 1000u;
}

uint64_t ds_clock_wall_us(void)
{
    return s_us(CLOCK_REALTIME);
}

uint64_t ds_clock_wall_ms(void)
{
    return ds_clock_wall_us() / 1000u;
}
