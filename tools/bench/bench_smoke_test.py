"""Smoke test for mrb_bench: it runs, and its JSON and table are complete.

Speed is never asserted (figures on a shared 2-core VM mean nothing in a
test); only that every benchmark ran, verified what it moved, and reported
well-formed numbers.
"""

import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

from bazel_tools.tools.python.runfiles import runfiles

SIZES = [8, 64, 256, 4096, 65536]
ROWS = {
    "pipe": SIZES,
    "unix_stream": SIZES,
    "minimal_per_message": SIZES,
    "minimal_per_16k": SIZES,
    "mrb_read": SIZES,
    "mrb_read_batch": SIZES,
    "mrb_read_batch_2p": SIZES,
    "mrb_write_batch": [8, 64, 256, 4096],
    "mrb_write_batch_2p": [8, 64, 256, 4096],
}


def runfile(name):
    path = runfiles.Create().Rlocation("mmap_ringbuffer/tools/bench/" + name)
    if path is None or not os.path.exists(path):
        raise RuntimeError(name + " not found in runfiles")
    return path


def bench_path():
    return runfile("mrb_bench")


def ring_dir():
    # /dev/shm is what the benchmark is about; fall back to the test's
    # private directory if a sandbox hides it.
    if os.access("/dev/shm", os.W_OK):
        return "/dev/shm"
    return os.environ.get("TEST_TMPDIR", tempfile.gettempdir())


