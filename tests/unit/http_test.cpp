#include "townhall/platform/http.hpp"

#include <date/date.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "townhall/platform/input.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/rate_limiter.hpp"
#include "townhall/platform/server.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::http {
namespace {

Handler noop() {
  return [](Request&) -> boost::asio::awaitable<Response> { co_return Response{}; };
}

TEST(Router, MatchesLiteralsAndParameters) {
  Router router;
  router.add(Method::get, "/api/v1/permits/applications", noop());
  router.add(Method::get, "/api/v1/permits/applications/{id}", noop());
  router.add(Method::post, "/api/v1/permits/applications/{id}/decision", noop());
  std::vector<std::pair<std::string, std::string>> params;

  auto list = router.match(Method::get, "/api/v1/permits/applications", params);
  EXPECT_EQ(list.outcome, Router::Outcome::found);
  EXPECT_EQ(list.pattern, "/api/v1/permits/applications");
  EXPECT_TRUE(params.empty());

  auto one = router.match(Method::get, "/api/v1/permits/applications/42", params);
  EXPECT_EQ(one.outcome, Router::Outcome::found);
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0], (std::pair<std::string, std::string>{"id", "42"}));

  auto decoded = router.match(Method::post, "/api/v1/permits/applications/a%20b/decision", params);
  EXPECT_EQ(decoded.outcome, Router::Outcome::found);
  EXPECT_EQ(params[0].second, "a b");
}

TEST(Router, NotFoundAndMethodNotAllowed) {
  Router router;
  router.add(Method::get, "/things/{id}", noop());
  router.add(Method::del, "/things/{id}", noop());
  std::vector<std::pair<std::string, std::string>> params;
  EXPECT_EQ(router.match(Method::get, "/things", params).outcome, Router::Outcome::not_found);
  EXPECT_EQ(router.match(Method::get, "/things/1/extra", params).outcome, Router::Outcome::not_found);
  auto wrong = router.match(Method::post, "/things/1", params);
  EXPECT_EQ(wrong.outcome, Router::Outcome::method_not_allowed);
  EXPECT_EQ(wrong.allow, "GET, DELETE");
  // HEAD is served by GET routes.
  EXPECT_EQ(router.match(Method::head, "/things/1", params).outcome, Router::Outcome::found);
}

TEST(Router, RejectsDuplicateAndMalformedPatterns) {
  Router router;
  router.add(Method::get, "/a/{id}", noop());
  EXPECT_THROW(router.add(Method::get, "/a/{other}", noop()), std::invalid_argument);
  EXPECT_THROW(router.add(Method::get, "no-slash", noop()), std::invalid_argument);
  EXPECT_THROW(router.add(Method::get, "/a/x{id}", noop()), std::invalid_argument);
  EXPECT_NO_THROW(router.add(Method::post, "/a/{id}", noop()));
}

TEST(Request, HeadersAndQueryParameters) {
  Request request;
  request.headers = {{"Content-Type", "application/json"}, {"X-Request-Id", "abc"}};
  request.query = "name=Maria+Garcia&page=2&email=a%40b.c&flag";
  EXPECT_EQ(request.header("content-type"), "application/json");
  EXPECT_EQ(request.header("absent"), "");
  EXPECT_EQ(request.query_param("name"), "Maria Garcia");
  EXPECT_EQ(request.query_param("email"), "a@b.c");
  EXPECT_EQ(request.query_param("flag"), "");
  EXPECT_EQ(request.query_param("missing"), std::nullopt);
}

// A signed-in user's Api calls carry the user's own token (an Api over HTTP sends it to
// be authenticated again; README "Internal API"); an anonymous request's carry none.
TEST(Request, CallContextCarriesTheSignedInUsersBearerToken) {
  Request request;
  request.request_id = "req-1";
  request.headers.push_back({"authorization", "bearer  tok-123 "});
  EXPECT_TRUE(request.call_context().bearer_token.empty());  // no principal: not signed in
  request.principal = std::make_shared<Principal>();
  auto context = request.call_context();
  EXPECT_EQ(context.bearer_token, "tok-123");
  EXPECT_EQ(context.correlation_id, "req-1");
  request.headers = {{"Authorization", "Basic dXNlcjpwYXNz"}};
  EXPECT_TRUE(request.call_context().bearer_token.empty());
}

