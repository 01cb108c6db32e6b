/*
 * rtb_status: what an administrator sees of the module: the JSON of
 * GET /rtboard-status (SetHandler rtboard-status) and a section in
 * mod_status's page.
 */
#ifndef RTB_STATUS_H
#define RTB_STATUS_H

#include "httpd.h"

/* Answers the status JSON (GET only; other methods 405). Returns OK. */
int rtb_status_handler(request_rec *r);

/* Adds the mod_status section. */
void rtb_status_register_hooks(apr_pool_t *p);

#endif
