"""The kernel micro-benchmark: each fused kernel of effbench.kernels raced against eager PyTorch,
torch.compile and liger-kernel (cases: inputs and byte models; bench: timing and records)."""
