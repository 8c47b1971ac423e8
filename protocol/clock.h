/*  protocol/clock.h - the clocks of the I/O shells: the monotonic one for
    timers and latency figures, the wall clock for times stamped into
    records. The pure cores never read a clock: their callers pass the
    time in. */
#ifndef DS_PROTOCOL_CLOCK_H
#define DS_PROTOCOL_CLOCK_H

#include <stdint.h>

/*  Microseconds of CLOCK_MONOTONIC: only differences mean anything. */
uint64_t ds_clock_mono_us(void);

/*  Milliseconds of CLOCK_MONOTONIC. */
uint64_t ds_clock_mono_ms(void);

/*  Microseconds and milliseconds since the Unix epoch (CLOCK_REALTIME):
    may jump, so never for timers. */
uint64_t ds_clock_wall_us(void);
uint64_t ds_clock_wall_ms(void);

#endif
