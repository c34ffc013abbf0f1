// Compiled stream harness of hwbnn's whole-network verification (docs/design.md, "Verification
// notes"; the host side is hwbnn/verify/harness.py).
//
// Drives a Verilated top with the ports clk, rst (synchronous, active high), s_axis_t{data,
// valid,ready} and m_axis_t{data,valid,ready}: input beats come from a file, every output beat
// goes to a file, with seeded random idle input cycles (--gap) and output backpressure
// (--backpressure). The harness is itself a well-behaved AXI-Stream source (a presented beat
// stays, unchanged, until the design takes it) and checks the design's output stream:
//   * while m_axis_tvalid && !m_axis_tready, tvalid stays high and tdata holds;
//   * no beat beyond the expected count (also during --tail-cycles after the last one).
// It stops on the first violation, or when no output beat arrives for --max-wait-cycles.
//
// Beat files hold each beat as tdata_width / 8 bytes, least significant byte first. The result
// is one JSON object (--result): cycles, busy_cycles, wall_s, input and output beat counts,
// stalled, violation.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "Vtop.h"
#include "verilated.h"

namespace {

// A port's value as 32-bit words, for each type Verilator declares ports with:
// CData/SData/IData (up to 32 bits), QData (up to 64), VlWide<N> (N words).
template <typename T>
struct PortWords {
    static constexpr std::size_t count = sizeof(T) > 4 ? 2 : 1;
    static void write(T& port, const uint32_t* words) {
        if constexpr (sizeof(T) > 4) {
            port = static_cast<T>(words[0]) | (static_cast<T>(words[1]) << 32);
        } else {
            port = static_cast<T>(words[0]);
        }
    }
    static void read(const T& port, uint32_t* words) {
        words[0] = static_cast<uint32_t>(port);
        if constexpr (sizeof(T) > 4) words[1] = static_cast<uint32_t>(port >> 32);
    }
};

template <std::size_t N>
struct PortWords<VlWide<N>> {
    static constexpr std::size_t count = N;
    static void write(VlWide<N>& port, const uint32_t* words) {
        for (std::size_t i = 0; i < N; ++i) port[i] = words[i];
    }
    static void read(const VlWide<N>& port, uint32_t* words) {
        for (std::size_t i = 0; i < N; ++i) words[i] = port[i];
    }
};

using InPort = PortWords<std::remove_reference_t<decltype(std::declval<Vtop>().s_axis_tdata)>>;
using OutPort = PortWords<std::remove_reference_t<decltype(std::declval<Vtop>().m_axis_tdata)>>;

struct Options {
    std::string frames, output, result;
    std::size_t in_bytes = 0, out_bytes = 0, out_beats = 0, prelude_beats = 0;
    double gap = 0, backpressure = 0;
    uint64_t seed = 0, max_wait_cycles = 0, tail_cycles = 0, reset_cycles = 3;
};

[[noreturn]] void fail(const std::string& message) {
    std::fprintf(stderr, "harness: %s\n", message.c_str());
    std::exit(2);
}

Options parse(int argc, char** argv) {
    std::map<std::string, std::string> values;
    for (int i = 1; i + 1 < argc; i += 2) values[argv[i]] = argv[i + 1];
    if (argc % 2 != 1) fail("options come in --name value pairs");
    auto text = [&](const char* name) {
        auto found = values.find(name);
        if (found == values.end()) fail(std::string("missing option ") + name);
        return found->second;
    };
    auto number = [&](const char* name, uint64_t fallback) {
        return values.count(name) ? std::strtoull(values[name].c_str(), nullptr, 10) : fallback;
    };
    Options o;
    o.frames = text("--frames");
    o.output = text("--output");
    o.result = text("--result");
    o.in_bytes = number("--in-bytes", 0);
    o.out_bytes = number("--out-bytes", 0);
    o.out_beats = number("--out-beats", 0);
    o.prelude_beats = number("--prelude-beats", 0);
    o.gap = std::strtod(text("--gap").c_str(), nullptr);
    o.backpressure = std::strtod(text("--backpressure").c_str(), nullptr);
    o.seed = number("--seed", 0);
    o.max_wait_cycles = number("--max-wait-cycles", 0);
    o.tail_cycles = number("--tail-cycles", 0);
    o.reset_cycles = number("--reset-cycles", 3);
    if (o.in_bytes == 0 || (o.in_bytes + 3) / 4 != InPort::count) {
        fail("--in-bytes " + std::to_string(o.in_bytes) + " does not fit s_axis_tdata (" +
             std::to_string(InPort::count) + " 32-bit words)");
    }
    if (o.out_bytes == 0 || (o.out_bytes + 3) / 4 != OutPort::count) {
        fail("--out-bytes " + std::to_string(o.out_bytes) + " does not fit m_axis_tdata (" +
             std::to_string(OutPort::count) + " 32-bit words)");
    }
    return o;
}

// Input beats, each widened to the port's 32-bit words (upper bytes zero).
std::vector<uint32_t> read_beats(const Options& o) {
    FILE* file = std::fopen(o.frames.c_str(), "rb");
    if (!file) fail("cannot open " + o.frames);
    std::vector<uint8_t> bytes;
    uint8_t chunk[1 << 16];
    for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, file)) > 0;) {
        bytes.insert(bytes.end(), chunk, chunk + n);
    }
    std::fclose(file);
    if (bytes.size() % o.in_bytes) fail(o.frames + " is not a whole number of input beats");
    std::size_t beats = bytes.size() / o.in_bytes;
    std::vector<uint32_t> words(beats * InPort::count, 0);
    for (std::size_t b = 0; b < beats; ++b) {
        for (std::size_t i = 0; i < o.in_bytes; ++i) {
            words[b * InPort::count + i / 4] |= uint32_t(bytes[b * o.in_bytes + i]) << (8 * (i % 4));
        }
    }
    return words;
}

