// strerror(errno) as a string: for an error message right after a failed system call.
#ifndef KVMRUN_IO_ERRNO_TEXT_H_
#define KVMRUN_IO_ERRNO_TEXT_H_

#include <cerrno>
#include <cstring>
#include <string>

namespace kvmrun {

inline std::string Errno() { return std::strerror(errno); }

}  // namespace kvmrun

#endif  // KVMRUN_IO_ERRNO_TEXT_H_
