"""Tubeway's built-in plugins; they use exactly the hooks a team's plugin would use."""
