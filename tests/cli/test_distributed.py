"""Distributed openba-pretrain on c10d with Gloo, as real processes on this
machine: N ranks give the losses of one process with the same global batch;
ZeRO 1/2 give the losses of plain data parallelism with 1/N of the optimizer
state per rank; a kill and a resume at another world size re-shard the
optimizer; a dead or frozen rank makes the others exit naming it; torchrun,
srun-style variables and --nproc all launch it."""
import json
import os
import re
import signal
import socket
import subprocess
import time
import unittest

from cli_support import TORCHRUN, json_lines, run, tool
from test_pretrain import PretrainCase

ONE_THREAD = ["--set", "trainer.threads=1"]
SMALL_BUCKETS = ["--set", "distributed.bucket_mb=0.5"]  # several buckets even for the tiny model


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_pids(launcher_pid):
    """{rank: pid} of the workers a --nproc launcher started."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != launcher_pid:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
            out[int(env[b"RANK"])] = int(pid)
        except (OSError, KeyError, ValueError, IndexError):
            continue
    return out


class DistributedCase(PretrainCase):
    def train(self, out, *flags, nproc=None, ok=True):
        extra = ["--nproc", str(nproc)] if nproc else []
        return self.pretrain(out, *ONE_THREAD, *extra, *flags, ok=ok)

    def eval_losses(self, out):
        with open(os.path.join(out, "metrics.jsonl")) as f:
            return [(d["step"], d["eval_loss"]) for d in json_lines(f.read()) if "eval_loss" in d]

    def assertLossesClose(self, got, expected, rel=2e-5):
        self.assertEqual([s for s, _ in got], [s for s, _ in expected])
        for (step, a), (_, b) in zip(got, expected):
            self.assertAlmostEqual(a, b, delta=rel * abs(b), msg=f"step {step}: {a} vs {b}")

    def optimizer_line(self, out):
        with open(os.path.join(out, "train.log")) as f:
            line = next(l for l in f if l.startswith("optimizer:"))
        m = re.search(r"optimizer state ([\d.]+) (\w+)", line)
        scale = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m.group(2)]
        return line, float(m.group(1)) * scale


class Equivalence(DistributedCase):
    def test_two_and_three_ranks_match_one_process_with_n_times_the_micro_batch(self):
        for ranks, micro in ((2, 2), (3, 2)):
            glob = 2 * ranks * micro  # accumulation 2 everywhere
            shape = ["--set", f"trainer.global_batch={glob}", "--set", "trainer.steps=6"]
            single = self.path(f"single{ranks}")
            self.train(single, *shape, "--set", f"trainer.micro_batch={ranks * micro}")
            multi = self.path(f"ranks{ranks}")
            self.train(multi, *shape, "--set", f"trainer.micro_batch={micro}", *SMALL_BUCKETS, nproc=ranks)
            self.assertEqual(len(self.losses(single)), 6)
            self.assertLossesClose(self.losses(multi), self.losses(single))
            self.assertLossesClose(self.eval_losses(multi), self.eval_losses(single))
            line, _ = self.optimizer_line(multi)
            self.assertIn(f"over {ranks} ranks (gloo)", line)
            # Rank 0 logs: throughput is the sum over ranks, and communication is measured.
            with open(os.path.join(multi, "metrics.jsonl")) as f:
                last = [d for d in json_lines(f.read()) if "loss" in d][-1]
            self.assertEqual(last["ranks"], ranks)
            self.assertGreater(last["comm_s"], 0)
            self.assertGreaterEqual(last["comm_s"], last["comm_exposed_s"] - 1e-3)

    def test_zero_1_and_2_match_plain_data_parallel_with_a_fraction_of_the_state(self):
        shape = ["--set", "trainer.steps=6", *SMALL_BUCKETS, "--set", "checkpoint.every=3"]
        plain = self.path("zero0")
        self.train(plain, *shape, nproc=2)
        _, plain_bytes = self.optimizer_line(plain)
        for zero in (1, 2):
            out = self.path(f"zero{zero}")
            self.train(out, *shape, "--set", f"distributed.zero={zero}", nproc=2)
            self.assertLossesClose(self.losses(out), self.losses(plain), rel=1e-6)
            self.assertLossesClose(self.eval_losses(out), self.eval_losses(plain), rel=1e-6)
            line, per_rank = self.optimizer_line(out)
            self.assertIn(f"ZeRO stage {zero}", line)
            self.assertAlmostEqual(per_rank / plain_bytes, 0.5, delta=0.01)
            ck = os.path.join(out, "checkpoints", "step-00000003")
            self.assertEqual(sorted(n for n in os.listdir(ck) if n.startswith("optimizer")),
                             ["optimizer-rank-00000-of-00002.safetensors", "optimizer-rank-00001-of-00002.safetensors"])
        # Three ranks, ZeRO 2: reduction order differs, values agree closely.
        three = self.path("zero2-3")
        self.train(three, "--set", "trainer.steps=6", "--set", "trainer.global_batch=12", "--set", "trainer.micro_batch=2",
                   "--set", "distributed.zero=2", *SMALL_BUCKETS, nproc=3)
        three_plain = self.path("zero0-1")
        self.train(three_plain, "--set", "trainer.steps=6", "--set", "trainer.global_batch=12",
                   "--set", "trainer.micro_batch=6")
        self.assertLossesClose(self.losses(three), self.losses(three_plain))


class ResumeAtAnotherWorldSize(DistributedCase):
    def test_kill_then_resume_on_three_ranks_reshards_the_optimizer(self):
        shape = ["--set", "trainer.steps=8", "--set", "trainer.global_batch=12", "--set", "trainer.micro_batch=2",
                 "--set", "checkpoint.every=4", *SMALL_BUCKETS]
        reference = self.path("reference")
        self.train(reference, *shape[:4], "--set", "trainer.micro_batch=6", "--set", "checkpoint.every=4")
        out = self.path("run")
        cmd = [tool("openba-pretrain"), "--config", self.config(), "--out", out, "--quiet", *ONE_THREAD, "--nproc", "2",
               *shape, "--set", "distributed.zero=1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 300
        while not os.path.exists(os.path.join(out, "checkpoints", "step-00000004")) and time.time() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and every rank
        proc.wait()
        self.assertTrue(os.path.exists(os.path.join(out, "checkpoints", "step-00000004")))
        # Resume as three ranks with ZeRO 2: the two-rank optimizer shards are re-cut.
        self.train(out, "--resume", *shape, "--set", "distributed.zero=2", nproc=3)
        self.assertLossesClose(self.losses(out), self.losses(reference))
        self.assertLossesClose(self.eval_losses(out)[-1:], self.eval_losses(reference)[-1:])
        final = os.path.join(out, "checkpoints", "step-00000008")
        self.assertEqual(sorted(n for n in os.listdir(final) if n.startswith("optimizer")),
                         [f"optimizer-rank-0000{r}-of-00003.safetensors" for r in range(3)])
        # And back to one process without sharding.
        self.train(out, "--resume", "--set", "trainer.steps=9", "--set", "trainer.global_batch=12",
                   "--set", "trainer.micro_batch=6", "--set", "checkpoint.every=4")
        self.assertEqual(len(self.losses(out)), 9)


class Faults(DistributedCase):
    def start(self, out, *flags, nproc=3):
        cmd = [tool("openba-pretrain"), "--config", self.config(), "--out", out, "--quiet", *ONE_THREAD,
               "--nproc", str(nproc), "--set", "trainer.steps=400", "--set", f"trainer.global_batch={2 * nproc}",
               "--set", "trainer.micro_batch=2", "--set", "checkpoint.every=0", "--set", "eval.every=0", *flags]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        deadline = time.time() + 300
        metrics = os.path.join(out, "metrics.jsonl")
        while time.time() < deadline:
            if os.path.exists(metrics):
                with open(metrics) as f:
                    if len(json_lines(f.read())) >= 3:
                        break
            time.sleep(0.05)
        pids = rank_pids(proc.pid)
        self.assertEqual(sorted(pids), list(range(nproc)))
        return proc, pids

    def finish(self, proc):
        try:
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        return err

    def test_a_killed_rank_makes_the_others_exit_naming_it(self):
        proc, pids = self.start(self.path("run"), "--set", "distributed.timeout_s=30")
        os.kill(pids[1], signal.SIGKILL)
        killed = time.time()
        err = self.finish(proc)
        elapsed = time.time() - killed
        self.assertNotEqual(proc.returncode, 0)
        self.assertLess(elapsed, 30, err)  # the others noticed long before the collective timeout
        for rank in (0, 2):
            self.assertRegex(err, rf"rank {rank}: .* failed at step \d+: .*rank 1 died or stopped answering")
        self.assertIn("rank 1 (pid", err)
        self.assertNotIn("Exception raised from", err)

    def test_a_frozen_rank_makes_the_others_exit_within_the_timeout(self):
        proc, pids = self.start(self.path("run"), "--set", "distributed.timeout_s=4", nproc=2)
        os.kill(pids[1], signal.SIGSTOP)
        stopped = time.time()
        err = self.finish(proc)
        self.assertNotEqual(proc.returncode, 0)
        self.assertRegex(err, r"rank 0: .* failed at step \d+: rank 1 died or stopped answering \(last heartbeat")
        self.assertLess(time.time() - stopped, 4 + 12 + 20)  # timeout, diagnosis and rank 0's linger, the launcher's grace
        self.assertIn("did not stop within", err)  # the launcher ended the frozen one

    def test_rank_0_dying_takes_the_store_with_it_and_is_named(self):
        proc, pids = self.start(self.path("run"), "--set", "distributed.timeout_s=30", nproc=2)
        os.kill(pids[0], signal.SIGKILL)
        err = self.finish(proc)
        self.assertNotEqual(proc.returncode, 0)
        self.assertRegex(err, r"rank 1: .* failed at step \d+: rank 0 died or stopped answering")


class Launchers(DistributedCase):
    def reference(self):
        out = self.path("nproc")
        self.train(out, "--set", "trainer.steps=4", nproc=2)
        return self.losses(out)

    def test_torchrun_no_python(self):
        expected = self.reference()
        out = self.path("torchrun")
        run([TORCHRUN, "--nproc_per_node", "2", "--master_port", str(free_port()), "--redirects", "2", "--tee", "2",
             "--log_dir", self.path("torchrun-logs"), "--no_python", tool("openba-pretrain"), "--config",
             self.config(), "--out", out, "--quiet", *ONE_THREAD, "--set", "trainer.steps=4"])
        self.assertEqual(self.losses(out), expected)

    def spawn(self, out, envs, *flags):
        procs = []
        for env in envs:
            full = dict(os.environ, **env)
            procs.append(subprocess.Popen([tool("openba-pretrain"), "--config", self.config(), "--out", out, "--quiet",
                                           *ONE_THREAD, "--set", "trainer.steps=4", *flags[len(procs)]],
                                          env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        results = [p.communicate(timeout=300) for p in procs]
        return [p.returncode for p in procs], [e for _, e in results]

    def test_slurm_variables(self):
        expected = self.reference()
        out = self.path("srun")
        port = str(free_port())
        envs = [{"SLURM_PROCID": str(r), "SLURM_NTASKS": "2", "SLURM_LOCALID": str(r), "SLURM_NTASKS_PER_NODE": "2",
                 "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port} for r in range(2)]
        codes, errs = self.spawn(out, envs, [], [])
        self.assertEqual(codes, [0, 0], errs)
        self.assertEqual(self.losses(out), expected)

    def test_configs_that_differ_between_ranks_are_an_error(self):
        port = str(free_port())
        envs = [{"RANK": str(r), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port} for r in range(2)]
        codes, errs = self.spawn(self.path("run"), envs, [], ["--set", "trainer.lr=1.0e-3"])
        self.assertEqual(codes, [1, 1], errs)
        for err in errs:
            self.assertIn("the configuration (SHA-256 of the effective YAML) differs between ranks: rank(s) 1", err)

    def test_bad_launch_environments(self):
        config = self.config()
        base = [tool("openba-pretrain"), "--config", config, "--out", self.path("x"), "--quiet"]
        env = dict(os.environ, RANK="0")
        env.pop("WORLD_SIZE", None)
        rc, _, err = self._run_env(base, env)
        self.assertEqual(rc, 1)
        self.assertIn("RANK is set but WORLD_SIZE is not", err)
        env = dict(os.environ, RANK="2", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1")
        rc, _, err = self._run_env(base, env)
        self.assertIn("RANK='2': expected an integer in [0, 1]", err)
        env = dict(os.environ, RANK="0", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1")
        rc, _, err = self._run_env(base + ["--nproc", "2"], env)
        self.assertEqual(rc, 1)
        self.assertIn("--nproc: this process was already launched as rank 0 of 2", err)
        rc, _, err = self._run_env(base + ["--nproc", "2", "--set", "distributed.zero=3"], dict(os.environ))
        self.assertEqual(rc, 1)
        self.assertIn("zero must be 0, 1 or 2", err)
        rc, _, err = self._run_env(base + ["--nproc", "3"], dict(os.environ))  # 8 examples do not split 3 ways
        self.assertEqual(rc, 1)
        self.assertIn("is not a multiple of trainer.micro_batch 4 x 3 rank(s)", err)
        self.assertNotIn("rank 0 (pid", err)  # refused before any worker started
        self.assertFalse(os.path.exists(self.path("x")))
        # NCCL asked for on CPU: a clear error from the rank, not a crash.
        rc, _, err = self._run_env(base + ["--nproc", "1", "--set", "distributed.backend=nccl"], dict(os.environ))
        self.assertNotEqual(rc, 0)
        self.assertIn("distributed.backend nccl: NCCL's collectives run on GPU tensors, but trainer.device is cpu", err)
        self.assertNotIn("terminate called", err)

    def _run_env(self, cmd, env):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stdout, proc.stderr


if __name__ == "__main__":
    unittest.main()