TEST(Problem, BodyIsProblemJsonAndEscapesInput) {
  auto response = problem(make_error(Errc::not_found, "no application \"7\" here"));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.content_type, "application/problem+json");
  auto body = nlohmann::json::parse(response.body);
  EXPECT_EQ(body["type"], "/problems/not-found");
  EXPECT_EQ(body["title"], "Not Found");
  EXPECT_EQ(body["status"], 404);
  EXPECT_EQ(body["detail"], "no application \"7\" here");
  // Invalid UTF-8 in a detail must not throw.
  auto odd = problem(400, "bad", "Bad Request", std::string("\xff\xfe", 2));
  EXPECT_NO_THROW(nlohmann::json::parse(odd.body));
}

TEST(Problem, EveryErrorCodeMapsToItsStatus) {
  EXPECT_EQ(status_for(Errc::invalid_argument), 400);
  EXPECT_EQ(status_for(Errc::unauthorized), 401);
  EXPECT_EQ(status_for(Errc::forbidden), 403);
  EXPECT_EQ(status_for(Errc::conflict), 409);
  EXPECT_EQ(status_for(Errc::unprocessable), 422);
  EXPECT_EQ(status_for(Errc::too_many_requests), 429);
  EXPECT_EQ(status_for(Errc::unavailable), 503);
  EXPECT_EQ(status_for(Errc::deadline_exceeded), 504);
}

TEST(RequestId, AcceptsSaneIdsOnly) {
  EXPECT_TRUE(is_acceptable_request_id("5b1f-22.aa:x_y"));
  EXPECT_FALSE(is_acceptable_request_id(""));
  EXPECT_FALSE(is_acceptable_request_id(std::string(65, 'a')));
  EXPECT_FALSE(is_acceptable_request_id("has space"));
  EXPECT_FALSE(is_acceptable_request_id("inject\r\nX: y"));
  auto a = generate_request_id();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_TRUE(is_acceptable_request_id(a));
  EXPECT_NE(a, generate_request_id());
}

TEST(RateLimiter, BurstThenRefillPerClient) {
  RateLimiter limiter(2.0, 3.0);
  auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.acquire("10.0.0.1", t0).allowed);
  auto denied = limiter.acquire("10.0.0.1", t0);
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.retry_after.count(), 1);
  EXPECT_TRUE(limiter.acquire("10.0.0.2", t0).allowed);  // another client has its own bucket
  EXPECT_TRUE(limiter.acquire("10.0.0.1", t0 + std::chrono::milliseconds(500)).allowed);
  EXPECT_FALSE(limiter.acquire("10.0.0.1", t0 + std::chrono::milliseconds(500)).allowed);
}

TEST(RateLimiter, MemoryStaysBounded) {
  RateLimiter limiter(1.0, 1.0, 100);
  auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 1000; ++i) limiter.acquire("client-" + std::to_string(i), t0);
  EXPECT_LE(limiter.tracked_clients(), 100u);
}

TEST(Metrics, RendersPrometheusTextFormat) {
  metrics::Registry registry;
  registry.counter("t_requests_total", "Requests", {"route"}).with({"/a\"b"}).inc(3);
  registry.gauge("t_up", "Up").with({}).set(1);
  auto& histogram = registry.histogram("t_seconds", "Latency", {"m"}, {0.1, 1});
  histogram.with({"x"}).observe(0.05);
  histogram.with({"x"}).observe(0.5);
  histogram.with({"x"}).observe(5);
  bool collected = false;
  registry.add_collector([&] { collected = true; });
  auto text = registry.render();
  EXPECT_TRUE(collected);
  EXPECT_NE(text.find("# TYPE t_requests_total counter\nt_requests_total{route=\"/a\\\"b\"} 3\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("t_up 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_seconds_bucket{m=\"x\",le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_seconds_bucket{m=\"x\",le=\"1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_seconds_bucket{m=\"x\",le=\"+Inf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_seconds_count{m=\"x\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_seconds_sum{m=\"x\"} 5.55\n"), std::string::npos) << text;
  // Same name, same family; same name with another type is a programming error.
  EXPECT_EQ(&registry.gauge("t_up", "Up"), &registry.gauge("t_up", "Up"));
  EXPECT_THROW(registry.counter("t_up", "Up"), std::invalid_argument);
  EXPECT_THROW(registry.gauge("t_up", "Up").with({"unexpected"}), std::invalid_argument);
}

}  // namespace
}  // namespace townhall::http