// splitmix64 (Steele, Lea, Flood, OOPSLA 2014; constants of Vigna's splitmix64.c): one
// stream per seed, cheap enough to draw every cycle.
class Chance {
  public:
    Chance(uint64_t seed, double probability)
        : state_(seed),
          threshold_(probability <= 0 ? 0 : uint64_t(probability * 18446744073709551616.0)) {}
    bool operator()() {
        if (threshold_ == 0) return false;
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return (z ^ (z >> 31)) < threshold_;
    }

  private:
    uint64_t state_, threshold_;
};

class Harness {
  public:
    Harness(const Options& o, std::vector<uint32_t> beats)
        : o_(o), in_(std::move(beats)), gap_(o.seed, o.gap), stall_(o.seed + 1, o.backpressure) {
        top_.clk = 0;
        top_.rst = 0;
        top_.s_axis_tvalid = 0;
        top_.m_axis_tready = 0;
        held_.resize(OutPort::count);
        beat_.resize(OutPort::count);
    }

    void run() {
        std::size_t total = in_.size() / InPort::count;
        reset();
        if (o_.prelude_beats) prelude();
        auto start = std::chrono::steady_clock::now();
        uint64_t first = cycles_;
        last_out_ = cycles_;
        while (!stalled_ && violation_.empty() && out_count_ < o_.out_beats) {
            cycle(total, true);
            stalled_ = cycles_ - last_out_ > o_.max_wait_cycles;
        }
        busy_cycles_ = last_out_ - first;
        // Extra beats: the design sees idle input and a ready sink for a while longer.
        for (uint64_t i = 0; i < o_.tail_cycles && violation_.empty() && !stalled_; ++i) {
            cycle(total, false);
        }
        wall_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        top_.final();
    }

    void write(const Options& o) const {
        FILE* file = std::fopen(o.output.c_str(), "wb");
        if (!file) fail("cannot write " + o.output);
        std::fwrite(out_.data(), 1, out_.size(), file);
        std::fclose(file);
        file = std::fopen(o.result.c_str(), "w");
        if (!file) fail("cannot write " + o.result);
        std::fprintf(file,
                     "{\"cycles\": %llu, \"busy_cycles\": %llu, \"wall_s\": %.6f, "
                     "\"in_beats\": %zu, \"out_beats\": %zu, \"stalled\": %s, "
                     "\"violation\": %s%s%s}\n",
                     (unsigned long long)cycles_, (unsigned long long)busy_cycles_, wall_s_,
                     in_next_ - std::min(in_next_, o.prelude_beats), out_count_,
                     stalled_ ? "true" : "false",
                     violation_.empty() ? "null" : "\"", violation_.c_str(),
                     violation_.empty() ? "" : "\"");
        std::fclose(file);
    }

