"""One-line wordings of real messages as the libraries print them (PyTorch, TF/XLA/JAX, NCCL,
Slurm/PBS/LSF, the kernel, glibc, HF hub, wandb, Ray, shells), across versions; and the invariant
that the anchor prefilter never hides a line a signature would match."""

import pytest

from gpudash.sanitize import clean_text
from gpudash.triage import classify
from gpudash.triage import signatures as sigs
from gpudash.triage.classifier import _Scan
from gpudash.training.progress import completion_markers
from tests.conftest import FIXTURES

WORDINGS = [
("cuda_oom","torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 23.68 GiB of which 6.81 MiB is free. Process 1416 has 23.66 GiB memory in use."),
("cuda_oom","tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor with shape[32,64,224,224] and type float on /job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc"),
("cuda_oom","2023-01-01 W tensorflow/core/common_runtime/bfc_allocator.cc:479] Allocator (GPU_0_bfc) ran out of memory trying to allocate 2.34GiB (rounded to 2516582400)requested by op"),
("cuda_oom","RuntimeError: CUDA driver error: out of memory"),
("cuda_oom","ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine."),
("host_oom","RuntimeError: [enforce fail at alloc_cpu.cpp:114] data. DefaultCPUAllocator: not enough memory: you tried to allocate 2147483648 bytes."),
("host_oom","zsh: killed     python train.py"),
("host_oom","[1]+  Killed                  nohup python train.py > log 2>&1"),
("host_oom","Process finished with exit code 137 (interrupted by signal 9: SIGKILL)"),
("host_oom","subprocess.CalledProcessError: Command '['/usr/bin/python', 'train.py']' died with <Signals.SIGKILL: 9>."),
("host_oom","slurmstepd: error: Exceeded step memory limit at some point."),
("host_oom","numpy.core._exceptions._ArrayMemoryError: Unable to allocate 7.45 GiB for an array with shape (1000000, 1000) and data type float64"),
("host_oom","Traceback (most recent call last):\n  File \"train.py\", line 3, in <module>\n    x = [0] * 10**12\nMemoryError"),
("host_oom","RuntimeError: DataLoader worker (pid(s) 12345) exited unexpectedly"),
("host_oom","    Last State:     Terminated\n      Reason:       OOMKilled\n      Exit Code:    137"),
("disk_full","OSError: Not enough disk space. Needed: 7.44 GiB (download: 2.97 GiB, generated: 4.47 GiB, post-processed: Unknown size)"),
("disk_full","cp: error writing '/data/ckpt/model.bin': No space left on device"),
("disk_full","sqlite3.OperationalError: database or disk is full"),
("disk_full","E: You don't have enough free space in /var/cache/apt/archives/."),
("shm_exhausted","RuntimeError: unable to write to file </torch_18692_1954506624>: No space left on device (28)"),
("shm_exhausted","node1:123:456 [0] NCCL WARN Error while creating shared memory segment /dev/shm/nccl-AbCdEf (size 9637888)\nRuntimeError: NCCL error in: ProcessGroupNCCL.cpp:1269, unhandled system error, NCCL version 2.14.3"),
("shm_exhausted","Bus error (core dumped)"),
("nan_loss","Loss is inf, stopping training"),
("nan_loss","WARNING: non-finite loss, ending training  tensor([nan, nan, nan, nan], device='cuda:0')"),
("nan_loss","RuntimeError: The loss returned in `training_step` is nan."),
("nan_loss","1000/1000 [==============================] - 5s 5ms/step - loss: nan - accuracy: 0.1000\nBatch 1: Invalid loss, terminating training"),
("nan_loss","ValueError: Expected parameter loc (Tensor of shape (64, 2)) of distribution Normal(loc: torch.Size([64, 2]), scale: torch.Size([64, 2])) to satisfy the constraint Real(), but found invalid values:\ntensor([[nan, nan],"),
("nan_loss","step 100 loss 2.31\nstep 200 loss nan\nstep 300 loss nan\nstep 400 loss nan"),
("none","step 100 loss 2.31\nstep 200 loss nan\nstep 300 loss 2.1\nstep 400 loss 2.0"),
("cuda_error","RuntimeError: CUDA error: misaligned address"),
("cuda_error","RuntimeError: CUDA error: unspecified launch failure"),
("cuda_error","RuntimeError: cuDNN error: CUDNN_STATUS_INTERNAL_ERROR"),
("cuda_error","RuntimeError: CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasSgemm( handle, opa, opb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc)`"),
("cuda_error","RuntimeError: Triton Error [CUDA]: an illegal memory access was encountered"),
("cuda_error","torch.AcceleratorError: CUDA error: invalid argument"),
("gpu_hardware","Unable to determine the device handle for GPU 0000:3B:00.0: Unknown Error"),
("gpu_hardware","Failed to initialize NVML: Driver/library version mismatch"),
("gpu_hardware","RuntimeError: No CUDA GPUs are available"),
("gpu_hardware","RuntimeError: Unable to initialize backend 'tpu': ABORTED: The TPU is already in use by process with pid 1234. Not attempting to load libtpu.so in this process."),
("gpu_hardware","[ 4021.112] NVRM: Xid (PCI:0000:3b:00): 48, pid=1234, name=python, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0."),
("node_failure","2024-01-01 12:00:00,000 WARNING worker.py:2058 -- The node with node id: 3e4f and address: 10.0.0.5 and node name: 10.0.0.5 has been marked dead because the detector has missed too many heartbeats from it. This can happen when a \t(1) raylet crashes unexpectedly (OOM, preempted node, etc.)"),
("node_failure","ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.\n\tclass_name: TrainWorker\nThe actor is dead because its node has died. Node Id: abc"),
("nccl","RuntimeError: NCCL communicator was aborted on rank 3.  Original reason for failure was: [Rank 3] Watchdog caught collective operation timeout"),
("nccl","RuntimeError: Timed out initializing process group in store based barrier on rank: 3, for key: store_based_barrier_key:1 (world_size=8, worker_count=2, timeout=0:30:00)"),
("nccl","[E socket.cpp:957] [c10d] The client socket has timed out after 1800s while trying to connect to (10.0.0.1, 29500)."),
("nccl","torch.distributed.DistNetworkError: Connection reset by peer"),
("nccl","RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:598] Connection closed by peer [10.0.0.2]:12345"),
("network","urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>"),
("network","ssl.SSLEOFError: EOF occurred in violation of protocol (_ssl.c:2426)"),
("network","wandb: ERROR Run initialization has timed out after 90.0 sec."),
("network","huggingface_hub.errors.HfHubHTTPError: 504 Server Error: Gateway Time-out for url: https://huggingface.co/api/models/x"),
("network","requests.exceptions.ConnectionError: ('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))"),
("network","OSError: We couldn't connect to 'https://huggingface.co' to load this file, couldn't find it in the cached files and it looks like gpt2 is not the path to a directory containing a file named config.json."),
("code_error","OSError: gpt3 is not a local folder and is not a valid model identifier listed on 'https://huggingface.co/models'"),
("code_error","requests.exceptions.HTTPError: 404 Client Error: Not Found for url: https://huggingface.co/x/resolve/main/config.json"),
("code_error","RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x512 and 256x10)"),
("code_error","RuntimeError: Given groups=1, weight of size [64, 3, 7, 7], expected input[1, 4, 224, 224] to have 3 channels, but got 4 channels instead"),
("code_error","Traceback (most recent call last):\n  File \"train.py\", line 1\n    def f(\n         ^\nSyntaxError: '(' was never closed"),
("code_error","KeyError: Caught KeyError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n  File \"ds.py\", line 5, in __getitem__\nKeyError: 'label'"),
("code_error","train.py: error: unrecognized arguments: --lr_sched cosine"),
("code_error","/usr/bin/env: 'python\\r': No such file or directory"),
("code_error","bash: torchrun: command not found"),
("code_error","ImportError: libcudart.so.11.0: cannot open shared object file: No such file or directory"),
("segfault","*** SIGSEGV (@0x0) received by PID 1234 (TID 0x7f12) from PID 0; stack trace: ***"),
("segfault","torch.multiprocessing.spawn.ProcessExitedException: process 1 terminated with signal SIGSEGV"),
("segfault","[1]    12345 segmentation fault (core dumped)  python train.py"),
("segfault","double free or corruption (!prev)\nAborted (core dumped)"),
("preempted","[rank: 0] Received SIGTERM: 15"),
("preempted","Received signal 15, saving checkpoint and exiting"),
("preempted","sky.exceptions.ClusterStatusFetchingError: Cluster was preempted"),
("preempted","./run.sh: line 3:  4567 Terminated              python train.py"),
("time_limit","=>> PBS: job killed: walltime 3618 exceeded limit 3600"),
("time_limit","TERM_RUNLIMIT: job killed after reaching LSF run time limit."),
("time_limit","srun: error: *** STEP 123.0 CANCELLED AT 2024-01-01T00:00:00 DUE TO TIME LIMIT ***"),
("cancelled","Traceback (most recent call last):\n  File \"train.py\", line 10, in <module>\n    time.sleep(1)\nKeyboardInterrupt"),
("unknown_error","Traceback (most recent call last):\n  File \"train.py\", line 10, in <module>\n    raise RuntimeError('boom')\nRuntimeError: boom"),
("unknown_error","EOFError: Ran out of input"),
("none","GPU available: True (cuda), used: True\nwandb: Network error (ReadTimeout), entering retry loop.\nstep 100 loss 2.3\nstep 200 loss 2.2\nstep 300 loss 2.1\nstep 400 loss 2.0"),
("none","Epoch 0: 100%|██████████| 100/100 [00:10<00:00, 9.5it/s, loss=0.5]\nUserWarning: Not enough free disk space to download the file.\nEpoch 1: 100%|██████████| 100/100 [00:10<00:00, 9.5it/s, loss=0.4]\nEpoch 2:  50%|█████     | 50/100 [00:05<00:05, 9.5it/s, loss=0.3]\nEpoch 2:  60%|██████    | 60/100 [00:06<00:04, 9.5it/s, loss=0.3]"),
("code_error","RuntimeError: CUDA error: CUDA driver version is insufficient for CUDA runtime version"),
("code_error","RuntimeError: Distributed package doesn't have NCCL built in"),
("code_error","OSError: Can't load tokenizer for 'bert-base-uncased'. If you were trying to load it from 'https://huggingface.co/models', make sure you don't have a local directory with the same name."),
("code_error","_pickle.UnpicklingError: Weights only load failed. This file can still be loaded, to do so you have two options"),
("nccl","torch.distributed.DistNetworkError: The server socket has failed to listen on any local network address. The server socket has failed to bind to [::]:29500 (errno: 98 - Address already in use)."),
("code_error","tensorflow.python.framework.errors_impl.InvalidArgumentError: Incompatible shapes: [32,10] vs. [64,10]"),
("code_error","srun: error: Unable to allocate resources: Requested node configuration is not available"),
("cuda_error","RuntimeError: CUDA error: no kernel image is available for execution on the device"),
("host_oom","RuntimeError: unable to mmap 123 bytes from file <filename not specified>: Cannot allocate memory (12)"),
("shm_exhausted","ERROR:torch.distributed.elastic.multiprocessing.api:failed (exitcode: -7) local_rank: 0 (pid: 5406) of binary: /usr/bin/python3"),
("nan_loss","RuntimeError: probability tensor contains either `inf`, `nan` or element < 0"),
]