// --- strict input (platform/input.hpp) --------------------------------------------------

namespace townhall::input {
namespace {

TEST(InputBody, AcceptsOnlyKnownFieldsOfTheRightType) {
  EXPECT_EQ(Body::parse("{", {"a"}).error().code, Errc::invalid_argument);
  EXPECT_EQ(Body::parse("[1]", {"a"}).error().message, "the body must be a JSON object");
  EXPECT_NE(Body::parse(R"({"a":"x","b":1})", {"a"}).error().message.find("unknown field 'b'"), std::string::npos);
  EXPECT_EQ(Body::parse(R"({"n":1e400})", {"n"}).error().code, Errc::invalid_argument);
  auto body = Body::parse(R"({"a":5})", {"a"});
  ASSERT_TRUE(body);
  body->required_string("a", {});
  EXPECT_NE(body->status().error().message.find("field 'a': must be a string"), std::string::npos);
  auto ints = Body::parse(R"({"n":18446744073709551615,"m":-1,"k":3})", {"n", "m", "k"});
  ASSERT_TRUE(ints);
  EXPECT_FALSE(ints->optional_int("n", 0, 100));
  EXPECT_FALSE(ints->optional_int("m", 0, 100));
  EXPECT_FALSE(ints->status());
  // The lower bound holds for non-negative numbers too (they parse as unsigned).
  auto low = Body::parse(R"({"year":1800,"amount":0})", {"year", "amount"});
  ASSERT_TRUE(low);
  EXPECT_FALSE(low->optional_int("year", 1900, 2200));
  EXPECT_FALSE(low->optional_int("amount", 1, 100));
  EXPECT_NE(low->status().error().message.find("field 'year': must be an integer from 1900"), std::string::npos);
  // A nested object: its own allowed fields, its problems named with the path.
  auto nested = Body::parse(R"({"method":{"type":"card","pan":"4111"}})", {"method"});
  ASSERT_TRUE(nested);
  auto method = nested->required_object("method", {"type", "token"});
  EXPECT_EQ(method.required_string("type", {}), "card");
  EXPECT_NE(nested->status().error().message.find("field 'method': has an unknown field 'pan'"), std::string::npos);
  auto missing = Body::parse(R"({"method":{"type":"card"}})", {"method"});
  auto inner = missing->required_object("method", {"type", "token"});
  inner.required_string("token", {});
  EXPECT_NE(missing->status().error().message.find("field 'method.token': is required"), std::string::npos);
  auto ok = Body::parse(R"({"k":3,"s":"héllo","z":null})", {"k", "s", "z"});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->optional_int("k", 0, 100), 3);
  EXPECT_EQ(ok->optional_string("s", {.max_bytes = 6}), "héllo");
  auto cleared = ok->nullable_string("z", {});
  ASSERT_TRUE(cleared);
  EXPECT_FALSE(cleared->has_value());
  EXPECT_TRUE(ok->status());
}

TEST(InputBody, LimitsSizeDepthAndCharacters) {
  auto big = Body::parse(R"({"s":")" + std::string(300, 'x') + R"("})", {"s"});
  ASSERT_TRUE(big);
  big->optional_string("s", {.max_bytes = 200});
  EXPECT_NE(big->status().error().message.find("at most 200 bytes"), std::string::npos);
  std::string deep(100, '[');
  EXPECT_EQ(Body::parse(R"({"a":)" + deep + std::string(100, ']') + "}", {"a"}).error().message,
            "JSON nested too deeply");
  EXPECT_TRUE(check_text("tab\there", {}).has_value());
  EXPECT_FALSE(check_text("line\nbreak", {.multiline = true}).has_value());
  EXPECT_TRUE(check_text("   ", {}).has_value());
  EXPECT_TRUE(check_text("\xC0\xAF", {}).has_value());      // overlong
  EXPECT_TRUE(check_text("\xED\xA0\x80", {}).has_value());  // surrogate
  EXPECT_TRUE(check_text("abc\xE2\x82", {}).has_value());   // truncated
  EXPECT_FALSE(check_text("Ω ≈ 😀", {}).has_value());
}

TEST(InputBody, ErrorsDescribeTheInputNotTheLibrary) {
  for (const char* bad : {"{", "{\"a\":tru}", "{\"a\" 1}", "{\"n\":1e400}", "\xff", "{\"a\":\"\x01\"}"}) {
    auto parsed = Body::parse(bad, {"a", "n"});
    ASSERT_FALSE(parsed) << bad;
    const auto& message = parsed.error().message;
    EXPECT_EQ(message.find("json.exception"), std::string::npos) << message;
    EXPECT_EQ(message.find("nlohmann"), std::string::npos) << message;
    EXPECT_TRUE(message.starts_with("malformed JSON")) << message;
  }
  // Where and what: the position and what was expected.
  auto truncated = Body::parse(R"({"a":)", {"a"}).error().message;
  EXPECT_NE(truncated.find("line 1, column 6"), std::string::npos) << truncated;
  EXPECT_NE(truncated.find("unexpected end of input"), std::string::npos) << truncated;
}

TEST(InputBody, DuplicateKeysAreRefused) {
  auto twice = Body::parse(R"({"role":"citizen","role":"admin"})", {"role"});
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("duplicate field 'role'"), std::string::npos) << twice.error().message;
  auto nested = Body::parse(R"({"a":{"x":1,"x":2}})", {"a"});
  EXPECT_FALSE(nested);
  // The same key in sibling objects is fine.
  EXPECT_TRUE(Body::parse(R"({"a":[{"x":1},{"x":2}],"b":{"x":3}})", {"a", "b"}));
}

