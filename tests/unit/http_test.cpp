#include "townhall/platform/http.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "townhall/platform/input.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/rate_limiter.hpp"

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

TEST(InputIds, OnlyPositiveDecimalIdsNameSomething) {
  EXPECT_EQ(parse_id("42").value(), 42);
  for (auto bad : {"0", "-1", "+1", "1e3", "abc", "", "99999999999999999999", "1 "})
    EXPECT_EQ(parse_id(bad).error().code, Errc::not_found) << bad;
}

TEST(InputEmail, NormalizesAndRejects) {
  EXPECT_EQ(normalize_email(" Maria@Example.ORG ").value(), "maria@example.org");
  for (auto bad : {"maria", "@example.org", "maria@", "maria@example", "ma ria@example.org", "a@b@c.org",
                   "maria@.example.org", "maria@example..org", "<script>@x.org"})
    EXPECT_FALSE(normalize_email(bad)) << bad;
}

}  // namespace
}  // namespace townhall::input
