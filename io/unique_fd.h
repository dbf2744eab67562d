// A file descriptor owned by one object: closed on destruction, movable, never copied.
#ifndef KVMRUN_IO_UNIQUE_FD_H_
#define KVMRUN_IO_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace kvmrun {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// A close-on-exec pipe: {read end, write end}. Throws Error on failure.
std::pair<UniqueFd, UniqueFd> MakePipe();
// A close-on-exec Unix stream socketpair. Throws Error on failure.
std::pair<UniqueFd, UniqueFd> MakeSocketPair();

}  // namespace kvmrun

#endif  // KVMRUN_IO_UNIQUE_FD_H_
