// loadgen_native: LoadGen and a native SUT core in one Python extension module.
//
// LoadGen's C++ (from the pinned mlcommons-loadgen source distribution on PyPI, fetched by native/build.py and
// never committed here) is compiled into this module together with LoadGen's own Python API
// (bindings/python_api.cc, included below), so `loadgen_native` offers everything `mlperf_loadgen` offers
// (TestSettings, ConstructQSL, StartTestWithLogSettings, ...) plus `NativeSUT`. Both must live in one module:
// LoadGen keeps its test state in globals, so the SUT that calls QuerySamplesComplete must be linked with the very
// LoadGen copy that runs the test.
//
// NativeSUT (a mlperf::SystemUnderTest):
// - IssueQuery moves LoadGen's sample vector into a queue under a mutex: no GIL, no Python, no per-sample work on
//   LoadGen's issue thread beyond the copy of the vector.
// - A fixed pool of long-lived C++ worker threads (one per Python callback) takes up to `batch_size` samples
//   (in Server waiting at most `batch_timeout_s` for a fuller batch), takes the GIL once per batch, calls its
//   callback with the batch's sample indices (an int64 numpy array) and gets the labels back (any integer array),
//   drops the GIL, writes the int32 labels (+ output offset) into its own response buffer and calls
//   mlperf::QuerySamplesComplete once for the batch. The response buffers stay alive until that call returns
//   (LoadGen copies what it logs for accuracy inside the call) and are reused for the next batch.
// - A callback that raises is recorded (`errors()`); its samples are answered with label -1 so LoadGen never hangs.

#include "bindings/python_api.cc"  // LoadGen's Python API: PYBIND11_MODULE(mlperf_loadgen, m) -> a static init we call

#include <pybind11/numpy.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace harness_native {

namespace py = pybind11;
using Clock = std::chrono::steady_clock;

struct WorkerStats {
  uint64_t batches = 0;
  uint64_t samples = 0;
  double infer_s = 0;     // inside the Python callback (the backend, with the GIL)
  double gil_s = 0;       // waiting for the GIL
  double complete_s = 0;  // responses and QuerySamplesComplete
};

