"""Campaigns beyond one machine: independent chunks of work run as tasks on a Dask cluster.

::

    chunks --submit--> Dask scheduler --> workers (each chunk a task) --> results, in completion order
       ^                                                                      |
       +-- the journal (JSON Lines, one completed chunk a line) <-------------+  resume skips what it holds

The work of a campaign is a list of *chunks* (a range of fuzz seeds, say), each a task whose result
depends on the chunk alone, so the results are the same whatever the number of workers or machines.
The scheduler re-runs a task whose worker was lost mid-task; :func:`run_chunks` reports how many times
that happened to each chunk.  See docs/scaling.md; ``hwsim fuzz --cluster`` is the first user.
"""

from .cluster import CampaignError, ChunkDone, run_chunks

__all__ = ["CampaignError", "ChunkDone", "run_chunks"]
