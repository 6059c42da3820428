#include "townhall/platform/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

namespace townhall::config {
namespace {

using nlohmann::json;

// A JSON object being read: knows its key path for error messages and rejects keys
// nobody asked for (a typo in a config file must not be silently ignored).
class Section {
 public:
  Section(const json& value, std::string path) : value_(value), path_(std::move(path)) {
    if (!value_.is_object()) fail(path_.empty() ? "the registry must be a JSON object" : "expected an object");
  }

  [[noreturn]] void fail(const std::string& message) const {
    throw ConfigError(path_.empty() ? message : path_ + ": " + message);
  }
  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    throw ConfigError(child_path(key) + ": " + message);
  }
  std::string child_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  const json* find(const std::string& key) {
    seen_.insert(key);
    auto it = value_.find(key);
    return it == value_.end() ? nullptr : &*it;
  }

  std::string string(const std::string& key, std::string fallback) {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_string()) fail(key, "expected a string");
    return v->get<std::string>();
  }
  bool boolean(const std::string& key, bool fallback) {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_boolean()) fail(key, "expected true or false");
    return v->get<bool>();
  }
  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min, std::int64_t max) {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_number_integer()) fail(key, "expected an integer");
    if (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(max))
      fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    auto n = v->get<std::int64_t>();
    if (n < min || n > max) fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return n;
  }
  double number(const std::string& key, double fallback, double min, double max) {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_number()) fail(key, "expected a number");
    double n = v->get<double>();
    if (!(n >= min && n <= max)) {
      std::ostringstream message;
      message << "must be between " << min << " and " << max;
      fail(key, message.str());
    }
    return n;
  }
  std::vector<std::string> strings(const std::string& key) {
    const json* v = find(key);
    if (!v) return {};
    if (!v->is_array()) fail(key, "expected an array of strings");
    std::vector<std::string> out;
    for (const auto& item : *v) {
      if (!item.is_string()) fail(key, "expected an array of strings");
      out.push_back(item.get<std::string>());
    }
    return out;
  }

  void finish() const {
    for (const auto& [key, _] : value_.items())
      if (!seen_.count(key)) fail(key, "unknown key");
  }

  const json& value() const { return value_; }
  const std::string& path() const { return path_; }

 private:
  const json& value_;
  std::string path_;
  std::set<std::string> seen_;
};

bool valid_topic_pattern(std::string_view topic) {
  // gov.<module>.<aggregate> with '*' allowed as the last part.
  if (!topic.starts_with("gov.")) return false;
  auto rest = topic.substr(4);
  auto dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 >= rest.size()) return false;
  auto word_ok = [](std::string_view w) {
    return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
  };
  auto module = rest.substr(0, dot);
  auto aggregate = rest.substr(dot + 1);
  return word_ok(module) && (aggregate == "*" || word_ok(aggregate));
}

