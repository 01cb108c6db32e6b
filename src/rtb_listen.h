/*
 * rtb_listen: the bus of several nodes. Every change's transaction issues
 * NOTIFY (rtb_write); PostgreSQL delivers notifications at commit, in commit
 * order. On each node one child holds a LISTEN connection of its own (libpq,
 * not a mod_dbd handle) on a thread of its own, and feeds the node's ring
 * through rtb_bus_publish_event, so every event enters the ring once, in id
 * order per board. What the notifications cannot carry is read from the
 * events table on that connection: payloads too large for NOTIFY, gaps in a
 * board's ids, and whatever was committed while the connection was down
 * (PostgreSQL restarted, network cut). Nothing here runs on the engine's
 * loop, which never waits on the database.
 */
#ifndef RTB_LISTEN_H
#define RTB_LISTEN_H

#include "httpd.h"
#include "rtb_json.h"

/* Channel of the notifications; the payload is "<id> <board> <event JSON>",
 * or "<id> <board>" when the event is too large for NOTIFY. */
#define RTB_LISTEN_CHANNEL "rtboard"
#define RTB_LISTEN_MAX_PAYLOAD 7900 /* PostgreSQL refuses 8000 bytes and more */

/*
 * Starts this child's listener thread when RTBoardBus is set (child_init).
 * Every child runs one; the child that claims the node's listener slot in
 * shared memory (or takes it over from a child that died) holds the LISTEN
 * connection, the others wait. Stopped and joined when the child exits.
 */
void rtb_listen_child_init(apr_pool_t *pchild, server_rec *s);

/*
 * The bus's state for /rtboard-status: {driver, connected, listener, since,
 * notifications, healed, reconnects, error?}; {"driver": "local"} without
 * RTBoardBus. A new reference.
 */
json_t *rtb_listen_status_json(server_rec *s);

#endif
