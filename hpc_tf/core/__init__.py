"""The pure core: derivations and decisions that start no process and read no environment.

Everything here is a function of its arguments (spec, hostlists, layouts, plans, records and their
transitions), so it is tested with tables and used the same way by the submit side and the job.
"""
