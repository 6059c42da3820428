// The auth::Api contract, run against the in-process service and against auth::HttpApi
// talking to auth's internal listener on a loopback port (README "Internal API"): the
// same calls give the same results and the same Errc. Then what only the HTTP path has:
// its listener down or slow, forged and replayed signatures, a revoked user token.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <future>
#include <thread>

#include "fixture.hpp"
#include "townhall/auth/http_api.hpp"
#include "townhall/auth/wire.hpp"
#include "townhall/platform/server.hpp"

namespace townhall::auth {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

signing::Key key_of(unsigned char fill) {
  std::array<unsigned char, signing::kKeyBytes> bytes{};
  bytes.fill(fill);
  return signing::Key(bytes);
}

// An io_context on a thread of its own, for listeners and HttpApi connections (test
// bodies call the Api from their own thread with run_awaitable).
class NetworkThread {
 public:
  NetworkThread() : work_(asio::make_work_guard(io)), thread_([this] { io.run(); }) {}
  ~NetworkThread() {
    work_.reset();
    io.stop();
    thread_.join();
  }
  // Runs `f` on the network thread and waits for it.
  template <class F>
  void run(F f) {
    std::promise<void> done;
    asio::post(io, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }
  asio::io_context io;

 private:
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

// A listener on a loopback ephemeral port with `handler`, stopped in the destructor.
class Listener {
 public:
  Listener(NetworkThread& network, http::Handler handler) : network_(network) {
    http::ServerOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<http::Server>(network.io, options, std::move(handler), registry_);
    port = server_->listen();
    server_->start();
  }
  ~Listener() {
    std::promise<void> drained;
    network_.run([&] { server_->shutdown(3s, [&](bool) { drained.set_value(); }); });
    drained.get_future().wait();
    network_.run([&] { server_.reset(); });
  }
  std::uint16_t port = 0;

 private:
  NetworkThread& network_;
  metrics::Registry registry_;
  std::unique_ptr<http::Server> server_;
};

struct InProcess {
  static constexpr bool remote = false;
};
struct OverHttp {
  static constexpr bool remote = true;
};

template <class Transport>
class AuthApiContract : public AuthServiceTest {
 protected:
  void SetUp() override {
    AuthServiceTest::SetUp();
    if constexpr (Transport::remote) {
      std::map<std::string, signing::Key, std::less<>> keys;
      keys.emplace("permits", key_of(1));
      verifier = std::make_unique<signing::Verifier>(std::move(keys), 30s);
      network = std::make_unique<NetworkThread>();
      listener = std::make_unique<Listener>(*network, internal_handler(*service, *verifier));
      remote = std::make_unique<HttpApi>(
          network->io,
          HttpApiOptions{.address = "127.0.0.1", .port = listener->port, .module = "permits", .key = key_of(1)});
    }
  }
  void TearDown() override {
    if (network) network->run([&] { remote.reset(); });
    listener.reset();
    network.reset();
    AuthServiceTest::TearDown();
  }

  Api& api() { return remote ? static_cast<Api&>(*remote) : static_cast<Api&>(*service); }

  // A signed-in user as a request's call_context() gives it: principal and bearer token.
  CallContext signed_in(const std::string& email, const std::string& password) {
    auto session = run_awaitable(service->login(email, password, "127.0.0.1"));
    EXPECT_TRUE(session) << (session ? "" : session.error().message);
    CallContext context;
    if (!session) return context;
    context.principal = session->principal;
    context.bearer_token = session->token;
    context.correlation_id = "contract-test";
    return context;
  }
  CallContext citizen_context(const std::string& email) { return signed_in(email, "a long enough password"); }
  CallContext staff_context(const std::string& email, std::vector<std::string> roles) {
    create_staff(email, std::move(roles));
    return signed_in(email, "staff password 123");
  }
  static CallContext module_context() { return CallContext::as_service("permits", "contract-test"); }

  template <class T>
  static void expect_error(const Result<T>& result, Errc code) {
    ASSERT_FALSE(result) << "expected " << to_string(code);
    EXPECT_EQ(result.error().code, code) << result.error().message;
  }

  std::unique_ptr<signing::Verifier> verifier;
  std::unique_ptr<NetworkThread> network;
  std::unique_ptr<Listener> listener;
  std::unique_ptr<HttpApi> remote;
};

using Transports = ::testing::Types<InProcess, OverHttp>;
class TransportNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return T::remote ? "OverHttp" : "InProcess";
  }
};
TYPED_TEST_SUITE(AuthApiContract, Transports, TransportNames);

TYPED_TEST(AuthApiContract, AuthenticateResolvesATokenAndRefusesAnUnknownOne) {
  auto maria = this->register_citizen("maria@example.org");
  auto session = run_awaitable(this->service->login("maria@example.org", "a long enough password", "127.0.0.1"));
  ASSERT_TRUE(session);
  auto gateway = CallContext::as_service("gateway", "contract-test");
  auto principal = run_awaitable(this->api().authenticate(gateway, session->token));
  ASSERT_TRUE(principal) << principal.error().message;
  EXPECT_EQ((*principal)->id, maria.id);
  EXPECT_TRUE((*principal)->is_citizen());
  EXPECT_EQ((*principal)->email, "maria@example.org");
  this->expect_error(run_awaitable(this->api().authenticate(gateway, std::string(43, 'x'))), Errc::unauthorized);
  this->expect_error(run_awaitable(this->api().authenticate(gateway, "short")), Errc::unauthorized);
}

TYPED_TEST(AuthApiContract, GetCitizenServesTheCitizenStaffAndModulesOnly) {
  auto maria = this->register_citizen("maria@example.org");
  auto jon = this->register_citizen("jon@example.org");
  auto as_maria = this->citizen_context("maria@example.org");
  auto own = run_awaitable(this->api().get_citizen(as_maria, maria.id));
  ASSERT_TRUE(own) << own.error().message;
  EXPECT_EQ(own->email, "maria@example.org");
  EXPECT_EQ(own->phone, maria.phone);
  EXPECT_EQ(own->event_version, maria.event_version);
  EXPECT_EQ(own->created_at, maria.created_at);
  this->expect_error(run_awaitable(this->api().get_citizen(as_maria, jon.id)), Errc::not_found);

  auto as_module = run_awaitable(this->api().get_citizen(this->module_context(), jon.id));
  ASSERT_TRUE(as_module) << as_module.error().message;
  EXPECT_EQ(as_module->email, "jon@example.org");
  this->expect_error(run_awaitable(this->api().get_citizen(this->module_context(), 999'999)), Errc::not_found);

  auto clerk = this->staff_context("clerk@example.org", {"clerk"});
  EXPECT_TRUE(run_awaitable(this->api().get_citizen(clerk, jon.id)));
  auto inspector = this->staff_context("inspector@example.org", {"parks_staff"});
  this->expect_error(run_awaitable(this->api().get_citizen(inspector, jon.id)), Errc::forbidden);
  CallContext anonymous;
  this->expect_error(run_awaitable(this->api().get_citizen(anonymous, jon.id)), Errc::forbidden);
}

TYPED_TEST(AuthApiContract, GetSensitiveNeedsAnAuditablePrincipalWithThePermission) {
  auto maria = this->register_citizen("maria@example.org", "123-45-6789");
  auto jon = this->register_citizen("jon@example.org");
  auto clerk = this->staff_context("rosa@example.org", {"revenue_clerk"});
  auto national_id = run_awaitable(this->api().get_sensitive(clerk, maria.id, "tax record"));
  ASSERT_TRUE(national_id) << national_id.error().message;
  EXPECT_EQ(*national_id, std::optional<std::string>("123-45-6789"));
  auto none = run_awaitable(this->api().get_sensitive(clerk, jon.id, "tax record"));
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_EQ(*none, std::nullopt);
  this->expect_error(run_awaitable(this->api().get_sensitive(this->module_context(), maria.id, "tax record")),
                     Errc::forbidden);
  this->expect_error(run_awaitable(this->api().get_sensitive(this->citizen_context("jon@example.org"), maria.id, "x")),
                     Errc::not_found);
  this->expect_error(run_awaitable(this->api().get_sensitive(clerk, maria.id, std::string(300, 'p'))),
                     Errc::invalid_argument);
}

TYPED_TEST(AuthApiContract, BulkReadsAgreeWithEachOtherForModulesAndAreRefusedToCitizens) {
  auto maria = this->register_citizen("maria@example.org");
  auto jon = this->register_citizen("jon@example.org");
  CitizenFields fields{CitizenField::name, CitizenField::email, CitizenField::phone, CitizenField::is_active};
  auto module = this->module_context();
  auto versions = run_awaitable(this->api().citizen_versions(module, 0, 10, fields));
  ASSERT_TRUE(versions) << versions.error().message;
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[0].id, maria.id);
  EXPECT_EQ((*versions)[0].content, cached_content(maria, fields));
  EXPECT_EQ((*versions)[1].id, jon.id);

  auto digest = run_awaitable(this->api().citizen_digest(module, 0, jon.id + 1, fields));
  ASSERT_TRUE(digest) << digest.error().message;
  consistency::Digest expected;
  for (const auto& version : *versions) consistency::add(expected, version.id, version.event_version, version.content);
  EXPECT_TRUE(digest->same(expected));
  EXPECT_EQ(digest->max_id, jon.id);

  auto changes = run_awaitable(this->api().citizens_since(module, 0, 1));
  ASSERT_TRUE(changes) << changes.error().message;
  ASSERT_EQ(changes->citizens.size(), 1u);
  auto rest = run_awaitable(this->api().citizens_since(module, changes->next, 10));
  ASSERT_TRUE(rest) << rest.error().message;
  ASSERT_EQ(rest->citizens.size(), 1u);
  EXPECT_NE(rest->citizens[0].id, changes->citizens[0].id);

  auto as_maria = this->citizen_context("maria@example.org");
  this->expect_error(run_awaitable(this->api().citizen_versions(as_maria, 0, 10, fields)), Errc::forbidden);
  this->expect_error(run_awaitable(this->api().citizen_digest(as_maria, 0, 10, fields)), Errc::forbidden);
  this->expect_error(run_awaitable(this->api().citizens_since(as_maria, 0, 10)), Errc::forbidden);
}

TYPED_TEST(AuthApiContract, DepartmentsAndResetMails) {
  auto admin = as(employee(999, {"*"}));
  ASSERT_TRUE(run_awaitable(this->service->create_department(admin, "BLD", "Building")));
  auto departments = run_awaitable(this->api().departments(this->module_context()));
  ASSERT_TRUE(departments) << departments.error().message;
  ASSERT_EQ(departments->size(), 1u);
  EXPECT_EQ((*departments)[0].code, "BLD");
  EXPECT_EQ((*departments)[0].name, "Building");
  EXPECT_TRUE((*departments)[0].is_active);
  this->expect_error(run_awaitable(this->api().departments(CallContext{})), Errc::forbidden);

  auto maria = this->register_citizen("maria@example.org");
  ASSERT_TRUE(run_awaitable(this->service->request_password_reset(CallContext{}, "maria@example.org", "10.6.6.6")));
  auto reference =
      this->outbox("citizen:" + std::to_string(maria.id)).back()["data"]["reference"].template get<std::string>();
  this->expect_error(
      run_awaitable(this->api().password_reset_mail(this->citizen_context("maria@example.org"), reference)),
      Errc::forbidden);
  auto mail = run_awaitable(this->api().password_reset_mail(CallContext::as_service("permits", "t"), reference));
  ASSERT_TRUE(mail) << mail.error().message;
  EXPECT_EQ(mail->email, "maria@example.org");
  EXPECT_FALSE(mail->token.empty());
  this->expect_error(run_awaitable(this->api().password_reset_mail(this->module_context(), "no-such-reference")),
                     Errc::not_found);
}

TYPED_TEST(AuthApiContract, APassedDeadlineIsDeadlineExceeded) {
  auto maria = this->register_citizen("maria@example.org");
  auto late = CallContext::as_service("permits", "t", -1ms);
  this->expect_error(run_awaitable(this->api().get_citizen(late, maria.id)), Errc::deadline_exceeded);
}

// What only the HTTP path has.
class AuthHttpApi : public AuthApiContract<OverHttp> {
 protected:
  // A raw signed POST, sent as it is (so the very same signature can be sent twice).
  static int send(std::uint16_t port, const std::string& target, const std::string& body,
                  const std::vector<http::Header>& headers) {
    namespace beast = boost::beast;
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    beast::http::request<beast::http::string_body> request{beast::http::verb::post, target, 11};
    request.set(beast::http::field::host, "127.0.0.1");
    for (const auto& header : headers) request.set(header.name, header.value);
    request.body() = body;
    request.prepare_payload();
    beast::http::write(stream, request);
    beast::flat_buffer buffer;
    beast::http::response<beast::http::string_body> response;
    beast::http::read(stream, buffer, response);
    return response.result_int();
  }
};

TEST_F(AuthHttpApi, AForgedSignatureIsUnauthorized) {
  auto maria = register_citizen("maria@example.org");
  for (auto [module, key] : {std::pair{"permits", key_of(9)}, std::pair{"revenue", key_of(1)}}) {
    HttpApi forger(network->io, {.address = "127.0.0.1", .port = listener->port, .module = module, .key = key});
    expect_error(run_awaitable(forger.get_citizen(CallContext::as_service(module, "t"), maria.id)), Errc::unauthorized);
  }
  HttpApi keyless(network->io,
                  {.address = "127.0.0.1", .port = listener->port, .module = "permits", .key = std::nullopt});
  expect_error(run_awaitable(keyless.get_citizen(module_context(), maria.id)), Errc::unauthorized);
}

TEST_F(AuthHttpApi, AReplayedSignatureIsUnauthorized) {
  auto maria = register_citizen("maria@example.org");
  auto target = wire::path<wire::GetCitizen>();
  auto body = wire::encode_text(wire::GetCitizen{maria.id});
  auto headers = signing::sign(key_of(1), "permits", "POST", target, body);
  EXPECT_EQ(send(listener->port, target, body, headers), 200);
  EXPECT_EQ(send(listener->port, target, body, headers), 401);
  // Signed for one body, sent with another.
  auto other = wire::encode_text(wire::GetCitizen{maria.id + 1});
  EXPECT_EQ(send(listener->port, target, other, signing::sign(key_of(1), "permits", "POST", target, body)), 401);
  // Signed a minute ago.
  EXPECT_EQ(send(listener->port, target, body,
                 signing::sign(key_of(1), "permits", "POST", target, body, std::chrono::system_clock::now() - 60s)),
            401);
  // Neither signed nor a user's: refused before any method runs.
  EXPECT_EQ(send(listener->port, target, body, {}), 403);
}

TEST_F(AuthHttpApi, AUsersTokenIsAuthenticatedAgainOnEveryCall) {
  auto maria = register_citizen("maria@example.org");
  auto as_maria = citizen_context("maria@example.org");
  ASSERT_TRUE(run_awaitable(remote->get_citizen(as_maria, maria.id)));
  ASSERT_TRUE(run_awaitable(service->logout(as_maria.bearer_token)));
  // The principal in the context still says maria; her revoked token no longer does.
  expect_error(run_awaitable(remote->get_citizen(as_maria, maria.id)), Errc::unauthorized);
  auto without_token = as_maria;
  without_token.bearer_token.clear();
  expect_error(run_awaitable(remote->get_citizen(without_token, maria.id)), Errc::unauthorized);
}

// A process of a split keeps a token auth accepted for the token cache's TTL (design note
// 59): its gateway's per-request check is a lookup, and a signed-in user keeps working for
// that long while auth is unreachable. Refusals are never kept; an entry ends with its TTL.
TEST_F(AuthHttpApi, AnAcceptedTokenIsKeptForTheCachesTtlAndRefusalsAreNot) {
  auto maria = register_citizen("maria@example.org");
  auto token = citizen_context("maria@example.org").bearer_token;
  auto kept_for = [&](std::chrono::milliseconds ttl) {
    return std::make_unique<HttpApi>(network->io, HttpApiOptions{.address = "127.0.0.1",
                                                                 .port = listener->port,
                                                                 .module = "permits",
                                                                 .key = key_of(1),
                                                                 .token_cache_ttl = ttl});
  };
  auto long_lived = kept_for(60s), short_lived = kept_for(200ms);
  for (auto* api : {long_lived.get(), short_lived.get()}) {
    auto accepted = run_awaitable(api->authenticate(module_context(), token));
    ASSERT_TRUE(accepted) << accepted.error().message;
    EXPECT_EQ((*accepted)->id, maria.id);
    expect_error(run_awaitable(api->authenticate(module_context(), std::string(43, 'x'))), Errc::unauthorized);
    EXPECT_EQ(api->cached_tokens(), 1u);
  }
  listener.reset();  // auth unreachable
  auto kept = run_awaitable(long_lived->authenticate(module_context(), token));
  ASSERT_TRUE(kept) << kept.error().message;
  EXPECT_EQ((*kept)->id, maria.id);
  expect_error(run_awaitable(long_lived->authenticate(module_context(), std::string(43, 'y'))), Errc::unavailable);
  expect_error(run_awaitable(remote->authenticate(module_context(), token)), Errc::unavailable);  // no TTL: asks
  EXPECT_TRUE(testing::wait_until([&] {
    auto answer = run_awaitable(short_lived->authenticate(module_context(), token));
    return !answer && answer.error().code == Errc::unavailable;
  }));
}

TEST_F(AuthHttpApi, ConnectionsAreKeptAndReused) {
  auto maria = register_citizen("maria@example.org");
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(run_awaitable(remote->get_citizen(module_context(), maria.id)));
  EXPECT_EQ(remote->idle_connections(), 1u);
}

TEST_F(AuthHttpApi, AListenerThatIsDownIsUnavailable) {
  std::uint16_t closed_port = 0;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    closed_port = acceptor.local_endpoint().port();
  }
  HttpApi down(network->io, {.address = "127.0.0.1", .port = closed_port, .module = "permits", .key = key_of(1)});
  expect_error(run_awaitable(down.get_citizen(module_context(), 1)), Errc::unavailable);
  expect_error(run_awaitable(down.authenticate(module_context(), std::string(43, 'x'))), Errc::unavailable);

  // Auth's own listener going away between calls: the pooled connection is dead too.
  auto maria = register_citizen("maria@example.org");
  ASSERT_TRUE(run_awaitable(remote->get_citizen(module_context(), maria.id)));
  listener.reset();
  expect_error(run_awaitable(remote->get_citizen(module_context(), maria.id)), Errc::unavailable);
}

TEST_F(AuthHttpApi, ASlowListenerIsDeadlineExceeded) {
  Listener slow(*network, [](http::Request&) -> asio::awaitable<http::Response> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 1s);
    co_await timer.async_wait(asio::use_awaitable);
    co_return http::json_response(200, "{}");
  });
  HttpApi client(network->io, {.address = "127.0.0.1", .port = slow.port, .module = "permits", .key = key_of(1)});
  auto started = std::chrono::steady_clock::now();
  expect_error(run_awaitable(client.get_citizen(CallContext::as_service("permits", "t", 200ms), 1)),
               Errc::deadline_exceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 900ms);
}

