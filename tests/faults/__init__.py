"""The kill -9 fault trials (``make chaos``): a harness that runs pipelines, kills them at
fail points, restarts them and checks the tables hold every record exactly once."""
