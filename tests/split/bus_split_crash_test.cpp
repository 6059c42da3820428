// The split deployment's delivery guarantee (issue 23 §2) on its failure paths: the source
// module and its consumers in two processes joined by a RabbitMQ stream, kill -9 of either
// at chosen points of the path (after the broker confirmed a batch but before the
// publisher recorded it, before and after a consumer's commit) and at random moments, and
// broker restarts mid-stream. Afterwards every committed change is applied exactly once,
// in order, in every consumer. And a stream lost under a stopped consumer is bootstrapped
// over: the cache equals the source.
#include <gtest/gtest.h>
#include <signal.h>

#include <random>

#include "bus_fixture.hpp"
#include "rabbitmq_broker.hpp"
#include "support.hpp"
#include "townhall/transport/amqp.hpp"

namespace townhall {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::RabbitMqBroker;

constexpr const char* kPrefix = "th.split.";

std::vector<std::string> child(const testing::TempDir& dir, const RabbitMqBroker& broker,
                               std::vector<std::string> rest) {
  std::vector<std::string> argv{TOWNHALL_BUS_SPLIT_CHILD, dir.path().string(), rest.front(), broker.url(), kPrefix};
  argv.insert(argv.end(), rest.begin() + 1, rest.end());
  return argv;
}

// Publishes everything the source holds and consumes it to the end; returns the head.
std::int64_t drain(const testing::TempDir& dir, const RabbitMqBroker& broker, std::string* consumer_output = nullptr) {
  ChildProcess source(child(dir, broker, {"drain-source"}), {}, true);
  EXPECT_EQ(source.wait_exit(90s), 0) << source.output();
  auto line = source.wait_for_line("drained", 1s);
  if (!line) return -1;
  auto head = std::stoll(line->substr(line->find("drained") + 8));
  ChildProcess consumer(child(dir, broker, {"drain-consumer", std::to_string(head)}), {}, true);
  // It prints its cursors while they advance: under load (make test-stress) the drain
  // can take minutes, and only a drain that stops advancing is a failure.
  EXPECT_EQ(consumer.wait_exit_while_progressing(60s), 0) << consumer.output();
  if (consumer_output) *consumer_output += consumer.output();
  return head;
}

void kill_now(ChildProcess& process) {
  process.signal(SIGKILL);
  process.wait_exit();
}

class BusSplitCrash : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RabbitMqBroker::installed()) GTEST_SKIP() << RabbitMqBroker::skip_reason();
    broker_ = std::make_unique<RabbitMqBroker>();
  }
  std::unique_ptr<RabbitMqBroker> broker_;
  testing::TempDir dir_;
};

TEST_F(BusSplitCrash, NothingCommittedIsLostOrAppliedTwiceAcrossTwoProcesses) {
  struct Round {
    std::string crashing;  // "source", "consumer", "broker" or "" (random kills)
    std::string point;
  };
  const std::vector<Round> plan{{"source", "after_publish"},
                                {"consumer", "before_apply"},
                                {"consumer", "after_apply"},
                                {"consumer", "after_commit"},
                                {"source", "after_source_commit"},
                                {"broker", ""},
                                {"", ""}};
  std::mt19937 random(4242);
  std::map<std::string, int> crashed_at;
  constexpr int kRounds = 7;
  for (int round = 0; round < kRounds; ++round) {
    const auto& step = plan[static_cast<std::size_t>(round) % plan.size()];
    auto point_for = [&](const std::string& role) { return step.crashing == role ? step.point : "none"; };
    std::string after = std::to_string(1 + random() % 8);
    ChildProcess source(child(dir_, *broker_, {"source", std::to_string(round), point_for("source"), after}), {}, true);
    ChildProcess consumer(child(dir_, *broker_, {"consumer", std::to_string(round), point_for("consumer"), after}), {},
                          true);
    ASSERT_TRUE(source.wait_for_line("running")) << "round " << round << ": " << source.output();
    ASSERT_TRUE(consumer.wait_for_line("running")) << "round " << round << ": " << consumer.output();
    if (step.crashing == "source" || step.crashing == "consumer") {
      auto& crashing = step.crashing == "source" ? source : consumer;
      auto code = crashing.wait_exit(15s);
      if (!code) kill_now(crashing);  // not reached: a random kill covers the round
      if (crashing.output().find("crash at " + step.point) != std::string::npos) ++crashed_at[step.point];
      // The other one goes on a moment and is then killed too.
      std::this_thread::sleep_for(std::chrono::milliseconds(random() % 200));
    } else if (step.crashing == "broker") {
      std::this_thread::sleep_for(std::chrono::milliseconds(200 + random() % 300));
      broker_->kill();
      broker_->start();
      // Both reconnect, declare again and go on from where they were.
      std::this_thread::sleep_for(std::chrono::milliseconds(500 + random() % 500));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100 + random() % 600));
    }
    kill_now(source);
    kill_now(consumer);
  }
  // Every chosen point was hit (a random kill covers the rest).
  for (const auto& step : plan) {
    if (!step.point.empty()) {
      EXPECT_GE(crashed_at[step.point], 1) << step.point;
    }
  }

  auto head = drain(dir_, *broker_);
  ASSERT_GT(head, 100) << "the rounds did real work";
  testing::TestModule source(dir_.path(), "src", false);
  auto versions = testing::read_item_versions(*source.database);
  for (auto name : {"c1", "c2", "c3"}) testing::expect_each_version_applied_once(dir_.path(), name, versions);
}

