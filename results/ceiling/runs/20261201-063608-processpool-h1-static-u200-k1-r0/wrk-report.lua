-- written by loadtest/measure.py: wrk's percentiles (microseconds) on one line
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("lab-wrk: requests=%d duration_us=%d socket_errors=%d status_errors=%d "
    .. "p50=%d p90=%d p95=%d p99=%d p999=%d max=%d\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency:percentile(99.9), latency.max))
end
