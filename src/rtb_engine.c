#include "rtb_engine.h"
#include "rtb_rest.h"

void rtb_engine_register_hooks(apr_pool_t *p)
{
    (void)p;
}

void rtb_engine_child_init(apr_pool_t *pchild, server_rec *s)
{
    (void)pchild;
    (void)s;
}

int rtb_engine_dispatch(request_rec *r, const rtb_route_t *rt)
{
    (void)rt;
    return rtb_send_error(r, 501, "not_implemented", "not yet", NULL);
}

int rtb_engine_status(request_rec *r)
{
    return rtb_send_error(r, 501, "not_implemented", "not yet", NULL);
}
