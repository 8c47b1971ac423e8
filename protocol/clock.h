/*  protocol/clock.h - the monotonic clock, for the I/O shells' timers and
    latency figures. The pure cores never read it: their callers pass the
    time in. */
#ifndef DS_PROTOCOL_CLOCK_H
#define DS_PROTOCOL_CLOCK_H

#include <stdint.h>

/*  Microseconds of CLOCK_MONOTONIC: only differences mean anything. */
uint64_t ds_clock_mono_us(void);

/*  Milliseconds of CLOCK_MONOTONIC. */
uint64_t ds_clock_mono_ms(void);

#endif