TEST_F(BusSplitCrash, AStreamLostUnderAStoppedConsumerIsBootstrappedOver) {
  {
    ChildProcess source(child(dir_, *broker_, {"source", "1", "none", "0"}), {}, true);
    ChildProcess consumer(child(dir_, *broker_, {"consumer", "1", "none", "0"}), {}, true);
    ASSERT_TRUE(source.wait_for_line("running")) << source.output();
    ASSERT_TRUE(consumer.wait_for_line("running")) << consumer.output();
    // The consumer has applied some of it...
    testing::TestModule c3(dir_.path(), "c3", false);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (testing::read_refs(*c3.database).empty()) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << consumer.output();
      std::this_thread::sleep_for(10ms);
    }
    // ...and stops; the source goes on without it.
    kill_now(consumer);
    std::this_thread::sleep_for(300ms);
    kill_now(source);
  }
  // The broker loses the stream (as one declared just before a kill -9 was lost).
  {
    auto endpoint = transport::amqp::ConnectOptions::from_url(broker_->url());
    ASSERT_TRUE(endpoint);
    auto connection = transport::amqp::Connection::open(*endpoint);
    ASSERT_TRUE(connection) << connection.error().message;
    ASSERT_TRUE(connection->delete_queue(std::string(kPrefix) + "src"));
  }
  std::string outputs;
  {
    // The consumer comes back first (its stored offset is past the new stream's end),
    // then the source declares the stream again and publishes on from what it recorded.
    ChildProcess consumer(child(dir_, *broker_, {"consumer", "2", "none", "0"}), {}, true);
    ASSERT_TRUE(consumer.wait_for_line("running")) << consumer.output();
    ChildProcess source(child(dir_, *broker_, {"source", "2", "none", "0"}), {}, true);
    ASSERT_TRUE(source.wait_for_line("running")) << source.output();
    consumer.wait_for_line("bootstrapped", 30s);
    std::this_thread::sleep_for(200ms);
    kill_now(source);
    kill_now(consumer);
    outputs += consumer.output();
  }
  ASSERT_GT(drain(dir_, *broker_, &outputs), 0);
  EXPECT_NE(outputs.find("bootstrapped"), std::string::npos) << outputs;
  testing::TestModule source(dir_.path(), "src", false);
  auto versions = testing::read_item_versions(*source.database);
  testing::TestModule c3(dir_.path(), "c3", false);
  auto refs = testing::read_refs(*c3.database);
  ASSERT_EQ(refs.size(), versions.size());
  auto reader = source.database->open(db::Role::reader);
  for (const auto& [id, version] : versions) {
    auto value = reader->prepare("SELECT value FROM items WHERE id = ?");
    value.bind(1, id);
    ASSERT_TRUE(value.executeStep());
    EXPECT_EQ(refs[id].version, version) << id;
    EXPECT_EQ(refs[id].value, value.getColumn(0).getString()) << id;
  }
}

}  // namespace
}  // namespace townhall
