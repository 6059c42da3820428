#pragma once

// A blocking HTTP/1.1 keep-alive client on one loopback connection: what the scale
// benchmark seeds and measures with (one connection per thread, no per-request connect).
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace townhall::bench {

struct Reply {
  int status = 0;
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

class Client {
 public:
  explicit Client(unsigned short port) : port_(port) {}

  // One request; a connection the server closed (idle timeout) is opened again once.
  Reply request(std::string_view method, const std::string& target, const std::string& body = {},
                const std::string& token = {}, const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        return send(method, target, body, token, headers);
      } catch (const boost::system::system_error&) {
        stream_.reset();
        if (attempt == 1) throw;
      }
    }
    return {};
  }

  Reply get(const std::string& target, const std::string& token = {}) { return request("GET", target, {}, token); }
  Reply post(const std::string& target, const nlohmann::json& body, const std::string& token = {},
             const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return request("POST", target, body.dump(), token, headers);
  }

 private:
  Reply send(std::string_view method, const std::string& target, const std::string& body, const std::string& token,
             const std::vector<std::pair<std::string, std::string>>& headers) {
    namespace http = boost::beast::http;
    if (!stream_) {
      buffer_.clear();
      stream_.emplace(context_);
      stream_->connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_));
      stream_->socket().set_option(boost::asio::ip::tcp::no_delay(true));
    }
    http::request<http::string_body> request{http::string_to_verb(method), target, 11};
    request.set(http::field::host, "127.0.0.1");
    if (!token.empty()) request.set(http::field::authorization, "Bearer " + token);
    for (const auto& [name, value] : headers) request.set(name, value);
    if (!body.empty()) {
      request.set(http::field::content_type, "application/json");
      request.body() = body;
    }
    request.prepare_payload();
    http::write(*stream_, request);
    http::response<http::string_body> response;
    http::read(*stream_, buffer_, response);
    if (!response.keep_alive()) stream_.reset();
    return {static_cast<int>(response.result_int()), std::move(response.body())};
  }

  unsigned short port_;
  boost::asio::io_context context_;
  std::optional<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace townhall::bench
