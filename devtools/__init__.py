"""Local tooling shared by `./dev run` and the test suite: a Redis/Valkey process and a webhook receiver."""
