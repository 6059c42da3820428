#pragma once

#include <string>

#include "settings.hpp"
#include "townhall/platform/result.hpp"

namespace townhall::notify {

struct Email {
  std::string to;          // one address
  std::string subject;     // UTF-8; encoded for the header here
  std::string body;        // UTF-8 plain text
  std::string message_id;  // "<...@...>", the same for every attempt of one email
};

// Sends one email over SMTP with libcurl (STARTTLS or implicit TLS, AUTH when a username
// is set), blocking for at most the configured timeout: run it off the network threads.
// An error says what the server or the connection answered; `permanent` is set for a 5xx
// reply to the recipient or the message (retrying will not help).
class SmtpMailer {
 public:
  SmtpMailer(SmtpSettings settings, std::string password);
  ~SmtpMailer();
  SmtpMailer(const SmtpMailer&) = delete;
  SmtpMailer& operator=(const SmtpMailer&) = delete;

  struct Failure {
    std::string reason;
    bool permanent = false;
  };
  // nullopt: the server accepted the message.
  std::optional<Failure> send(const Email& email) const;

  // The message as sent (headers and body, CRLF line ends): what tests and logs look at.
  std::string render(const Email& email) const;

 private:
  SmtpSettings settings_;
  std::string password_;
};

}  // namespace townhall::notify
