"""Triton kernels with autograd Functions and plain PyTorch references of the same maths.

Kernels know nothing about models: the `fused` technique (effbench.techniques.fused) wires them in.
"""
