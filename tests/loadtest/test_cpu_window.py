"""The harness's CPU window holds exactly the requests it counts: a server pinned to one core and
saturated uses one core, so requests/s x CPU µs per request must read about 1.00 core, for wrk
(HTTP/1.1) and h2load (h2c) alike. An h2load warm-up inside the window once read 1.18-1.20.

Not a timing assertion: the product is CPU seconds over wall seconds of the same window, which the
load level does not move; it is a consistency check of the measurement."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from loadtest.experiments import cost

pytestmark = pytest.mark.slow


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores: server on one, generator on another")
@pytest.mark.parametrize("mode", ["h1", "h2"])
def test_a_saturated_one_core_server_reads_one_core(mode):
    tool = "wrk" if mode == "h1" else "h2load"
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (Debian: apt-get install wrk nghttp2-client; .ci/run does it)")
    cores = sorted(os.sched_getaffinity(0))
    argv = [mode, "--path", "/plaintext", "--duration", "3", "--warmup", "1",
            "--server-core", str(cores[0]), "--client-core", str(cores[-1])]
    argv += ["--connections", "64"] if mode == "h1" else ["--clients", "8", "--streams", "16"]
    args = cost.runner_parser().parse_args(argv)
    cost.pin_cores(args)
    with tempfile.TemporaryDirectory() as tmp:
        env, data_dir = cost.server_env(tmp)
        run = cost.measure(mode, cost.server_specs(args, data_dir)["selectors"], 0, args, tmp, env)
    assert run.ok, run.error
    cores_used = run.load.rps * (run.server_cpu_s / run.load.requests)
    assert 0.93 <= cores_used <= 1.05, (cores_used, run.load.rps, run.server_cpu_s, run.load.requests)
