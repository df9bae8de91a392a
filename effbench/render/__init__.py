"""What people read: summary tables, comparison tables, plots and a result set's README, all made
from result files by the read side (effbench.read). Never starts a run."""
