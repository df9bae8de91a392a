"""Inside one run's process (`python -m effbench.child SPEC OUT`): the model and task loaded,
techniques applied, a workload run (workloads/), measurements taken (measure), and one RunResult
written. Never imports the run side that launched it (effbench.run)."""

# The thread pools a run's `threads` sizes through the environment, before the child imports torch
# (OpenMP and the BLAS libraries read these once). Here, not in a module that imports torch.
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
