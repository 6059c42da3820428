// The registry beyond its parsing: the one compiled in, its graph (Mermaid and data),
// and the check that its subscriptions and the code's agree.
#include "application_impl.hpp"

namespace townhall::app {

std::span<const EmbeddedFile> embedded_registry_files();

std::string_view default_registry() { return embedded_registry_files().front().contents; }

RegistryGraph registry_graph_model(const config::Config& config) {
  RegistryGraph graph;
  for (const auto& module : config.modules) graph.modules.push_back({module.name, module.db_file, module.route_prefix});
  for (const auto& module : config.modules)
    for (const auto& subscription : module.subscriptions) {
      // gov.<source>.<aggregate>: the events come from <source>'s outbox.
      auto rest = subscription.topic.substr(subscription.topic.find('.') + 1);
      graph.edges.push_back({rest.substr(0, rest.find('.')), module.name, "events", subscription.topic});
    }
  for (const auto& module : config.modules)
    for (const auto& dependency : module.depends_on) graph.edges.push_back({module.name, dependency, "api", "Api"});
  return graph;
}

std::string registry_graph(const config::Config& config) {
  auto graph = registry_graph_model(config);
  std::string out = "flowchart LR\n";
  for (const auto& module : graph.modules)
    out +=
        "  " + module.name + "[\"" + module.name + "<br/>" + module.db_file + "<br/>" + module.route_prefix + "\"]\n";
  for (const auto& edge : graph.edges)
    out += edge.kind == "events" ? "  " + edge.from + " -- \"" + edge.label + "\" --> " + edge.to + "\n"
                                 : "  " + edge.from + " -. Api .-> " + edge.to + "\n";
  return out;
}

// The registry says what a module consumes (DESIGN §1: docs are generated from it); a
// topic the code subscribes to that the registry does not list is a deployment error.
// The registry's subscriptions and the code's agree both ways: each topic the module
// consumes is listed, and each listed topic is one a module of this registry publishes
// (its contract's kTopics) and this module consumes. A typo is an error naming the key.
void check_subscriptions_registered(const config::Config& config, const config::Module& module,
                                    const std::vector<bus::Subscription>& subscriptions) {
  // The registry's entries first: a typo there is the likelier mistake, named by its key.
  for (std::size_t i = 0; i < module.subscriptions.size(); ++i) {
    const auto& registered = module.subscriptions[i].topic;
    const auto key = "modules." + module.name + ".subscriptions[" + std::to_string(i) + "].topic";
    std::string published;  // every topic of the registry's modules, for the message
    bool known = false;
    for (const auto& producer : config.modules)
      for (auto topic : factory_for(producer.name).topics) {
        known = known || bus::topic_matches(registered, topic) || registered == topic;
        published += (published.empty() ? "" : ", ") + std::string(topic);
      }
    if (!known)
      throw config::ConfigError(key + ": no module of this registry publishes '" + registered +
                                "' (published: " + published + ")");
    bool consumed = false;
    for (const auto& subscription : subscriptions)
      for (const auto& topic : subscription.topics)
        consumed = consumed || bus::topic_matches(registered, topic) || bus::topic_matches(topic, registered) ||
                   registered == topic;
    if (!consumed)
      throw config::ConfigError(key + ": the " + module.name + " module does not consume '" + registered + "'");
  }
  for (const auto& subscription : subscriptions)
    for (const auto& topic : subscription.topics) {
      bool listed = false;
      for (const auto& registered : module.subscriptions)
        listed = listed || bus::topic_matches(registered.topic, topic) || registered.topic == topic;
      if (!listed)
        throw config::ConfigError("modules." + module.name + ".subscriptions: the module consumes '" + topic +
                                  "' (subscription " + subscription.name + ") but the registry does not list it");
    }
}

}  // namespace townhall::app