// What travels besides the body: remaining time, correlation id, signature, and a 5xx
// with Retry-After comes back as unavailable with it.
TEST_F(AuthHttpApi, DeadlineCorrelationAndSignatureTravelAndA5xxIsUnavailable) {
  std::promise<http::Request> seen;
  Listener recorder(*network, [&seen](http::Request& request) -> asio::awaitable<http::Response> {
    seen.set_value(request);
    auto response = http::problem(503, "unavailable", "Service Unavailable", "auth.db is down");
    response.set_header("Retry-After", "7");
    co_return response;
  });
  HttpApi client(network->io, {.address = "127.0.0.1", .port = recorder.port, .module = "permits", .key = key_of(1)});
  auto result = run_awaitable(client.get_citizen(CallContext::as_service("permits", "req-12345", 3s), 1));
  expect_error(result, Errc::unavailable);
  EXPECT_EQ(result.error().retry_after_seconds, 7);
  EXPECT_EQ(result.error().message, "auth.db is down");
  auto request = seen.get_future().get();
  EXPECT_EQ(request.path, "/internal/v1/auth/get_citizen");
  EXPECT_EQ(request.request_id, "req-12345");
  auto remaining = std::stoi(std::string(request.header(kDeadlineHeader)));
  EXPECT_GT(remaining, 2000);
  EXPECT_LE(remaining, 3000);
  EXPECT_EQ(request.header(signing::kServiceHeader), "permits");
  EXPECT_TRUE(request.header("Authorization").empty());
  std::map<std::string, signing::Key, std::less<>> keys;
  keys.emplace("permits", key_of(1));
  signing::Verifier check(std::move(keys), 30s);
  EXPECT_TRUE(check.verify(request));
}

}  // namespace
}  // namespace townhall::auth