TEST(InputText, InvisibleFormatCharactersAreRefused) {
  for (const char* bad : {"Eve \u202Egnp.exe", "a\u200Bb", "x\u2066y\u2069", "\uFEFFname", "soft\u00ADhyphen",
                          "c1\u0085control", "tag\U000E0041"}) {
    auto problem = check_text(bad, {});
    EXPECT_TRUE(problem.has_value()) << bad;
  }
  EXPECT_NE(check_text("Eve \u202Egnp.exe", {})->find("U+202E"), std::string::npos);
  // Scripts that need joiners, and ordinary non-Latin text, pass.
  for (const char* good : {"\u0645\u06CC\u200C\u062E\u0648\u0627\u0647\u0645", "José Ñandú", "李伟", "👩\u200D💻"})
    EXPECT_FALSE(check_text(good, {}).has_value()) << good;
}

TEST(InputTime, Rfc3339WithCalendarAndRangeChecks) {
  auto at = utc::parse_rfc3339("2026-12-01T09:30:00Z");
  ASSERT_TRUE(at);
  EXPECT_EQ(utc::format(*at), "2026-12-01T09:30:00.000Z");
  EXPECT_EQ(utc::format(utc::parse_rfc3339("2026-12-01T10:30:00.25+01:00").value()), "2026-12-01T09:30:00.250Z");
  EXPECT_EQ(utc::format(utc::parse_rfc3339("2026-12-01t04:00:00-05:30").value()), "2026-12-01T09:30:00.000Z");
  EXPECT_EQ(utc::format(utc::parse_rfc3339("2028-02-29T00:00:00Z").value()), "2028-02-29T00:00:00.000Z");
  for (const char* bad :
       {"9999-12-31T23:59:59Z", "2030-02-30T10:00:00Z", "2027-02-29T10:00:00Z", "2026-12-01T23:59:60Z",
        "2026-12-01T24:00:00Z", "2026-13-01T00:00:00Z", "2026-12-01T09:30:00", "2026-12-01 09:30:00Z",
        "2026-12-01T09:30:00+24:00", "2026-12-01T9:30:00Z", "+2026-12-01T09:30:00Z", "2026-12-01T09:30:00.Z",
        "2026-12-01T09:30:00.1234567890Z", "1816-01-01T00:00:00Z", "tomorrow", ""})
    EXPECT_FALSE(utc::parse_rfc3339(bad)) << bad;
  // Stored form: strict, and the same calendar checks.
  EXPECT_TRUE(utc::parse("2026-11-21T10:30:00.123Z"));
  EXPECT_FALSE(utc::parse("2026-02-30T10:30:00.123Z"));
  EXPECT_FALSE(utc::parse("2026-11-21T10:30:00+01:00"));

  auto now = utc::parse("2026-11-22T12:00:00Z").value();
  auto past = parse_time("scheduled_for", "2026-11-22T11:59:59Z", {.not_past = true}, now);
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().message, "field 'scheduled_for': must not be in the past");
  EXPECT_TRUE(parse_time("scheduled_for", "2026-11-22T11:59:59Z", {}, now));
  auto far = parse_time("when", "2030-01-01T00:00:00Z", {.max_ahead = std::chrono::hours(24 * 365)}, now);
  ASSERT_FALSE(far);
  EXPECT_NE(far.error().message.find("field 'when': must be at most 365 days"), std::string::npos);
  auto garbage = parse_time("when", "2030-02-30T00:00:00Z", {}, now);
  EXPECT_NE(garbage.error().message.find("field 'when'"), std::string::npos);
}

