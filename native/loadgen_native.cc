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
// - abort() (an interrupted run): from then on every batch is answered at once with label -1, without Python.
// - Timing as harness/loadgen/timing.py records it (per worker: a log-binned histogram of IssueQuery-to-completion
//   latency, counted per sample but added once per IssueQuery piece, and a completion timeline), when enabled.

#include "bindings/python_api.cc"  // LoadGen's Python API: PYBIND11_MODULE(mlperf_loadgen, m) -> a static init we call

#include <pybind11/numpy.h>

#include <atomic>
#include <chrono>
#include <cmath>
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

struct Timing {  // harness/loadgen/timing.py's binning; n_bins == 0: off
  int bins_per_decade = 0;
  int low_exp10 = 0;
  int n_bins = 0;
  double step_s = 0.01;
};

struct WorkerTiming {
  std::vector<uint64_t> hist;
  std::vector<uint64_t> timeline;
};

struct WorkerStats {
  uint64_t batches = 0;
  uint64_t samples = 0;
  double infer_s = 0;     // inside the Python callback (the backend, with the GIL)
  double gil_s = 0;       // waiting for the GIL
  double complete_s = 0;  // responses and QuerySamplesComplete
};

class NativeSUT : public mlperf::SystemUnderTest {
 public:
  NativeSUT(std::vector<py::object> callbacks, size_t batch_size, double batch_timeout_s, int32_t output_offset,
            Timing timing)
      : callbacks_(std::move(callbacks)),
        batch_size_(batch_size ? batch_size : 1),
        timeout_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(batch_timeout_s))),
        offset_(output_offset),
        timing_(timing),
        t0_(Clock::now()),
        stats_(callbacks_.size()),
        timings_(callbacks_.size()) {
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
    if (samples.empty()) return;  // nothing to answer (an empty batch would read as "closed" to a worker)
    Chunk chunk{samples, 0, Clock::now()};  // the copy happens outside the lock
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(chunk));
    }
    cv_.notify_one();
  }

  void FlushQueries() override {}

  // Called with the GIL, on a Python thread.
  void start() {
    if (!threads_.empty()) throw std::runtime_error("NativeSUT already started");
    // pybind11 initialises its numpy C-API table and dtype lookups lazily, on first use, behind function-local
    // statics. Left to the workers, their first batches would race to do it at once on freshly made thread states
    // (with pybind11 < 2.12 that deadlocks: one worker inits the static while holding it, the other waits for it
    // holding the GIL). Done here once, on the thread that starts the run, the workers only ever read it.
    {
      py::array_t<int64_t> warm(1);
      warm.mutable_data()[0] = 0;
      auto as32 = py::array_t<int32_t, py::array::c_style | py::array::forcecast>::ensure(warm);
      if (!as32 || as32.size() != 1) throw std::runtime_error("NativeSUT: numpy's C API does not work here");
    }
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

  void abort() {
    aborted_ = true;
    cv_.notify_all();
  }

  uint64_t completed() const { return completed_.load(std::memory_order_relaxed); }

  // (histogram, timeline) of worker i; read after stop().
  py::tuple timing(size_t i) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    const WorkerTiming& t = timings_.at(i);
    return py::make_tuple(t.hist, t.timeline);
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
    Clock::time_point issued;
  };
  using Piece = std::pair<Clock::time_point, size_t>;  // (IssueQuery time, samples taken from that call)

  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }

  // Moves up to n - out.size() samples from the queue's head into out; the caller holds mu_.
  void pop_into(std::vector<mlperf::QuerySample>& out, size_t n, std::vector<Piece>& pieces) {
    while (out.size() < n && !queue_.empty()) {
      Chunk& c = queue_.front();
      size_t take = std::min(n - out.size(), c.samples.size() - c.pos);
      out.insert(out.end(), c.samples.begin() + c.pos, c.samples.begin() + c.pos + take);
      pieces.emplace_back(c.issued, take);
      c.pos += take;
      if (c.pos == c.samples.size()) queue_.pop_front();
    }
  }

  // A batch of up to batch_size_ samples; empty once the SUT is closed and drained.
  void take(std::vector<mlperf::QuerySample>& out, std::vector<Piece>& pieces) {
    out.clear();
    pieces.clear();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !queue_.empty() || closed_; });
    const size_t n = aborted_ ? (size_t{1} << 16) : batch_size_;
    pop_into(out, n, pieces);
    if (!out.empty() && out.size() < n && timeout_.count() > 0 && !aborted_) {
      const auto deadline = Clock::now() + timeout_;
      while (out.size() < n && !closed_ && !aborted_) {
        if (!queue_.empty()) {
          pop_into(out, n, pieces);
          continue;
        }
        if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
          pop_into(out, n, pieces);
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
    std::vector<Piece> pieces;
    std::vector<int32_t> labels;
    std::vector<mlperf::QuerySampleResponse> responses;
    WorkerStats local;
    WorkerTiming timing;
    timing.hist.assign(static_cast<size_t>(std::max(timing_.n_bins, 0)), 0);
    for (;;) {
      take(batch, pieces);
      const size_t n = batch.size();
      if (n == 0) break;
      const auto t0 = Clock::now();
      bool ok = false;
      labels.resize(n);
      if (aborted_) {  // an interrupted run: answer at once, no Python
        std::fill(labels.begin(), labels.end(), -1);
        responses.clear();
        for (size_t k = 0; k < n; ++k)
          responses.emplace_back(batch[k].id, reinterpret_cast<uintptr_t>(&labels[k]), sizeof(int32_t));
        mlperf::QuerySamplesComplete(responses.data(), n);
        completed_.fetch_add(n, std::memory_order_relaxed);
        continue;
      }
      PyEval_RestoreThread(tstate);  // the GIL, once per batch
      const auto t1 = Clock::now();
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
      completed_.fetch_add(n, std::memory_order_relaxed);
      if (timing_.n_bins > 0) record(timing, t3, n, pieces);
      local.batches += 1;
      local.samples += n;
      local.gil_s += std::chrono::duration<double>(t1 - t0).count();
      local.infer_s += std::chrono::duration<double>(t2 - t1).count();
      local.complete_s += std::chrono::duration<double>(t3 - t2).count();
      if ((local.batches & 255) == 0) publish(i, local);
    }
    publish(i, local);
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      timings_[i] = std::move(timing);
    }
    PyEval_RestoreThread(tstate);
    PyGILState_Release(gstate);
  }

  // harness/loadgen/timing.py WorkerTiming.record: bisect_right over the log-spaced inner edges, per piece; one add per
  // batch on the timeline.
  void record(WorkerTiming& t, Clock::time_point done, size_t n, const std::vector<Piece>& pieces) const {
    const int last = timing_.n_bins - 1;
    for (const auto& piece : pieces) {
      const double dt = std::chrono::duration<double>(done - piece.first).count();
      int bin = 0;
      if (dt > 0) {
        const double k = std::floor(timing_.bins_per_decade * (std::log10(dt) - timing_.low_exp10));
        bin = k < 0 ? 0 : (k > last ? last : static_cast<int>(k));
      }
      t.hist[static_cast<size_t>(bin)] += piece.second;
    }
    const auto slot = static_cast<size_t>(std::chrono::duration<double>(done - t0_).count() / timing_.step_s);
    if (slot >= t.timeline.size()) t.timeline.resize(slot + 1, 0);
    t.timeline[slot] += n;
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
  const Timing timing_;
  const Clock::time_point t0_;
  std::atomic<bool> aborted_{false};
  std::atomic<uint64_t> completed_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> queue_;
  bool closed_ = false;
  std::vector<std::thread> threads_;

  std::mutex stats_mu_;
  std::vector<WorkerStats> stats_;
  std::vector<WorkerTiming> timings_;
  std::vector<std::string> errors_;
};

}  // namespace harness_native

