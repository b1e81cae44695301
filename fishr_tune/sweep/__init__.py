"""The sweep engine: plan studies, run them as Ray Tune trials, write Parquet, resume."""
