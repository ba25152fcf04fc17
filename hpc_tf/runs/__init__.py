"""A run on the submit side: `submit` (prepare, then one transaction), `render` (Jinja2 and the quoting filters),
`snapshot` (the source copy), `follow` (`Run`, `Watcher`), `logs`, `explain` (rank → node → role → port → GPUs),
`executor` (a submitit executor for the user's own functions)."""
