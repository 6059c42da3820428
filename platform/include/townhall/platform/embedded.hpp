#pragma once

#include <span>
#include <string_view>

namespace townhall {

// A file compiled into the binary (see cmake/EmbedFiles.cmake).
struct EmbeddedFile {
  std::string_view path;  // relative to the embedded directory, '/'-separated
  std::string_view contents;
};

}  // namespace townhall
