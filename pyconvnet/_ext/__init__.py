"""Compiled kernels. Private: call them through the public wrappers."""
