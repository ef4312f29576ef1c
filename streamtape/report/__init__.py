"""The text views of a tape: what ``info``, ``diagnose``, ``play`` and the demo show a person.

They live here, apart from the command line, so that the CLI, the demo and later reports (HTML, the
pytest plugin) print the same thing from one place: each view takes model objects and diagnoses and gives
back lines (or writes a stream), and knows nothing about argument parsing, exit codes or files.
"""
