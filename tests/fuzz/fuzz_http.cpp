// libFuzzer: raw HTTP request bytes through the real server in this process (Beast's
// parser, the gateway, authentication, every module's routes) on a loopback socket.
// "@ADMIN@" and "@CITIZEN@" in an input become live bearer tokens, so inputs reach the
// handlers behind authentication. A 500, a malformed response or a sanitizer report is a
// finding; 4xx and 503 are the expected answers to bad input.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "townhall/app/application.hpp"
#include "townhall/platform/config.hpp"

namespace {

townhall::app::Application* g_application = nullptr;  // reachable, so not a leak
unsigned short g_port = 0;
std::string g_admin, g_citizen;

std::string exchange(const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) std::abort();
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(g_port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) std::abort();
  std::size_t sent = 0;
  while (sent < request.size()) {
    auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early (413, 431, a framing error)
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string response;
  char buffer[16384];
  for (;;) {
    pollfd waiting{fd, POLLIN, 0};
    // The first answer may take a while; after it, the server's lingering close (after a
    // framing error) would hold the connection open for a second: do not wait for that.
    if (::poll(&waiting, 1, response.empty() ? 5000 : 50) <= 0) break;
    auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    response.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return response;
}

std::string token_of(const std::string& response) {
  auto body = response.find("\r\n\r\n");
  if (body == std::string::npos) return {};
  auto parsed = nlohmann::json::parse(response.substr(body + 4), nullptr, false);
  return parsed.is_object() && parsed.contains("token") ? parsed["token"].get<std::string>() : std::string();
}

std::string post(const std::string& path, const std::string& body) {
  return exchange("POST " + path + " HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace townhall;
  char dir_template[] = "/tmp/townhall-fuzz-XXXXXX";
  if (!::mkdtemp(dir_template)) std::abort();
  auto config = config::parse(nlohmann::json::parse(app::default_registry()), app::known_modules());
  config.data_dir = dir_template;
  config.server.http.port = 0;
  config.server.rate_limit.enabled = false;
  for (auto& module : config.modules)  // Argon2id at its minimum cost: inputs register and log in
    if (module.name == "auth") module.settings["password_hash"] = {{"passes", 1}, {"memory_kib", 8192}};
  config.logging.level = "off";
  config.logging.access_log = logging::AccessLogFormat::off;
  logging::init(config.logging);
  auto created =
      app::create_staff_user(config, auth::StaffUser{"admin@example.org", "fuzz password 1", "Admin", "admin", {}});
  if (!created) std::abort();
  // Never stopped or freed: the process ends when libFuzzer is done.
  g_application = new app::Application(config, app::Application::Options{.demo = true, .handle_signals = false});
  g_port = g_application->start();
  g_admin = token_of(post("/api/v1/auth/login", R"({"email":"admin@example.org","password":"fuzz password 1"})"));
  post("/api/v1/auth/register", R"({"email":"fuzz@example.org","password":"fuzz password 1","name":"Fuzz"})");
  g_citizen = token_of(post("/api/v1/auth/login", R"({"email":"fuzz@example.org","password":"fuzz password 1"})"));
  if (g_admin.empty() || g_citizen.empty()) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 256 * 1024) return -1;
  std::string request(reinterpret_cast<const char*>(data), size);
  replace_all(request, "@ADMIN@", g_admin);
  replace_all(request, "@CITIZEN@", g_citizen);
  auto response = exchange(request);
  if (response.empty()) return 0;  // closed without answering (e.g. nothing that looks like HTTP)
  // Each response in turn (pipelined requests get one each, framed by Content-Length): a
  // status line (HTTP/1.0 answers an HTTP/1.0 request), never 500.
  std::size_t at = 0;
  while (at < response.size()) {
    if (response.compare(at, 9, "HTTP/1.1 ") != 0 && response.compare(at, 9, "HTTP/1.0 ") != 0) {
      std::fprintf(stderr, "malformed response at %zu: %.200s\n", at, response.c_str() + at);
      std::abort();
    }
    if (response.compare(at + 9, 3, "500") == 0) {
      std::fprintf(stderr, "500 for:\n%s\n---\n%.2000s\n", request.c_str(), response.c_str() + at);
      std::abort();
    }
    auto header_end = response.find("\r\n\r\n", at);
    if (header_end == std::string::npos) break;  // cut short by the read deadline
    std::size_t length = 0;
    std::string headers = response.substr(at, header_end - at);
    for (auto& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (auto field = headers.find("\r\ncontent-length:"); field != std::string::npos)
      length = std::strtoull(headers.c_str() + field + 17, nullptr, 10);
    // The answer to a HEAD has a Content-Length and no body: when the input sent a HEAD
    // and the next answer starts right after these headers, that was one.
    const auto next = header_end + 4;
    if (length > 0 && request.find("HEAD ") != std::string::npos &&
        (response.compare(next, 9, "HTTP/1.1 ") == 0 || response.compare(next, 9, "HTTP/1.0 ") == 0))
      length = 0;
    at = next + length;
  }
  return 0;
}
