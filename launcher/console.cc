#include "kvmrun/console.h"

#include <algorithm>
#include <optional>

namespace kvmrun {
namespace {

std::string WithoutCr(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace

void ConsoleLog::Append(std::string_view bytes) {
  {
    std::lock_guard lock(mu_);
    bytes_ += bytes.size();
    while (!bytes.empty()) {
      const auto newline = bytes.find('\n');
      const std::string_view piece = bytes.substr(0, newline);
      if (partial_.size() < kMaxLineBytes) {
        partial_.append(piece.substr(0, kMaxLineBytes - partial_.size()));
      }
      if (newline == std::string_view::npos) break;
      AddLine(WithoutCr(std::move(partial_)));
      partial_.clear();
      partial_consumed_ = false;
      bytes.remove_prefix(newline + 1);
    }
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

ConsoleMatch ConsoleLog::WaitForAny(const std::vector<std::regex>& patterns,
                                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto match = [&](const std::string& line) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < patterns.size(); ++i) {
      if (std::regex_search(line, patterns[i])) return i;
    }
    return std::nullopt;
  };
  std::unique_lock lock(mu_);
  // Lines before next_unconsumed_ belong to earlier matches. Lines this wait scans without a
  // match stay available to later waits (for other patterns).
  std::uint64_t scanned = next_unconsumed_;
  while (true) {
    scanned = std::max(scanned, first_line_number_);  // dropped from the bounded history
    const std::uint64_t end = first_line_number_ + lines_.size();
    for (; scanned < end; ++scanned) {
      const std::string& line = lines_[scanned - first_line_number_];
      if (auto index = match(line)) {
        next_unconsumed_ = scanned + 1;
        return {ConsoleMatch::Outcome::kMatched, *index, line};
      }
    }
    if (!partial_consumed_ && !partial_.empty()) {
      const std::string line = WithoutCr(partial_);
      if (auto index = match(line)) {
        // The line will get number `end` when it completes; it is consumed already.
        partial_consumed_ = true;
        next_unconsumed_ = end + 1;
        return {ConsoleMatch::Outcome::kMatched, *index, line};
      }
    }
    if (closed_) return {ConsoleMatch::Outcome::kClosed, 0, ""};
    if (std::chrono::steady_clock::now() >= deadline)
      return {ConsoleMatch::Outcome::kTimeout, 0, ""};
    cv_.wait_until(lock, deadline);
  }
}

ConsoleMatch ConsoleLog::WaitFor(const std::regex& pattern, std::chrono::milliseconds timeout) {
  return WaitForAny({pattern}, timeout);
}

std::string ConsoleLog::Tail(std::size_t count) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> tail;
  if (!partial_.empty()) tail.push_back(WithoutCr(partial_));
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
