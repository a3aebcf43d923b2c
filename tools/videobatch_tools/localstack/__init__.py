"""The local AWS stack: template.yaml's resources in moto (server mode, 127.0.0.1) and its wiring, offline.

- ``template``: CloudFormation YAML loader (short tags) and a resolver for intrinsic functions.
- ``moto_server``: ``moto_server()`` context manager, dummy-credential sessions, a scoped AWS environment.
- ``resources``: ``create_stack()`` builds the table, bucket, queues, buses, rules, secret and schedule group
  from the template's own definitions and resolves each function's environment.
- ``wiring``: ``LocalWiring`` delivers S3 events, SQS batches, rate schedules and one-time Scheduler schedules
  to handler callables on an injected clock; ``run_until_idle`` drives a simulation to quiescence.
"""
