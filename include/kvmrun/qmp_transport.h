// The byte pipe under a QMP client. The only code in kvmrun that touches sockets.
//
// Every operation takes a deadline. The real transport is a Unix stream socket: either
// connected to a path (QEMU's `-chardev socket,path=...,server=on`) or an already open fd
// (one end of a socketpair whose other end QEMU got with `-chardev socket,fd=N`). Tests use a
// fake (tests/support/fake_qmp_transport.h).
//
// Why plain POSIX poll() and not Boost.Asio: a QMP client talks to one fd, synchronously, with
// a deadline per call; poll() expresses exactly that in a few lines and keeps the latency of a
// round trip at the kernel's (see bench/qmp_bench.cc). Asio would add an io_context, handler
// allocation and compile time for no capability we use.
#ifndef KVMRUN_QMP_TRANSPORT_H_
#define KVMRUN_QMP_TRANSPORT_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "kvmrun/error.h"

namespace kvmrun {

using Deadline = std::chrono::steady_clock::time_point;

// The operation did not finish before its deadline.
class QmpTimeout : public Error {
 public:
  using Error::Error;
};

// The peer went away (EOF, reset) or the connection could not be made.
class QmpDisconnected : public Error {
 public:
  using Error::Error;
};

class QmpTransport {
 public:
  virtual ~QmpTransport() = default;

  // Writes all of `bytes`. Throws QmpTimeout or QmpDisconnected.
  virtual void Write(std::string_view bytes, Deadline deadline) = 0;

  // Writes `bytes` with a copy of the descriptor `fd` attached (SCM_RIGHTS: QMP's getfd and
  // add-fd take their file this way). Transports that cannot pass descriptors throw Error
  // (QmpClient then ends the connection, as for any failed write).
  virtual void WriteWithFd(std::string_view bytes, int fd, Deadline deadline);

  // Waits for data and reads at most `size` bytes of it; returns 0 at end of stream. Throws
  // QmpTimeout when nothing arrived before the deadline.
  virtual std::size_t Read(char* buffer, std::size_t size, Deadline deadline) = 0;

  // Ends the connection in both directions; a Read blocked in another thread returns 0.
  virtual void Shutdown() = 0;
};

// Connects to the QMP server listening on the Unix socket `path`. While the socket does not
// exist or refuses connections, retries until `wait_for_server` has passed (0: one attempt).
// Throws UsageError when the path does not fit a socket address (107 bytes on Linux) and
// QmpDisconnected naming the path and the reason when no connection could be made.
std::unique_ptr<QmpTransport> ConnectQmpSocket(const std::string& path,
                                               std::chrono::milliseconds wait_for_server = {});

// Takes ownership of `fd`, a connected stream socket (made non-blocking and close-on-exec).
std::unique_ptr<QmpTransport> AdoptQmpSocket(int fd);

}  // namespace kvmrun

#endif  // KVMRUN_QMP_TRANSPORT_H_