// format() writes the text by hand (issue 24 §3); the date library's stream formatting is
// the reference, on instants spread over the whole range, before 1970 included, and on
// every millisecond edge of a second, minute, day and leap day.
TEST(InputTime, FormatWritesWhatTheDateLibraryWrites) {
  using std::chrono::milliseconds;
  auto reference = [](utc::TimePoint at) { return date::format("%FT%TZ", std::chrono::floor<milliseconds>(at)); };
  std::vector<utc::TimePoint> instants;
  for (const char* text : {"1900-01-01T00:00:00.000Z", "1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00.000Z",
                           "2000-02-29T23:59:59.999Z", "2026-12-31T23:59:59.999Z", "2199-12-31T23:59:59.999Z"})
    instants.push_back(utc::parse(text).value());
  std::mt19937_64 random(42);
  std::uniform_int_distribution<std::int64_t> spread(-2'208'988'800'000, 7'258'118'400'000);  // 1900..2200, ms
  for (int i = 0; i < 20000; ++i) instants.push_back(utc::TimePoint(milliseconds(spread(random))));
  instants.push_back(utc::TimePoint(std::chrono::nanoseconds(-1)));  // floors to the millisecond before 1970
  instants.push_back(utc::TimePoint(std::chrono::microseconds(1'999)));
  for (auto at : instants) ASSERT_EQ(utc::format(at), reference(at)) << reference(at);
}

TEST(InputIds, OnlyPositiveDecimalIdsNameSomething) {
  EXPECT_EQ(parse_id("42").value(), 42);
  for (auto bad : {"0", "-1", "+1", "1e3", "abc", "", "99999999999999999999", "1 "})
    EXPECT_EQ(parse_id(bad).error().code, Errc::not_found) << bad;
}

TEST(InputEmail, NormalizesAndRejects) {
  EXPECT_EQ(normalize_email(" Maria@Example.ORG ").value(), "maria@example.org");
  // Lookalikes fold to one form: fullwidth letters, the Kelvin sign, decomposed accents.
  EXPECT_EQ(normalize_email("\uFF4Daria@example.org").value(), "maria@example.org");
  EXPECT_EQ(normalize_email("\u212Aelvin@example.org").value(), "kelvin@example.org");
  EXPECT_EQ(normalize_email("jose\u0301@example.org").value(), "jos\u00E9@example.org");
  EXPECT_EQ(normalize_email("JOS\u00C9@example.org").value(), "jos\u00E9@example.org");
  EXPECT_EQ(normalize_email("maria\uFF20example.org").value(), "maria@example.org");  // fullwidth @
  EXPECT_FALSE(normalize_email("mar\u200Bia@example.org"));                           // zero-width space
  for (auto bad : {"maria", "@example.org", "maria@", "maria@example", "ma ria@example.org", "a@b@c.org",
                   "maria@.example.org", "maria@example..org", "<script>@x.org"})
    EXPECT_FALSE(normalize_email(bad)) << bad;
}

TEST(InputBody, ReadKeepsAnUnacceptableBodyAsItsFirstProblem) {
  auto malformed = Body::read("{", {"a"});
  EXPECT_EQ(malformed.required_string("a", {}), "");
  EXPECT_EQ(malformed.status().error().message, Body::parse("{", {"a"}).error().message);
  auto unknown = Body::read(R"({"b":1})", {"a"});
  EXPECT_EQ(unknown.status().error().message, "unknown field 'b'");
  auto ok = Body::read(R"({"a":"x"})", {"a"});
  EXPECT_EQ(ok.required_string("a", {}), "x");
  EXPECT_TRUE(ok.status());
}

TEST(InputRoute, PathIdQueryParametersAndEmptyBodies) {
  http::Request request;
  request.path_params = {{"id", "12"}};
  EXPECT_EQ(*path_id(request, "no such permit"), 12);
  request.path_params = {{"id", "0x1"}};
  EXPECT_EQ(path_id(request, "no such permit").error().code, Errc::not_found);
  EXPECT_EQ(path_id(request, "no such permit").error().message, "no such permit");

  request.query = "status=paid&citizen_id=7";
  EXPECT_EQ(*query_choice(request, "status", {"open", "paid"}), "paid");
  EXPECT_EQ(*query_choice(request, "state", {"open", "paid"}), std::nullopt);
  EXPECT_EQ(*query_id(request, "citizen_id"), 7);
  EXPECT_EQ(*query_id(request, "facility_id"), std::nullopt);
  request.query = "status=gone&citizen_id=x";
  EXPECT_EQ(query_choice(request, "status", {"open", "paid", "voided", "refunded"}).error().message,
            "query parameter 'status' must be open, paid, voided or refunded");
  EXPECT_EQ(query_choice(request, "status", {"true", "false"}).error().message,
            "query parameter 'status' must be true or false");
  EXPECT_EQ(query_id(request, "citizen_id").error().message, "query parameter 'citizen_id' must be an id");

  EXPECT_TRUE(no_body(request, "a renewal"));
  request.body = "{}";
  EXPECT_TRUE(no_body(request, "a renewal"));
  request.body = R"({"a":1})";
  EXPECT_EQ(no_body(request, "a renewal").error().message, "a renewal takes no body");
}

TEST(InputRoute, DecisionsNeedAReasonToReject) {
  constexpr TextLimits kReason{.max_bytes = 100};
  auto approve = parse_decision(R"({"decision":"approve"})", kReason);
  ASSERT_TRUE(approve);
  EXPECT_TRUE(approve->approve);
  EXPECT_EQ(approve->reason, std::nullopt);
  auto reject = parse_decision(R"({"decision":"reject","reason":"incomplete"})", kReason);
  ASSERT_TRUE(reject);
  EXPECT_FALSE(reject->approve);
  EXPECT_EQ(reject->reason, "incomplete");
  EXPECT_EQ(parse_decision(R"({"decision":"reject"})", kReason).error().message,
            "field 'reason': is required to reject");
  EXPECT_EQ(parse_decision(R"({"decision":"maybe"})", kReason).error().message,
            "field 'decision': must be \"approve\" or \"reject\"");
  EXPECT_EQ(parse_decision("[]", kReason).error().message, "the body must be a JSON object");
}

}  // namespace
}  // namespace townhall::input

namespace townhall::http {
namespace {

TEST(TrustedProxies, NetworksParseAndMatch) {
  auto private8 = parse_network("10.0.0.0/8");
  ASSERT_TRUE(private8);
  EXPECT_TRUE(private8->contains("10.1.2.3"));
  EXPECT_FALSE(private8->contains("11.0.0.1"));
  EXPECT_FALSE(private8->contains("::1"));
  auto host = parse_network("127.0.0.1");
  ASSERT_TRUE(host);
  EXPECT_TRUE(host->contains("127.0.0.1"));
  EXPECT_TRUE(host->contains("::ffff:127.0.0.1"));  // a v4-mapped peer on a dual-stack socket
  EXPECT_FALSE(host->contains("127.0.0.2"));
  auto v6 = parse_network("fd00::/8");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains("fd12:3456::1"));
  EXPECT_FALSE(v6->contains("fe80::1"));
  EXPECT_TRUE(parse_network("10.0.0.0/12")->contains("10.15.255.255"));
  EXPECT_FALSE(parse_network("10.0.0.0/12")->contains("10.16.0.0"));
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "abc", "", "::1/129", "10.0.0.0/8x"})
    EXPECT_FALSE(parse_network(bad)) << bad;
}

