"""The world: which process am I, how many are we, and what happens when one fails.

`mpiexec -n N python train.py` starts N copies of one script. MPI numbers them
0..N-1 (the *rank*) and gives them a communicator, COMM_WORLD, through which they
exchange arrays. Every copy runs the same code; only the rank (which data shard, who
writes the checkpoint) tells them apart.

    init()          -> (rank, world_size); idempotent, and called by everything else
    rank(), world_size(), is_initialized()
    abort(code)     end every process of the job now (MPI_Abort)

Where MPI comes from. mpi4py, over an MPI library installed from the package index
(`pip install mpi4py mpich`, or `pip install -e ".[distributed]"`); the mpich wheel
puts `mpiexec` beside the Python interpreter. mpi4py is imported here, at init(),
never when minigrad is imported.

A world of one. Without mpi4py, a script started plainly (`python train.py`) is
rank 0 of a world of 1, and every collective still works (a sum over one process is
the process's own value). Started by an MPI launcher without mpi4py, or with mpi4py
but no loadable MPI library, init() raises and says what to install.

Failure. If one rank raised and the others went on, they would wait forever in
their next collective for a partner that is gone. So in a world of more than one,
init() installs an excepthook: an exception that reaches the top of any rank
prints its traceback and calls MPI_Abort, which ends every rank of the job with a
non-zero exit code at once. (A rank that leaves with sys.exit(code) never reaches
the excepthook: call dist.abort(code) instead.)
"""
import os
import sys
import time
import traceback

INSTALL_HINT = 'pip install -e ".[distributed]"  (or: pip install mpi4py mpich)'

# environment variables that MPI launchers set in the processes they start
_LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE",
                       "MV2_COMM_WORLD_SIZE")


class _World:
    comm = None         # mpi4py's COMM_WORLD, or None in a world of one without MPI
    MPI = None          # the mpi4py.MPI module, once loaded
    rank = 0
    size = 1
    initialized = False


def _launched_by_mpi():
    return any(variable in os.environ for variable in _LAUNCHER_VARIABLES)


def _load_mpi():
    """mpi4py.MPI, or None when mpi4py is not installed and no launcher started us."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        absent = getattr(exc, "name", None) == "mpi4py"
        if absent and not _launched_by_mpi():
            return None                  # plainly started, mpi4py absent: a world of one
        what = "mpi4py is not installed" if absent else f"mpi4py cannot load an MPI library ({exc})"
        raise RuntimeError(f"minigrad.distributed: {what}; install it with {INSTALL_HINT}") from None
    except RuntimeError as exc:          # mpi4py present, but its MPI library is not
        raise RuntimeError(f"minigrad.distributed: mpi4py cannot load an MPI library ({exc}); "
                           f"install one with {INSTALL_HINT}") from None
    return MPI


def init():
    """Join the job: returns (rank, world_size). Safe to call again (it does nothing)."""
    if not _World.initialized:
        MPI = _load_mpi()
        if MPI is not None:
            _World.MPI, _World.comm = MPI, MPI.COMM_WORLD
            _World.rank, _World.size = _World.comm.Get_rank(), _World.comm.Get_size()
        _World.initialized = True
        if _World.size > 1:
            _install_abort_on_exception()
    return _World.rank, _World.size


def is_initialized():
    return _World.initialized


def rank():
    """This process's number, 0..world_size()-1."""
    return init()[0]


def world_size():
    """How many processes the job has."""
    return init()[1]


def comm():
    """mpi4py's COMM_WORLD (None in a world of one without MPI), for the collectives."""
    init()
    return _World.comm


def mpi():
    init()
    return _World.MPI


def abort(code=1):
    """End every process of the job now with exit code `code` (MPI_Abort)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if _World.comm is not None and _World.size > 1:
        # MPI_Abort makes the launcher kill every process at once, which may drop output
        # still in the pipes to it, the traceback that says why: give it a moment
        time.sleep(0.5)
        _World.comm.Abort(code)
    os._exit(code)


def _install_abort_on_exception():
    previous = sys.excepthook

    def abort_the_job(kind, value, tb):
        # the traceback first (the reason), then take the whole job down
        try:
            print(f"minigrad.distributed: rank {_World.rank} of {_World.size} raised; "
                  f"aborting the whole job", file=sys.stderr)
            previous(kind, value, tb)
        except Exception:                          # never let the report block the abort
            traceback.print_exception(kind, value, tb)
        abort(1)

    sys.excepthook = abort_the_job