@pytest.mark.parametrize("expected,text", WORDINGS, ids=[f"{i:02d}-{w[0]}" for i, w in enumerate(WORDINGS)])
def test_real_wording(expected, text):
    assert classify(text).cls == expected


def _all_lines():
    for p in sorted((FIXTURES / "triage_corpus").glob("*.log")) + sorted((FIXTURES / "logs").glob("*.log")):
        for line in p.read_text(encoding="utf-8", errors="replace").split("\n"):
            for seg in line.split("\r"):
                if seg.strip():
                    yield seg
    for _cls, text in WORDINGS:
        yield from (s for s in text.split("\n") if s.strip())


def test_prefilter_never_hides_a_matching_line():
    markers = completion_markers()
    hidden = []
    for seg in dict.fromkeys(_all_lines()):
        clean = clean_text(seg, max_len=None)
        body = sigs.LINE_PREFIX.sub("", clean, count=1) or clean
        if any(i.pattern.search(clean) for i in sigs.IGNORE):
            continue
        if any(s.pattern.search(body) or s.pattern.search(clean) for s in sigs.SIGNATURES):
            scan = _Scan(seg, markers, ())
            if not scan.hits and scan.completion is None:
                hidden.append(seg[:120])
    assert hidden == []


def test_every_signature_has_anchors_and_a_known_class():
    from gpudash.triage.classes import CLASS_IDS

    for s in sigs.SIGNATURES:
        assert s.anchors and all(a == a.lower() for a in s.anchors), s.name
        assert s.cls in CLASS_IDS, s.name
    for name, (cls, band) in sigs.EXCEPTION_CLASSES.items():
        assert cls in CLASS_IDS and band in (sigs.HARDWARE, sigs.PHYSICAL, sigs.CONSEQUENCE), name


def test_ignore_rules_do_not_swallow_a_real_error_on_the_same_line():
    line = ("CUDA error: uncorrectable ECC error encountered CUDA kernel errors might be asynchronously reported "
            "at some other API call. Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.")
    assert classify(line).cls == "gpu_hardware"