TEST(TrustedProxies, OnlyATrustedPeersForwardedForIsBelieved) {
  std::vector<Network> trusted{*parse_network("127.0.0.1/32"), *parse_network("10.0.0.0/8")};
  EXPECT_EQ(client_address("127.0.0.1", "203.0.113.7", trusted), "203.0.113.7");
  EXPECT_EQ(client_address("198.51.100.1", "203.0.113.7", trusted), "198.51.100.1");  // not a proxy of ours
  EXPECT_EQ(client_address("127.0.0.1", "203.0.113.7", {}), "127.0.0.1");             // none configured
  // A client's own entries (left of the first untrusted hop) prove nothing.
  EXPECT_EQ(client_address("127.0.0.1", "6.6.6.6, 203.0.113.7, 10.0.0.2", trusted), "203.0.113.7");
  EXPECT_EQ(client_address("127.0.0.1", "10.0.0.3,10.0.0.2", trusted), "10.0.0.3");
  EXPECT_EQ(client_address("127.0.0.1", "garbage", trusted), "127.0.0.1");
  EXPECT_EQ(client_address("127.0.0.1", "6.6.6.6, garbage, 203.0.113.7", trusted), "203.0.113.7");
  EXPECT_EQ(client_address("127.0.0.1", "", trusted), "127.0.0.1");
}

