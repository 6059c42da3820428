#include "mailer.hpp"

#include <curl/curl.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>

#include "townhall/platform/time.hpp"

namespace townhall::notify {
namespace {

std::once_flag curl_initialized;

bool is_ascii(const std::string& text) {
  for (unsigned char c : text)
    if (c >= 0x80) return false;
  return true;
}

std::string base64(const std::string& bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    auto n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
             static_cast<unsigned char>(bytes[i + 2]);
    out += {kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63], kAlphabet[n & 63]};
  }
  if (i + 1 == bytes.size()) {
    auto n = static_cast<unsigned char>(bytes[i]) << 16;
    out += {kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    auto n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += {kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63], '='};
  }
  return out;
}

// A header value: as is when ASCII, else RFC 2047 encoded words. No CR or LF survives
// (a header injection needs one).
std::string header_text(std::string text) {
  for (auto& c : text)
    if (c == '\r' || c == '\n') c = ' ';
  if (is_ascii(text)) return text;
  return "=?UTF-8?B?" + base64(text) + "?=";
}

// Body lines end in CRLF; a bare CR or LF becomes one (SMTP wants CRLF only).
std::string crlf(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 40);
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r') {
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
      out += "\r\n";
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
  return out;
}

// RFC 5322 date, e.g. "Sat, 05 Dec 2026 10:00:00 +0000".
std::string rfc5322_now() {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[64];
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S +0000", &utc);
  return text;
}

struct Upload {
  const std::string& data;
  std::size_t offset = 0;
};

std::size_t read_upload(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto* upload = static_cast<Upload*>(user);
  const auto room = size * count;
  const auto left = upload->data.size() - upload->offset;
  const auto n = left < room ? left : room;
  std::memcpy(buffer, upload->data.data() + upload->offset, n);
  upload->offset += n;
  return n;
}

}  // namespace

SmtpMailer::SmtpMailer(SmtpSettings settings, std::string password)
    : settings_(std::move(settings)), password_(std::move(password)) {
  std::call_once(curl_initialized, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

SmtpMailer::~SmtpMailer() = default;

std::string SmtpMailer::render(const Email& email) const {
  std::string message;
  message += "Date: " + rfc5322_now() + "\r\n";
  message += "From: " + header_text(settings_.from) + "\r\n";
  message += "To: <" + header_text(email.to) + ">\r\n";
  message += "Message-ID: " + header_text(email.message_id) + "\r\n";
  message += "Subject: " + header_text(email.subject) + "\r\n";
  message += "MIME-Version: 1.0\r\n";
  message += "Content-Type: text/plain; charset=UTF-8\r\n";
  message += "Content-Transfer-Encoding: 8bit\r\n";
  message += "Auto-Submitted: auto-generated\r\n";
  message += "\r\n";
  message += crlf(email.body);
  return message;
}

std::optional<SmtpMailer::Failure> SmtpMailer::send(const Email& email) const {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return Failure{"libcurl could not start a transfer", false};
  const auto scheme = settings_.security == "tls" ? "smtps://" : "smtp://";
  const auto url = scheme + settings_.host + ":" + std::to_string(settings_.port);
  const auto from = "<" + envelope_address(settings_.from) + ">";
  const auto to = "<" + email.to + ">";
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> recipients(curl_slist_append(nullptr, to.c_str()),
                                                                         &curl_slist_free_all);
  const auto message = render(email);
  Upload upload{message};
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_MAIL_RCPT, recipients.get());
  curl_easy_setopt(curl.get(), CURLOPT_READFUNCTION, &read_upload);
  curl_easy_setopt(curl.get(), CURLOPT_READDATA, &upload);
  curl_easy_setopt(curl.get(), CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(settings_.timeout.count()));
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(settings_.timeout.count()));
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  if (settings_.security == "starttls")
    curl_easy_setopt(curl.get(), CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
  if (!settings_.username.empty()) {
    curl_easy_setopt(curl.get(), CURLOPT_USERNAME, settings_.username.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_PASSWORD, password_.c_str());
  }
  auto code = curl_easy_perform(curl.get());
  if (code == CURLE_OK) return std::nullopt;
  long reply = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &reply);
  std::string reason = error[0] ? error : curl_easy_strerror(code);
  if (reply) reason += " (SMTP " + std::to_string(reply) + ")";
  // 5xx to RCPT or DATA: the server refuses this message for good; anything else (no
  // connection, 4xx, a timeout) may pass later.
  const bool permanent = reply >= 500 && reply < 600 &&
                         (code == CURLE_SEND_ERROR || code == CURLE_RECV_ERROR || code == CURLE_LOGIN_DENIED);
  return Failure{reason, permanent};
}

}  // namespace townhall::notify
