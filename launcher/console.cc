#include "kvmrun/console.h"

#include <re2/re2.h>

#include <algorithm>
#include <optional>

#include "kvmrun/error.h"

namespace kvmrun {
namespace {

std::string WithoutCr(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace

ConsolePattern::ConsolePattern(std::string_view pattern) : pattern_(pattern) {
  RE2::Options options;
  options.set_log_errors(false);  // the library never prints; the error is thrown instead
  auto re = std::make_shared<const RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re->ok()) {
    throw UsageError("invalid regular expression '" + pattern_ + "': " + re->error());
  }
  re_ = std::move(re);
}

ConsolePattern ConsolePattern::Literal(std::string_view text) {
  return ConsolePattern(RE2::QuoteMeta(re2::StringPiece(text.data(), text.size())));
}

bool ConsolePattern::Matches(std::string_view line) const {
  return RE2::PartialMatch(re2::StringPiece(line.data(), line.size()), *re_);
}

std::vector<std::string> ConsolePattern::Groups(std::string_view line) const {
  const int count = re_->NumberOfCapturingGroups();
  if (count <= 0) return {};
  std::vector<re2::StringPiece> found(static_cast<std::size_t>(count) + 1);
  if (!re_->Match(re2::StringPiece(line.data(), line.size()), 0, line.size(), RE2::UNANCHORED,
                  found.data(), count + 1)) {
    return {};
  }
  std::vector<std::string> groups;
  for (int i = 1; i <= count; ++i) groups.emplace_back(found[i].data(), found[i].size());
  return groups;
}

void ConsoleLog::Append(std::string_view bytes) {
  {
    std::lock_guard lock(mu_);
    bytes_ += bytes.size();
    last_append_ = std::chrono::steady_clock::now();
    splitter_.Push(bytes, [this](std::string line) {
      AddLine(WithoutCr(std::move(line)));
      partial_consumed_ = false;
    });
  }
  cv_.notify_all();
}

void ConsoleLog::AddLine(std::string line) {
  lines_.push_back(std::move(line));
  if (lines_.size() > max_lines_) {
    lines_.pop_front();
    ++first_line_number_;
  }
}

void ConsoleLog::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

ConsoleMatch ConsoleLog::WaitForAny(const std::vector<ConsolePattern>& patterns,
                                    std::chrono::milliseconds timeout, ConsoleScan* scan) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto match = [&](const std::string& line) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < patterns.size(); ++i) {
      if (patterns[i].Matches(line)) return i;
    }
    return std::nullopt;
  };
  std::unique_lock lock(mu_);
  // Lines before next_unconsumed_ belong to earlier matches. Lines this wait scans without a
  // match stay available to later waits (for other patterns).
  std::uint64_t scanned = std::max(next_unconsumed_, scan != nullptr ? scan->next_line : 0);
  // The unterminated line as last matched without success, and how many lines came before it:
  // it is matched again only when it has grown or a new one began.
  std::string tried_partial;
  std::uint64_t tried_partial_at = 0;
  const auto partial_is_new = [&](std::uint64_t end) {
    return !partial_consumed_ && !splitter_.partial().empty() &&
           !(end == tried_partial_at && splitter_.partial() == tried_partial);
  };
  // An unterminated line counts once it has stopped growing (a prompt); until then it may be
  // the first half of a line.
  const auto partial_complete_at = [&] { return last_append_ + prompt_idle_; };
  while (true) {
    const std::uint64_t end = first_line_number_ + lines_.size();
    // Skip lines dropped from the bounded history, or consumed by another waiter meanwhile.
    scanned = std::min(std::max({scanned, first_line_number_, next_unconsumed_}), end);
    std::vector<std::string> batch(
        lines_.begin() + static_cast<std::ptrdiff_t>(scanned - first_line_number_), lines_.end());
    std::optional<std::string> partial;
    if (partial_is_new(end) &&
        (closed_ || std::chrono::steady_clock::now() >= partial_complete_at())) {
      partial = splitter_.partial();
    }

    lock.unlock();
    std::optional<std::size_t> found_line, found_pattern, partial_pattern;
    for (std::size_t i = 0; i < batch.size() && !found_line; ++i) {
      found_pattern = match(batch[i]);
      if (found_pattern) found_line = i;
    }
    if (!found_line && partial) partial_pattern = match(WithoutCr(*partial));
    lock.lock();

    if (found_line) {
      const std::uint64_t number = scanned + *found_line;
      if (number >= next_unconsumed_) {
        next_unconsumed_ = number + 1;
        std::string line = std::move(batch[*found_line]);
        std::vector<std::string> groups = patterns[*found_pattern].Groups(line);
        return {ConsoleMatch::Outcome::kMatched, *found_pattern, std::move(line),
                std::move(groups)};
      }
      continue;  // another waiter consumed it meanwhile: look again from where it left off
    }
    scanned = end;
    if (partial_pattern && end >= next_unconsumed_) {
      // The unterminated line gets number `end` when it completes; it is consumed already.
      // If it completed meanwhile, that line has the number `end` all the same.
      if (first_line_number_ + lines_.size() == end) partial_consumed_ = true;
      next_unconsumed_ = end + 1;
      std::string line = WithoutCr(std::move(*partial));
      std::vector<std::string> groups = patterns[*partial_pattern].Groups(line);
      return {ConsoleMatch::Outcome::kMatched, *partial_pattern, std::move(line),
              std::move(groups)};
    }
    if (partial) {
      tried_partial = std::move(*partial);
      tried_partial_at = end;
    }
    const std::uint64_t now_end = first_line_number_ + lines_.size();
    const auto now = std::chrono::steady_clock::now();
    const bool partial_ripe = partial_is_new(now_end) && now >= partial_complete_at();
    if (now_end != end || partial_ripe) continue;  // more arrived while matching, or a prompt
    if (scan != nullptr) scan->next_line = scanned;
    if (closed_) return {ConsoleMatch::Outcome::kClosed, 0, "", {}};
    if (now >= deadline) return {ConsoleMatch::Outcome::kTimeout, 0, "", {}};
    // Woken by the next append, or when the unterminated line would count as complete.
    const auto wake =
        partial_is_new(now_end) ? std::min(deadline, partial_complete_at()) : deadline;
    cv_.wait_until(lock, wake);
  }
}