TEST(MetricsAccess, WithoutATokenOnlyDirectLocalClients) {
  auto from = [](std::string client, std::vector<Header> headers = {}) {
    Request request;
    request.client_ip = std::move(client);
    request.headers = std::move(headers);
    return metrics_access(request, "");
  };
  EXPECT_EQ(from("127.0.0.1"), MetricsAccess::allowed);
  EXPECT_EQ(from("127.8.9.10"), MetricsAccess::allowed);
  EXPECT_EQ(from("::1"), MetricsAccess::allowed);
  EXPECT_EQ(from("::ffff:127.0.0.1"), MetricsAccess::allowed);
  EXPECT_EQ(from("203.0.113.7"), MetricsAccess::refused);
  EXPECT_EQ(from("10.0.0.1"), MetricsAccess::refused);
  EXPECT_EQ(from(""), MetricsAccess::refused);
  EXPECT_EQ(from("127.0.0.1", {{"x-forwarded-for", "127.0.0.1"}}), MetricsAccess::refused);
  EXPECT_EQ(from("127.0.0.1", {{"Forwarded", "for=192.0.2.1"}}), MetricsAccess::refused);
  EXPECT_EQ(from("127.0.0.1", {{"X-Real-IP", "192.0.2.1"}}), MetricsAccess::refused);
}

TEST(MetricsAccess, WithATokenOnlyItsBearer) {
  const std::string token = "0123456789abcdef0123456789abcdef";
  auto with = [&](std::string authorization, std::string client = "127.0.0.1") {
    Request request;
    request.client_ip = std::move(client);
    if (!authorization.empty()) request.headers.push_back({"Authorization", std::move(authorization)});
    return metrics_access(request, token);
  };
  EXPECT_EQ(with("Bearer " + token), MetricsAccess::allowed);
  EXPECT_EQ(with("bearer " + token, "203.0.113.7"), MetricsAccess::allowed);
  EXPECT_EQ(with(""), MetricsAccess::needs_token);  // local clients too
  EXPECT_EQ(with("Bearer " + token.substr(1)), MetricsAccess::needs_token);
  EXPECT_EQ(with("Bearer " + token + "0"), MetricsAccess::needs_token);
  EXPECT_EQ(with("Bearer " + std::string(token.size(), 'x')), MetricsAccess::needs_token);
  EXPECT_EQ(with("Basic " + token), MetricsAccess::needs_token);
  EXPECT_EQ(with("Bearer"), MetricsAccess::needs_token);
}

}  // namespace
}  // namespace townhall::http
