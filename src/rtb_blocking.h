/*
 * rtb_blocking: where a connection cannot be suspended (HTTP/2 streams,
 * clogging input filters, a non-async MPM, a child that is stopping), the
 * transport's callbacks run in a loop in the handler's own thread: the ring
 * is read after every wake-up of the bus, timers run, input is watched. One
 * worker thread per stream: the fallback, not the design.
 */
#ifndef RTB_BLOCKING_H
#define RTB_BLOCKING_H

#include "rtb_conn.h"

/*
 * Runs `cn` until it closes, its client leaves or *stopping becomes
 * non-zero; then its last words. Returns OK (the handler's answer).
 */
int rtb_blocking_run(rtb_conn_t *cn, const volatile apr_uint32_t *stopping);

#endif