def run_bench(*args):
    return subprocess.run(
        [bench_path(), "--quick", "--dir", ring_dir(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
    )


def is_positive_number(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


class BenchSmokeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        out_dir = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", tempfile.mkdtemp())
        cls.json_file = os.path.join(out_dir, "bench.json")
        cls.table = run_bench("--json-out", cls.json_file)
        cls.json_run = run_bench("--json")

    def test_exit_status_zero_and_nothing_failed(self):
        for proc in (self.table, self.json_run):
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            self.assertNotIn("FAILED", proc.stdout)

    def test_json_document_is_complete(self):
        doc = json.loads(self.json_run.stdout)
        with open(self.json_file) as f:
            self.assertEqual(json.load(f)["schema"], "mrb-bench/1")
        self.assertEqual(doc["schema"], "mrb-bench/1")
        self.assertTrue(doc["ok"])
        self.assertEqual(doc["config"]["sizes"], SIZES)
        self.assertEqual(doc["config"]["unix_socket"], "SOCK_STREAM")
        seen = {}
        for result in doc["results"]:
            seen.setdefault(result["id"], []).append(result["size"])
            self.assertTrue(result["ok"], result)
            self.assertIsNone(result["error"])
            self.assertGreater(result["messages"], 0)
            self.assertTrue(is_positive_number(result["messages_per_second"]), result)
            self.assertAlmostEqual(
                result["gb_per_second"],
                result["messages_per_second"] * result["size"] / 1e9,
                delta=result["gb_per_second"] * 1e-3,
            )
        self.assertEqual(seen, ROWS)
        for ratio in doc["ratios"]:
            for size, value in ratio["values"].items():
                self.assertIn(int(size), SIZES)
                self.assertTrue(value is None or is_positive_number(value), ratio)
        self.assertEqual(len(doc["targets"]), 6)
        for target in doc["targets"]:
            self.assertTrue(is_positive_number(target["value"]), target)
            self.assertEqual(target["met"], target["value"] >= target["minimum"])
        for key in ("start", "end"):
            self.assertTrue(is_positive_number(doc["round_trip"][key]["median_ns"]))
        self.assertEqual([c["size"] for c in doc["path_cost"]], SIZES)
        for cost in doc["path_cost"]:
            self.assertTrue(cost["ok"], cost)
            self.assertEqual(
                sorted(cost["ns_per_message"]),
                [
                    "minimal",
                    "minimal_write",
                    "mrb_read",
                    "mrb_read_batch",
                    "mrb_write",
                    "mrb_write_batch",
                ],
            )
            for value in cost["ns_per_message"].values():
                self.assertTrue(is_positive_number(value), cost)
        ids = [w["id"] for w in doc["wakeup_latency"]]
        self.assertEqual(ids, ["mrb_read_wait", "pipe"])
        for wakeup in doc["wakeup_latency"]:
            if wakeup["available"]:
                samples = wakeup["samples_ns"]
                self.assertEqual(len(samples), wakeup["samples"])
                self.assertEqual(samples, sorted(samples))
                self.assertLessEqual(wakeup["p50_ns"], wakeup["p99_ns"])
        pipe_wakeup = doc["wakeup_latency"][1]
        self.assertTrue(pipe_wakeup["available"], pipe_wakeup)

    def test_fanout_rows_ran_and_verified(self):
        doc = json.loads(self.json_run.stdout)
        fanout = doc["fanout"]
        self.assertTrue(fanout["ok"], fanout)
        self.assertEqual(fanout["message_size"], 64)
        self.assertEqual(fanout["readers"], [1, 2, 4])
        kinds = [(r["kind"], r["readers"]) for r in fanout["results"]]
        self.assertEqual(
            kinds,
            [(k, n) for n in (1, 2, 4) for k in ("fanout_ring", "separate_rings")],
        )
        for result in fanout["results"]:
            self.assertTrue(result["ok"], result)
            self.assertIsNone(result["error"])
            self.assertGreater(result["messages"], 0)
            self.assertTrue(
                is_positive_number(result["per_reader_messages_per_second"]), result
            )
            self.assertLessEqual(
                result["slowest_reader_messages_per_second"],
                result["per_reader_messages_per_second"] * (1 + 1e-9),
            )
            self.assertEqual(
                len(result["trial_per_reader_messages_per_second"]),
                doc["config"]["repeats"],
            )
        self.assertEqual([r["readers"] for r in fanout["ratios"]], [1, 2, 4])
        for ratio in fanout["ratios"]:
            self.assertTrue(is_positive_number(ratio["fanout_vs_separate_rings"]))
            self.assertLessEqual(ratio["trial_min"], ratio["trial_max"])
        self.assertIn("fan-out: one producer", self.table.stdout)
        self.assertIn("ratio fan-out / N rings", self.table.stdout)

    def test_fanout_can_be_chosen_or_left_out(self):
        cheap = ("--sizes", "64", "--wakeup-samples", "0")
        proc = run_bench(
            "--json", "--rows", "fanout", "--fanout", "2", "--duration-ms", "20", *cheap
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["results"], [])
        self.assertEqual(doc["fanout"]["readers"], [2])
        proc = run_bench("--json", "--rows", "mrb_read", *cheap)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIsNone(json.loads(proc.stdout)["fanout"])
        for bad in ("0", "9", "1,2,3,4,5", "x"):
            proc = run_bench("--fanout", bad)
            self.assertEqual(proc.returncode, 2, bad)
            self.assertIn("--fanout", proc.stderr)

    def test_pool_rows_ran_and_verified(self):
        doc = json.loads(self.json_run.stdout)
        pool = doc["pool"]
        self.assertTrue(pool["ok"], pool)
        self.assertEqual(pool["message_size"], 64)
        self.assertEqual(pool["workers"], [1, 2, 4])
        kinds = [(r["kind"], r["readers"]) for r in pool["results"]]
        self.assertEqual(
            kinds,
            [
                (k, r)
                for n in (1, 2, 4)
                for k, r in (("worker_group", n), ("one_consumer", 1))
            ],
        )
        for result in pool["results"]:
            self.assertTrue(result["ok"], result)
            self.assertIsNone(result["error"])
            self.assertGreater(result["messages"], 0)
            self.assertTrue(is_positive_number(result["messages_per_second"]), result)
            self.assertEqual(
                len(result["trial_messages_per_second"]), doc["config"]["repeats"]
            )
        self.assertEqual([r["workers"] for r in pool["ratios"]], [1, 2, 4])
        for ratio in pool["ratios"]:
            self.assertTrue(is_positive_number(ratio["pool_vs_one_consumer"]))
        self.assertIn("worker pools: one producer", self.table.stdout)
        self.assertIn("ratio pool / 1 consumer", self.table.stdout)

    def test_pool_can_be_chosen_or_left_out(self):
        cheap = ("--sizes", "64", "--wakeup-samples", "0")
        proc = run_bench(
            "--json", "--rows", "pool", "--pool", "2", "--duration-ms", "20", *cheap
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["results"], [])
        self.assertIsNone(doc["fanout"])
        self.assertEqual(doc["pool"]["workers"], [2])
        proc = run_bench("--json", "--rows", "mrb_read", *cheap)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIsNone(json.loads(proc.stdout)["pool"])
        for bad in ("0", "9", "1,2,3,4,5", "x"):
            proc = run_bench("--pool", bad)
            self.assertEqual(proc.returncode, 2, bad)
            self.assertIn("--pool", proc.stderr)

    def test_table_has_every_row_and_target(self):
        out = self.table.stdout
        for label in (
            "pipe",
            "Unix socket (SOCK_STREAM)",
            "minimal ring, publish per message",
            "minimal ring, publish per 16 KiB",
            "mrb write + read",
            "mrb write + read_batch",
            "mrb 2 producers, write + read_batch",
            "mrb write_batch + read_batch",
            "cross-core round trip",
            "path cost on one core",
            "targets",
            "wake-up latency",
        ):
            self.assertIn(label, out)
        self.assertNotIn("not measured", out)
        self.assertEqual(out.count(" met") + out.count("MISSED"), 6, out)

    def test_markdown_renders_every_table(self):
        proc = subprocess.run(
            [sys.executable, runfile("markdown.py"), self.json_file],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for heading in ("Million messages/s", "Ratios", "Targets", "Path cost"):
            self.assertIn(heading, proc.stdout)
        self.assertIn("| mrb write + read |", proc.stdout)

    @unittest.skipUnless(
        importlib.util.find_spec("matplotlib"), "matplotlib not installed"
    )
    def test_plot_writes_both_pngs(self):
        out_dir = tempfile.mkdtemp()
        proc = subprocess.run(
            [sys.executable, runfile("plot.py"), self.json_file, "--out", out_dir],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for name in ("core-throughput.png", "core-wakeup.png"):
            with open(os.path.join(out_dir, name), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_usage_errors_exit_2(self):
        proc = subprocess.run(
            [bench_path(), "--sizes", "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--sizes", proc.stderr)
        proc = subprocess.run(
            [bench_path(), "--help"], stdout=subprocess.PIPE, text=True
        )
        self.assertEqual(proc.returncode, 0)
        self.assertIn("--quick", proc.stdout)


if __name__ == "__main__":
    sys.exit(unittest.main())
