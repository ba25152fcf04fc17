"""A config file (or mapping) → a validated EstimatorSpec and its sweep block: strict YAML (`strict_yaml`),
`--set` overrides, file checks and compute targets (`targets`), every problem collected (`loading`)."""
