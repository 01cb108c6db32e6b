/*
 * rtb_peers: presence, typing and cursors across the nodes of a cluster,
 * over PostgreSQL NOTIFY/LISTEN and nothing else. It runs on the listener
 * thread of rtb_listen, on that thread's LISTEN connection; nothing here
 * runs on the engine's loop.
 *
 * Each node has an id (random, made once per server start, kept by graceful
 * restarts: rtb_bus_state_t.node). Every pass of the listener (about 20 a
 * second) this node:
 *   - lists its own users (each (board, user, name) with a lease of a local
 *     process: rtb_presence_local_users) when the table moved, and sends
 *     what changed since it last sent: joins and leaves;
 *   - forwards the typing and cursor messages its sockets published into
 *     its ring (ephemeral records of id 0 whose type is user_typing,
 *     user_stopped_typing or cursor; presence news stays node-local);
 *   - sends a heartbeat when it sent nothing for PEERS_BEAT;
 *   - reaps the nodes it has not heard for RTB_PEERS_DEAD_SECONDS: their
 *     users leave with the next diff, and their typing ends.
 * What it hears from another node goes into the presence table as that
 * node's leases (a pseudo owner per node, one lease per board and user),
 * and its typing and cursors into the ring, marked RTB_EPHEMERAL_REMOTE so
 * they are never forwarded again.
 *
 * Each message is one NOTIFY on RTB_PEERS_CHANNEL, under PostgreSQL's
 * payload limit: {"node": "<16 hex>", "op": "hello"|"beat"|"diff"|"bye", "full":
 * 0|1, "end": 0|1, "r": [records]}; records are ["+", board, user, name],
 * ["-", board, user, name] and ["m", board, "<message JSON>"]. A node that
 * (re)connects sends "hello": every node then sends its whole list again,
 * the first message of it flagged "full" and the last "end", and a receiver
 * replaces the sender's users by that list (mark, joins, sweep; a user in
 * both is never announced as gone).
 *
 * A listener that stops (its child exits: the server stops or restarts
 * gracefully) says "bye": the others drop this node's users and typing at
 * once instead of after RTB_PEERS_DEAD_SECONDS, and get them back from the
 * next listener's hello if the node goes on.
 *
 * While this node's LISTEN connection is down it reaps nobody (it hears
 * nobody); the others reap it after RTB_PEERS_DEAD_SECONDS and get its users
 * back from its hello when it returns.
 */
#ifndef RTB_PEERS_H
#define RTB_PEERS_H

#include "httpd.h"
#include "rtb_json.h"

#include <libpq-fe.h>

#define RTB_PEERS_CHANNEL "rtboard_presence"
#define RTB_PEERS_DEAD_SECONDS 10 /* a node not heard this long is gone */

/* Sets the module up in a child (child_init); `pchild` bounds its memory. */
void rtb_peers_child_init(apr_pool_t *pchild, server_rec *s);

/*
 * The LISTEN connection `pg` was just made (or taken over): LISTENs on the
 * presence channel, gives every known node a fresh RTB_PEERS_DEAD_SECONDS
 * to be heard and sends "hello". 0, or -1 when the connection failed.
 */
int rtb_peers_open(PGconn *pg);

/* One notification of RTB_PEERS_CHANNEL (the listener's thread). */
void rtb_peers_handle(const char *payload);

/*
 * A pass (the listener's thread, often; cheap when nothing changed): sends
 * this node's news, forwards its typing and cursors, beats, reaps nodes
 * gone quiet. 0, or -1 when the connection failed (the caller drops it).
 */
int rtb_peers_tick(PGconn *pg);

/* The listener stops, its connection still up: "bye" (best effort). */
void rtb_peers_bye(PGconn *pg);

/*
 * What /rtboard-status shows of it, added to the bus's object `bus`: node
 * (this node's id), nodes (those heard: [{node, users, secondsSinceHeard}])
 * and remoteUsers (their users here, one per board and user).
 */
void rtb_peers_status(server_rec *s, json_t *bus);

#endif
