"""The two workloads a run can execute: `finetune` (training to a task) and `infer` (speed and quality)."""
