#pragma once

#include <string_view>

#include "townhall/platform/embedded.hpp"
#include "townhall/platform/http.hpp"

namespace townhall::app {

// The operator dashboard's static files, compiled into the binary (app/dashboard/):
//   GET /admin/         index.html (also at /admin: the router ignores a trailing '/', so
//                       the page names its files by absolute path)
//   GET /admin/{file}   dashboard.js, dashboard.css
// Public: they hold no data; the page signs in and calls the admin API with its token.
// Served with a strict Content-Security-Policy (scripts, styles and fetches from this
// origin only; no inline script or style; never framed).
void add_dashboard_routes(http::Router& router);

// A compiled-in page file as the dashboard and the portal serve it: its content type, the
// strict policy above, and revalidated on every load (the binary is the version).
std::string_view embedded_content_type(std::string_view path);
http::Response embedded_file_response(const EmbeddedFile& file);

}  // namespace townhall::app