class NativeSUT : public mlperf::SystemUnderTest {
 public:
  NativeSUT(std::vector<py::object> callbacks, size_t batch_size, double batch_timeout_s, int32_t output_offset)
      : callbacks_(std::move(callbacks)),
        batch_size_(batch_size ? batch_size : 1),
        timeout_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(batch_timeout_s))),
        offset_(output_offset),
        stats_(callbacks_.size()) {
    if (callbacks_.empty()) throw std::invalid_argument("NativeSUT needs at least one callback (one per worker)");
  }

  ~NativeSUT() override {
    if (threads_.empty()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
    if (PyGILState_Check()) {  // destroyed from Python without stop(): the workers need the GIL to finish
      py::gil_scoped_release release;
      join();
    } else {
      join();
    }
  }

  const std::string& Name() override { return name_; }

  void IssueQuery(const std::vector<mlperf::QuerySample>& samples) override {
    Chunk chunk{samples, 0};  // the copy happens outside the lock
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(chunk));
    }
    cv_.notify_one();
  }

  void FlushQueries() override {}

  void start() {
    if (!threads_.empty()) throw std::runtime_error("NativeSUT already started");
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = false;
    }
    for (size_t i = 0; i < callbacks_.size(); ++i) threads_.emplace_back(&NativeSUT::work, this, i);
  }

  // Called without the GIL (the workers need it to finish their last batch).
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
    join();
  }

  uintptr_t handle() { return reinterpret_cast<uintptr_t>(static_cast<mlperf::SystemUnderTest*>(this)); }

  py::list stats() {
    py::list out;
    std::lock_guard<std::mutex> lock(stats_mu_);
    for (const auto& s : stats_) {
      py::dict d;
      d["batches"] = s.batches;
      d["samples"] = s.samples;
      d["infer_s"] = s.infer_s;
      d["gil_s"] = s.gil_s;
      d["complete_s"] = s.complete_s;
      out.append(d);
    }
    return out;
  }

  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> lock(stats_mu_);
    return errors_;
  }

  size_t queued() {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& c : queue_) n += c.samples.size() - c.pos;
    return n;
  }

 private:
  struct Chunk {
    std::vector<mlperf::QuerySample> samples;
    size_t pos;  // how many of this chunk were taken: Offline's one query is millions of samples
  };

  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }

  // Moves up to n - out.size() samples from the queue's head into out; the caller holds mu_.
  void pop_into(std::vector<mlperf::QuerySample>& out, size_t n) {
    while (out.size() < n && !queue_.empty()) {
      Chunk& c = queue_.front();
      size_t take = std::min(n - out.size(), c.samples.size() - c.pos);
      out.insert(out.end(), c.samples.begin() + c.pos, c.samples.begin() + c.pos + take);
      c.pos += take;
      if (c.pos == c.samples.size()) queue_.pop_front();
    }
  }

  // A batch of up to batch_size_ samples; empty once the SUT is closed and drained.
  void take(std::vector<mlperf::QuerySample>& out) {
    out.clear();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !queue_.empty() || closed_; });
    pop_into(out, batch_size_);
    if (!out.empty() && out.size() < batch_size_ && timeout_.count() > 0) {
      const auto deadline = Clock::now() + timeout_;
      while (out.size() < batch_size_ && !closed_) {
        if (!queue_.empty()) {
          pop_into(out, batch_size_);
          continue;
        }
        if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
          pop_into(out, batch_size_);
          break;
        }
      }
    }
    const bool more = !queue_.empty();
    lock.unlock();
    if (more) cv_.notify_one();  // work is left (Offline's one big chunk): wake another worker
  }

  void record_error(std::string what) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    if (errors_.size() < 16) errors_.push_back(std::move(what));
  }

  void work(size_t i) {
    PyGILState_STATE gstate = PyGILState_Ensure();  // one thread state for the thread's life
    PyThreadState* tstate = PyEval_SaveThread();
    std::vector<mlperf::QuerySample> batch;
    batch.reserve(batch_size_);
    std::vector<int32_t> labels;
    std::vector<mlperf::QuerySampleResponse> responses;
    WorkerStats local;
    for (;;) {
      take(batch);
      const size_t n = batch.size();
      if (n == 0) break;
      const auto t0 = Clock::now();
      PyEval_RestoreThread(tstate);  // the GIL, once per batch
      const auto t1 = Clock::now();
      bool ok = false;
      labels.resize(n);
      try {
        py::array_t<int64_t> indices(static_cast<py::ssize_t>(n));
        int64_t* p = indices.mutable_data();
        for (size_t k = 0; k < n; ++k) p[k] = static_cast<int64_t>(batch[k].index);
        py::object out = callbacks_[i](indices);
        auto top1 = py::array_t<int32_t, py::array::c_style | py::array::forcecast>::ensure(out);
        if (!top1) throw std::runtime_error("the batch callback did not return an integer array");
        if (static_cast<size_t>(top1.size()) != n)
          throw std::runtime_error("the batch callback returned " + std::to_string(top1.size()) +
                                   " labels for " + std::to_string(n) + " samples");
        const int32_t* q = top1.data();
        for (size_t k = 0; k < n; ++k) labels[k] = q[k] + offset_;
        ok = true;
      } catch (py::error_already_set& e) {
        record_error(e.what());
      } catch (const std::exception& e) {
        record_error(e.what());
      }
      tstate = PyEval_SaveThread();
      const auto t2 = Clock::now();
      if (!ok) std::fill(labels.begin(), labels.end(), -1);
      responses.clear();
      for (size_t k = 0; k < n; ++k)
        responses.emplace_back(batch[k].id, reinterpret_cast<uintptr_t>(&labels[k]), sizeof(int32_t));
      mlperf::QuerySamplesComplete(responses.data(), n);
      const auto t3 = Clock::now();
      local.batches += 1;
      local.samples += n;
      local.gil_s += std::chrono::duration<double>(t1 - t0).count();
      local.infer_s += std::chrono::duration<double>(t2 - t1).count();
      local.complete_s += std::chrono::duration<double>(t3 - t2).count();
      if ((local.batches & 255) == 0) publish(i, local);
    }
    publish(i, local);
    PyEval_RestoreThread(tstate);
    PyGILState_Release(gstate);
  }

  void publish(size_t i, const WorkerStats& s) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_[i] = s;
  }

  const std::string name_ = "loadgen_native.NativeSUT";
  std::vector<py::object> callbacks_;
  const size_t batch_size_;
  const Clock::duration timeout_;
  const int32_t offset_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> queue_;
  bool closed_ = false;
  std::vector<std::thread> threads_;

  std::mutex stats_mu_;
  std::vector<WorkerStats> stats_;
  std::vector<std::string> errors_;
};

}  // namespace harness_native

PYBIND11_MODULE(loadgen_native, m) {
  namespace py = pybind11;
  using harness_native::NativeSUT;
  mlperf::py::pybind11_init_mlperf_loadgen(m);  // every mlperf_loadgen name, bound to the LoadGen compiled into this module
  m.doc() = "LoadGen (mlcommons-loadgen, compiled from its PyPI sdist) and the harness's native SUT core.";
  py::class_<NativeSUT>(m, "NativeSUT")
      .def(py::init<std::vector<py::object>, size_t, double, int32_t>(), py::arg("callbacks"),
           py::arg("batch_size"), py::arg("batch_timeout_s") = 0.0, py::arg("output_offset") = 0,
           "One worker thread per callback; callback(indices: int64 array) -> labels (integer array), called "
           "once per batch with the GIL held.")
      .def("start", &NativeSUT::start, "Start the worker threads.")
      .def("stop", &NativeSUT::stop, py::call_guard<py::gil_scoped_release>(),
           "Close the queue and join the workers (after the test).")
      .def_property_readonly("handle", &NativeSUT::handle, "The SUT for StartTestWithLogSettings.")
      .def("stats", &NativeSUT::stats)
      .def("errors", &NativeSUT::errors)
      .def("queued", &NativeSUT::queued, "Samples waiting in the queue.");
}
