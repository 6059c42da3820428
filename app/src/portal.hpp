#pragma once

#include "townhall/platform/config.hpp"

namespace townhall::http {
class Router;
}

namespace townhall::app {

// The service portal's static files, compiled into the binary (app/portal/), unless the
// registry's portal.enabled is false (then nothing of it is routed and / is 404):
//   GET /                       index.html (the pages are hash routes: /#/permits)
//   GET /portal/{file}          its scripts, message catalogs, stylesheet and icon
//   GET /portal/settings.json   what the page formats with: the municipality's time zone
//                               (portal.time_zone), revenue's currency, and whether the
//                               server runs with --demo (the page then explains the
//                               payment simulator's card tokens)
// Public: they hold no data; the page signs in and calls /api/v1 with its token. Served
// with the dashboard's strict Content-Security-Policy (dashboard.hpp).
void add_portal_routes(http::Router& router, const config::Config& config, bool demo);

}  // namespace townhall::app
