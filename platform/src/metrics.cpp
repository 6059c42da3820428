#include "townhall/platform/metrics.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <variant>

namespace townhall::metrics {
namespace {

std::string escape_label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
  return std::string(buffer, ec == std::errc() ? end : buffer);
}

std::string label_block(const std::vector<std::string>& names, const std::vector<std::string>& values,
                        const std::string& extra_name = {}, const std::string& extra_value = {}) {
  if (names.empty() && extra_name.empty()) return {};
  std::string out = "{";
  bool first = true;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!first) out += ",";
    first = false;
    out += names[i] + "=\"" + escape_label(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    if (!first) out += ",";
    out += extra_name + "=\"" + extra_value + "\"";
  }
  return out + "}";
}

}  // namespace

Histogram::Histogram(std::shared_ptr<const std::vector<double>> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<std::uint64_t>[bounds_->size()]) {
  for (std::size_t i = 0; i < bounds_->size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) {
  const auto& b = *bounds_;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (v <= b[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<std::uint64_t> Histogram::cumulative() const {
  std::vector<std::uint64_t> out(bounds_->size());
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

template <class Series>
Series& Family<Series>::with(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size())
    throw std::invalid_argument("metric " + name_ + ": expected " + std::to_string(label_names_.size()) + " labels");
  std::lock_guard lock(mutex_);
  auto it = series_.find(values);
  if (it == series_.end()) it = series_.emplace(values, make_()).first;
  return *it->second;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

const std::vector<double>& default_latency_buckets() {
  static const std::vector<double> buckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                           0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return buckets;
}

struct Registry::Entry {
  Kind kind;
  std::variant<std::unique_ptr<CounterFamily>, std::unique_ptr<GaugeFamily>, std::unique_ptr<HistogramFamily>> family;
  const std::string& name() const {
    return std::visit([](const auto& f) -> const std::string& { return f->name(); }, family);
  }
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Entry& Registry::find_or_add(const std::string& name, Kind kind,
                                       const std::function<std::unique_ptr<Entry>()>& make) {
  std::lock_guard lock(mutex_);
  for (auto& entry : entries_) {
    if (entry->name() == name) {
      if (entry->kind != kind) throw std::invalid_argument("metric " + name + " registered with another type");
      return *entry;
    }
  }
  entries_.push_back(make());
  return *entries_.back();
}

CounterFamily& Registry::counter(const std::string& name, const std::string& help,
                                 std::vector<std::string> label_names) {
  auto& entry = find_or_add(name, Kind::counter, [&] {
    return std::make_unique<Entry>(Entry{Kind::counter, std::make_unique<CounterFamily>(name, help, label_names, [] {
                                           return std::make_unique<Counter>();
                                         })});
  });
  return *std::get<0>(entry.family);
}

GaugeFamily& Registry::gauge(const std::string& name, const std::string& help, std::vector<std::string> label_names) {
  auto& entry = find_or_add(name, Kind::gauge, [&] {
    return std::make_unique<Entry>(Entry{
        Kind::gauge, std::make_unique<GaugeFamily>(name, help, label_names, [] { return std::make_unique<Gauge>(); })});
  });
  return *std::get<1>(entry.family);
}

HistogramFamily& Registry::histogram(const std::string& name, const std::string& help,
                                     std::vector<std::string> label_names, std::vector<double> bounds) {
  auto shared_bounds = std::make_shared<const std::vector<double>>(std::move(bounds));
  auto& entry = find_or_add(name, Kind::histogram, [&] {
    return std::make_unique<Entry>(
        Entry{Kind::histogram, std::make_unique<HistogramFamily>(name, help, label_names, [shared_bounds] {
                return std::make_unique<Histogram>(shared_bounds);
              })});
  });
  return *std::get<2>(entry.family);
}

void Registry::add_collector(std::function<void()> collector) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::render() const {
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard lock(mutex_);
    collectors = collectors_;
  }
  for (const auto& collect : collectors) collect();

  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& entry : entries_) {
    std::visit(
        [&](const auto& family) {
          using FamilyType = std::decay_t<decltype(*family)>;
          out += "# HELP " + family->name() + " " + family->help() + "\n";
          if constexpr (std::is_same_v<FamilyType, CounterFamily>) {
            out += "# TYPE " + family->name() + " counter\n";
            family->for_each([&](const std::vector<std::string>& labels, const Counter& c) {
              out +=
                  family->name() + label_block(family->label_names(), labels) + " " + std::to_string(c.value()) + "\n";
            });
          } else if constexpr (std::is_same_v<FamilyType, GaugeFamily>) {
            out += "# TYPE " + family->name() + " gauge\n";
            family->for_each([&](const std::vector<std::string>& labels, const Gauge& g) {
              out += family->name() + label_block(family->label_names(), labels) + " " + format_value(g.value()) + "\n";
            });
          } else {
            out += "# TYPE " + family->name() + " histogram\n";
            family->for_each([&](const std::vector<std::string>& labels, const Histogram& h) {
              auto cumulative = h.cumulative();
              for (std::size_t i = 0; i < cumulative.size(); ++i)
                out += family->name() + "_bucket" +
                       label_block(family->label_names(), labels, "le", format_value(h.bounds()[i])) + " " +
                       std::to_string(cumulative[i]) + "\n";
              out += family->name() + "_bucket" + label_block(family->label_names(), labels, "le", "+Inf") + " " +
                     std::to_string(h.count()) + "\n";
              out += family->name() + "_sum" + label_block(family->label_names(), labels) + " " +
                     format_value(h.sum()) + "\n";
              out += family->name() + "_count" + label_block(family->label_names(), labels) + " " +
                     std::to_string(h.count()) + "\n";
            });
          }
        },
        entry->family);
  }
  return out;
}

}  // namespace townhall::metrics
