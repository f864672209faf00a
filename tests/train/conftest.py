"""Tiny models train faster on one thread, and a shared 2-core machine makes multi-threaded BLAS spin-wait
(measured here: the same test 25 s on one thread, several minutes on two while other jobs ran)."""

import torch

torch.set_num_threads(1)