void parse_server(Section& root, Server& server) {
  const json* node = root.find("server");
  if (!node) return;
  Section s(*node, "server");
  server.http.address = s.string("address", server.http.address);
  if (server.http.address.empty()) s.fail("address", "must not be empty");
  server.http.port = static_cast<std::uint16_t>(s.integer("port", server.http.port, 0, 65535));
  server.threads = static_cast<int>(s.integer("threads", server.threads, 1, 64));
  server.shutdown_grace =
      std::chrono::milliseconds(s.integer("shutdown_grace_ms", server.shutdown_grace.count(), 0, 600'000));
  server.module_retry =
      std::chrono::milliseconds(s.integer("module_retry_ms", server.module_retry.count(), 10, 3'600'000));
  if (const json* limits_node = s.find("limits")) {
    Section limits(*limits_node, "server.limits");
    auto& http = server.http;
    http.body_limit = static_cast<std::size_t>(
        limits.integer("body_bytes", static_cast<std::int64_t>(http.body_limit), 1, 1LL << 30));
    http.header_limit = static_cast<std::size_t>(
        limits.integer("header_bytes", static_cast<std::int64_t>(http.header_limit), 1024, 1LL << 20));
    http.chunk_line_limit = static_cast<std::size_t>(
        limits.integer("chunk_line_bytes", static_cast<std::int64_t>(http.chunk_line_limit), 64, 1LL << 20));
    http.trailer_limit = static_cast<std::size_t>(
        limits.integer("trailer_bytes", static_cast<std::int64_t>(http.trailer_limit), 64, 1LL << 20));
    http.read_timeout =
        std::chrono::milliseconds(limits.integer("read_timeout_ms", http.read_timeout.count(), 1, 3'600'000));
    http.idle_timeout =
        std::chrono::milliseconds(limits.integer("idle_timeout_ms", http.idle_timeout.count(), 1, 3'600'000));
    http.write_timeout =
        std::chrono::milliseconds(limits.integer("write_timeout_ms", http.write_timeout.count(), 1, 3'600'000));
    http.max_connections = static_cast<std::size_t>(
        limits.integer("max_connections", static_cast<std::int64_t>(http.max_connections), 1, 1'000'000));
    http.max_connections_per_address = static_cast<std::size_t>(limits.integer(
        "max_connections_per_address", static_cast<std::int64_t>(http.max_connections_per_address), 1, 1'000'000));
    limits.finish();
  }
  if (const json* proxies = s.find("trusted_proxies")) {
    if (!proxies->is_array()) s.fail("trusted_proxies", "expected an array of addresses or CIDR blocks");
    server.http.trusted_proxies.clear();
    for (const auto& entry : *proxies) {
      auto network = entry.is_string() ? http::parse_network(entry.get<std::string>()) : std::nullopt;
      if (!network)
        s.fail("trusted_proxies", "expected addresses or CIDR blocks such as \"10.0.0.0/8\" or \"::1\", got " +
                                      entry.dump().substr(0, 64));
      server.http.trusted_proxies.push_back(*network);
    }
  }
  if (const json* token_file = s.find("metrics_token_file")) {
    if (!token_file->is_string() || token_file->get<std::string>().empty())
      s.fail("metrics_token_file", "expected a non-empty path");
    server.metrics_token_file = token_file->get<std::string>();
  }
  if (const json* rate_node = s.find("rate_limit")) {
    Section rate(*rate_node, "server.rate_limit");
    server.rate_limit.enabled = rate.boolean("enabled", server.rate_limit.enabled);
    server.rate_limit.requests_per_second =
        rate.number("requests_per_second", server.rate_limit.requests_per_second, 0.001, 1e9);
    server.rate_limit.burst = rate.number("burst", server.rate_limit.burst, 1, 1e9);
    rate.finish();
  }
  s.finish();
}

void parse_database(Section& root, db::Options& options) {
  const json* node = root.find("database");
  if (!node) return;
  Section s(*node, "database");
  std::string sync = s.string("synchronous", "normal");
  std::transform(sync.begin(), sync.end(), sync.begin(), [](unsigned char c) { return std::tolower(c); });
  if (sync == "normal")
    options.synchronous = db::Synchronous::normal;
  else if (sync == "full")
    options.synchronous = db::Synchronous::full;
  else
    s.fail("synchronous", "must be \"normal\" or \"full\"");
  options.busy_timeout =
      std::chrono::milliseconds(s.integer("busy_timeout_ms", options.busy_timeout.count(), 0, 600'000));
  s.finish();
}

void parse_consistency(Section& root, Consistency& consistency) {
  const json* node = root.find("consistency");
  if (!node) return;
  Section s(*node, "consistency");
  consistency.interval = std::chrono::minutes(
      s.integer("interval_minutes", std::chrono::duration_cast<std::chrono::minutes>(consistency.interval).count(), 0,
                7 * 24 * 60));
  consistency.repair = s.boolean("repair", consistency.repair);
  s.finish();
}

void parse_bus(Section& root, Bus& bus) {
  const json* node = root.find("bus");
  if (!node) return;
  Section s(*node, "bus");
  bus.lanes = static_cast<int>(s.integer("lanes", bus.lanes, 1, 64));
  bus.batch = static_cast<int>(s.integer("batch", bus.batch, 1, 10'000));
  bus.window = static_cast<int>(s.integer("window", bus.window, 1, 1'000'000));
  bus.max_attempts = static_cast<int>(s.integer("max_attempts", bus.max_attempts, 1, 100));
  bus.backoff_initial =
      std::chrono::milliseconds(s.integer("backoff_initial_ms", bus.backoff_initial.count(), 1, 3'600'000));
  bus.backoff_max = std::chrono::milliseconds(s.integer("backoff_max_ms", bus.backoff_max.count(), 1, 3'600'000));
  if (bus.backoff_max < bus.backoff_initial) s.fail("backoff_max_ms", "must not be below backoff_initial_ms");
  bus.sweep_interval =
      std::chrono::milliseconds(s.integer("sweep_interval_ms", bus.sweep_interval.count(), 10, 3'600'000));
  bus.retention = std::chrono::hours(s.integer("retention_hours", bus.retention.count(), 0, 24 * 3650));
  bus.max_hold = std::chrono::hours(s.integer("max_hold_hours", bus.max_hold.count(), 1, 24 * 3650));
  if (const json* transport_node = s.find("transport")) {
    Section t(*transport_node, "bus.transport");
    auto& transport = bus.transport;
    auto kind = t.string("kind", "local");
    if (kind == "local")
      transport.kind = Transport::Kind::local;
    else if (kind == "rabbitmq")
      transport.kind = Transport::Kind::rabbitmq;
    else
      t.fail("kind", "must be \"local\" or \"rabbitmq\"");
    transport.url = t.string("url", "");
    transport.url_file = t.string("url_file", "");
    transport.stream_prefix = t.string("stream_prefix", transport.stream_prefix);
    if (transport.kind == Transport::Kind::local) {
      if (!transport.url.empty() || !transport.url_file.empty())
        t.fail(transport.url.empty() ? "url_file" : "url", "only for the rabbitmq transport");
    } else {
      if (transport.url.empty() == transport.url_file.empty())
        t.fail(
            "the rabbitmq transport needs either url or url_file (a file holding the URL, to keep its password "
            "out of the registry)");
      if (!transport.url.empty() && !transport.url.starts_with("amqp://") && !transport.url.starts_with("amqps://"))
        t.fail("url", "expected amqp://user:password@host:5672/vhost");
    }
    // Stream names are <prefix><module>; RabbitMQ allows 255 bytes of any UTF-8, kept to
    // a plain set here so the prefix is also a safe file and policy pattern.
    bool plain = !transport.stream_prefix.empty() && transport.stream_prefix.size() <= 64 &&
                 std::all_of(transport.stream_prefix.begin(), transport.stream_prefix.end(), [](char c) {
                   return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                          c == '_' || c == '-';
                 });
    if (!plain) t.fail("stream_prefix", "1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'");
    t.finish();
  }
  s.finish();
}

void parse_logging(Section& root, logging::Options& options) {
  const json* node = root.find("logging");
  if (!node) return;
  Section s(*node, "logging");
  options.level = s.string("level", options.level);
  static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (!levels.count(options.level)) s.fail("level", "must be one of trace, debug, info, warn, error, critical, off");
  std::string format = s.string("format", "text");
  if (format == "text")
    options.format = logging::LogFormat::text;
  else if (format == "json")
    options.format = logging::LogFormat::json;
  else
    s.fail("format", "must be \"text\" or \"json\"");
  std::string access = s.string("access_log", "text");
  try {
    options.access_log = logging::parse_access_log_format(access);
  } catch (const std::exception& error) {
    s.fail("access_log", "must be one of off, text, json");
  }
  s.finish();
}

void parse_portal(Section& root, Portal& portal) {
  const json* node = root.find("portal");
  if (!node) return;
  Section s(*node, "portal");
  portal.enabled = s.boolean("enabled", portal.enabled);
  portal.time_zone = s.string("time_zone", portal.time_zone);
  // An IANA name such as "Europe/Paris" (the browser's Intl checks that it exists).
  bool plausible = !portal.time_zone.empty() && portal.time_zone.size() <= 64 &&
                   std::all_of(portal.time_zone.begin(), portal.time_zone.end(), [](char c) {
                     return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' ||
                            c == '_' || c == '-' || c == '+';
                   });
  if (!plausible) s.fail("time_zone", "expected an IANA time zone name such as \"America/New_York\"");
  s.finish();
}

std::vector<Module> order_by_dependencies(std::vector<Module> modules) {
  std::map<std::string, const Module*> by_name;
  for (const auto& m : modules) by_name[m.name] = &m;
  std::vector<Module> ordered;
  std::map<std::string, int> state;  // 0 new, 1 visiting, 2 done
  std::vector<std::string> stack;
  std::function<void(const Module&)> visit = [&](const Module& m) {
    if (state[m.name] == 2) return;
    if (state[m.name] == 1) {
      auto start = std::find(stack.begin(), stack.end(), m.name);
      std::string cycle;
      for (auto it = start; it != stack.end(); ++it) cycle += *it + " -> ";
      throw ConfigError("modules: dependency cycle: " + cycle + m.name);
    }
    state[m.name] = 1;
    stack.push_back(m.name);
    for (const auto& dependency : m.depends_on) visit(*by_name.at(dependency));
    stack.pop_back();
    state[m.name] = 2;
    ordered.push_back(m);
  };
  for (const auto& m : modules) visit(m);
  return ordered;
}

void parse_modules(Section& root, std::vector<Module>& out, std::span<const std::string_view> known) {
  const json* node = root.find("modules");
  if (!node) root.fail("modules", "missing: the registry must list the modules to run");
  Section modules(*node, "modules");
  if (node->empty()) modules.fail("must list at least one module");
  std::string known_list;
  for (auto k : known) known_list += (known_list.empty() ? "" : ", ") + std::string(k);

  for (const auto& [name, value] : node->items()) {
    modules.find(name);
    if (std::find(known.begin(), known.end(), name) == known.end())
      modules.fail("unknown module '" + name + "' (this build has: " + known_list + ")");
    Section s(value, "modules." + name);
    Module m;
    m.name = name;
    m.db_file = s.string("db", name + ".db");
    if (m.db_file.empty() || m.db_file.find('/') != std::string::npos || m.db_file == "." || m.db_file == "..")
      s.fail("db", "must be a plain file name inside data_dir");
    m.route_prefix = s.string("route_prefix", "/api/v1/" + name);
    if (m.route_prefix.size() < 2 || m.route_prefix.front() != '/' || m.route_prefix.back() == '/')
      s.fail("route_prefix", "must start with '/' and not end with '/'");
    m.depends_on = s.strings("depends_on");
    if (const json* subscriptions = s.find("subscriptions")) {
      if (!subscriptions->is_array()) s.fail("subscriptions", "expected an array");
      for (std::size_t i = 0; i < subscriptions->size(); ++i) {
        Section sub((*subscriptions)[i], s.child_path("subscriptions") + "[" + std::to_string(i) + "]");
        Subscription subscription;
        subscription.topic = sub.string("topic", "");
        if (!valid_topic_pattern(subscription.topic))
          sub.fail("topic", "must look like gov.<module>.<aggregate> (or gov.<module>.*)");
        sub.finish();
        m.subscriptions.push_back(std::move(subscription));
      }
    }
    if (const json* internal = s.find("internal")) {
      Section i(*internal, s.child_path("internal"));
      Internal endpoint;
      endpoint.address = i.string("address", endpoint.address);
      if (endpoint.address.empty()) i.fail("address", "must not be empty");
      if (i.value().contains("port")) endpoint.port = static_cast<std::uint16_t>(i.integer("port", 0, 0, 65535));
      endpoint.key_file = i.string("key_file", "");
      endpoint.replay_window = std::chrono::seconds(i.integer("replay_window_seconds", 30, 1, 600));
      i.finish();
      m.internal = std::move(endpoint);
    }
    if (const json* settings = s.find("settings")) {
      if (!settings->is_object()) s.fail("settings", "expected an object");
      m.settings = *settings;
    }
    s.finish();
    out.push_back(std::move(m));
  }

  std::map<std::string, std::string> db_owner;
  std::map<std::string, std::string> key_owner;
  std::map<std::pair<std::string, std::uint16_t>, std::string> endpoint_owner;
  for (const auto& m : out) {
    if (m.internal && !m.internal->key_file.empty()) {
      // One key per calling module: a shared key would let one module sign as the other.
      auto [it, fresh] = key_owner.emplace(m.internal->key_file.lexically_normal().string(), m.name);
      if (!fresh)
        throw ConfigError("modules." + m.name + ".internal.key_file: '" + m.internal->key_file.string() +
                          "' is already the key of module '" + it->second + "'; each module signs with its own key");
    }
    if (m.internal && m.internal->port && *m.internal->port != 0) {
      auto [it, fresh] = endpoint_owner.emplace(std::pair{m.internal->address, *m.internal->port}, m.name);
      if (!fresh)
        throw ConfigError("modules." + m.name + ".internal.port: " + std::to_string(*m.internal->port) +
                          " is already the internal endpoint of module '" + it->second + "'");
    }
    auto [it, inserted] = db_owner.emplace(m.db_file, m.name);
    if (!inserted)
      throw ConfigError("modules." + m.name + ".db: '" + m.db_file + "' is already the file of module '" + it->second +
                        "'; each module owns exactly one file");
    for (const auto& other : out) {
      if (&other == &m) continue;
      const auto& a = m.route_prefix;
      const auto& b = other.route_prefix;
      if (a == b)
        throw ConfigError("modules." + m.name + ".route_prefix: duplicate route prefix '" + a + "' (also used by '" +
                          other.name + "')");
      if (a.size() < b.size() && b.compare(0, a.size(), a) == 0 && b[a.size()] == '/')
        throw ConfigError("modules." + other.name + ".route_prefix: '" + b + "' lies under '" + a + "' of module '" +
                          m.name + "'");
    }
    for (const auto& dependency : m.depends_on) {
      if (dependency == m.name)
        throw ConfigError("modules." + m.name + ".depends_on: a module cannot depend on itself");
      bool present = std::any_of(out.begin(), out.end(), [&](const Module& o) { return o.name == dependency; });
      if (!present) throw ConfigError("modules." + m.name + ".depends_on: unknown module '" + dependency + "'");
    }
  }
  out = order_by_dependencies(std::move(out));
}

// deployment: {"<process>": {"modules": [...], "address": "...", "port": N}, ...}. Each
// module of the registry served by exactly one process; a process that calls a module in
// another one reaches it over HTTP, which this build can do for auth's Api only.
void parse_deployment(Section& root, Config& config) {
  const json* node = root.find("deployment");
  if (!node) return;
  Section deployment(*node, "deployment");
  if (node->empty()) deployment.fail("must list at least one process (or leave deployment out)");
  std::map<std::string, std::string> served_by;
  std::map<std::pair<std::string, std::uint16_t>, std::string> listener_owner;
  for (const auto& m : config.modules)
    if (m.internal && m.internal->port && *m.internal->port != 0)
      listener_owner.emplace(std::pair{m.internal->address, *m.internal->port}, "the internal endpoint of " + m.name);
  for (const auto& [name, value] : node->items()) {
    deployment.find(name);
    Section p(value, "deployment." + name);
    // The name becomes a systemd unit's (townhall-<name>.service) and an nginx upstream's.
    bool plain = !name.empty() && name.size() <= 32 && name.front() >= 'a' && name.front() <= 'z' &&
                 std::all_of(name.begin(), name.end(),
                             [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
    if (!plain) p.fail("a process name is 1 to 32 of a-z, 0-9 and '-', starting with a letter");
    Process process;
    process.name = name;
    auto listed = p.strings("modules");
    if (listed.empty()) p.fail("modules", "must list the modules this process serves");
    for (const auto& module : listed) {
      if (!config.module(module)) p.fail("modules", "no module '" + module + "' in the registry");
      auto [it, fresh] = served_by.emplace(module, name);
      if (!fresh)
        p.fail("modules", it->second == name ? "lists '" + module + "' twice"
                                             : "module '" + module + "' is already served by process '" + it->second +
                                                   "'; each module runs in exactly one process");
    }
    for (const auto& m : config.modules)  // the registry's dependency order
      if (std::find(listed.begin(), listed.end(), m.name) != listed.end()) process.modules.push_back(m.name);
    process.address = p.string("address", process.address);
    if (process.address.empty()) p.fail("address", "must not be empty");
    process.port = static_cast<std::uint16_t>(p.integer("port", process.port, 1, 65535));
    auto [owner, fresh] = listener_owner.emplace(std::pair{process.address, process.port}, "process '" + name + "'");
    if (!fresh) p.fail("port", process.address + ":" + std::to_string(process.port) + " is already " + owner->second);
    p.finish();
    config.deployment.push_back(std::move(process));
  }
  for (const auto& m : config.modules)
    if (!served_by.count(m.name))
      deployment.fail("module '" + m.name + "' is served by no process; list it under one process's modules");
  for (const auto& m : config.modules) {
    const auto& here = served_by.at(m.name);
    for (const auto& dependency : m.depends_on) {
      if (served_by.at(dependency) == here) continue;
      auto key = "modules." + m.name;
      if (dependency != "auth")
        throw ConfigError(key + ".depends_on: '" + dependency + "' runs in process '" + served_by.at(dependency) +
                          "', not in '" + here + "'; only auth's Api can be reached over HTTP in this build");
      const auto* auth = config.module("auth");
      if (!auth->internal || !auth->internal->port || *auth->internal->port == 0)
        throw ConfigError("modules.auth.internal.port: module '" + m.name + "' (process '" + here +
                          "') calls auth in process '" + served_by.at("auth") +
                          "' over HTTP: give auth's internal listener a fixed port");
      if (!m.internal || m.internal->key_file.empty())
        throw ConfigError(key + ".internal.key_file: " + m.name + " calls auth in process '" + served_by.at("auth") +
                          "' and signs its calls with a key of its own: name its file");
    }
  }
}

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError("cannot read config file '" + file.string() + "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Checked, not created: only the commands that make an installation create the directory
// (serve, restore, migrate --init; issue 27.8). A missing one must be creatable.
void check_data_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    auto ancestor = std::filesystem::absolute(dir, ec).parent_path();
    while (!ancestor.empty() && !std::filesystem::exists(ancestor, ec) && ancestor != ancestor.parent_path())
      ancestor = ancestor.parent_path();
    if (!std::filesystem::is_directory(ancestor, ec))
      throw ConfigError("data_dir '" + dir.string() + "': cannot create it: " + ancestor.string() +
                        " is not a directory");
    return;
  }
  if (!std::filesystem::is_directory(dir, ec)) throw ConfigError("data_dir '" + dir.string() + "': not a directory");
  if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0)
    throw ConfigError("data_dir '" + dir.string() + "': not readable and writable by this user");
}

}  // namespace

const Module* Config::module(std::string_view name) const {
  for (const auto& m : modules)
    if (m.name == name) return &m;
  return nullptr;
}

const Process* Config::deployed(std::string_view process_name) const {
  for (const auto& p : deployment)
    if (p.name == process_name) return &p;
  return nullptr;
}

bool Config::serves(std::string_view name) const {
  if (!process) return module(name) != nullptr;
  const auto* here = deployed(*process);
  return here && std::find(here->modules.begin(), here->modules.end(), name) != here->modules.end();
}

void select_process(Config& config, std::span<const std::string> modules) {
  auto describe = [&config] {
    std::string out;
    for (const auto& p : config.deployment) {
      std::string list;
      for (const auto& m : p.modules) list += (list.empty() ? "" : ",") + m;
      out += (out.empty() ? "" : "; ") + p.name + ": " + list;
    }
    return out;
  };
  if (config.deployment.empty())
    throw ConfigError(
        "--modules runs one process of a split deployment, and the registry has no deployment section listing the "
        "processes and their modules (README \"Run split across machines\"); without --modules every module runs "
        "in this process");
  if (config.bus.transport.kind == Transport::Kind::local)
    throw ConfigError(
        "--modules: the modules of the other processes reach this one's events only through the broker, and "
        "bus.transport is local; set bus.transport to {\"kind\": \"rabbitmq\", \"url_file\": ...} (README \"Run "
        "split across machines\")");
  std::set<std::string> wanted;
  std::string known;
  for (const auto& m : config.modules) known += (known.empty() ? "" : ", ") + m.name;
  for (const auto& name : modules) {
    if (!config.module(name))
      throw ConfigError("--modules: no module '" + name + "' in the registry (it has: " + known + ")");
    wanted.insert(name);
  }
  if (wanted.empty()) throw ConfigError("--modules: name the modules of one process (" + describe() + ")");
  for (const auto& p : config.deployment) {
    if (std::set<std::string>(p.modules.begin(), p.modules.end()) != wanted) continue;
    config.process = p.name;
    config.server.http.address = p.address;
    config.server.http.port = p.port;
    return;
  }
  std::string list;
  for (const auto& name : wanted) list += (list.empty() ? "" : ",") + name;
  throw ConfigError("--modules " + list + ": no process of the deployment serves exactly these modules (" + describe() +
                    ")");
}

std::uint16_t parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || value > 65535)
    throw ConfigError("port '" + std::string(text) + "': must be an integer between 0 and 65535");
  return static_cast<std::uint16_t>(value);
}

Config parse(const nlohmann::json& document, std::span<const std::string_view> known_modules) {
  Config config;
  Section root(document, "");
  parse_server(root, config.server);
  if (const json* data_dir = root.find("data_dir")) {
    if (!data_dir->is_string() || data_dir->get<std::string>().empty())
      root.fail("data_dir", "expected a non-empty string");
    config.data_dir = data_dir->get<std::string>();
  }
  parse_database(root, config.database);
  parse_bus(root, config.bus);
  parse_consistency(root, config.consistency);
  parse_logging(root, config.logging);
  parse_portal(root, config.portal);
  parse_modules(root, config.modules, known_modules);
  parse_deployment(root, config);
  for (const auto& m : config.modules)
    if (m.internal && m.internal->port && *m.internal->port != 0 && *m.internal->port == config.server.http.port)
      throw ConfigError("modules." + m.name + ".internal.port: " + std::to_string(*m.internal->port) +
                        " is the public server's port (server.port); an internal listener needs its own");
  root.finish();
  return config;
}

Config load(const std::optional<std::filesystem::path>& file, std::string_view default_document,
            const Overrides& overrides, std::span<const std::string_view> known_modules) {
  std::string text = file ? read_file(*file) : std::string(default_document);
  std::string origin = file ? file->string() : "built-in registry";
  json document;
  try {
    document = json::parse(text);
  } catch (const json::parse_error& error) {
    throw ConfigError(origin + ": not valid JSON: " + error.what());
  }
  Config config;
  try {
    config = parse(document, known_modules);
  } catch (const ConfigError& error) {
    throw ConfigError(origin + ": " + error.what());
  }
  if (overrides.modules) select_process(config, *overrides.modules);
  if (const char* dir = std::getenv("TOWNHALL_DATA_DIR"); dir && *dir) config.data_dir = dir;
  if (const char* port = std::getenv("TOWNHALL_PORT"); port && *port) {
    try {
      config.server.http.port = parse_port(port);
    } catch (const ConfigError& error) {
      throw ConfigError(std::string("TOWNHALL_PORT: ") + error.what());
    }
  }
  if (overrides.data_dir) config.data_dir = *overrides.data_dir;
  if (overrides.port) config.server.http.port = *overrides.port;
  check_data_dir(config.data_dir);
  return config;
}

}  // namespace townhall::config
