#pragma once

#include <span>

#include "townhall/platform/embedded.hpp"

namespace townhall::migrations {

// Every file under migrations/, as "<component>/NNNN_description.sql".
std::span<const EmbeddedFile> embedded_migrations();

}  // namespace townhall::migrations
