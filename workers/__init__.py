"""Tubeway's worker side: the pool supervisor, the worker process loop and the job executor."""
