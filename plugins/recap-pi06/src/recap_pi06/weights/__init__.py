"""Importing public pretrained weights (PaliGemma, SigLIP, pi0, pi0.5) into the pi0.6-style VLA."""
