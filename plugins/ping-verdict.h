/*
 * ping-verdict.h -- ping.so's pure arithmetic (ping-verdict.c), shared
 * with tests/test-ping, which links ping-verdict.c itself.
 */
#ifndef PLUGINS_PING_VERDICT_H
#define PLUGINS_PING_VERDICT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse a loss ratio, "20%" or "0.2", into *OUT in [0, 1]: 0 on success,
 * -1 if S is not one.
 */
int ping_ratio_parse(const char *s, double *out);
/*
 * The verdict of a check that sent COUNT echoes of which RECEIVED were
 * answered; ERR_REASON is the reason of the first ICMP error (0 none);
 * LOSS_WARN (< 0: none) and LOSS_MAX as in struct ping_inst.  Returns
 * WP_REASON_OK; WP_REASON_WARNING (loss >= loss_warn) or WP_REASON_CHECK
 * (some answered, loss >= loss_max) with a message in MSG (N bytes); with
 * nothing answered ERR_REASON if set (MSG untouched: the caller keeps the
 * error's own message), else WP_REASON_TIMEOUT with a message.
 */
int ping_verdict(unsigned count, unsigned received, int err_reason,
    double loss_warn, double loss_max, char *msg, size_t n);
/* Mean absolute difference of consecutive RTTs (in echo order, skipping
 * lost echoes; RFC 3550's jitter without its 1/16 smoothing), in us; 0
 * with fewer than two RTTs.  RTT[i] < 0: echo i was lost. */
int64_t ping_jitter(const int64_t *rtt, size_t n);

#endif
