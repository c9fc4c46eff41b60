"""Run a command as a child SUBREAPER, so the CPU of every process it starts is accounted for.

Why: sshd's privileged monitor exits without waiting for the per-connection user process, which
is then re-parented to init and reaped there — its CPU (the login shell, the rc file, the
commands) would vanish from sshd's tree (measured: an ssh connection's ~100 ms rc loop did not
show up in the listener's ``cutime``). With ``PR_SET_CHILD_SUBREAPER`` such orphans are
re-parented to this process instead, and reaped here: their CPU lands in OUR ``cutime``.

    python -m benchmarks.reaper CMD ARGS…

Box CPU = this process's ``cutime+cstime`` + ``utime+stime+cutime+cstime`` of every live
descendant (see :func:`benchmarks.procstat.reaped_tree_cpu`). Exits with CMD's status.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("reaper: prctl(PR_SET_CHILD_SUBREAPER) failed", file=sys.stderr)
    pid = os.fork()
    if pid == 0:
        os.execvp(sys.argv[1], sys.argv[1:])

    def forward(sig, _frame):
        try:
            os.kill(pid, sig)
        except OSError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    status = 0
    while True:
        try:
            wpid, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if wpid == pid:
            status = os.waitstatus_to_exitcode(st)
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    raise SystemExit(main())
