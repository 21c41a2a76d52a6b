"""Shared test set-up. pytest puts this folder on sys.path, so the helpers beside this file
(two_process_launch.py, sandbox_reference.py) import by name from every tests/ subfolder."""