ConsoleMatch ConsoleLog::WaitFor(const ConsolePattern& pattern, std::chrono::milliseconds timeout,
                                 ConsoleScan* scan) {
  return WaitForAny({pattern}, timeout, scan);
}

ConsoleMatch ConsoleLog::WaitForAnyUntil(const std::vector<ConsolePattern>& patterns,
                                         std::chrono::steady_clock::time_point deadline,
                                         const std::function<bool()>& stop_requested) {
  using std::chrono::milliseconds;
  ConsoleScan scan;
  ConsoleMatch match;
  while (match.outcome == ConsoleMatch::Outcome::kTimeout &&
         std::chrono::steady_clock::now() < deadline && !(stop_requested && stop_requested())) {
    const auto left = std::chrono::ceil<milliseconds>(deadline - std::chrono::steady_clock::now());
    match = WaitForAny(patterns, std::clamp(left, milliseconds(0), milliseconds(250)), &scan);
  }
  return match;
}

void ConsoleLog::ConsumeAll() {
  std::lock_guard lock(mu_);
  const std::uint64_t end = first_line_number_ + lines_.size();
  next_unconsumed_ = std::max(next_unconsumed_, end);
  if (!splitter_.partial().empty()) {
    partial_consumed_ = true;
    next_unconsumed_ = std::max(next_unconsumed_, end + 1);
  }
}

std::string ConsoleLog::Tail(std::size_t count) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> tail;
  if (!splitter_.partial().empty()) tail.push_back(WithoutCr(splitter_.partial()));
  for (auto it = lines_.rbegin(); it != lines_.rend() && tail.size() < count; ++it) {
    tail.push_back(*it);
  }
  std::string out;
  for (auto it = tail.rbegin(); it != tail.rend(); ++it) {
    if (!out.empty()) out += '\n';
    out += *it;
  }
  return out;
}

std::uint64_t ConsoleLog::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

bool ConsoleLog::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

}  // namespace kvmrun
