"""Starting a job from Python: `mpiexec -n N python script.py ...` with the right mpiexec.

The mpich wheel installs `mpiexec` beside the Python interpreter it was installed
for, which is also the MPI that mpi4py there loads; a different mpiexec found first
on PATH (say, a system Open MPI) would start N unconnected worlds of one. So the
one beside sys.executable wins, and PATH is the fallback.
"""
import os
import shutil
import signal
import subprocess
import sys

from .world import INSTALL_HINT


def find_mpiexec():
    """The path of mpiexec (beside this Python first, then on PATH), or None."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    return shutil.which("mpiexec")


def launch(argv, nprocs=2, timeout=None, capture_output=False, text=False, **popen_options):
    """Run `mpiexec -n nprocs python *argv` and wait for it: a subprocess.CompletedProcess.

    argv: the script and its arguments, e.g. ["train.py", "--quick"]; each process
    runs it with this Python. capture_output, text and the other options (env=, cwd=)
    are subprocess.run's. timeout (seconds): past it the whole job, mpiexec and
    every rank, is ended and subprocess.TimeoutExpired raised (killing mpiexec
    alone could leave ranks behind, spinning in a collective).
    """
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise RuntimeError(f"minigrad.distributed.launch: no mpiexec found beside {sys.executable} or on "
                           f"PATH; install one with {INSTALL_HINT}")
    command = [mpiexec, "-n", str(nprocs), sys.executable, *map(str, argv)]
    if capture_output:
        popen_options.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # a session of its own: the job's processes form one group that can be ended together
    with subprocess.Popen(command, text=text, start_new_session=True, **popen_options) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _end_group(process)
            stdout, stderr = process.communicate()
            raise subprocess.TimeoutExpired(command, timeout, stdout, stderr) from None
        except BaseException:          # Ctrl-C in the parent: do not leave the job running
            _end_group(process)
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _end_group(process):
    """SIGTERM to the job's process group (mpiexec then ends its ranks), SIGKILL if needed."""
    for sig, grace in ((signal.SIGTERM, 3), (signal.SIGKILL, 3)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue
