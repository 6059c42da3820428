#pragma once

namespace townhall::http {
class Router;
}

namespace townhall::app {

// The operator dashboard's static files, compiled into the binary (app/dashboard/):
//   GET /admin/         index.html (also at /admin: the router ignores a trailing '/', so
//                       the page names its files by absolute path)
//   GET /admin/{file}   dashboard.js, dashboard.css
// Public: they hold no data; the page signs in and calls the admin API with its token.
// Served with a strict Content-Security-Policy (scripts, styles and fetches from this
// origin only; no inline script or style; never framed).
void add_dashboard_routes(http::Router& router);

}  // namespace townhall::app
