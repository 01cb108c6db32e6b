#include "rtb_ws.h"
#include "rtb_rest.h"

int rtb_ws_dispatch(request_rec *r, const rtb_route_t *rt)
{
    (void)rt;
    return rtb_send_error(r, 501, "not_implemented", "WebSocket support is not built", NULL);
}
