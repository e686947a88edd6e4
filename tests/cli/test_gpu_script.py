"""bench/gpu/run.sh --dry-run: the prepared GPU check runs every step it can
on CPU (tiny shapes, the CUDA-style path where the real run uses CUDA, Gloo
where it uses NCCL) and writes its figures as JSON, so the script a lent GPU
machine runs cannot rot."""
import json
import os
import sys
import unittest

from cli_support import BUILD_DIR, SOURCE_DIR, ToolTestCase, run


class DryRun(ToolTestCase):
    def test_every_step_runs_and_reports(self):
        out = self.path("gpu")
        code, stdout, stderr = run([os.path.join(SOURCE_DIR, "bench", "gpu", "run.sh"), "--dry-run", "--out", out,
                                    "--build-dir", BUILD_DIR], expect_ok=False, timeout=600,
                                   env={"OPENBA_GPU_PYTHON": sys.executable})
        self.assertEqual(code, 0, stdout + stderr)
        results = json.load(open(os.path.join(out, "gpu-results.json")))
        self.assertTrue(results["dry_run"])
        for step in ("data", "cuda_against_cpu", "generation", "nccl", "throughput"):
            self.assertTrue(results[step]["ok"], (step, results[step]))
        # (a') generation through the CUDA-style path: the CPU's tokens, and a decode speed.
        self.assertEqual(results["generation"]["same_tokens"], results["generation"]["inputs"])
        self.assertEqual([d["batch"] for d in results["generation"]["speed"]["decode"]], [1, 32])
        # (a) the CUDA-style path against the fused CPU kernels, per example.
        check = results["cuda_against_cpu"]
        self.assertEqual(check["examples"], 48)
        self.assertTrue(check["fp32"]["within"])
        self.assertLessEqual(check["fp32"]["max_relative_difference"], 1e-5)
        self.assertGreater(check["fp32"]["max_relative_difference"], 0)  # two implementations, not one run twice
        # (b) one rank and two ranks train the same steps as one process.
        nccl = results["nccl"]
        self.assertEqual(len(nccl["one_rank"]["losses"]), 3)
        self.assertLess(nccl["one_rank"]["max_abs_difference_to_cpu"], 1e-6)
        self.assertLess(nccl["two_ranks"]["max_abs_difference_to_one_rank"], 1e-4)
        # (c) both modes measured, with the GEMM yardstick of the same process.
        runs = results["throughput"]["runs"]
        self.assertEqual([r["activation_checkpointing"] for r in runs], [False, True])
        for r in runs:
            self.assertGreater(r["tokens_per_s"], 0)
            self.assertGreater(r["gemm_gflops"], 0)
            self.assertGreater(r["fraction_of_gemm"], 0)
        self.assertIn("tokens/s", stdout)


class Preparation(ToolTestCase):
    def test_debs_extract_without_dpkg(self):
        # The extractor run.py uses on the GPU machine, on a .deb made by dpkg-deb here.
        sys.path.insert(0, os.path.join(SOURCE_DIR, "bench", "gpu"))
        import run as gpu_run
        package = self.path("pkg")
        os.makedirs(os.path.join(package, "DEBIAN"))
        os.makedirs(os.path.join(package, "usr", "include"))
        with open(os.path.join(package, "DEBIAN", "control"), "w") as f:
            f.write("Package: openba-test\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n")
        with open(os.path.join(package, "usr", "include", "probe.h"), "w") as f:
            f.write("#define PROBE 1\n")
        deb = self.path("probe.deb")
        run(["dpkg-deb", "-Zxz", "--build", package, deb])
        prefix = self.path("prefix")
        gpu_run.extract_deb(deb, prefix)
        self.assertEqual(open(os.path.join(prefix, "usr", "include", "probe.h")).read(), "#define PROBE 1\n")
        with open(self.path("bad.deb"), "wb") as f:
            f.write(b"not an archive")
        with self.assertRaises(gpu_run.StepFailed):
            gpu_run.extract_deb(self.path("bad.deb"), prefix)


if __name__ == "__main__":
    unittest.main()