PYBIND11_MODULE(loadgen_native, m) {
  namespace py = pybind11;
  using harness_native::NativeSUT;
  mlperf::py::pybind11_init_mlperf_loadgen(m);  // every mlperf_loadgen name, bound to the LoadGen compiled into this module
  m.doc() = "LoadGen (mlcommons-loadgen, compiled from its PyPI sdist) and the harness's native SUT core.";
#ifndef HARNESS_NATIVE_SOURCE_SHA256
#define HARNESS_NATIVE_SOURCE_SHA256 "unknown"
#endif
  m.attr("__source_sha256__") = HARNESS_NATIVE_SOURCE_SHA256;  // native/setup.py: sha256 of this file
#define HARNESS_STR2(x) #x
#define HARNESS_STR(x) HARNESS_STR2(x)
  m.attr("__pybind11_version__") = HARNESS_STR(PYBIND11_VERSION_MAJOR) "." HARNESS_STR(PYBIND11_VERSION_MINOR) "." HARNESS_STR(
      PYBIND11_VERSION_PATCH);  // the pybind11 it was compiled with (native/selftest.py reports it)
  py::class_<NativeSUT>(m, "NativeSUT")
      .def(py::init([](std::vector<py::object> callbacks, size_t batch_size, double batch_timeout_s,
                       int32_t output_offset, int timing_bins_per_decade, int timing_low_exp10, int timing_bins,
                       double timing_step_s) {
             harness_native::Timing t{timing_bins_per_decade, timing_low_exp10, timing_bins, timing_step_s};
             return new NativeSUT(std::move(callbacks), batch_size, batch_timeout_s, output_offset, t);
           }),
           py::arg("callbacks"), py::arg("batch_size"), py::arg("batch_timeout_s") = 0.0, py::arg("output_offset") = 0,
           py::arg("timing_bins_per_decade") = 0, py::arg("timing_low_exp10") = 0, py::arg("timing_bins") = 0,
           py::arg("timing_step_s") = 0.01,
           "One worker thread per callback; callback(indices: int64 array) -> labels (integer array), called "
           "once per batch with the GIL held. timing_bins > 0: record latency as harness/loadgen/timing.py does.")
      .def("abort", &NativeSUT::abort, "Answer everything from now on at once (label -1), without Python.")
      .def("completed", &NativeSUT::completed, "Samples completed so far.")
      .def("timing", &NativeSUT::timing, "(histogram, timeline) of worker i, after stop().")
      .def("start", &NativeSUT::start, "Start the worker threads.")
      .def("stop", &NativeSUT::stop, py::call_guard<py::gil_scoped_release>(),
           "Close the queue and join the workers (after the test).")
      .def_property_readonly("handle", &NativeSUT::handle, "The SUT for StartTestWithLogSettings.")
      .def("stats", &NativeSUT::stats)
      .def("errors", &NativeSUT::errors)
      .def("queued", &NativeSUT::queued, "Samples waiting in the queue.");
}
