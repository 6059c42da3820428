#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace townhall::testing {

// The split deployment the tests run (issue 23 §4; README "Run split across machines"):
// a registry cut in two processes over the rabbitmq transport, "auth" (auth alone, its
// internal Api on a loopback port) and "services" (every other module, each signing its
// calls to auth with a key of its own), and each process's data directory holding what
// that registry names. Shared by tests/split/ and the split crash soak (tests/soak/).

// The modules of `registry` that call auth from the other process: all but auth.
std::vector<std::string> split_callers(const nlohmann::json& registry);

// `registry` split in two: auth's internal listener on 127.0.0.1:`internal_port`, a key
// file per caller (keys/<module>.key in the data dir), the broker's URL read from
// amqp.url in the data dir, and the deployment's two processes. A process's listener
// comes from its entry unless `serve --port` says otherwise (the tests pass --port 0).
nlohmann::json split_registry(nlohmann::json registry, unsigned short internal_port);

// `root`/`process`, with what the registry names (written again when it exists): the
// broker's URL and every caller's key, owner-only as the server demands. The same key on
// both sides: auth's listener checks every caller's signature with it.
std::filesystem::path split_data_dir(const std::filesystem::path& root, const std::string& process,
                                     const std::string& broker_url, const std::vector<std::string>& callers);

}  // namespace townhall::testing
