"""Failure signatures, written from real message texts across library versions.

Each signature is a regex over ONE sanitised line segment (a `\\r`-rewritten progress line is
split into its segments) plus lower-case *anchors*: substrings one of which the segment must
contain. The anchors drive the prefilter (plain `str.find` over the whole text, fast on 50 MB)
so the regexes only ever run on candidate lines.

The first signature (in table order) that matches a segment decides it: specific wordings come
before generic ones (`CUDA error: out of memory` before `CUDA error: …`, `/dev/shm` + ENOSPC before
ENOSPC). Bands rank classes when several appear in one failure episode (lower wins; the first
occurrence wins inside a band); see classifier.py.

Sources of the wordings: tests/fixtures/triage_corpus/index.json lists real excerpts (with
their issue URLs) that these were written from and are tested against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

# Bands: which failure is the root cause when several appear in one episode.
HARDWARE = 1  # the box or the accelerator failed: everything after it is a consequence
PHYSICAL = 2  # the run itself hit a wall (memory, disk, shm, NaN, a kernel fault, a crash)
SCHEDULER = 3  # the scheduler/provider ended the job (time limit, preemption)
CONSEQUENCE = 4  # often a symptom of something else: first occurrence wins among these
UNKNOWN = 6  # something failed, we cannot say what


@dataclass(frozen=True)
class Signature:
    name: str
    cls: str
    band: int
    regex: str
    anchors: tuple[str, ...]
    soft: bool = False  # transient/retry noise: counts only when nothing else does
    cause: str | None = None  # disk_full: bytes | inodes | quota
    metric: bool = False  # a printed loss value: void when a finite loss is printed later
    flags: int = re.I

    @cached_property
    def pattern(self) -> re.Pattern:
        # Compiled on first use, not at import: compiling the whole table cost ~0.3 s of the
        # TUI's start-up, and the anchor prefilter means most patterns never run on a given log.
        return re.compile(self.regex, self.flags)


def S(name: str, cls: str, band: int, pattern: str, *anchors: str, icase: bool = True,
      soft: bool = False, cause: str | None = None, metric: bool = False) -> Signature:
    return Signature(name, cls, band, pattern, tuple(a.lower() for a in anchors),
                     soft, cause, metric, re.I if icase else 0)


# Lines that look alarming but are routine, or are the consequence of a decision made elsewhere.
# A segment matching one of these yields no hit at all.
IGNORE: tuple[Signature, ...] = (
    # torchrun telling the OTHER ranks to stop after one failed: never the cause.
    S("torchrun_closing", "", 0, r"closing signal SIG\w+", "closing signal"),
    # fp16 dynamic loss scaling doing its job (DeepSpeed, apex, fairseq, HF): routine noise.
    S("fp16_overflow", "", 0,
      r"OVERFLOW! Rank \d+ Skipping step|Gradient overflow\.\s+Skipping step|overflow detected, "
      r"setting loss scale|Attempted loss scale|Reducing hysteresis|loss scaler \d+ reducing loss scale",
      "loss scale"),
    # PyTorch's own hint printed under every CUDA error (including OOM): not a device assert.
    S("dsa_hint", "", 0,
      r"^\s*(?:Compile with .TORCH_USE_CUDA_DSA. to enable device-side assertions\.?|"
      r"For debugging consider passing CUDA_LAUNCH_BLOCKING=1\.?)\s*$", "device-side", "launch_blocking"),
    S("elastic_doc", "", 0, r"To enable traceback see: https://pytorch\.org/docs/stable/elastic/errors",
      "elastic/errors"),
)

_EXIT = r"(?:exit(?:ed)?(?: with)?(?: code| status|code)\s*[:=]?\s*|exit status\s+|returned non-zero exit status\s+)"
# Lines that print an exit status (lower-case anchors).
EXIT_ANCHORS = ("exit code", "exit status", "exitcode", "exited with", "returned non-zero", "exit 1")

SIGNATURES: tuple[Signature, ...] = (
    # ---------------------------------------------------------------- hardware / node (band 1)
    S("xid", "gpu_hardware", HARDWARE, r"NVRM: Xid\b|\bXid\s*(?:\(PCI:[^)]*\))?\s*:?\s*\d+\b", "xid"),
    S("fell_off_bus", "gpu_hardware", HARDWARE, r"fallen off the bus|fell off the bus", "off the bus"),
    S("ecc", "gpu_hardware", HARDWARE,
      r"uncorrectable ECC|ECC_UNCORRECTABLE|ECCUncorrectable|double[- ]bit ECC|\bECC error|"
      r"row[- ]remap(?:ping)? fail", "ecc", "remap"),
    S("gpu_lost", "gpu_hardware", HARDWARE,
      r"GPU is lost|GPU has been lost|Unable to determine the device handle for GPU|RmInitAdapter failed|"
      r"Failed to initialize NVML|NVML.{0,40}(?:version mismatch|Unknown Error)|Found no NVIDIA driver|"
      r"uncorrectable NVLink error|NVLink (?:error|fatal)|Unable to initialize backend '(?:tpu|cuda|gpu|rocm)'|"
      r"No CUDA GPUs are available|CUDA_ERROR_NO_DEVICE|cudaErrorNoDevice|no CUDA-capable device is detected",
      "is lost", "been lost", "device handle", "initadapter failed", "nvml", "nvidia driver", "no cuda gpus",
      "no_device", "nodevice", "cuda-capable device is", "nvlink", "initialize backend"),
    S("gpu_busy", "gpu_hardware", HARDWARE,
      r"CUDA-capable device\(s\) is/are busy or unavailable|all CUDA-capable devices are busy or unavailable|"
      r"cudaErrorDevicesUnavailable", "busy or unavailable", "devicesunavailable"),
    S("tpu_init", "gpu_hardware", HARDWARE,
      r"No accelerator found|No TPU devices? (?:found|available)|TPU initialization failed|"
      r"Failed to (?:initialize|connect to) (?:the )?TPU|TPU is already in use|"
      r"Couldn'?t open (?:TPU )?device:? /dev/(?:accel|vfio)\S*|/dev/accel\d+.{0,40}(?:busy|not permitted|failed)",
      "no accelerator found", "no tpu", "tpu initialization", "the tpu", "to initialize tpu", "tpu is already",
      "/dev/accel", "/dev/vfio"),
    S("failed_precondition_device", "gpu_hardware", HARDWARE,
      r"FAILED_PRECONDITION.{0,200}(?:TPU|device|accel|driver|initiali[sz]|chip)|"
      r"(?:TPU|accel|chip|device).{0,200}FAILED_PRECONDITION", "failed_precondition"),
    S("device_busy", "gpu_hardware", HARDWARE,
      r"(?:/dev/(?:accel|vfio|nvidia)|TPU|GPU|open device).{0,120}Device or resource busy|"
      r"Device or resource busy.{0,120}(?:/dev/(?:accel|vfio|nvidia)|TPU|GPU)", "resource busy"),
    S("slurm_node_fail", "node_failure", HARDWARE,
      r"DUE TO NODE FAIL|\bNODE_FAIL\b|\bNode failure on\b|\bBOOT_FAIL\b", "node fail", "node_fail", "boot_fail"),
    S("node_died", "node_failure", HARDWARE,
      r"NodeDiedError|marked (?:as )?dead because|node .{0,80} has (?:died|been marked dead)|"
      r"because its node (?:has )?died|raylet (?:has )?died|The node .{0,80} (?:died|was terminated)|"
      r"(?:instance|machine|vm|host) (?:was )?(?:terminated|deleted|stopped) unexpectedly",
      "nodediederror", "marked dead", "marked as dead", "node has died", "node died", "has died",
      "raylet died", "raylet has died", "was terminated", "terminated unexpectedly", "deleted unexpectedly",
      "stopped unexpectedly", "been marked dead"),
    # ---------------------------------------------------------------- physical (band 2)
    # shared memory before disk: ENOSPC on /dev/shm is shm, not the disk.
    S("shm_enospc", "shm_exhausted", PHYSICAL,
      r"/dev/shm.{0,200}(?:No space left|Errno 28|ENOSPC)|(?:No space left|Errno 28|ENOSPC).{0,200}/dev/shm|"
      r"unable to write to file </torch_|unable to (?:open|mmap|allocate) shared memory|"
      r"Error while creating shared memory segment|shm_open\S* failed",
      "/dev/shm", "write to file", "shared memory", "shm_open"),
    S("shm_bus", "shm_exhausted", PHYSICAL,
      r"insufficient shared memory|out of shared memory|shared memory limit|Unexpected bus error|"
      r"killed by signal: Bus error|\bBus error\b|\bSIGBUS\b|exitcode\s*:\s*-7\b|Signal 7 \(SIGBUS\)|"
      r"<Signals\.SIGBUS: 7>|" + _EXIT + r"135\b",
      "shared memory", "bus error", "sigbus", *EXIT_ANCHORS),
    # accelerator memory
    S("cuda_oom", "cuda_oom", PHYSICAL,
      r"CUDA out of (?:the )?memory|torch\.(?:cuda\.)?OutOfMemoryError|CUDA error: out of memory|"
      r"cuda runtime error \(2\)\s*:\s*out of memory|error=2 : out of memory|CUDA_ERROR_OUT_OF_MEMORY|"
      r"cudaErrorMemoryAllocation|Cuda failure 'out of memory'|cudaMalloc failed: out of memory|"
      r"(?:HIP|MPS backend|XPU|NPU) out of memory|Tried to allocate [\d.]+ ?[KMGT]i?B|"
      r"\bCUDA\b.{0,40}\bout of memory\b|\bout of memory\b.{0,60}\b(?:GPU|CUDA|device ordinal)\b|"
      r"ran out of memory trying to allocate",
      "out of memory", "outofmemoryerror", "out_of_memory", "memoryallocation", "tried to allocate",
      "out of the memory", "trying to allocate"),
    S("blas_alloc", "cuda_oom", PHYSICAL, r"CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED|"
      r"CUSOLVER_STATUS_ALLOC_FAILED|CUFFT_ALLOC_FAILED|CUSPARSE_STATUS_ALLOC_FAILED", "alloc_failed"),
    S("xla_hbm", "cuda_oom", PHYSICAL,
      r"Program hbm requirement|Largest program allocations in hbm|Ran out of memory in memory space (?:hbm|vmem)|"
      r"\bHBM\b.{0,40}(?:OOM|out of memory|exhausted)|RESOURCE_EXHAUSTED.{0,200}(?:memory|allocat|\bOOM\b|hbm|bytes)|"
      r"OOM when allocating tensor|ResourceExhaustedError.{0,80}OOM|Out of memory while trying to allocate|"
      r"Out of memory allocating|at the bottom of memory\. That was not possible|"
      r"Failed to allocate request for .{0,40} on device|No available memory for the cache blocks|"
      r"out of (?:GPU|device|video|graphics) memory|\bGPU (?:memory )?OOM\b",
      "hbm", "resource_exhausted", "oom when allocating", "resourceexhausted", "out of memory",
      "bottom of memory", "failed to allocate request", "no available memory", "of gpu memory", "of device memory",
      "of video memory", "of graphics memory", "gpu oom", "in memory space"),
    # host memory
    S("kernel_oom", "host_oom", PHYSICAL,
      r"Out of memory: Kill(?:ed)? process|\boom-kill:|oom_kill_process|invoked oom-killer|"
      r"Memory cgroup out of memory|oom_reaper: reaped process|Detected \d+ oom[-_]kill event|"
      r"oom[-_]kill event\(s\)|Some of (?:your processes|the step tasks) (?:may )?have been (?:OOM )?killed|"
      r"task \d+(?:-\d+)?: Out Of Memory|\bOUT_OF_MEMORY\b|\bOOMKilled\b|"
      r"Task was killed due to the node running low on memory|killed due to memory pressure|"
      r"ray\.exceptions\.OutOfMemoryError|killed by signal: Killed|"
      r"DefaultCPUAllocator: (?:not enough memory|can't allocate memory)|std::bad_alloc|"
      r"Unable to allocate [\d.]+ ?[KMGT]i?B for an array|\[Errno 12\] Cannot allocate memory|"
      r"\bCannot allocate memory\b|Exceeded (?:step|job) memory limit|exceeded memory limit|"
      r"job killed: v?mem [\w.]+ exceeded limit",
      "out of memory", "oom-kill", "oom_kill", "oom-killer", "oom_reaper", "oom killed", "been killed",
      "out_of_memory", "oomkilled", "low on memory", "memory pressure", "outofmemoryerror", "signal: killed",
      "defaultcpuallocator", "bad_alloc", "unable to allocate", "cannot allocate memory", "step memory limit",
      "job memory limit", "exceeded memory limit", "job killed"),
    S("sigkill", "host_oom", PHYSICAL,
      r"exitcode\s*:\s*-9\b|Signal 9 \(SIGKILL\)|terminated with signal SIGKILL|<Signals\.SIGKILL: 9>|"
      r"received signal (?:9|SIGKILL)\b|" + _EXIT + r"137\b|\bexit 137\b|(?:exit|return) (?:code|status)\s*[:=]?\s*-9\b",
      "sigkill", "signal 9", *EXIT_ANCHORS),
    S("shell_killed", "host_oom", PHYSICAL,
      r"^\s*Killed(?:: 9)?\s*$|:\s*(?:line \d+:\s*)?\d+\s+Killed\b|^\s*Killed\s+(?:\S*python|torchrun|accelerate|deepspeed|\S+\.py)|"
      r"^\s*\[\d+\][+-]?\s+(?:\d+\s+)?Killed\s|(?i:\bzsh: killed\b)",
      "killed", icase=False),
    # disk
    S("disk_quota", "disk_full", PHYSICAL, r"Disk quota exceeded|\[Errno 122\]|\bEDQUOT\b|quota exceeded",
      "quota", "errno 122", "edquot", cause="quota"),
    S("disk_inodes", "disk_full", PHYSICAL,
      r"(?:no free|out of|ran out of|no more) inodes|inode (?:table|quota|limit) (?:is )?(?:full|exceeded|reached)",
      "inode", cause="inodes"),
    S("enospc", "disk_full", PHYSICAL,
      r"No space left on device|\[Errno 28\]|\bENOSPC\b|os error 28|kind: StorageFull|\bStorageFull\b|"
      r"There is not enough space on the disk|not enough (?:free )?(?:disk )?space|disk (?:is )?full|"
      r"(?:don't|do not) have enough (?:free )?(?:disk )?space|file ?system (?:is )?full",
      "no space", "errno 28", "enospc", "os error 28", "storagefull", "enough space", "enough free",
      "enough disk", "disk full", "disk is full", "system full", "system is full"),
    S("torch_save_truncated", "disk_full", PHYSICAL,
      r"basic_ios::clear: iostream error|unexpected pos \d+ vs \d+|PytorchStreamWriter failed writing file|"
      r"\bfile write failed\b", "basic_ios", "unexpected pos", "failed writing", "write failed"),
    # divergence
    S("loss_scale_min", "nan_loss", PHYSICAL,
      r"Current loss scale already at minimum|Minimum loss scale reached|loss scale (?:has )?(?:reached|hit) (?:its )?minimum",
      "loss scale"),
    S("anomaly_nan", "nan_loss", PHYSICAL,
      r"returned (?:nan|inf) values in its \w+ output|Function '\w+' returned (?:nan|inf)|"
      r"Loss became infinite or NaN|\bloss (?:is|became|was|has become) (?:nan|inf|infinite|not finite|non-finite)\b"
      r"(?=.{0,80}(?:stop|abort|exit|terminat|halt|kill|break))|"
      r"non-finite (?:loss|grad|gradient|norm|value)|(?:loss|gradients?|total norm[^,]{0,40}) (?:is|are) non-finite|"
      r"is non-finite, so it cannot be clipped|NaN or Inf found in input tensor|Detected (?:a )?NaN|"
      r"\bNaN (?:loss|detected)\b|\bnan loss\b|outputs? (?:is|are|contains?) NAN|found invalid values:.{0,300}\bnan\b|"
      r"\bloss\b.{0,40}\b(?:nan|inf)\b.{0,40}\b(?:stop|abort|exit|terminat|halt)|"
      r"The loss returned in .{0,40} is (?:nan|inf)|Invalid loss, terminating training|\bfound (?:a )?NaN\b|"
      r"but found invalid values|contains either `inf`, `nan`|Input contains NaN",
      "returned nan", "returned inf", "infinite", "non-finite", "not finite", "nan", "terminating training",
      "found invalid values", "`nan`", "contains nan"),
    S("loss_nan_metric", "nan_loss", PHYSICAL,
      r"""(?<![\w./])['"]?(?:loss|train[_ ]loss|total[_ ]loss|train/loss)(?![\w/])['"]?\s*(?:is\s+|[=:]\s*)?['"]?[-+]?(?:nan|inf)\b""",
      "nan", "=inf", ": inf", "'inf", "loss inf", "loss is inf", "-inf", "+inf", metric=True),
    # kernel faults (before segfault: "an illegal instruction was encountered" is CUDA's)
    S("illegal_access", "cuda_error", PHYSICAL,
      r"illegal memory access|ILLEGAL_ADDRESS|cudaErrorIllegalAddress|misaligned address|"
      r"illegal instruction was encountered|unspecified launch failure|CUDA_ERROR_LAUNCH_FAILED|"
      r"cudaErrorLaunchFailure|too many resources requested for launch|no kernel image is available|"
      r"invalid device function", "illegal", "misaligned", "launch failure", "launch_failed",
      "launchfailure", "too many resources", "kernel image", "invalid device function"),
    S("device_assert", "cuda_error", PHYSICAL,
      r"device-side assert(?:ion)? triggered|cudaErrorAssert|Assertion `[^`]*` failed",
      "assert triggered", "assertion triggered", "cudaerrorassert", "assertion `"),
    S("driver_mismatch", "code_error", CONSEQUENCE,
      r"CUDA driver version is insufficient for CUDA runtime version|NVIDIA driver on your system is too old|"
      r"Distributed package doesn't have NCCL built in|Torch not compiled with CUDA enabled|"
      r"Attempting to deserialize object on a CUDA device but torch\.cuda\.is_available\(\) is False",
      "driver version is insufficient", "driver on your system is too old", "nccl built in",
      "compiled with cuda", "deserialize object on a cuda device"),
    S("cuda_generic", "cuda_error", PHYSICAL,
      r"CUDNN_STATUS_\w+|cuDNN error|CUBLAS_STATUS_\w+|CUSOLVER_STATUS_\w+|cuda runtime error \(\d+\)|"
      r"CUDA error: |CUDA_ERROR_\w+|cudaError\w+|CUDA kernel errors might be asynchronously reported|"
      r"CUDARuntimeError|CUDADriverError",
      "cudnn_status", "cudnn error", "cublas_status", "cusolver_status", "cuda runtime error", "cuda error",
      "cuda_error", "cudaerror", "cuda kernel errors", "cudaruntimeerror", "cudadrivererror"),
    # native crashes
    S("segv", "segfault", PHYSICAL,
      r"Segmentation fault|\bSIGSEGV\b|\bsignal 11\b|Signals\.SIGSEGV|exitcode\s*:\s*-11\b|"
      r"Signal 11 \(SIGSEGV\)|" + _EXIT + r"139\b|\bexit 139\b|\bsegfault",
      "segmentation fault", "sigsegv", "signal 11", "segfault", *EXIT_ANCHORS),
    S("native_crash", "segfault", PHYSICAL,
      r"Illegal instruction(?: \(core dumped\))?\s*$|\bSIGILL\b|Floating point exception(?: \(core dumped\))?\s*$|\bSIGFPE\b|"
      r"\b(?:3221225477|3221225725|3221226505|-1073741819|-1073741571)\b|0xC0000005|0xC00000FD|0xC0000409|"
      r"\baccess violation\b",  # Windows: STATUS_ACCESS_VIOLATION, stack overflow, stack buffer overrun
      "illegal instruction", "sigill", "floating point exception", "sigfpe", "3221225", "3221226", "0xc0000",
      "-107374", "access violation"),
    # ---------------------------------------------------------------- scheduler (band 3)
    S("slurm_time_limit", "time_limit", SCHEDULER,
      r"DUE TO TIME LIMIT|CANCELLED.{0,80}TIME LIMIT|DUE TO DEADLINE|(?:Job)?State=(?:TIMEOUT|DEADLINE)\b|"
      r"exceeded (?:its )?(?:time|walltime|wall[- ]clock) limit|walltime .{0,40}exceeded limit|"
      r"PBS: job killed: walltime|TERM_RUNLIMIT|job killed after reaching LSF run time limit|"
      r"exceeded (?:hard|soft) wallclock",
      "time limit", "due to deadline", "state=timeout", "state=deadline", "walltime", "wall-clock",
      "wall clock", "wallclock", "runlimit", "run time limit"),
    S("slurm_preempt", "preempted", SCHEDULER,
      r"DUE TO PREEMPTION|DUE TO JOB REQUEUE|(?:Job)?State=PREEMPTED\b|\bjob (?:was |has been )?requeued\b|"
      r"\b(?:was|been|being|got|instance|vm|node|job|tpu|pod|machine)\s+preempted\b|\bpreempted by\b|"
      r"preemption notice|\bPREEMPTED\b",
      "preempt", "requeue"),
    S("spot_notice", "preempted", SCHEDULER,
      r"spot (?:instance )?(?:interruption|termination)|Spot interruption|interruption notice|"
      r"termination notice|Instance is going to be interrupted|rebalance recommendation|termination is imminent",
      "spot instance", "spot interruption", "spot termination", "interruption notice", "termination notice",
      "going to be interrupted", "rebalance recommendation", "termination is imminent"),
    # ---------------------------------------------------------------- consequences (band 4)
    S("nccl_retry", "nccl", CONSEQUENCE, r"NCCL INFO .{0,200}retrying", "retrying", soft=True),
    S("nccl", "nccl", CONSEQUENCE,
      r"Watchdog caught collective operation timeout|collective operation timeout|"
      r"NCCL (?:error|timeout|communicator was aborted|WARN)|\bnccl\w*Error\b|"
      r"ProcessGroupNCCL.{0,200}(?:Timeout|timed out|exception|error|abort)|"
      r"Some NCCL operations have failed or timed out|DistBackendError|DistNetworkError|DistStoreError|"
      r"Rendezvous\w*(?:Timeout|Connection|Closed)Error|Timed out initializing process group|"
      r"socketStartConnect|Connection closed by remote peer|The client socket has timed out|"
      r"c10d.{0,200}(?:timed out|Timeout|Connection (?:reset|refused|closed))|"
      r"TCPStore.{0,200}(?:timed out|Connection|failed)|NCCL_ASYNC_ERROR|Proxy Call to rank \d+ failed|"
      r"watchdog got stuck|Heartbeat monitor timed out|gloo.{0,200}(?:Connection closed by peer|Timed out|timeout)|"
      r"Connection closed by peer|mismatch between collectives|disagreement between rank\s?\d+ and rank\s?\d+|"
      r"server socket has failed to (?:bind|listen)|errno: 98 - Address already in use",
      "collective operation", "nccl error", "nccl timeout", "nccl communicator", "nccl warn", "ncclsystemerror",
      "ncclinternalerror", "ncclunhandledcudaerror", "ncclremoteerror", "ncclinvalidusage", "ncclinvalidargument",
      "nccl_async_error", "nccl operations", "distbackenderror", "distnetworkerror", "diststoreerror",
      "rendezvous", "initializing process group", "socketstartconnect", "remote peer", "client socket",
      "tcpstore", "proxy call", "watchdog got stuck", "monitor timed out", "connection closed by peer",
      "processgroupnccl", "mismatch between collectives", "disagreement between rank", "server socket",
      "address already in use"),
    S("signal_term", "preempted", CONSEQUENCE,
      r"Received SIGTERM|SIGTERM received|(?:got|caught|received) (?:signal (?:SIGTERM|15)|SIGTERM)\b|"
      r"got signal: 15\b|Received 15 death signal|Signal 15 \(SIGTERM\)|exitcode\s*:\s*-15\b|"
      r"terminated with signal SIGTERM|<Signals\.SIGTERM: 15>|" + _EXIT + r"143\b",
      "sigterm", "signal 15", "signal: 15", "death signal", *EXIT_ANCHORS),
    S("shell_terminated", "preempted", CONSEQUENCE,
      r"^\s*Terminated\s*$|:\s*(?:line \d+:\s*)?\d+\s+Terminated\b", "terminated", icase=False),
    S("slurm_cancel", "cancelled", CONSEQUENCE,
      r"\bCANCELLED AT [\dT:.\-]+\s*(?:DUE TO SIGNAL \w+\s*)?\*\*\*|\bCANCELLED AT [\dT:.\-]+\s*$|"
      r"\bCANCELLED by (?:user )?\d+|(?:Job)?State=CANCELLED\b|\bscancel\b.{0,80}(?:job|signal)",
      "cancelled at", "cancelled by", "state=cancelled", "scancel"),
    S("sigint_sighup", "cancelled", CONSEQUENCE,
      r"\bKeyboardInterrupt\b|Received SIG(?:INT|HUP)|SIG(?:INT|HUP) received|got signal: [12]\b|"
      r"Received [12] death signal|Signal [12] \((?:SIGINT|SIGHUP)\)|exitcode\s*:\s*-[12]\b|"
      r"<Signals\.SIG(?:INT|HUP): [12]>|" + _EXIT + r"130\b|^\s*Hangup\s*$",
      "keyboardinterrupt", "sigint", "sighup", "signal: 1", "signal: 2", "death signal", "hangup", *EXIT_ANCHORS),
    S("crlf", "code_error", CONSEQUENCE,
      r"\$'\\r': command not found|bad interpreter:.{0,80}\^M|\^M: bad interpreter|DOS line breaks|"
      r"unexpected token `\$'[^']*\\r'|env: ['‘]?[\w.-]+\\r['’]?: No such file|\\r': No such file or directory|"
      r"/usr/bin/env: .{0,40}\\r",
      "$'\\r'", "^m", "dos line breaks", "\\r'", "\\r’", "\\r:"),
    S("shell_code", "code_error", CONSEQUENCE,
      r": command not found|can't open file .{0,200}No such file or directory|"
      r"error: unrecognized arguments|error: the following arguments are required|error: argument [-\w]+: invalid",
      "command not found", "can't open file", "unrecognized arguments", "arguments are required",
      "error: argument"),
    S("torch_code", "code_error", CONSEQUENCE,
      r"Error\(s\) in loading state_dict|size mismatch for \S+: copying a param|Missing key\(s\) in state_dict|"
      r"Unexpected key\(s\) in state_dict|shapes cannot be multiplied|must match the size of tensor|"
      r"Sizes of tensors must match|Expected all tensors to be on the same device|expected scalar type \w+ but found|"
      r"does not require grad and does not have a grad_fn|backward through the graph a second time|"
      r"has been modified by an inplace operation|Expected input batch_size|Torch not compiled with CUDA enabled|"
      r"is not a valid model identifier|Repository Not Found|RepositoryNotFoundError|GatedRepoError|"
      r"\b4[01]\d Client Error|HTTPError: 4[01]\d\b|Non-existent config key|is not a valid config key|"
      r"ConfigAttributeError|ConfigKeyError|MissingMandatoryValue|omegaconf\.errors\.\w+|hydra\.errors\.\w+|"
      r"Error while deserializing header|expected input\[.{0,80}to have \d+ channels|"
      r"Input type \(.{0,60}\) and weight type \(.{0,60}\) should be the same|Expected object of (?:scalar|device) type|"
      r"view size is not compatible with input tensor|stack expects each tensor to be equal size|"
      r"Boolean value of Tensor with more than one value is ambiguous|Can't call numpy\(\) on Tensor that requires grad|"
      r"Default process group has not been initialized|Expected to have finished reduction in the prior iteration|"
      r"Error building extension|cannot open shared object file|to have (?:one of the following )?scalar types?\b|"
      r"doesn't match the broadcast shape|dtypes? (?:must )?match|ModuleNotFoundError: No module named|"
      r"ImportError: cannot import name|Caught \w+Error in DataLoader worker process|"
      r"Can't load (?:tokenizer|config|the model|weights|feature extractor|image processor|processor) for|"
      r"Error no file named|Weights only load failed|Unable to allocate resources: Requested node configuration|"
      r"Batch job submission failed|execve\(\): .{0,200}Permission denied",
      "state_dict", "size mismatch", "shapes cannot", "size of tensor", "sizes of tensors", "same device",
      "expected scalar", "grad_fn", "second time", "inplace operation", "input batch_size",
      "compiled with cuda", "model identifier", "repository not found", "repositorynotfound", "gatedrepo",
      " client error", "httperror: 4", "config key", "configattributeerror", "configkeyerror",
      "missingmandatory", "omegaconf.errors", "hydra.errors", "deserializing header", "channels, but got",
      "and weight type", "expected object of", "view size is not", "stack expects", "is ambiguous", "numpy()",
      "default process group", "finished reduction", "building extension", "shared object file",
      "following scalar type", "broadcast shape", "dtypes match", "dtype match", "dtypes must", "no module named", "cannot import name",
      "dataloader worker process", "can't load", "error no file named", "weights only load failed",
      "unable to allocate resources", "batch job submission failed", "execve"),
    # network: retries that keep going are noise until they are the last thing the run printed
    S("net_retry", "network", CONSEQUENCE,
      r"Network error \(\w+\), entering retry loop|\bRetrying \(Retry\(|\bretrying in [\d.]+ ?s|"
      r"\[Retry \d+/\d+\]|will retry",
      "retry", "retrying", soft=True),
    S("rate_limit", "network", CONSEQUENCE,
      r"\b429\b.{0,80}(?:Too Many Requests|Client Error|rate)|Too Many Requests|rate limit(?:ed| exceeded| reached)?\b|"
      r"RateLimitError", "429 client", "error 429", "429 too many", "too many requests", "rate limit", "ratelimit"),
    S("net_timeout", "network", CONSEQUENCE,
      r"ReadTimeout|ConnectTimeout|Read timed out|Connect(?:ion)? timed out|Connection to \S+ timed out|"
      r"Operation timed out|initialization has timed out|wandb: ERROR .{0,120}timed out|socket\.timeout|"
      r"TimeoutError: timed out",
      "readtimeout", "connecttimeout", "read timed out", "connect timed out", "connection timed out",
      "operation timed out", "has timed out", "socket.timeout", "timeouterror: timed out"),
    S("net_connection", "network", CONSEQUENCE,
      r"ConnectionResetError|Connection reset by peer|ConnectionRefusedError|Connection refused|"
      r"ConnectionAbortedError|Connection aborted|RemoteDisconnected|Max retries exceeded with url|"
      r"NewConnectionError|Temporary failure in name resolution|Name or service not known|"
      r"Network is unreachable|No route to host|\bgaierror\b",
      "connectionreseterror", "reset by peer", "connectionrefusederror", "connection refused",
      "connectionabortederror", "connection aborted", "remotedisconnected", "max retries exceeded",
      "newconnectionerror", "name resolution", "name or service not known", "network is unreachable",
      "no route to host", "gaierror"),
    S("net_http", "network", CONSEQUENCE,
      r"\bSSL\w*Error\b|SSL: [A-Z_]{4,}|ChunkedEncodingError|IncompleteRead|requests\.exceptions\.\w+|"
      r"urllib3\.exceptions\.\w+|httpx\.\w+Error|aiohttp\.\w+Error|\bCommError\b|Error while calling W&B API|"
      r"wandb: Network error|couldn't connect to '?https?://|We couldn't connect|Couldn't reach|"
      r"HfHubHTTPError: (?:429|5\d\d)|\b50[0234] (?:Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out)|"
      r"Bad Gateway|Service Unavailable|Gateway Time-?out|Couldn't communicate with backend|"
      r"Error communicating with wandb process",
      "sslerror", "ssl:", "ssleoferror", "sslcertverificationerror", "chunkedencodingerror", "incompleteread",
      "requests.exceptions", "urllib3.exceptions", "httpx.", "aiohttp.", "commerror", "w&b api",
      "wandb: network error", "couldn't connect", "couldn't reach", "hfhubhttperror: 429", "hfhubhttperror: 5",
      "server error", "bad gateway", "service unavailable", "gateway time", "communicate with backend",
      "communicating with wandb"),
    S("node_weak", "node_failure", CONSEQUENCE,
      r"OwnerDiedError|owner has exited|ActorDiedError|RayActorError|The actor died unexpectedly|"
      r"WorkerCrashedError|The worker died unexpectedly|ActorUnavailableError",
      "ownerdied", "owner has exited", "actordied", "rayactorerror", "actor died", "workercrashed",
      "worker died", "actorunavailable"),
    # a worker that died by a signal: usually the OOM killer (a bus error or a segfault, printed
    # earlier, outranks this from a lower band)
    S("dataloader_exited", "host_oom", CONSEQUENCE, r"DataLoader worker \(pid\(?s?\)? ?[\d, ]+\) exited unexpectedly",
      "exited unexpectedly"),
    # glibc heap corruption: a native bug, reported before the SIGABRT it causes
    S("heap_corruption", "segfault", CONSEQUENCE,
      r"double free or corruption|free\(\): invalid (?:pointer|size|next size)|malloc\(\): [\w ]{0,30}corrupt|"
      r"corrupted size vs\. prev_size|munmap_chunk\(\): invalid pointer|corrupted double-linked list",
      "corrupt", "invalid pointer", "invalid size", "invalid next size"),
    # ---------------------------------------------------------------- unknown (band 6)
    S("abort", "unknown_error", UNKNOWN,
      r"Aborted \(core dumped\)|Fatal Python error: Aborted|terminate called after throwing an instance of|"
      r"\bSIGABRT\b|Signal 6 \(SIGABRT\)|exitcode\s*:\s*-6\b|" + _EXIT + r"134\b",
      "aborted", "terminate called", "sigabrt", *EXIT_ANCHORS),
    S("hydra_job_error", "unknown_error", UNKNOWN, r"Error executing job with overrides", "error executing job"),
    S("nonzero_exit", "unknown_error", UNKNOWN,
      r"Exited with exit code [1-9]\d*|exited with (?:code|status) [1-9]\d*|returned non-zero exit status [1-9]\d*|"
      r"FAILED \(non-zero exit code|Process finished with exit code [1-9]\d*|\bexit (?:code|status) [1-9]\d*\b|"
      r"exitcode\s*:\s*[1-9]\d*\b",
      "failed (non-zero", *EXIT_ANCHORS),
)

# Python exception names (the part after the last dot) and what they mean when no message
# signature above decided the line. Anything else that looks like an exception is unknown_error.
EXCEPTION_CLASSES: dict[str, tuple[str, int]] = {}
for _names, _cls, _band in (
    ("KeyError AttributeError TypeError ImportError ModuleNotFoundError NameError SyntaxError "
     "IndentationError TabError ValueError IndexError FileNotFoundError UnboundLocalError ZeroDivisionError "
     "AssertionError NotImplementedError RecursionError StopIteration LookupError PermissionError "
     "IsADirectoryError NotADirectoryError FileExistsError UnicodeDecodeError UnicodeEncodeError UnicodeError "
     "JSONDecodeError ScannerError ParserError ConstructorError ConfigAttributeError ConfigKeyError "
     "ConfigTypeError ConfigValueError MissingMandatoryValue ValidationError InterpolationResolutionError "
     "InstantiationException HydraException ArgumentError ArgumentTypeError Unsupported BackendCompilerFailed "
     "CompilationError UsageError RepositoryNotFoundError GatedRepoError RevisionNotFoundError "
     "EntryNotFoundError HFValidationError OverflowError MisconfigurationException InvalidArgumentError "
     "NotFoundError FailedPreconditionError UnimplementedError OutOfRangeError", "code_error", CONSEQUENCE),
    ("ResourceExhaustedError", "cuda_oom", PHYSICAL),
    ("UnavailableError DeadlineExceededError", "network", CONSEQUENCE),
    ("ConnectionError ConnectionResetError ConnectionRefusedError ConnectionAbortedError ReadTimeout "
     "ConnectTimeout ReadTimeoutError ConnectTimeoutError MaxRetryError NewConnectionError ProtocolError "
     "SSLError ChunkedEncodingError HTTPError HfHubHTTPError CommError LocalEntryNotFoundError TimeoutError "
     "timeout gaierror ClientConnectorError ServerDisconnectedError RemoteDisconnected "
     "ClientResponseError", "network", CONSEQUENCE),
    ("MemoryError _ArrayMemoryError", "host_oom", PHYSICAL),
    ("KeyboardInterrupt", "cancelled", CONSEQUENCE),
    ("FloatingPointError", "nan_loss", PHYSICAL),
    ("DistBackendError DistNetworkError DistStoreError RendezvousTimeoutError RendezvousConnectionError "
     "RendezvousClosedError", "nccl", CONSEQUENCE),
    ("OwnerDiedError ActorDiedError RayActorError WorkerCrashedError ActorUnavailableError", "node_failure",
     CONSEQUENCE),
    ("NodeDiedError", "node_failure", HARDWARE),
):
    for _n in _names.split():
        EXCEPTION_CLASSES[_n] = (_cls, _band)

# What a Python exception line looks like (after stripping rank/actor prefixes).
EXCEPTION_LINE = re.compile(
    r"^(?P<name>(?:[A-Za-z_]\w*\.)*(?:\w*(?:Error|Exception)|KeyboardInterrupt|SystemExit|StopIteration|"
    r"Unsupported|timeout|gaierror))(?:\([\w.]*\))?(?::(?:\s|$)|\s*$)"
)
LINE_PREFIX = re.compile(
    r"^(?:\s*(?:\[rank\s?\d+\]:?|\[\d+,\d+\]<std(?:out|err)>:|\(\w+ pid=\d+(?:, ip=[\d.]+)?\)|"
    r"rank\s?\d+:|\[\d+\]|\d+:(?=\s)|[\w.-]+ \|\||stderr:|stdout:|E\d{4} [\d:.]+ \d+ \S+\]) ?)+"
)
WARNING_LINE = re.compile(
    r"\b\w*Warning:|^\s*W\d{4} |\[W [\w.]+:\d+\]|warnings\.warn|(?<!NCCL )\bWARN(?:ING)?\b"
)

# Every anchor of every signature, and which signatures each one gates.
ANCHOR_INDEX: dict[str, tuple[int, ...]] = {}
for _i, _sig in enumerate(SIGNATURES):
    for _a in _sig.anchors:
        ANCHOR_INDEX[_a] = ANCHOR_INDEX.get(_a, ()) + (_i,)
IGNORE_ANCHORS: tuple[str, ...] = tuple(sorted({a for s in IGNORE for a in s.anchors}))
# Exception lines are found through these (every exception name above contains one of them).
EXCEPTION_ANCHORS: tuple[str, ...] = (
    "error", "exception", "keyboardinterrupt", "stopiteration", "unsupported", "timeout", "gaierror",
)
TRACEBACK_ANCHOR = "traceback (most recent call last)"


# ----------------------------------------------------------------------------- prefilter
# Short substrings searched with str.find over the whole lower-cased text (one pass each, at
# memchr-like speed). Every fine anchor above contains at least one of them (tested), so a line
# without any coarse anchor cannot match anything. Deliberately NOT here: words that healthy
# per-step lines print (`time`, `memory: 12G` is fine because only the fine anchors decide).
COARSE_ANCHORS: tuple[str, ...] = (
    "err", "exc", "fail", "kill", "fault", "sig", "oom", "memor", "nan", "finite", "=inf", ": inf",
    "'inf", "-inf", "+inf", "loss inf", "loss is inf", "returned inf", "timeout", "timed out",
    "time limit", "walltime", "wall-clock", "wall clock", "run time limit", "runlimit", "deadline",
    "cancel", "preempt", "requeue", "spot", "interrupt", "terminat", "nccl warn", "communicator",
    "collective", "c10d",
    "rendezvous", "tcpstore", "process group", "peer", "proxy", "xid", "ecc", "bus error",
    "off the bus", "lost", "nvml", "nvidia", "device", "/dev/", "tpu", "accelerator", "busy", "remap",
    "died", "dead", "space", "quot", "enospc", "storage", "disk", "inode", "basic_ios",
    "unexpected", "shm", "hbm", "exhaust", "to allocate", "bad_alloc", "illegal", "misaligned",
    "cudnn", "cublas", "cusolver", "assert", "loss scale", "many req", "rate limit",
    "ratelimit", "retr", "connect", "refused", "resolution", "service", "route", "ssl",
    "incompleteread", "w&b", "reach", "gateway", "state_dict", "mismatch", "repository",
    "missingmandatory", "command not found", "can't open", "\\r", "^m", "dos line", "abort",
    "exit", "hangup", "rebalance", "complet", "early stop", "finish", "queue done",
    "train_runtime", "fit` stopped", "done training", "stopiteration", "unsupported", "launch",
    "too many resources", "kernel image", "omegaconf", "hydra", "same device", "grad_fn",
    "inplace", "shapes", "size of tensor", "sizes of tensors", "expected", "second time", "invalid value", "system full", "system is full", "dataloader", "corrupt", "invalid pointer", "invalid size", "invalid next size", "wallclock", "nvlink", "initialize backend",
    "deserializ", "identifier", "arguments", "write to file", "node fail", "node_fail", "boot_fail", "actor",
    "worker", "owner", "no route", "unreachable", "name or service", "gaierror",
)
