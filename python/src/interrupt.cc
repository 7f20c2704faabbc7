// Long C++ calls from Python: the work runs on a thread of its own without the GIL; the calling
// (main) thread wakes every 50 ms to let Python run its signal handlers, so Ctrl-C stops the work
// through its CancelFlag instead of waiting for it to finish.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "bindings.h"

namespace granary::python {

Status RunInterruptible(const std::function<Status()>& work, const std::function<void()>& cancel) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status outcome;
  bool interrupted = false;
  {
    nb::gil_scoped_release release;
    std::thread worker([&] {
      Status st = work();
      std::lock_guard lock(mu);
      outcome = std::move(st);
      done = true;
      cv.notify_one();
    });
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return done; })) {
      if (interrupted) continue;  // cancelled: wait for the work to notice
      lock.unlock();
      {
        nb::gil_scoped_acquire acquire;
        // Runs the Python handlers of pending signals; -1 when one raised (KeyboardInterrupt),
        // which stays set as this thread's error until we return.
        if (PyErr_CheckSignals() != 0) interrupted = true;
      }
      if (interrupted) cancel();
      lock.lock();
    }
    lock.unlock();
    worker.join();
  }
  if (interrupted) {
    nb::python_error error;  // takes the pending exception (KeyboardInterrupt)
    if (!outcome.ok()) {
      nb::handle value = error.value();
      if (nb::hasattr(value, "add_note")) {
        value.attr("add_note")("granary: " + outcome.message());
      }
    }
    throw error;
  }
  return outcome;
}

}  // namespace granary::python
