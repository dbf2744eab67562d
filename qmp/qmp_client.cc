#include "kvmrun/qmp_client.h"

#include <algorithm>
#include <array>

#include "qmp/json_fields.h"

namespace kvmrun {
namespace {

using Clock = std::chrono::steady_clock;

std::string Ms(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

QmpGreeting ParseGreeting(const nlohmann::json& json) {
  QmpGreeting greeting;
  try {
    const JsonFields qmp = JsonFields(json, "the QMP greeting").Object("QMP");
    const JsonFields version = qmp.Object("version");
    greeting.version = QemuVersionFromJson(version.Required("qemu"));
    greeting.package = version.StringOr("package", "");
    if (const auto* capabilities = qmp.ArrayOrNull("capabilities")) {
      greeting.capabilities = *capabilities;
    } else {
      greeting.capabilities = nlohmann::json::array();
    }
  } catch (const MalformedJson& e) {
    throw QmpProtocolError("malformed QMP greeting (" + std::string(e.what()) +
                           "): " + JsonExcerpt(json));
  }
  return greeting;
}

QmpEvent ToEvent(nlohmann::json json) {
  QmpEvent event;
  try {
    const JsonFields fields(json, "a QMP event");
    event.name = fields.String("event");
    if (const nlohmann::json* data = fields.Find("data")) event.data = *data;
  } catch (const MalformedJson& e) {
    throw QmpProtocolError(std::string(e.what()) + ": " + JsonExcerpt(json));
  }
  if (const auto ts = json.find("timestamp"); ts != json.end() && ts->is_object()) {
    const auto number = [&](const char* key) {
      const auto it = ts->find(key);
      return it != ts->end() && it->is_number() ? it->get<double>() : 0.0;
    };
    event.timestamp = number("seconds") + number("microseconds") / 1e6;
  }
  event.json = std::move(json);
  return event;
}

}  // namespace

QmpError::QmpError(std::string command, std::string error_class, std::string description)
    : Error("QMP command '" + command + "' failed: " + error_class + ": " + description),
      command_(std::move(command)),
      error_class_(std::move(error_class)),
      description_(std::move(description)) {}

QmpClient::QmpClient(std::unique_ptr<QmpTransport> transport, Milliseconds timeout)
    : transport_(std::move(transport)) {
  const Deadline deadline = Clock::now() + timeout;
  try {
    {
      std::unique_lock lock(mu_);
      Pump(
          lock, deadline, [this] { return greeted_; }, "waiting for the QMP greeting",
          "nothing within " + Ms(timeout) +
              " (is this a QMP socket, and is another client connected to it?)");
    }
    const auto left = std::chrono::duration_cast<Milliseconds>(deadline - Clock::now());
    Execute("qmp_capabilities", nullptr, std::max(left, Milliseconds(1)));
  } catch (...) {
    transport_->Shutdown();
    throw;
  }
}

QmpClient::~QmpClient() { transport_->Shutdown(); }

nlohmann::json QmpClient::Execute(std::string_view command, const nlohmann::json& arguments,
                                  Milliseconds timeout) {
  return Run(command, arguments, -1, timeout);
}

nlohmann::json QmpClient::ExecuteWithFd(std::string_view command, const nlohmann::json& arguments,
                                        int fd, Milliseconds timeout) {
  return Run(command, arguments, fd, timeout);
}

nlohmann::json QmpClient::Run(std::string_view command, const nlohmann::json& arguments, int fd,
                              Milliseconds timeout) {
  const Deadline deadline = Clock::now() + timeout;
  const std::string name(command);
  std::unique_lock lock(mu_);
  CheckCanSend("sending '" + name + "'");
  const std::int64_t id = next_id_++;
  waiting_.insert(id);
  lock.unlock();

  const std::string bytes = EncodeQmpCommand(command, arguments, id);
  try {
    std::lock_guard write_lock(write_mu_);
    if (fd >= 0) {
      transport_->WriteWithFd(bytes, fd, deadline);
    } else {
      transport_->Write(bytes, deadline);
    }
  } catch (const Error& e) {
    lock.lock();
    waiting_.erase(id);
    SendFailed(e.what());
    CheckCanSend("sending '" + name + "'");
  }

  lock.lock();
  try {
    Pump(
        lock, deadline, [&] { return replies_.count(id) > 0; },
        "waiting for the reply to '" + name + "'", "none within " + Ms(timeout));
  } catch (...) {
    waiting_.erase(id);
    throw;
  }
  waiting_.erase(id);
  const auto it = replies_.find(id);
  Reply reply = std::move(it->second);
  replies_.erase(it);
  if (reply.ok) return reply.value;
  const auto text = [&](const char* key) {
    const auto it = reply.value.find(key);
    return it != reply.value.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string error_class = text("class");
  throw QmpError(name, error_class.empty() ? "?" : error_class, text("desc"));
}

std::vector<QmpClient::Result> QmpClient::ExecuteAll(const std::vector<Call>& calls,
                                                     Milliseconds timeout) {
  std::vector<Result> results(calls.size());
  if (calls.empty()) return results;
  const Deadline deadline = Clock::now() + timeout;
  const std::string what = "a batch of " + std::to_string(calls.size()) + " commands (" +
                           calls.front().command + ", ...)";
  std::unique_lock lock(mu_);
  CheckCanSend("sending " + what);
  const std::int64_t first = next_id_;
  next_id_ += static_cast<std::int64_t>(calls.size());
  std::string bytes;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const std::int64_t id = first + static_cast<std::int64_t>(i);
    waiting_.insert(id);
    bytes += EncodeQmpCommand(calls[i].command, calls[i].arguments, id);
  }
  const auto forget = [&] {
    for (std::size_t i = 0; i < calls.size(); ++i) {
      waiting_.erase(first + static_cast<std::int64_t>(i));
      replies_.erase(first + static_cast<std::int64_t>(i));
    }
  };
  lock.unlock();
  try {
    std::lock_guard write_lock(write_mu_);
    transport_->Write(bytes, deadline);
  } catch (const Error& e) {
    lock.lock();
    forget();
    SendFailed(e.what());
    CheckCanSend("sending " + what);
  }
  lock.lock();
  const std::int64_t last = first + static_cast<std::int64_t>(calls.size()) - 1;
  try {
    // QMP answers in order: the last reply in means all are.
    Pump(
        lock, deadline, [&] { return replies_.count(last) > 0; },
        "waiting for the replies to " + what, "not all within " + Ms(timeout));
  } catch (...) {
    forget();
    throw;
  }
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const std::int64_t id = first + static_cast<std::int64_t>(i);
    const auto it = replies_.find(id);
    if (it == replies_.end()) {
      results[i].error_class = "?";
      results[i].description = "no reply";
      continue;
    }
    Reply& reply = it->second;
    results[i].ok = reply.ok;
    if (reply.ok) {
      results[i].value = std::move(reply.value);
    } else {
      const auto text = [&](const char* key) {
        const auto f = reply.value.find(key);
        return f != reply.value.end() && f->is_string() ? f->get<std::string>() : std::string();
      };
      results[i].error_class = text("class").empty() ? "?" : text("class");
      results[i].description = text("desc");
    }
  }
  forget();
  return results;
}

QmpEvent QmpClient::WaitForEvent(std::string_view name, Milliseconds timeout) {
  const Deadline deadline = Clock::now() + timeout;
  std::unique_lock lock(mu_);
  const auto find = [&] {
    return std::find_if(events_.begin(), events_.end(),
                        [&](const QmpEvent& e) { return name.empty() || e.name == name; });
  };
  Pump(
      lock, deadline, [&] { return find() != events_.end(); },
      name.empty() ? "waiting for an event" : "waiting for a " + std::string(name) + " event",
      "none within " + Ms(timeout));
  const auto it = find();
  QmpEvent event = std::move(*it);
  events_.erase(it);
  return event;
}

std::deque<QmpEvent> QmpClient::TakeEvents() {
  std::lock_guard lock(mu_);
  return std::exchange(events_, {});
}

void QmpClient::SetEventHandler(std::function<void(const QmpEvent&)> handler) {
  std::lock_guard lock(mu_);
  handler_ = std::move(handler);
}

bool QmpClient::connected() const {
  std::lock_guard lock(mu_);
  return disconnect_reason_.empty() && send_failure_.empty();
}

std::uint64_t QmpClient::unmatched_replies() const {
  std::lock_guard lock(mu_);
  return unmatched_replies_;
}

void QmpClient::Close() {
  std::lock_guard lock(mu_);
  Disconnect("the QMP connection was closed by kvmrun");
  cv_.notify_all();
}

void QmpClient::Pump(std::unique_lock<std::mutex>& lock, Deadline deadline,
                     const std::function<bool()>& done, const std::string& activity,
                     const std::string& timeout_detail) {
  while (!done()) {
    if (!disconnect_reason_.empty()) ThrowDisconnected(activity);
    if (Clock::now() >= deadline) throw QmpTimeout(activity + ": " + timeout_detail);
    if (reading_) {
      // Another thread is reading; it will notify us when it has delivered something.
      cv_.wait_until(lock, deadline);
      continue;
    }
    ReadOnce(lock, deadline);
  }
}

void QmpClient::ReadOnce(std::unique_lock<std::mutex>& lock, Deadline deadline) {
  reading_ = true;
  lock.unlock();
  // Replies larger than this arrive in several reads; a smaller buffer keeps every reading
  // thread's stack small (it stays resident while the thread lives).
  std::array<char, 16384> buffer;
  std::size_t n = 0;
  bool timed_out = false;
  std::string failure;
  try {
    n = transport_->Read(buffer.data(), buffer.size(), deadline);
  } catch (const QmpTimeout&) {
    timed_out = true;
  } catch (const Error& e) {
    failure = e.what();
  }
  lock.lock();

  Delivery delivery;
  if (timed_out) {
    // Nothing to deliver; the caller's loop reports its own timeout.
  } else if (!failure.empty()) {
    Disconnect(failure);
  } else if (n == 0) {
    Disconnect(decoder_.HasPartialMessage()
                   ? "QEMU closed the QMP connection in the middle of a message"
                   : "QEMU closed the QMP connection");
  } else {
    decoder_.Feed(std::string_view(buffer.data(), n));
    try {
      while (auto message = decoder_.Next()) Dispatch(std::move(*message), delivery);
    } catch (const QmpProtocolError& e) {
      protocol_error_ = true;
      Disconnect(e.what());
    } catch (const nlohmann::json::exception& e) {  // a field of the wrong type
      protocol_error_ = true;
      Disconnect(std::string("malformed QMP message: ") + e.what());
    }
  }
  // The read's replies and events are published once the handler has seen its events: a
  // waiter that checks for its reply (or event) without waiting, as one just arriving does,
  // must not see it before the events QEMU sent ahead of it have been handled.
  if (!delivery.events.empty() && handler_) {
    // Still marked as the reader, so events reach the handler in order.
    const auto handler = handler_;
    lock.unlock();
    for (const QmpEvent& event : delivery.events) handler(event);
    lock.lock();
  }
  replies_.merge(delivery.replies);
  for (QmpEvent& event : delivery.events) {
    events_.push_back(std::move(event));
    if (events_.size() > kMaxQueuedEvents) events_.pop_front();
  }
  reading_ = false;
  cv_.notify_all();
}

void QmpClient::Dispatch(QmpMessage message, Delivery& delivery) {
  if (!greeted_) {
    if (message.kind != QmpMessageKind::kGreeting) {
      throw QmpProtocolError("expected the QMP greeting first, got a QMP " +
                             std::string(ToString(message.kind)) + ": " +
                             JsonExcerpt(message.json));
    }
    greeting_ = ParseGreeting(message.json);
    greeted_ = true;
    return;
  }
  switch (message.kind) {
    case QmpMessageKind::kGreeting:
      throw QmpProtocolError("unexpected second QMP greeting");
    case QmpMessageKind::kReturn:
    case QmpMessageKind::kError: {
      const bool ok = message.kind == QmpMessageKind::kReturn;
      const nlohmann::json& id = message.id();
      std::optional<std::int64_t> to;
      if (!id.is_null()) resyncing_ = false;  // QEMU is reading whole commands again
      if (id.is_number_integer() && waiting_.count(id.get<std::int64_t>()) != 0) {
        to = id.get<std::int64_t>();
      } else if (id.is_null() && !ok && !resyncing_) {
        // QEMU answers input it could not parse (a JSON error, nesting over its limit) with
        // an error that has no id. It reads commands in order, so the error is for the oldest
        // command still waiting. The rest of that input then yields more errors without an id
        // (one per stray token: 1031 for 2000 levels of nesting, QEMU 7.2); they are dropped
        // until a reply with an id shows QEMU back in step.
        for (std::int64_t waiting : waiting_) {
          if (replies_.count(waiting) == 0 && delivery.replies.count(waiting) == 0) {
            to = waiting;
            resyncing_ = true;
            break;
          }
        }
      }
      if (!to) {
        ++unmatched_replies_;
        return;
      }
      delivery.replies[*to] = Reply{ok, std::move(message.json[ok ? "return" : "error"])};
      return;
    }
    case QmpMessageKind::kEvent:
      delivery.events.push_back(ToEvent(std::move(message.json)));
      return;
  }
}

void QmpClient::Disconnect(std::string reason) {
  if (!disconnect_reason_.empty()) return;
  disconnect_reason_ = std::move(reason);
  transport_->Shutdown();
}

void QmpClient::SendFailed(const std::string& reason) {
  // A half-written command leaves the stream unusable for commands. What QEMU sent before it
  // went away is still to be read (its SHUTDOWN event, when a command raced its exit), so the
  // read side stays open until its EOF.
  if (send_failure_.empty()) send_failure_ = reason;
  cv_.notify_all();
}

void QmpClient::CheckCanSend(const std::string& activity) const {
  if (!disconnect_reason_.empty()) ThrowDisconnected(activity);
  if (!send_failure_.empty()) {
    throw QmpDisconnected(activity + ": " + send_failure_ + " (no more commands can be sent)");
  }
}

void QmpClient::ThrowDisconnected(const std::string& activity) const {
  const std::string message = activity + ": " + disconnect_reason_;
  if (protocol_error_) throw QmpProtocolError(message);
  throw QmpDisconnected(message);
}

}  // namespace kvmrun