  private:
    // One clock cycle: inputs set and settled with clk low, handshakes sampled, rising edge.
    // The design acts on rising edges only, so the falling edge and the new inputs share one
    // eval().
    void cycle(std::size_t total, bool sink_may_stall) {
        if (!presenting_ && in_next_ < total && !gap_()) {
            InPort::write(top_.s_axis_tdata, &in_[in_next_ * InPort::count]);
            presenting_ = true;
        }
        top_.s_axis_tvalid = presenting_;
        bool ready = !(sink_may_stall && stall_());
        top_.m_axis_tready = ready;
        top_.clk = 0;
        top_.eval();
        check_output(ready);
        if (presenting_ && top_.s_axis_tready) {
            presenting_ = false;
            ++in_next_;
        }
        top_.clk = 1;
        top_.eval();
        ++cycles_;
    }

    void check_output(bool ready) {
        bool valid = top_.m_axis_tvalid;
        if (valid) OutPort::read(top_.m_axis_tdata, beat_.data());
        if (was_stalled_ && !valid) {
            return violate("m_axis_tvalid fell while beat " + std::to_string(out_count_) +
                           " waited for m_axis_tready");
        }
        if (was_stalled_ && beat_ != held_) {
            return violate("m_axis_tdata changed while beat " + std::to_string(out_count_) +
                           " waited for m_axis_tready");
        }
        was_stalled_ = valid && !ready;
        if (was_stalled_) held_ = beat_;
        if (!(valid && ready) || discard_) return;
        if (out_count_ == o_.out_beats) {
            return violate("beat " + std::to_string(out_count_) + " beyond the expected " +
                           std::to_string(o_.out_beats));
        }
        const uint8_t* bytes = reinterpret_cast<const uint8_t*>(beat_.data());
        out_.insert(out_.end(), bytes, bytes + o_.out_bytes);  // little-endian words
        ++out_count_;
        last_out_ = cycles_ + 1;
    }

    void violate(const std::string& message) {
        if (violation_.empty()) violation_ = message + " (cycle " + std::to_string(cycles_) + ")";
    }

    void reset() {
        top_.rst = 1;
        top_.s_axis_tvalid = 0;
        top_.m_axis_tready = 0;
        for (uint64_t i = 0; i < o_.reset_cycles; ++i) {
            top_.clk = 0;
            top_.eval();
            top_.clk = 1;
            top_.eval();
            ++cycles_;
        }
        top_.rst = 0;
        // The design sees rst one cycle late (behind the register of hwbnn_harness_top):
        // one more idle cycle, so no beat is offered while it is still in reset.
        top_.clk = 0;
        top_.eval();
        top_.clk = 1;
        top_.eval();
        ++cycles_;
        presenting_ = was_stalled_ = false;
    }

    // Part of a stream, then a reset some cycles after its last beat went in; whatever came
    // out meanwhile is dropped. The beats after the prelude must come out as if alone.
    void prelude() {
        discard_ = true;
        for (uint64_t taken = cycles_; in_next_ < o_.prelude_beats && violation_.empty();) {
            std::size_t before = in_next_;
            cycle(o_.prelude_beats, true);
            if (in_next_ != before) taken = cycles_;
            if (cycles_ - taken > o_.max_wait_cycles) {
                stalled_ = true;
                return;
            }
        }
        uint64_t wait = 1 + (o_.seed * 0x9e3779b97f4a7c15ULL >> 58);  // 1..64 cycles
        for (uint64_t i = 0; i < wait; ++i) cycle(o_.prelude_beats, true);
        reset();
        discard_ = false;
    }

    const Options& o_;
    VerilatedContext context_;
    Vtop top_{&context_};
    std::vector<uint32_t> in_;
    std::vector<uint8_t> out_;
    std::vector<uint32_t> held_, beat_;
    Chance gap_, stall_;
    std::size_t in_next_ = 0, out_count_ = 0;
    uint64_t cycles_ = 0, busy_cycles_ = 0, last_out_ = 0;
    bool presenting_ = false, was_stalled_ = false, stalled_ = false, discard_ = false;
    double wall_s_ = 0;
    std::string violation_;
};

}  // namespace

int main(int argc, char** argv) {
    Options options = parse(argc, argv);
    Harness harness(options, read_beats(options));
    harness.run();
    harness.write(options);
    return 0;
}
