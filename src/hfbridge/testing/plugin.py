"""pytest plugin (entry point ``pytest11``): cassette fixtures for users' own chains."""
